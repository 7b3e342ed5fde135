"""Synthetic demo data: physicians, their patients and years of AHCIP and WCB claims.

Deterministic: physician ``i`` of seed ``s`` is drawn from its own
``random.Random`` seeded with ``(s, i)``, so the same arguments (and the
same ``today``) always give the same rows, ids included.

Idempotent by skipping: a physician whose billing number (or id) already
exists is left alone, with everything under it. Each physician is written in
one transaction together with its patients and claims, so a physician that
exists is complete. Nothing is ever deleted; raising ``physicians`` adds
only the new ones.

Consistent: every claim has its audit history, one row per change (created,
edited, each state change in order, the last one naming the claim's state),
``claims.created_at`` and ``updated_at`` are its first and last change, the
submission batches list exactly the claims that carry their id (count and
total included), AI Coach suggestions name real claims of the same
physician, the profile lists the BA numbers and locations claims bill
under, and every refused claim names an explanatory code of
``rejection_codes`` (which the seed fills) and has its change to ``REJECTED``
in its history.

Fast: every table goes in by ``COPY``.

Demo logins are created in each physician's transaction, beside the
physician they sign in as: ``physician<N>@demo.meritum.example`` for each,
and for the first physician a delegate (``delegate1@…``) who may view and
export reports but not export all data. They share :data:`DEMO_PASSWORD`:
demo data only, and seeding refuses a production database.

Every value is invented. PHNs are random nine-digit numbers (the schema's
rule); fees, HSC codes, modifiers and explanatory codes are plausible
Alberta-shaped values, not a copy of the Schedule of Medical Benefits.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from meritum_api.auth.service import create_user
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.constants.claims import (
    BatchStatus,
    BaType,
    ClaimHistoryAction,
    ClaimState,
    ClaimType,
    ProviderSettingSection,
    SuggestionCategory,
    SuggestionStatus,
)
from meritum_shared.schemas.db import providers, rejection_codes

#: The calendar the physicians work in: "today" is a date in Alberta.
ALBERTA: Final = ZoneInfo("America/Edmonton")

DEFAULT_PHYSICIANS: Final = 3
DEFAULT_YEARS: Final = 3
#: Real volumes run from 50 to 2,000 claims per physician per month.
DEFAULT_CLAIMS_PER_MONTH: Final = 300
DEFAULT_SEED: Final = 2026

_CENT: Final = Decimal("0.01")

FIRST_NAMES: Final = (
    "Amélie", "Zoë", "François", "Éloïse", "Chloé", "Noé", "Thi Hương", "Jürgen",
    "Siobhán", "Mary-Kate", "Jean-Luc", "Liam", "Olivia", "Emma", "Noah", "Aarav",
    "Priya", "Wei", "Fatima", "Muhammad", "Sofía", "Björn", "Kateřina", "Łukasz",
    "Dimitrios", "Ngozi", "Tenzin", "Ava", "Jacob", "Harpreet", "Mateo", "Ana-María",
    "D'Shawn", "Renée", "Søren", "Grace",
)  # fmt: skip
LAST_NAMES: Final = (
    "Côté", "O'Brien", "Nguyễn", "Smith, Jr.", "Tremblay", "Lefèbvre", "D'Arcy",
    "MacDonald", "Müller", "Ødegård", "Wong", "Singh", "Kowalczyk", "Sánchez",
    "Al-Hakim", "Cardinal", "Yellowhorn", "Gauthier-Roy", "Brown, III", "Ó Súilleabháin",
    "van der Berg", "Łukaszewski", "Park", "Patel", "Thompson", "Bélanger", "St-Pierre",
    "Lévesque", "Johnson, Sr.", "Chen", "Okafor", "Hernández", "Dubé", "Kim", "N'Diaye",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Site:
    """A place of service; ``rrnp_rate`` is the rural premium share, None in town."""

    name: str
    rrnp_rate: Decimal | None = None


URBAN_SITES: Final = (
    Site("Sunridge Family Medicine, Calgary"),
    Site("Clinique médicale Saint-Éloi, Edmonton"),
    Site("Crowfoot Village Clinic — Suite 210, Calgary"),
    Site('Whyte Avenue "Walk-In" Clinic, Edmonton'),
    Site("Red Deer Regional Hospital, Emergency"),
    Site("Lethbridge Family Practice"),
    Site("St. Albert Family Medicine Centre"),
    Site("Mill Woods Primary Care Network, Edmonton"),
)
RURAL_SITES: Final = (
    Site("Peace River Community Health Centre", Decimal("0.1215")),
    Site("High Level Medical Clinic", Decimal("0.2380")),
    Site("Lac La Biche Healthcare Centre", Decimal("0.1545")),
    Site("Fort Vermilion, St. Theresa Health Centre", Decimal("0.2650")),
    Site("Pincher Creek Medical Clinic", Decimal("0.0925")),
    Site("Bonnyville Health Centre", Decimal("0.1180")),
)


@dataclass(frozen=True, slots=True)
class Service:
    """A health service code with an invented base fee and its share of visits."""

    code: str
    base_fee: Decimal
    weight: int


SERVICES: Final = (
    Service("03.03A", Decimal("41.73"), 50),
    Service("03.04A", Decimal("96.80"), 10),
    Service("03.05A", Decimal("27.59"), 5),
    Service("03.07B", Decimal("68.47"), 6),
    Service("03.08A", Decimal("142.23"), 5),
    Service("08.19A", Decimal("36.45"), 8),
    Service("13.99H", Decimal("24.12"), 4),
    Service("03.03CV", Decimal("38.22"), 7),
    Service("13.59A", Decimal("19.87"), 5),
)
_SERVICE_WEIGHTS: Final = [s.weight for s in SERVICES]

#: Modifier sets as submitted (comma-separated, no spaces) and the share they add.
MODIFIER_SETS: Final = (
    ("", Decimal("0"), 58),
    ("CMGP", Decimal("0.20"), 18),
    ("AFHR", Decimal("0.35"), 5),
    ("EV", Decimal("0.15"), 5),
    ("TM", Decimal("0"), 4),
    ("BMI", Decimal("0.25"), 3),
    ("CMGP,AFHR", Decimal("0.55"), 4),
    ("CMGP,EV", Decimal("0.35"), 2),
    ("CMGP,BMI", Decimal("0.45"), 1),
)
_MODIFIER_WEIGHTS: Final = [m[2] for m in MODIFIER_SETS]

WCB_FIRST_REPORT: Final = "C050E"
#: Follow-up forms, each with a row in ``wcb_timing_tiers`` (the migration fills it).
WCB_PROGRESS_FORMS: Final = ("C151", "C151", "C151", "C568A", "RF03E")


@dataclass(frozen=True, slots=True)
class RejectionCode:
    """An explanatory code of a refused claim, as ``rejection_codes`` holds it."""

    code: str
    claim_type: ClaimType
    description: str
    corrective_guidance: str


#: The explanatory codes refused claims carry, shaped like AHCIP's (and WCB's)
#: and worded here: every code a seeded claim names is one of these rows.
REJECTION_CODES: Final = (
    RejectionCode(
        "01",
        ClaimType.AHCIP,
        "No record of this personal health number: the person is not registered with AHCIP.",
        "Check the PHN against the patient's health card; for a newborn, resubmit with the "
        "person data segment and the newborn code.",
    ),
    RejectionCode(
        "01B",
        ClaimType.AHCIP,
        "The patient could not be confirmed as a resident of Alberta.",
        "Ask the patient for current coverage; bill the home province's plan or the patient "
        "if they are not covered by AHCIP.",
    ),
    RejectionCode(
        "02",
        ClaimType.AHCIP,
        "The registration number and the personal health number belong to different people.",
        "Correct the PHN or the registration number from the health card and resubmit.",
    ),
    RejectionCode(
        "05",
        ClaimType.AHCIP,
        "The personal health number was not in effect on the date of service.",
        "Confirm the coverage dates with the patient or through the eligibility check, then "
        "resubmit with the number in effect that day.",
    ),
    RejectionCode(
        "05A",
        ClaimType.AHCIP,
        "The personal health number is missing or fails its check digit.",
        "Re-enter the nine-digit PHN exactly as on the health card and resubmit.",
    ),
    RejectionCode(
        "05B",
        ClaimType.AHCIP,
        "The service concerns a work injury: the claim belongs to the Workers' Compensation Board.",
        "Submit the service to WCB with the WCB claim number and the right report form.",
    ),
    RejectionCode(
        "29",
        ClaimType.AHCIP,
        "Submitted after the 90-day limit from the date of service.",
        "Resubmit only with a documented reason for the delay (an approved extension); "
        "otherwise write the claim off.",
    ),
    RejectionCode(
        "30",
        ClaimType.AHCIP,
        "Duplicate: the same service for the same patient and day has already been paid.",
        "Check the earlier claim; if both services were given, resubmit with the times of "
        "each and a note explaining the second.",
    ),
    RejectionCode(
        "46",
        ClaimType.AHCIP,
        "The health service code is not payable with the modifiers or the skill submitted.",
        "Review the code's rules in the Schedule of Medical Benefits and resubmit with the "
        "modifiers and skill that apply.",
    ),
    RejectionCode(
        "W01",
        ClaimType.WCB,
        "The WCB claim number was not found or does not match the worker.",
        "Confirm the claim number with the worker or WCB and resubmit the report with it.",
    ),
    RejectionCode(
        "W07",
        ClaimType.WCB,
        "The report form is incomplete: required fields are missing.",
        "Complete the missing fields (diagnosis, restrictions, return-to-work estimate) and "
        "resubmit the form.",
    ),
    RejectionCode(
        "W12",
        ClaimType.WCB,
        "The service is not related to the injury WCB accepted on this claim.",
        "Bill AHCIP for an unrelated condition, or send WCB the notes that link the service "
        "to the accepted injury.",
    ),
    RejectionCode(
        "W25",
        ClaimType.WCB,
        "Duplicate report: WCB already received this form for this exam.",
        "Do not resubmit; if the first report was wrong, send a correction on the same form.",
    ),
)
_AHCIP_REJECTION_CODES: Final = tuple(
    r.code for r in REJECTION_CODES if r.claim_type is ClaimType.AHCIP
)
_WCB_REJECTION_CODES: Final = tuple(
    r.code for r in REJECTION_CODES if r.claim_type is ClaimType.WCB
)

# What happens to a claim depends on how long ago it was served: settled ones
# (their payment run is past) are mostly paid; the newest are still in flight.
_SETTLED_STATES: Final = (
    (ClaimState.PAID, 845),
    (ClaimState.ADJUSTED, 60),
    (ClaimState.REJECTED, 45),
    (ClaimState.WRITTEN_OFF, 20),
    (ClaimState.EXPIRED, 20),
    (ClaimState.ASSESSED, 10),
)
_RECENT_STATES: Final = (  # served in the last three days
    (ClaimState.DRAFT, 40),
    (ClaimState.QUEUED, 30),
    (ClaimState.SUBMITTED, 30),
)
_IN_FLIGHT_STATES: Final = (  # older, but the payment run is still ahead
    (ClaimState.QUEUED, 5),
    (ClaimState.SUBMITTED, 45),
    (ClaimState.ASSESSED, 40),
    (ClaimState.REJECTED, 10),
)
_NEEDS_SETTLEMENT: Final = frozenset(
    {
        ClaimState.PAID,
        ClaimState.ADJUSTED,
        ClaimState.REJECTED,
        ClaimState.WRITTEN_OFF,
        ClaimState.EXPIRED,
    }
)

#: AHCIP pays every second Thursday; this is one of them.
_AHCIP_PAY_ANCHOR: Final = date(2020, 1, 2)

_PATIENT_COLUMNS: Final = (
    "patient_id",
    "provider_id",
    "phn",
    "first_name",
    "last_name",
    "date_of_birth",
)
_CLAIM_COLUMNS: Final = (
    "claim_id",
    "provider_id",
    "patient_id",
    "claim_type",
    "state",
    "date_of_service",
    "hsc_code",
    "modifiers",
    "submitted_fee",
    "assessed_fee",
    "payment_date",
    "ba_number",
    "location",
    "rrnp_premium",
    "rejection_code",
    "wcb_claim_number",
    "wcb_form_type",
    "batch_id",
    "created_at",
    "updated_at",
)
_BATCH_COLUMNS: Final = (
    "batch_id",
    "provider_id",
    "claim_type",
    "ba_number",
    "submitted_at",
    "claim_count",
    "total_submitted",
    "status",
)
_HISTORY_COLUMNS: Final = (
    "event_id",
    "claim_id",
    "provider_id",
    "occurred_at",
    "action",
    "from_state",
    "to_state",
    "actor",
    "details",
)
_SUGGESTION_COLUMNS: Final = (
    "suggestion_id",
    "claim_id",
    "provider_id",
    "created_at",
    "category",
    "suggestion",
    "status",
    "dismissed_reason",
    "revenue_impact",
)
_BA_COLUMNS: Final = ("provider_id", "ba_number", "ba_type", "active_from", "active_to")
_LOCATION_COLUMNS: Final = (
    "location_id",
    "provider_id",
    "name",
    "functional_centre",
    "default_ba_number",
    "rrnp_rate",
)
_SETTING_COLUMNS: Final = ("provider_id", "section", "key", "value")


#: Where demo logins live, and the password they share (development data only).
DEMO_DOMAIN: Final = "demo.meritum.example"
DEMO_PASSWORD: Final = "meritum-demo-2026"  # noqa: S105 - documented demo credential
DELEGATE_PERMISSIONS: Final = frozenset({Permission.REPORT_VIEW, Permission.REPORT_EXPORT})


def demo_logins(bind: Engine | Connection) -> list[tuple[str, str]]:
    """The demo accounts present (email, role), physicians first."""
    query = text(
        "SELECT email, role FROM users WHERE email LIKE :pattern ORDER BY role DESC, email"
    )
    with _transaction(bind) as conn:
        rows = conn.execute(query, {"pattern": f"%@{DEMO_DOMAIN}"}).all()
    return [(row.email, row.role) for row in rows]


def _add_logins(conn: Connection, plan: _Physician, index: int) -> None:
    with Session(bind=conn) as session:
        create_user(
            session=session,
            email=f"physician{index + 1}@{DEMO_DOMAIN}",
            password=DEMO_PASSWORD,
            provider_id=plan.provider_id,
            role=UserRole.PHYSICIAN,
        )
        if index == 0:
            create_user(
                session=session,
                email=f"delegate1@{DEMO_DOMAIN}",
                password=DEMO_PASSWORD,
                provider_id=plan.provider_id,
                role=UserRole.DELEGATE,
                permissions=set(DELEGATE_PERMISSIONS),
            )
        session.flush()


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """What one run did, in counts only (never names or numbers of people)."""

    physicians_created: int
    physicians_existing: int
    patients: int
    claims: int
    wcb_claims: int
    first_day: date
    last_day: date

    def line(self) -> str:
        """The one-line summary the command prints."""
        return (
            f"seeded {self.physicians_created} physicians "
            f"({self.physicians_existing} already present, skipped), "
            f"{self.patients:,} patients, {self.claims:,} claims "
            f"({self.claims - self.wcb_claims:,} AHCIP, {self.wcb_claims:,} WCB) "
            f"served {self.first_day.isoformat()} to {self.last_day.isoformat()}"
        )


@dataclass(slots=True)
class _Physician:
    """One physician's plan, drawn before anything is written."""

    provider_id: uuid.UUID
    billing_number: str
    first_name: str
    last_name: str
    ba_numbers: list[str]
    sites: list[tuple[Site, str]]  # each site with the BA it bills under
    patients: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)
    wcb_claims: int = 0
    batches: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    suggestions: list[tuple[Any, ...]] = field(default_factory=list)


def alberta_today() -> date:
    """Today's date in Alberta."""
    return datetime.now(ALBERTA).date()


def seed_demo(
    bind: Engine | Connection,
    *,
    physicians: int = DEFAULT_PHYSICIANS,
    years: int = DEFAULT_YEARS,
    claims_per_month: int = DEFAULT_CLAIMS_PER_MONTH,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
) -> SeedSummary:
    """Seed synthetic physicians with patients and claims; existing physicians are skipped.

    With an ``Engine`` each physician commits on its own; with a ``Connection``
    everything joins the caller's transaction.
    """
    if physicians < 1 or years < 1 or claims_per_month < 1:
        raise ValueError("physicians, years and claims_per_month must be at least 1")
    last_day = today or alberta_today()
    first_day = _years_before(last_day, years)
    created = existing = patient_count = claim_count = wcb_count = 0
    taken: set[str] = set()
    with _transaction(bind) as conn:
        _upsert_rejection_codes(conn)
    for index in range(physicians):
        # Reproducible on purpose: synthetic data, nothing secret is drawn.
        rng = random.Random(f"meritum-seed/{seed}/physician/{index}")  # noqa: S311
        # A stream of its own for the claims' activity, so adding it left the
        # claims themselves as they were.
        activity = random.Random(f"meritum-seed/{seed}/physician/{index}/activity")  # noqa: S311
        plan = _plan_physician(rng, index=index, taken=taken)
        with _transaction(bind) as conn:
            if not _insert_provider(conn, plan):
                existing += 1
                continue
            _draw_patients(rng, plan, claims_per_month=claims_per_month, today=last_day)
            _draw_claims(
                rng,
                activity,
                plan,
                claims_per_month=claims_per_month,
                first=first_day,
                last=last_day,
            )
            _copy(conn, "patients", _PATIENT_COLUMNS, plan.patients)
            _copy(conn, "submission_batches", _BATCH_COLUMNS, plan.batches)
            _copy(conn, "claims", _CLAIM_COLUMNS, plan.claims)
            _copy(conn, "claim_audit_history", _HISTORY_COLUMNS, plan.history)
            _copy(conn, "ai_coach_suggestions", _SUGGESTION_COLUMNS, plan.suggestions)
            _add_profile(conn, activity, plan, since=first_day)
            _add_logins(conn, plan, index)
        created += 1
        patient_count += len(plan.patients)
        claim_count += len(plan.claims)
        wcb_count += plan.wcb_claims
    return SeedSummary(
        physicians_created=created,
        physicians_existing=existing,
        patients=patient_count,
        claims=claim_count,
        wcb_claims=wcb_count,
        first_day=first_day,
        last_day=last_day,
    )


def _upsert_rejection_codes(conn: Connection) -> None:
    """The reference table of explanatory codes: added, or brought up to date, never deleted."""
    statement = insert(rejection_codes).values(
        [
            {
                "code": r.code,
                "claim_type": r.claim_type,
                "description": r.description,
                "corrective_guidance": r.corrective_guidance,
            }
            for r in REJECTION_CODES
        ]
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[rejection_codes.c.code],
            set_={
                "claim_type": statement.excluded.claim_type,
                "description": statement.excluded.description,
                "corrective_guidance": statement.excluded.corrective_guidance,
            },
        )
    )


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    else:
        yield bind


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** (n - 1), 10**n))


def _name(rng: random.Random) -> tuple[str, str]:
    last = rng.choice(LAST_NAMES)
    if rng.random() < 0.08 and "," not in last:
        other = rng.choice(LAST_NAMES)
        if other != last and "," not in other:
            last = f"{last}-{other}"
    return rng.choice(FIRST_NAMES), last


def _plan_physician(rng: random.Random, *, index: int, taken: set[str]) -> _Physician:
    billing = _digits(rng, 9)
    while billing in taken:
        billing = _digits(rng, 9)
    taken.add(billing)
    first, last = _name(rng)
    ba_numbers = sorted({_digits(rng, 5) for _ in range(rng.randint(1, 3))})
    n_sites = rng.randint(2, 4)
    # Physician 0 always works somewhere rural, so a seed always carries RRNP premiums.
    n_rural = max(1 if index == 0 else 0, min(n_sites - 1, rng.choice((0, 0, 1, 1, 2))))
    chosen = rng.sample(RURAL_SITES, n_rural) + rng.sample(URBAN_SITES, n_sites - n_rural)
    sites = [(site, ba_numbers[i % len(ba_numbers)]) for i, site in enumerate(chosen)]
    return _Physician(_uuid(rng), billing, first, last, ba_numbers, sites)


def _insert_provider(conn: Connection, plan: _Physician) -> bool:
    """Insert the physician unless present; False when it already exists."""
    # ON CONFLICT DO NOTHING rather than a check first: two seeds running at
    # once cannot both insert the same physician.
    inserted = conn.execute(
        insert(providers)
        .values(
            provider_id=plan.provider_id,
            billing_number=plan.billing_number,
            first_name=plan.first_name,
            last_name=plan.last_name,
        )
        .on_conflict_do_nothing()
        .returning(providers.c.provider_id)
    ).first()
    return inserted is not None


def _draw_patients(
    rng: random.Random, plan: _Physician, *, claims_per_month: int, today: date
) -> None:
    panel = min(5_000, max(40, claims_per_month * 4))
    phns: set[str] = set()
    while len(phns) < panel:
        phns.add(_digits(rng, 9))
    for phn in sorted(phns):
        first, last = _name(rng)
        born = today - timedelta(days=rng.randint(30, 95 * 365))
        plan.patients.append((_uuid(rng), plan.provider_id, phn, first, last, born))
    rng.shuffle(plan.patients)


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _weighted(rng: random.Random, table: Sequence[tuple[ClaimState, int]]) -> ClaimState:
    return rng.choices([s for s, _ in table], weights=[w for _, w in table])[0]


def _ahcip_payment_day(rng: random.Random, served: date) -> date:
    """The second-Thursday payment run after assessment (7 to 21 days after service)."""
    ready = served + timedelta(days=rng.randint(7, 21))
    offset = (ready - _AHCIP_PAY_ANCHOR).days % 14
    return ready + timedelta(days=(14 - offset) % 14)


@dataclass(slots=True)
class _Visit:
    served: date
    patient: uuid.UUID
    claim_type: ClaimType
    site: Site
    ba_number: str
    service: Service
    modifiers: str
    submitted: Decimal
    pay_day: date
    wcb_claim_number: str | None = None
    wcb_form_type: str | None = None


def _draw_claims(
    rng: random.Random,
    activity: random.Random,
    plan: _Physician,
    *,
    claims_per_month: int,
    first: date,
    last: date,
) -> None:
    volume = claims_per_month * rng.uniform(0.7, 1.3)
    # Weekdays carry the work; a few weekend shifts (weights sum to about 7).
    weekday_share = (1.3, 1.3, 1.3, 1.3, 1.3, 0.35, 0.1)
    open_cases: list[tuple[uuid.UUID, str]] = []
    visits: list[_Visit] = []
    day = first
    while day <= last:
        season = 1 + 0.15 * math.cos(2 * math.pi * (day.month - 1) / 12)  # busier in winter
        mean = volume * 12 / 365 * weekday_share[day.weekday()] * season
        for _ in range(int(mean * rng.uniform(0.7, 1.3) + rng.random())):
            visits.append(_visit(rng, plan, day, open_cases))
        day += timedelta(days=1)
    states = [_state(rng, v, last) for v in visits]
    _cover_every_state(rng, visits, states, last)
    rows = [
        _claim_row(rng, plan, visit, state) for visit, state in zip(visits, states, strict=True)
    ]
    batches = _Batches(activity, plan)
    for visit, state, row in zip(visits, states, rows, strict=True):
        plan.claims.append(_with_activity(activity, plan, batches, visit, state, row, last))
        plan.wcb_claims += visit.claim_type is ClaimType.WCB
    plan.batches.extend(batches.rows())


def _visit(
    rng: random.Random,
    plan: _Physician,
    day: date,
    open_cases: list[tuple[uuid.UUID, str]],
) -> _Visit:
    site, ba_number = rng.choice(plan.sites)
    service = rng.choices(SERVICES, weights=_SERVICE_WEIGHTS)[0]
    modifiers, share, _ = rng.choices(MODIFIER_SETS, weights=_MODIFIER_WEIGHTS)[0]
    submitted = _money(service.base_fee * (1 + share))
    # Patients come back: the low end of the panel visits more often.
    patient = plan.patients[int(len(plan.patients) * rng.random() ** 1.6)][0]
    if rng.random() >= 0.09:
        return _Visit(
            day,
            patient,
            ClaimType.AHCIP,
            site,
            ba_number,
            service,
            modifiers,
            submitted,
            _ahcip_payment_day(rng, day),
        )
    # A WCB visit opens a case (first report) or follows one up (progress report).
    if not open_cases or rng.random() < 0.4:
        case = (patient, _digits(rng, 7))
        open_cases.append(case)
        form = WCB_FIRST_REPORT
    else:
        case = rng.choice(open_cases)
        form = rng.choice(WCB_PROGRESS_FORMS)
        if rng.random() < 0.3:
            open_cases.remove(case)
    return _Visit(
        day,
        case[0],
        ClaimType.WCB,
        site,
        ba_number,
        service,
        modifiers,
        submitted,
        day + timedelta(days=rng.randint(14, 45)),
        wcb_claim_number=case[1],
        wcb_form_type=form,
    )


def _state(rng: random.Random, visit: _Visit, today: date) -> ClaimState:
    if visit.pay_day <= today:
        return _weighted(rng, _SETTLED_STATES)
    if (today - visit.served).days <= 3:
        return _weighted(rng, _RECENT_STATES)
    return _weighted(rng, _IN_FLIGHT_STATES)


def _cover_every_state(
    rng: random.Random, visits: list[_Visit], states: list[ClaimState], today: date
) -> None:
    """Make sure a physician shows every state, even with a small volume."""
    counts = Counter(states)
    for missing in [s for s in ClaimState if counts[s] == 0]:
        settled = missing in _NEEDS_SETTLEMENT
        candidates = [
            i
            for i, v in enumerate(visits)
            if (v.pay_day <= today or not settled) and counts[states[i]] > 1
        ]
        if candidates:
            chosen = rng.choice(candidates)
            counts[states[chosen]] -= 1
            counts[missing] += 1
            states[chosen] = missing


def _claim_row(
    rng: random.Random, plan: _Physician, visit: _Visit, state: ClaimState
) -> tuple[Any, ...]:
    submitted = visit.submitted
    assessed: Decimal | None = None
    payment_day: date | None = None
    rejection: str | None = None
    if state in (ClaimState.PAID, ClaimState.ASSESSED):
        # Most are paid as billed; some are reduced on assessment.
        assessed = submitted if rng.random() < 0.88 else _money(submitted * _share(rng, 80, 99))
    elif state is ClaimState.ADJUSTED:
        # Adjusted later: usually down, sometimes up, never unchanged.
        ratio = _share(rng, 50, 95) if rng.random() < 0.8 else _share(rng, 102, 120)
        assessed = _money(submitted * ratio)
        if assessed == submitted:
            assessed = submitted - _CENT
    elif state in (ClaimState.REJECTED, ClaimState.WRITTEN_OFF):
        assessed = Decimal("0.00")
        codes = (
            _WCB_REJECTION_CODES if visit.claim_type is ClaimType.WCB else _AHCIP_REJECTION_CODES
        )
        rejection = rng.choice(codes)
    if state in (ClaimState.PAID, ClaimState.ADJUSTED):
        payment_day = visit.pay_day
    rrnp = Decimal("0.00")
    if (
        payment_day is not None
        and assessed is not None
        and visit.site.rrnp_rate is not None
        and visit.claim_type is ClaimType.AHCIP
    ):
        rrnp = _money(assessed * visit.site.rrnp_rate)
    return (
        _uuid(rng),
        plan.provider_id,
        visit.patient,
        visit.claim_type.value,
        state.value,
        visit.served,
        visit.service.code,
        visit.modifiers,
        submitted,
        assessed,
        payment_day,
        visit.ba_number,
        visit.site.name,
        rrnp,
        rejection,
        visit.wcb_claim_number,
        visit.wcb_form_type,
    )


def _share(rng: random.Random, low_percent: int, high_percent: int) -> Decimal:
    """A ratio between two percentages, in hundredths of a percent."""
    return Decimal(rng.randint(low_percent * 100, high_percent * 100)) / 10_000


def _copy(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Bulk-load rows with COPY, inside the connection's current transaction."""
    raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# --- what happened to each claim: batches, history, AI Coach suggestions ------------

_SUBMITTED_STATES: Final = frozenset(
    {
        ClaimState.SUBMITTED,
        ClaimState.ASSESSED,
        ClaimState.PAID,
        ClaimState.ADJUSTED,
        ClaimState.REJECTED,
        ClaimState.WRITTEN_OFF,
    }
)
#: AHCIP batches go out on Wednesdays, WCB ones the day after the visit.
_AHCIP_BATCH_WEEKDAY: Final = 2

SUGGESTIONS: Final = {
    SuggestionCategory.MISSED_MODIFIER: (
        "Add the CMGP modifier: the visit qualifies as comprehensive care",
        "Add the after-hours modifier (AFHR): the service started after 17:00",
    ),
    SuggestionCategory.CODE_SELECTION: (
        "Consider 03.04A: the note documents a comprehensive assessment",
        "03.03A fits better than 03.08A for a visit of this length",
    ),
    SuggestionCategory.DOCUMENTATION: (
        "Record the time spent, in minutes, to support the time-based code",
        "Note the referring practitioner's name, as the code requires",
    ),
    SuggestionCategory.REJECTION_RISK: (
        "The patient's coverage could not be confirmed for the date of service",
        'A claim for the same service and day exists: "duplicate" risk',
    ),
    SuggestionCategory.DEADLINE: (
        "Submit within 10 days: the 90-day AHCIP deadline is near",
        "The WCB report is due within 3 business days for the full fee",
    ),
}
DISMISSED_REASONS: Final = (
    "Not applicable to this visit",
    "Already documented in the chart",
    "Patient declined, noted in the record",
    "Disagree: the service was brief",
)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ALBERTA)


def _submission_day(visit: _Visit, today: date) -> date:
    if visit.claim_type is ClaimType.WCB:
        day = visit.served + timedelta(days=1)
    else:
        day = visit.served + timedelta(
            days=(_AHCIP_BATCH_WEEKDAY - visit.served.weekday()) % 7 or 7
        )
    return min(day, today)


class _Batches:
    """The submission batches of one physician, grouped by claim type, BA and day."""

    def __init__(self, rng: random.Random, plan: _Physician) -> None:
        self._rng = rng
        self._plan = plan
        self._by_key: dict[tuple[ClaimType, str, date], list[Any]] = {}

    def add(self, visit: _Visit, day: date, state: ClaimState) -> tuple[uuid.UUID, datetime]:
        """Put the claim in its batch; the batch's id and when it was sent."""
        key = (visit.claim_type, visit.ba_number, day)
        batch = self._by_key.get(key)
        if batch is None:
            batch = [_uuid(self._rng), _at(day, 18), 0, Decimal("0.00"), True]
            self._by_key[key] = batch
        batch[2] += 1
        batch[3] += visit.submitted
        batch[4] = batch[4] and state is not ClaimState.SUBMITTED
        return batch[0], batch[1]

    def rows(self) -> list[tuple[Any, ...]]:
        """One row per batch, in the order they were sent."""
        rows = [
            (
                batch_id,
                self._plan.provider_id,
                claim_type.value,
                ba_number,
                sent_at,
                count,
                total,
                (BatchStatus.PROCESSED if processed else BatchStatus.SUBMITTED).value,
            )
            for (claim_type, ba_number, _), (batch_id, sent_at, count, total, processed) in (
                self._by_key.items()
            )
        ]
        return sorted(rows, key=lambda row: (row[4], str(row[0])))


def _with_activity(
    rng: random.Random,
    plan: _Physician,
    batches: _Batches,
    visit: _Visit,
    state: ClaimState,
    row: tuple[Any, ...],
    today: date,
) -> tuple[Any, ...]:
    """The claim row completed with its batch and timestamps; its history and suggestions."""
    claim_id = row[0]
    payer = "system:wcb" if visit.claim_type is ClaimType.WCB else "system:ahcip"
    author = "delegate" if rng.random() < 0.2 else "physician"
    events: list[
        tuple[datetime, ClaimHistoryAction, ClaimState | None, ClaimState | None, str, str | None]
    ] = []

    def change(
        at: datetime, old: ClaimState, new: ClaimState, actor: str, note: str | None
    ) -> None:
        events.append((at, ClaimHistoryAction.STATE_CHANGED, old, new, actor, note))

    created = _at(visit.served, rng.randint(8, 14), rng.randint(0, 59))
    events.append((created, ClaimHistoryAction.CREATED, None, ClaimState.DRAFT, author, None))
    if rng.random() < 0.1:
        note = rng.choice(
            ("Modifiers updated", "Diagnostic code corrected", "Note du médecin : « vérifié »")
        )
        events.append(
            (created + timedelta(minutes=5), ClaimHistoryAction.EDITED, None, None, author, note)
        )
    if rng.random() < (0.25 if state is ClaimState.DRAFT else 0.08):
        _suggest(rng, plan, claim_id, visit, state, created + timedelta(minutes=1))
    queued = created + timedelta(minutes=rng.randint(10, 120))
    batch_id: uuid.UUID | None = None
    if state is ClaimState.EXPIRED:
        expired = _at(min(visit.served + timedelta(days=90), today), 0, 5)
        change(expired, ClaimState.DRAFT, state, "system:deadlines", "Submission deadline passed")
    elif state is not ClaimState.DRAFT:
        change(queued, ClaimState.DRAFT, ClaimState.QUEUED, author, None)
    if state in _SUBMITTED_STATES:
        batch_id, sent = batches.add(visit, _submission_day(visit, today), state)
        change(
            sent, ClaimState.QUEUED, ClaimState.SUBMITTED, "system:submission", f"Batch {batch_id}"
        )
        settles = _at(visit.pay_day, 6) if visit.pay_day <= today else sent + timedelta(hours=40)
        outcome = sent + (settles - sent) / 2
        if state in (ClaimState.ASSESSED, ClaimState.PAID, ClaimState.ADJUSTED):
            change(outcome, ClaimState.SUBMITTED, ClaimState.ASSESSED, payer, None)
        if state in (ClaimState.PAID, ClaimState.ADJUSTED):
            change(settles, ClaimState.ASSESSED, state, payer, f"Paid {row[9]:f}")
        if state in (ClaimState.REJECTED, ClaimState.WRITTEN_OFF):
            change(
                outcome,
                ClaimState.SUBMITTED,
                ClaimState.REJECTED,
                payer,
                f"Explanatory code {row[14]}",
            )
        if state is ClaimState.WRITTEN_OFF:
            change(
                settles, ClaimState.REJECTED, state, author, "Written off, not worth resubmitting"
            )
    for at, action, old, new, actor, details in events:
        plan.history.append(
            (
                _uuid(rng),
                claim_id,
                plan.provider_id,
                at,
                action.value,
                None if old is None else old.value,
                None if new is None else new.value,
                actor,
                details,
            )
        )
    return (*row, batch_id, events[0][0], max(event[0] for event in events))


def _suggest(
    rng: random.Random,
    plan: _Physician,
    claim_id: uuid.UUID,
    visit: _Visit,
    state: ClaimState,
    at: datetime,
) -> None:
    category = rng.choice(list(SuggestionCategory))
    if state is ClaimState.DRAFT:
        status = SuggestionStatus.PENDING
    else:
        status = rng.choices(list(SuggestionStatus), weights=(10, 55, 35))[0]
    impact: Decimal | None = None
    if category is SuggestionCategory.MISSED_MODIFIER:
        impact = _money(visit.service.base_fee * Decimal("0.20"))
    elif category is SuggestionCategory.CODE_SELECTION:
        impact = _money(visit.service.base_fee * _share(rng, -30, 60))
    elif category in (SuggestionCategory.REJECTION_RISK, SuggestionCategory.DEADLINE):
        impact = visit.submitted
    plan.suggestions.append(
        (
            _uuid(rng),
            claim_id,
            plan.provider_id,
            at,
            category.value,
            rng.choice(SUGGESTIONS[category]),
            status.value,
            rng.choice(DISMISSED_REASONS) if status is SuggestionStatus.DISMISSED else None,
            impact,
        )
    )


_BA_TYPES: Final = (BaType.FFS, BaType.PCPCM, BaType.ARP)


def _add_profile(conn: Connection, rng: random.Random, plan: _Physician, *, since: date) -> None:
    """The profile's BA numbers, locations (those claims name) and settings."""
    active_from = since - timedelta(days=rng.randint(30, 900))
    bas = [
        (plan.provider_id, ba, _BA_TYPES[i % len(_BA_TYPES)].value, active_from, None)
        for i, ba in enumerate(plan.ba_numbers)
    ]
    locations = [
        (_uuid(rng), plan.provider_id, site.name, f"FC{_digits(rng, 4)}", ba, site.rrnp_rate)
        for site, ba in plan.sites
    ]
    wcb, preferences = ProviderSettingSection.WCB.value, ProviderSettingSection.PREFERENCES.value
    settings = [
        (plan.provider_id, wcb, "contract_id", _digits(rng, 6)),
        (plan.provider_id, wcb, "role_code", "GP"),
        (plan.provider_id, wcb, "skill_code", "GPRA"),
        (plan.provider_id, wcb, "first_report_form", WCB_FIRST_REPORT),
        (plan.provider_id, preferences, "timezone", "America/Edmonton"),
        (plan.provider_id, preferences, "report_ready_email", rng.choice(("true", "false"))),
        (plan.provider_id, preferences, "default_claim_type", ClaimType.AHCIP.value),
    ]
    _copy(conn, "provider_ba_numbers", _BA_COLUMNS, bas)
    _copy(conn, "practice_locations", _LOCATION_COLUMNS, locations)
    _copy(conn, "provider_settings", _SETTING_COLUMNS, settings)
