"""The request form's period presets, on Edmonton's calendar (pure functions)."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Final


class Preset(StrEnum):
    LAST_MONTH = "last_month"
    LAST_QUARTER = "last_quarter"
    LAST_YEAR = "last_year"
    YEAR_TO_DATE = "year_to_date"
    CUSTOM = "custom"


PRESET_LABELS: Final = {
    Preset.LAST_MONTH: "Last month",
    Preset.LAST_QUARTER: "Last quarter",
    Preset.LAST_YEAR: "Last calendar year",
    Preset.YEAR_TO_DATE: "Year to date",
    Preset.CUSTOM: "Custom dates",
}


def preset_range(preset: Preset, today: date) -> tuple[date, date] | None:
    """The inclusive (start, end) of a preset on ``today``; None for custom."""
    match preset:
        case Preset.LAST_MONTH:
            end = today.replace(day=1) - timedelta(days=1)
            return end.replace(day=1), end
        case Preset.LAST_QUARTER:
            this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
            end = this_quarter - timedelta(days=1)
            return date(end.year, end.month - 2, 1), end
        case Preset.LAST_YEAR:
            return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
        case Preset.YEAR_TO_DATE:
            return date(today.year, 1, 1), today
        case Preset.CUSTOM:
            return None
