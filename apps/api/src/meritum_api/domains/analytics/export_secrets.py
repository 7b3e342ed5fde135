"""The sealed password of a protected data export: written with the request, gone by the end.

The only place that touches ``report_export_secrets``. The password is
sealed (:mod:`meritum_api.crypto.sealing`) with the report id as associated
data, read by the worker that makes the archive, and deleted in the
transaction that settles the report (ready or failed) or by the retention
cleanup once the report's link has expired, whichever comes first. It never
enters the job's arguments, a log line, an error or the report row.
"""

from __future__ import annotations

import uuid

from pydantic import SecretStr
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from meritum_api.audit import repository as audit
from meritum_api.context import AuthContext
from meritum_api.crypto.keys import Keyring
from meritum_api.crypto.sealing import Sealed, seal, unseal
from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import AuditAction, ReportStatus
from meritum_shared.schemas.db import GeneratedReport, report_export_secrets

S = report_export_secrets
R = GeneratedReport
PURPOSE = "report-export-password"


class ExportSecretMissing(RuntimeError):
    """A protected export's sealed password is gone: the archive is not made unprotected."""


def store(*, session: Session, keyring: Keyring, report_id: uuid.UUID, password: SecretStr) -> None:
    """Seal the password of a new export into the caller's transaction."""
    sealed = seal(
        keyring,
        password.get_secret_value().encode("utf-8"),
        purpose=PURPOSE,
        associated=report_id.bytes,
    )
    session.execute(
        insert(S).values(
            report_id=report_id,
            key_id=sealed.key_id,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
        )
    )


def load(*, session: Session, keyring: Keyring, report_id: uuid.UUID) -> SecretStr | None:
    """The export's password, unsealed; None when the report has none (or no longer)."""
    row = session.execute(
        select(S.c.key_id, S.c.nonce, S.c.ciphertext).where(S.c.report_id == report_id)
    ).one_or_none()
    if row is None:
        return None
    plaintext = unseal(
        keyring,
        Sealed(key_id=row.key_id, nonce=row.nonce, ciphertext=row.ciphertext),
        purpose=PURPOSE,
        associated=report_id.bytes,
    )
    return SecretStr(plaintext.decode("utf-8"))


def discard(*, session: Session, report_id: uuid.UUID) -> bool:
    """Delete the report's sealed password; False when it had none."""
    deleted = session.execute(
        delete(S).where(S.c.report_id == report_id).returning(S.c.report_id)
    ).first()
    return deleted is not None


def discard_unneeded(*, session: Session) -> int:
    """Delete every sealed password whose report has settled or whose link has expired."""
    finished = exists().where(
        R.report_id == S.c.report_id,
        or_(
            R.status.in_((ReportStatus.READY, ReportStatus.FAILED, ReportStatus.EXPIRED)),
            R.link_expired,
        ),
    )
    return len(session.execute(delete(S).where(finished).returning(S.c.report_id)).all())


def was_protected(*, session: Session, report: ReportView) -> bool:
    """Whether the physician asked for a password: the request's audit entry says, for good."""
    ctx = AuthContext(provider_id=report.provider_id)
    entries = audit.entries_for(
        session=session,
        ctx=ctx,
        resource_id=report.report_id,
        action=AuditAction.DATA_PORTABILITY_REQUESTED,
    )
    return any(entry.details.get("password_protected") is True for entry in entries)
