"""Signed PDFs in S3-compatible object storage (PRAMAAN_STORE_URL=s3://bucket/prefix).

The same content-addressed keys as the local store (`<prefix>/<aa>/<bb>/<sha256>.pdf`; a
record's `pdf_path` is the part after the prefix, so a record reads the same from either
store). An object is written once: a conditional put (`If-None-Match: *`) with its SHA-256 for
the server to check on arrival; when the key already exists its bytes are read back and must be
the same. Every read is checked against the SHA-256 recorded for it. The client is boto3's, with
the standard AWS settings from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ...): no credentials live in our settings.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from issuer.storage import Stored, StoreMissing, StoreUnavailable, StoreUnreadable, content_key

# Connection and read timeouts, and attempts (boto3's standard retry mode: throttling and
# transient errors are retried with backoff).
CONNECT_TIMEOUT, READ_TIMEOUT, ATTEMPTS = 5, 30, 4


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, "prefix/") (prefix may be empty). ValueError else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class S3Store:
    """The store in a bucket, under a prefix."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_s3_url(url)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("s3", config=Config(
                connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                # Path-style requests: every S3-compatible server understands them.
                s3={"addressing_style": "path"}))
        return self._client

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def put(self, data: bytes) -> Stored:
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256(data).hexdigest()
        relative = content_key(digest)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(relative), Body=data,
                ContentType="application/pdf", IfNoneMatch="*",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())
        except ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            # Already there (written once, never again): it must be these bytes.
            self.get(relative, digest)
        except BotoCoreError:  # no connection, a timeout: the caller tries again later
            raise StoreUnavailable(relative, f"{self.url}/{relative}") from None
        return Stored(digest, relative)

    def get(self, relative: str, sha256: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(relative))
            data: bytes = answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise StoreMissing(relative, f"{self.url}/{relative}") from None
            raise
        except BotoCoreError:
            raise StoreUnavailable(relative, f"{self.url}/{relative}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreUnreadable(relative, f"{self.url}/{relative}")
        return data

    def exists(self, relative: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def keys(self) -> Iterator[str]:
        """Every stored object's relative key, in key order."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self.prefix):]


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
