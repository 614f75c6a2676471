"""Create the bucket of PRAMAAN_STORE_URL (s3://bucket/prefix) once the S3 endpoint answers.

The compose stack's one-off `store-bucket` service: object storage starts empty, and the store
writes into an existing bucket. boto3 reads the standard AWS_* settings from the environment.
Waits up to 60 s for the endpoint; an existing bucket is fine.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

WAIT_SECONDS = 60


def main() -> int:
    bucket = urlsplit(os.environ.get("PRAMAAN_STORE_URL", "")).netloc
    if not bucket:
        print("s3_bucket: PRAMAAN_STORE_URL is not s3://bucket/prefix", file=sys.stderr)
        return 2
    client = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            print(f"bucket {bucket} created")
            return 0
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou",
                                                             "BucketAlreadyExists"):
                print(f"bucket {bucket} exists")
                return 0
            error: Exception = exc
        except BotoCoreError as exc:
            error = exc
        if time.monotonic() > deadline:
            print(f"s3_bucket: {error}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
