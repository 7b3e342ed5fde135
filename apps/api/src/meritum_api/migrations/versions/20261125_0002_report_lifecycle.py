"""report lifecycle: state machine trigger, ready needs content, cleanup index, job queue

The state machine is enforced in PostgreSQL so that even a hand-written SQL
fix cannot rewrite a report's history (expired -> ready, failed -> ready...).
The job queue's schema (procrastinate, pinned to 3.10) is installed here so
that every database built by the migrations can run workers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD = """
CREATE FUNCTION generated_reports_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- What a report is, whose it is and where its file lives never change.
    IF NEW.report_id <> OLD.report_id
        OR NEW.provider_id <> OLD.provider_id
        OR NEW.report_type <> OLD.report_type
        OR NEW.format <> OLD.format
        OR NEW.period_start IS DISTINCT FROM OLD.period_start
        OR NEW.period_end IS DISTINCT FROM OLD.period_end
        OR NEW.file_path <> OLD.file_path
        OR NEW.scheduled <> OLD.scheduled
        OR NEW.created_at <> OLD.created_at
    THEN
        RAISE EXCEPTION 'generated report % : identity columns are immutable', OLD.report_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'tr_generated_reports_immutable';
    END IF;
    IF NEW.status <> OLD.status AND (OLD.status, NEW.status) NOT IN (
        ('pending', 'generating'),
        ('generating', 'ready'),
        ('generating', 'failed'),
        ('pending', 'failed'),
        ('generating', 'pending'),
        ('ready', 'expired'),
        ('failed', 'expired')
    ) THEN
        RAISE EXCEPTION 'illegal status transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'tr_generated_reports_status_transition';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tr_generated_reports_guard
    BEFORE UPDATE ON generated_reports
    FOR EACH ROW EXECUTE FUNCTION generated_reports_guard();
"""


def upgrade() -> None:
    op.create_check_constraint(
        op.f("ck_generated_reports_ready_has_content"),
        "generated_reports",
        "status <> 'ready' OR file_size_bytes > 0",
    )
    op.create_index(
        "ix_generated_reports_cleanup_due",
        "generated_reports",
        ["download_link_expires_at"],
        postgresql_where=sa.text("status IN ('ready', 'failed')"),
    )
    op.execute(GUARD)
    op.execute(SchemaManager.get_schema())


def downgrade() -> None:
    raise NotImplementedError("the job queue schema cannot be removed without losing jobs")
