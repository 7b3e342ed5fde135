"""Choosing and building the storage backend from settings."""

from __future__ import annotations

import boto3
from botocore.config import Config

from meritum_api.crypto.keys import Keyring
from meritum_api.settings import Settings
from meritum_api.storage.encrypted import EncryptedStorage
from meritum_api.storage.local import LocalBlobStore
from meritum_api.storage.s3 import S3BlobStore


def make_storage(settings: Settings, keyring: Keyring) -> EncryptedStorage:
    """Encrypted storage on the configured backend (S3 credentials: boto3's environment)."""
    if settings.storage_backend == "local":
        return EncryptedStorage(LocalBlobStore(settings.resolved_storage_dir()), keyring)
    if not settings.s3_bucket:
        raise ValueError("the s3 storage backend needs MERITUM_S3_BUCKET")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        # Path-style addressing suits S3-compatible servers reached by a custom endpoint.
        s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
    )
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=config,
    )
    return EncryptedStorage(S3BlobStore(client=client, bucket=settings.s3_bucket), keyring)
