"""report subscriptions and their runs

``report_subscriptions`` holds one subscription per physician and report
type, with the next instant it is due (the scheduler claims active ones by
``next_run_at`` through a partial index); ``subscription_runs`` records each
period a subscription produced or skipped, unique per (subscription, period)
so that no period is ever produced twice. A run outlives the report it made
(deleting a report sets ``report_id`` to NULL); the reference is checked at
commit, since the scheduler records a run before inserting its report.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:54:40
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_subscriptions",
        sa.Column(
            "subscription_id",
            sa.Uuid(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column(
            "report_type",
            sa.Enum(
                "ACCOUNTANT_SUMMARY",
                "ACCOUNTANT_DETAIL",
                "WEEKLY_SUMMARY",
                "MONTHLY_PERFORMANCE",
                "RRNP_QUARTERLY",
                "WCB_TIMING",
                "REJECTION_DIGEST",
                "DATA_PORTABILITY",
                name="reporttype",
                native_enum=False,
                length=50,
            ),
            nullable=False,
        ),
        sa.Column(
            "frequency",
            sa.Enum(
                "DAILY",
                "WEEKLY",
                "MONTHLY",
                "QUARTERLY",
                name="subscriptionfrequency",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "delivery_method",
            sa.Enum("IN_APP", "EMAIL", "BOTH", name="deliverymethod", native_enum=False, length=20),
            server_default=sa.text("'IN_APP'"),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(report_type = 'WEEKLY_SUMMARY' AND frequency IN ('WEEKLY')) OR (report_type = 'MONTHLY_PERFORMANCE' AND frequency IN ('MONTHLY', 'QUARTERLY')) OR (report_type = 'RRNP_QUARTERLY' AND frequency IN ('QUARTERLY')) OR (report_type = 'WCB_TIMING' AND frequency IN ('WEEKLY', 'DAILY')) OR (report_type = 'REJECTION_DIGEST' AND frequency IN ('DAILY', 'WEEKLY'))",
            name=op.f("ck_report_subscriptions_frequency_allowed_for_type"),
        ),
        sa.CheckConstraint(
            "delivery_method IN ('IN_APP', 'EMAIL', 'BOTH')",
            name=op.f("ck_report_subscriptions_delivery_method_valid"),
        ),
        sa.CheckConstraint(
            "frequency IN ('DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY')",
            name=op.f("ck_report_subscriptions_frequency_valid"),
        ),
        sa.CheckConstraint(
            "report_type IN ('WEEKLY_SUMMARY', 'MONTHLY_PERFORMANCE', 'RRNP_QUARTERLY', 'WCB_TIMING', 'REJECTION_DIGEST')",
            name=op.f("ck_report_subscriptions_report_type_subscribable"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.provider_id"],
            name=op.f("fk_report_subscriptions_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_report_subscriptions")),
        sa.UniqueConstraint(
            "provider_id",
            "report_type",
            name=op.f("uq_report_subscriptions_provider_id_report_type"),
        ),
    )
    op.create_index(
        "ix_report_subscriptions_due",
        "report_subscriptions",
        ["next_run_at"],
        unique=False,
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "subscription_runs",
        sa.Column("run_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("generated", "skipped_empty", name="runoutcome", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("report_id", sa.Uuid(), nullable=True),
        sa.Column(
            "ran_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "outcome <> 'skipped_empty' OR report_id IS NULL",
            name=op.f("ck_subscription_runs_skipped_has_no_report"),
        ),
        sa.CheckConstraint(
            "outcome IN ('generated', 'skipped_empty')",
            name=op.f("ck_subscription_runs_outcome_valid"),
        ),
        sa.CheckConstraint(
            "period_end >= period_start", name=op.f("ck_subscription_runs_period_order")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["generated_reports.report_id"],
            name=op.f("fk_subscription_runs_report_id_generated_reports"),
            ondelete="SET NULL",
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["report_subscriptions.subscription_id"],
            name=op.f("fk_subscription_runs_subscription_id_report_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_subscription_runs")),
        sa.UniqueConstraint(
            "subscription_id",
            "period_start",
            "period_end",
            name=op.f("uq_subscription_runs_subscription_id_period_start_period_end"),
        ),
    )
    op.create_index(
        "ix_subscription_runs_report_id", "subscription_runs", ["report_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_runs_report_id", table_name="subscription_runs")
    op.drop_table("subscription_runs")
    op.drop_index(
        "ix_report_subscriptions_due",
        table_name="report_subscriptions",
        postgresql_where=sa.text("is_active"),
    )
    op.drop_table("report_subscriptions")
