"""Synthetic paid claims for the accountant benchmarks, made by PostgreSQL in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

#: What the accountant reports read, as the CSV lists it: a provider's paid
#: claims of a period by payment date (``%s`` placeholders: provider, first
#: and last payment day).
PAID_ROWS = """
SELECT date_of_service, hsc_code, modifiers, submitted_fee, assessed_fee, payment_date,
    ba_number, location, claim_type
FROM claims
WHERE provider_id = %s AND state IN ('PAID', 'ADJUSTED') AND payment_date BETWEEN %s AND %s
ORDER BY payment_date, date_of_service, claim_id
"""


def _text_array(values: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


def paid_claims(
    *,
    claims: int | str,
    first_service: date,
    service_days: int,
    first_payment: date,
    payment_days: int,
    locations: Sequence[str],
    where: str = "true",
) -> str:
    """An INSERT of ``claims`` claims for each provider ``where`` selects (``p`` is providers).

    ``claims`` is a number or a ``str.format`` field that the caller fills later.

    Claim ``g`` is paid (every 17th adjusted), WCB every 11th, served on
    ``first_service + 7g mod service_days`` and paid on ``first_payment +
    7g mod payment_days``; codes, modifiers, fees, BA numbers, locations
    and RRNP premiums cycle so that every report has several of each.
    """
    return f"""
INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, hsc_code,
    modifiers, submitted_fee, assessed_fee, payment_date, ba_number, location, rrnp_premium,
    wcb_claim_number, wcb_form_type)
SELECT p.provider_id, pt.patient_id,
    CASE WHEN g % 11 = 0 THEN 'WCB' ELSE 'AHCIP' END,
    CASE WHEN g % 17 = 0 THEN 'ADJUSTED' ELSE 'PAID' END,
    DATE '{first_service}' + (g * 7) % {service_days},
    (ARRAY['03.03A', '03.04A', '03.07B', '03.08A', '08.19A', '13.99H'])[1 + g % 6],
    (ARRAY['', 'CMGP', 'CMGP,AFHR', 'EV', 'TM', 'BMI'])[1 + g % 6],
    ((g * 7919) % 30011)::numeric / 100 + 20,
    ((g * 7919) % 30011)::numeric / 100 + 20 - (g % 13)::numeric / 100,
    DATE '{first_payment}' + (g * 7) % {payment_days},
    (ARRAY['12345', '67890', '24680'])[1 + g % 3],
    ({_text_array(locations)})[1 + g % {len(locations)}],
    CASE WHEN g % 4 = 3 THEN 4.17 ELSE 0 END,
    CASE WHEN g % 11 = 0 THEN (1000000 + g)::text END,
    CASE WHEN g % 11 = 0 THEN 'C151' END
FROM providers p
JOIN LATERAL (SELECT patient_id FROM patients WHERE provider_id = p.provider_id LIMIT 1) pt
    ON true
CROSS JOIN generate_series(1, {claims}) g
WHERE {where}
"""
