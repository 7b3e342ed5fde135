"""Turning PostgreSQL's refusals into clear messages that carry no data.

PostgreSQL's own error text may quote the failing row ("Failing row
contains ...") and so a PHN or a storage key. These messages are built only
from the SQLSTATE and the names of the column or constraint, never from the
server's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import DBAPIError

NOT_NULL_VIOLATION: Final = "23502"
FOREIGN_KEY_VIOLATION: Final = "23503"
UNIQUE_VIOLATION: Final = "23505"
CHECK_VIOLATION: Final = "23514"

_RULES: Final = {
    "ck_generated_reports_report_type_valid": "report_type is not a known report type",
    "ck_generated_reports_format_valid": "format must be one of PDF, CSV, ZIP",
    "ck_generated_reports_status_valid": (
        "status must be one of pending, generating, ready, failed, expired"
    ),
    "ck_generated_reports_file_size_not_negative": "file_size_bytes must not be negative",
    "ck_generated_reports_period_bounds_paired": (
        "period_start and period_end must be given together"
    ),
    "ck_generated_reports_period_order": "period_end must not be before period_start",
    "ck_generated_reports_period_matches_type": (
        "a data portability export has no period; every other report type needs one"
    ),
    "ck_generated_reports_portability_is_zip": "a data portability export must be a ZIP",
    "fk_generated_reports_provider_id_providers": "provider_id does not name a known provider",
    "ck_providers_billing_number_digits": "billing_number must be 4 to 10 digits",
    "uq_providers_billing_number": "billing_number is already registered",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why PostgreSQL refused a write, safe to show and to log."""

    sqlstate: str
    table: str | None
    column: str | None
    constraint: str | None
    message: str


def describe_refusal(exc: DBAPIError) -> Refusal | None:
    """A PHI-free description of an integrity error, or None if it is not one."""
    diag = getattr(exc.orig, "diag", None)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if diag is None or sqlstate is None or not sqlstate.startswith("23"):
        return None
    table, column, constraint = diag.table_name, diag.column_name, diag.constraint_name
    if constraint in _RULES:
        message = _RULES[constraint]
    elif sqlstate == NOT_NULL_VIOLATION and column:
        message = f"{column} is required"
    elif constraint:
        message = f"the value breaks the rule {constraint}"
    else:
        message = "the value breaks a database rule"
    return Refusal(sqlstate, table, column, constraint, message)
