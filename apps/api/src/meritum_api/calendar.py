"""The business calendar: Edmonton time, Alberta's general holidays, business days."""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo

#: Where the physicians practise: every schedule and local date is read here.
EDMONTON: Final = ZoneInfo("America/Edmonton")
