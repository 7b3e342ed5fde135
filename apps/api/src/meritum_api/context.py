"""The authenticated context: the provider scope of every request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from meritum_shared.constants.auth import Permission


@dataclass(frozen=True, slots=True)
class AuthContext:
    """A physician, or a delegate acting for one, and what they may do.

    ``provider_id`` is the tenant key: every repository call takes the whole
    context, never a loose id, so a handler cannot mix up whose data it reads.
    """

    provider_id: uuid.UUID
    user_id: uuid.UUID | None = None
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        """Whether the context holds ``permission``."""
        return permission in self.permissions
