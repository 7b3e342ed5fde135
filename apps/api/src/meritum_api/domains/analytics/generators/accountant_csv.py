"""The accountant export as CSV: one row per paid claim of a provider in a period.

A row is a claim in state PAID or ADJUSTED whose payment date lies in the
report's period (both ends included), in order of payment date, date of
service and claim id. The columns are the spec's and nothing more: no PHN,
no patient name.

Format: RFC 4180 (CRLF after every record; fields holding a comma, a double
quote, CR or LF are quoted, with quotes doubled), written by the ``csv``
module. Money is the NUMERIC read as ``Decimal`` and written with exactly two
decimals, never through a float. Dates are ISO ``YYYY-MM-DD``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Select, select

from meritum_shared.constants.claims import ClaimState, ClaimType
from meritum_shared.schemas.db import Claim

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

#: Column headings, in the order of the spec's column list.
HEADER: Final[tuple[str, ...]] = (
    "Date of service",
    "HSC code",
    "Modifiers",
    "Submitted fee (CAD)",
    "Assessed fee (CAD)",
    "Payment date",
    "BA number",
    "Location",
    "Claim type",
)

#: Claim states that mean "paid" for the accountant.
PAID_STATES: Final[tuple[ClaimState, ...]] = (ClaimState.PAID, ClaimState.ADJUSTED)

#: Excel reads a UTF-8 CSV as the local ANSI code page unless it starts with a
#: byte order mark; with it, accented locations ("Saint-Éloi") open correctly.
BOM: Final = "\ufeff"

#: Roughly how many bytes each yielded chunk holds.
CHUNK_SIZE: Final = 64 * 1024

#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS: Final = 2_000

_CENT: Final = Decimal("0.01")


def paid_claims_query(
    request: GenerationRequest,
) -> Select[date, str, str, Decimal, Decimal | None, date | None, str, str, ClaimType]:
    """The export's rows: this provider's paid claims with a payment date in the period."""
    if request.period_start is None or request.period_end is None:
        raise ValueError("the accountant export needs a period")
    return (
        select(
            Claim.date_of_service,
            Claim.hsc_code,
            Claim.modifiers,
            Claim.submitted_fee,
            Claim.assessed_fee,
            Claim.payment_date,
            Claim.ba_number,
            Claim.location,
            Claim.claim_type,
        )
        .where(
            # The tenant filter: another provider's claims never reach the file.
            Claim.provider_id == request.provider_id,
            Claim.state.in_(PAID_STATES),
            Claim.payment_date.between(request.period_start, request.period_end),
        )
        .order_by(Claim.payment_date, Claim.date_of_service, Claim.claim_id)
    )


def _money(value: Decimal | None) -> str:
    if value is None:
        return ""
    cents = value.quantize(_CENT)
    if cents != value:  # NUMERIC(10, 2) never gets here; refuse to round silently
        raise ValueError("a fee has more than two decimals")
    return f"{cents:f}"


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """Stream the CSV in chunks of about 64 KiB, read through a server-side cursor."""
    statement = paid_claims_query(request)
    buffer = io.StringIO()
    # The default dialect is RFC 4180's: comma, double quote, quote only when
    # needed, quotes doubled, CRLF line endings.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    buffer.write(BOM)
    writer.writerow(HEADER)
    # stream_results opens a named (server-side) cursor: rows arrive FETCH_ROWS
    # at a time, so memory stays flat whatever the period holds.
    result = conn.execute(
        statement, execution_options={"stream_results": True, "yield_per": FETCH_ROWS}
    )
    try:
        for served, hsc, modifiers, submitted, assessed, paid, ba, location, kind in result:
            writer.writerow(
                (
                    _day(served),
                    hsc,
                    modifiers,
                    _money(submitted),
                    _money(assessed),
                    _day(paid),
                    ba,
                    location,
                    kind,
                )
            )
            if buffer.tell() >= CHUNK_SIZE:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
    finally:
        # Also when the consumer stops early: release the cursor at once.
        result.close()
    yield buffer.getvalue().encode("utf-8")
