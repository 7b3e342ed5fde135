"""a ready report always has its content digest

A deferred constraint trigger on ``generated_reports`` checks, at commit,
that every row that is (or becomes) ``ready`` has its row in
``generated_report_contents``; another refuses deleting the digest of a
ready report. The download path can then read the report and its digest
in one query, with no "digest missing" branch.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE FUNCTION generated_reports_ready_has_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'ready' AND NOT EXISTS (
        SELECT 1 FROM generated_report_contents c WHERE c.report_id = NEW.report_id
    ) THEN
        RAISE EXCEPTION 'generated report % is ready without a content digest', NEW.report_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'tr_generated_reports_ready_has_digest';
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to commit: the worker moves the row to ready and records the
-- digest in one transaction, in either order.
CREATE CONSTRAINT TRIGGER tr_generated_reports_ready_has_digest
    AFTER INSERT OR UPDATE OF status ON generated_reports
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'ready')
    EXECUTE FUNCTION generated_reports_ready_has_digest();

CREATE FUNCTION generated_report_contents_keep_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM generated_reports r
        WHERE r.report_id = OLD.report_id AND r.status = 'ready'
    ) THEN
        RAISE EXCEPTION 'the digest of ready report % cannot be removed', OLD.report_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'tr_generated_report_contents_keep_ready';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER tr_generated_report_contents_keep_ready
    AFTER DELETE ON generated_report_contents
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION generated_report_contents_keep_ready();
"""

DOWNGRADE = """
DROP TRIGGER tr_generated_report_contents_keep_ready ON generated_report_contents;
DROP FUNCTION generated_report_contents_keep_ready();
DROP TRIGGER tr_generated_reports_ready_has_digest ON generated_reports;
DROP FUNCTION generated_reports_ready_has_digest();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
