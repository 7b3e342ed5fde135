"""A real S3 endpoint for tests: moto's server on a free local port, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client

#: Dummy credentials: moto accepts any, and tests must never reach a real account.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Run an S3 server on 127.0.0.1 and yield its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str) -> S3Client:
    """A client of the test endpoint with dummy credentials (no environment or profile)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )
