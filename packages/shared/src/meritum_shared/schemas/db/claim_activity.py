"""Stand-ins for the claim, submission and AI Coach domains: what the data export reads.

``submission_batches`` (the batches claims were sent in), ``claim_audit_history``
(one row per change to a claim) and ``ai_coach_suggestions``. History and
suggestions carry their claim's provider, tied to it by a composite foreign
key to ``claims (claim_id, provider_id)``: a row can never name another
provider's claim, and a provider's rows are read by one index in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.claims import (
    BatchStatus,
    ClaimHistoryAction,
    ClaimState,
    ClaimType,
    SuggestionCategory,
    SuggestionStatus,
)
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base

_CREATED = f"'{ClaimHistoryAction.CREATED.value}'"
_STATE_CHANGED = f"'{ClaimHistoryAction.STATE_CHANGED.value}'"
_EDITED = f"'{ClaimHistoryAction.EDITED.value}'"


class SubmissionBatch(Base):
    __tablename__ = "submission_batches"
    __table_args__ = (
        CheckConstraint(_in_list("claim_type", ClaimType), name="claim_type_valid"),
        CheckConstraint(_in_list("status", BatchStatus), name="status_valid"),
        CheckConstraint("claim_count > 0", name="claim_count_positive"),
        CheckConstraint("total_submitted >= 0", name="total_submitted_not_negative"),
        # The export lists a provider's batches in the order they were sent.
        Index("ix_submission_batches_provider_id_submitted_at", "provider_id", "submitted_at"),
    )

    batch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    claim_type: Mapped[ClaimType] = mapped_column(_varchar_enum(ClaimType, 5), nullable=False)
    ba_number: Mapped[str] = mapped_column(String(10), nullable=False)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: How many claims the batch listed, and the sum of their submitted fees.
    claim_count: Mapped[int] = mapped_column(Integer, nullable=False)
    total_submitted: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    status: Mapped[BatchStatus] = mapped_column(_varchar_enum(BatchStatus, 20), nullable=False)


class ClaimHistoryEvent(Base):
    __tablename__ = "claim_audit_history"
    __table_args__ = (
        CheckConstraint(_in_list("action", ClaimHistoryAction), name="action_valid"),
        CheckConstraint(
            f"from_state IS NULL OR {_in_list('from_state', ClaimState)}", name="from_state_valid"
        ),
        CheckConstraint(
            f"to_state IS NULL OR {_in_list('to_state', ClaimState)}", name="to_state_valid"
        ),
        # A creation names the first state; a change names both, and they differ;
        # an edit changes fields, not the state.
        CheckConstraint(
            f"(action = {_CREATED} AND from_state IS NULL AND to_state IS NOT NULL) "
            f"OR (action = {_STATE_CHANGED} AND from_state IS NOT NULL AND to_state IS NOT NULL "
            "AND from_state <> to_state) "
            f"OR (action = {_EDITED} AND from_state IS NULL AND to_state IS NULL)",
            name="states_match_action",
        ),
        CheckConstraint("length(actor) > 0", name="actor_not_empty"),
        ForeignKeyConstraint(
            ["claim_id", "provider_id"],
            ["claims.claim_id", "claims.provider_id"],
        ),
        # The export reads a provider's history in order of occurrence.
        Index(
            "ix_claim_audit_history_provider_id_occurred_at",
            "provider_id",
            "occurred_at",
            "event_id",
        ),
        Index("ix_claim_audit_history_claim_id", "claim_id"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    claim_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    action: Mapped[ClaimHistoryAction] = mapped_column(
        _varchar_enum(ClaimHistoryAction, 20), nullable=False
    )
    from_state: Mapped[ClaimState | None] = mapped_column(
        _varchar_enum(ClaimState, 20), nullable=True
    )
    to_state: Mapped[ClaimState | None] = mapped_column(
        _varchar_enum(ClaimState, 20), nullable=True
    )
    #: Who made the change: ``physician``, ``delegate`` or ``system:<process>``.
    actor: Mapped[str] = mapped_column(String(50), nullable=False)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


class AiCoachSuggestion(Base):
    __tablename__ = "ai_coach_suggestions"
    __table_args__ = (
        CheckConstraint(_in_list("category", SuggestionCategory), name="category_valid"),
        CheckConstraint(_in_list("status", SuggestionStatus), name="status_valid"),
        CheckConstraint(
            f"status = '{SuggestionStatus.DISMISSED.value}' OR dismissed_reason IS NULL",
            name="reason_only_when_dismissed",
        ),
        CheckConstraint("length(suggestion) > 0", name="suggestion_not_empty"),
        ForeignKeyConstraint(
            ["claim_id", "provider_id"],
            ["claims.claim_id", "claims.provider_id"],
        ),
        Index(
            "ix_ai_coach_suggestions_provider_id_created_at",
            "provider_id",
            "created_at",
            "suggestion_id",
        ),
        Index("ix_ai_coach_suggestions_claim_id", "claim_id"),
    )

    suggestion_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    claim_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    category: Mapped[SuggestionCategory] = mapped_column(
        _varchar_enum(SuggestionCategory, 30), nullable=False
    )
    suggestion: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[SuggestionStatus] = mapped_column(
        _varchar_enum(SuggestionStatus, 10), nullable=False
    )
    dismissed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Fee the suggestion would add (negative when it avoids an overbilling).
    revenue_impact: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)


submission_batches: Table = cast(Table, SubmissionBatch.__table__)
claim_audit_history: Table = cast(Table, ClaimHistoryEvent.__table__)
ai_coach_suggestions: Table = cast(Table, AiCoachSuggestion.__table__)
