"""auth change notifications: NOTIFY when a session is revoked or a user's rights change

Written by hand (autogenerate cannot see triggers). API processes keep an
in-process cache of validated sessions and drop entries when told to over
LISTEN/NOTIFY. The notifications come from triggers, so every path that
revokes a session or changes what a user may do (logout, a purge of live
sessions, an expiry moved earlier, a hand-written SQL fix of a delegate's
permissions) is announced in the same transaction, and only once it commits.
A touch (the sliding expiry moving later) and the purge of already expired
sessions announce nothing: no cache can be wrong about them.

Payloads on channel ``meritum_auth_changes``: ``session:<session_id>``,
``user:<user_id>``, or ``*`` (a TRUNCATE: forget everything).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY = """
CREATE FUNCTION auth_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('meritum_auth_changes', '*');
    ELSIF TG_TABLE_NAME = 'auth_sessions' THEN
        PERFORM pg_notify('meritum_auth_changes', 'session:' || OLD.session_id::text);
    ELSE
        PERFORM pg_notify('meritum_auth_changes', 'user:' || OLD.user_id::text);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tr_auth_sessions_notify_delete
    AFTER DELETE ON auth_sessions
    FOR EACH ROW WHEN (OLD.expires_at > now())
    EXECUTE FUNCTION auth_notify_change();
CREATE TRIGGER tr_auth_sessions_notify_update
    AFTER UPDATE ON auth_sessions
    FOR EACH ROW WHEN (
        NEW.expires_at < OLD.expires_at
        OR NEW.session_id <> OLD.session_id
        OR NEW.user_id <> OLD.user_id
        OR NEW.token_hash <> OLD.token_hash
        OR NEW.csrf_token_hash <> OLD.csrf_token_hash
    )
    EXECUTE FUNCTION auth_notify_change();
CREATE TRIGGER tr_auth_sessions_notify_truncate
    AFTER TRUNCATE ON auth_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auth_notify_change();
CREATE TRIGGER tr_users_notify_delete
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION auth_notify_change();
CREATE TRIGGER tr_users_notify_update
    AFTER UPDATE ON users
    FOR EACH ROW WHEN (
        NEW.permissions IS DISTINCT FROM OLD.permissions
        OR NEW.role <> OLD.role
        OR NEW.provider_id <> OLD.provider_id
        OR NEW.user_id <> OLD.user_id
    )
    EXECUTE FUNCTION auth_notify_change();
CREATE TRIGGER tr_users_notify_truncate
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_notify_change();
"""

DROP_NOTIFY = """
DROP TRIGGER tr_users_notify_truncate ON users;
DROP TRIGGER tr_users_notify_update ON users;
DROP TRIGGER tr_users_notify_delete ON users;
DROP TRIGGER tr_auth_sessions_notify_truncate ON auth_sessions;
DROP TRIGGER tr_auth_sessions_notify_update ON auth_sessions;
DROP TRIGGER tr_auth_sessions_notify_delete ON auth_sessions;
DROP FUNCTION auth_notify_change();
"""


def upgrade() -> None:
    op.execute(NOTIFY)


def downgrade() -> None:
    op.execute(DROP_NOTIFY)
