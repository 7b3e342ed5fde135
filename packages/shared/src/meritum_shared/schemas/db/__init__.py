"""Table definitions (SQLAlchemy 2) shared by the API and the web app."""

from meritum_shared.schemas.db.analytics import (
    GeneratedReport,
    InsertGeneratedReport,
    SelectGeneratedReport,
    generated_reports,
)
from meritum_shared.schemas.db.base import NAMING_CONVENTION, Base, metadata
from meritum_shared.schemas.db.claims import Claim, Patient, claims, patients
from meritum_shared.schemas.db.provider import Provider, providers

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Claim",
    "GeneratedReport",
    "InsertGeneratedReport",
    "Patient",
    "Provider",
    "SelectGeneratedReport",
    "claims",
    "generated_reports",
    "metadata",
    "patients",
    "providers",
]
