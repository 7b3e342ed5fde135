"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from meritum_api.auth.passwords import MAX_PASSWORD_LENGTH
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.schemas.validation.text import SecretLength, SecretText, Text


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Text = Field(min_length=3, max_length=254)
    #: A secret: kept out of reprs and logs.
    password: Annotated[SecretText, SecretLength(1, MAX_PASSWORD_LENGTH)]


class Me(BaseModel):
    user_id: uuid.UUID
    provider_id: uuid.UUID
    role: UserRole
    permissions: list[Permission]
    expires_at: AwareDatetime


class LoginData(Me):
    #: Send back in ``X-CSRF-Token`` on every state-changing cookie request.
    csrf_token: str
    #: The session token, for API clients using ``Authorization: Bearer``.
    token: str


class LoginEnvelope(BaseModel):
    data: LoginData


class MeEnvelope(BaseModel):
    data: Me
