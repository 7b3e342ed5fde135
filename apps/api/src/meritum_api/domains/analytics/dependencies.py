"""FastAPI dependencies of the reports endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

#: An optional ``Idempotency-Key``: 1 to 255 visible ASCII characters.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Sending the same key and body again within 24 hours returns the "
        "original report instead of creating a second one.",
    ),
]
