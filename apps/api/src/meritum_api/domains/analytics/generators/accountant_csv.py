"""The accountant export as CSV: one row per paid claim of a provider in a period.

The rows are :func:`figures.paid_claims`, the same rows the PDF summary and
detail total: paid claims (PAID or ADJUSTED) whose payment date lies in the
period, by payment date, date of service and claim id. The columns are the
spec's and nothing more: no PHN, no patient name.

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

from sqlalchemy import Connection

from meritum_api.domains.analytics import figures

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

#: The header row, exactly as the specification writes it.
HEADER: Final[tuple[str, ...]] = (
    "date_of_service",
    "hsc_code",
    "modifiers",
    "submitted_fee",
    "assessed_fee",
    "payment_date",
    "ba_number",
    "location",
    "claim_type",
)

#: Excel reads a UTF-8 CSV as the local ANSI code page unless it starts with a
#: byte order mark; with it, accented locations ("Saint-Éloi") open correctly.
BOM: Final = "\ufeff"

#: Roughly how many bytes each yielded chunk holds.
CHUNK_SIZE: Final = 64 * 1024

_CENT: Final = Decimal("0.01")


def _money(value: Decimal) -> str:
    cents = value.quantize(_CENT)
    if cents != value:  # NUMERIC(10, 2) never gets here; refuse to round silently
        raise ValueError("a fee has more than two decimals")
    return f"{cents:f}"


def _day(value: date) -> str:
    return value.isoformat()


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """Stream the CSV in chunks of about 64 KiB, read through a server-side cursor."""
    period = request.period()
    buffer = io.StringIO()
    # The default dialect is RFC 4180's: comma, double quote, quote only when
    # needed, quotes doubled, CRLF line endings.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    buffer.write(BOM)
    writer.writerow(HEADER)
    with figures.paid_claims(conn=conn, ctx=request.scope(), period=period) as rows:
        for claim in rows:
            writer.writerow(
                (
                    _day(claim.date_of_service),
                    claim.hsc_code,
                    claim.modifiers,
                    _money(claim.submitted_fee),
                    _money(claim.assessed_fee),
                    _day(claim.payment_date),
                    claim.ba_number,
                    claim.location,
                    claim.claim_type,
                )
            )
            if buffer.tell() >= CHUNK_SIZE:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
