"""notifications and each user's delivery preference

``notifications`` holds the in-app notices written when a report settles or
is about to expire, one per (report, recipient, event), with the time its
email left when the delivery asks for one; ``notification_preferences``
says how a user hears about on-demand reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 08:15:20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "delivery_method",
            sa.Enum("IN_APP", "EMAIL", "BOTH", name="deliverymethod", native_enum=False, length=20),
            server_default=sa.text("'IN_APP'"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "delivery_method IN ('IN_APP', 'EMAIL', 'BOTH')",
            name=op.f("ck_notification_preferences_delivery_method_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_notification_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "notifications",
        sa.Column(
            "notification_id",
            sa.Uuid(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column(
            "event",
            sa.Enum(
                "REPORT_READY",
                "DATA_EXPORT_READY",
                "REPORT_FAILED",
                "REPORT_EXPIRING",
                name="notificationevent",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column(
            "delivery",
            sa.Enum("IN_APP", "EMAIL", "BOTH", name="deliverymethod", native_enum=False, length=20),
            server_default=sa.text("'IN_APP'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "delivery IN ('IN_APP', 'EMAIL', 'BOTH')", name=op.f("ck_notifications_delivery_valid")
        ),
        sa.CheckConstraint(
            "email_sent_at IS NULL OR delivery <> 'IN_APP'",
            name=op.f("ck_notifications_email_only_when_asked"),
        ),
        sa.CheckConstraint(
            "event IN ('REPORT_READY', 'DATA_EXPORT_READY', 'REPORT_FAILED', 'REPORT_EXPIRING')",
            name=op.f("ck_notifications_event_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.provider_id"],
            name=op.f("fk_notifications_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["generated_reports.report_id"],
            name=op.f("fk_notifications_report_id_generated_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "report_id", "user_id", "event", name=op.f("uq_notifications_report_id_user_id_event")
        ),
    )
    op.create_index(
        "ix_notifications_user_id_created_at",
        "notifications",
        ["user_id", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_notifications_user_id_unread",
        "notifications",
        ["user_id", sa.literal_column("created_at DESC")],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notifications_user_id_unread",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_index("ix_notifications_user_id_created_at", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notification_preferences")
