"""Verification needs no private key: a verify-only trust store beside the signing keyring."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from api import create_app
from issuer.bootstrap import initialise
from issuer.models import Certificate
from signing.errors import KeyMaterialMissing
from tests.conftest import ROOT, Live, make_settings, sample


def public_only(keys_dir: Path, target: Path) -> Path:
    shutil.copytree(keys_dir, target, ignore=shutil.ignore_patterns("*.key"))
    assert not list(target.rglob("*.key"))
    return target


@pytest.fixture
def issued(live: Live) -> tuple[str, bytes]:
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.seal_text
        seal = record.seal_text
    pdf = live.get(f"/api/v1/certificates/{cert_id}/pdf").content
    return seal, pdf


@pytest.fixture
def verify_only(tmp_path: Path, live: Live, keys_dir: Path, redis_url: str) -> Iterator[Live]:
    """An API process with REDIS_URL set (workers issue) on a machine without private keys,
    sharing the database of the issuing one."""
    settings = make_settings(tmp_path / "api-only", live.runtime.settings.database_url,
                             public_only(keys_dir, tmp_path / "public-keys"), redis_url=redis_url)
    app = create_app(settings)  # no `pramaan init` here: it would want to make keys
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", live.token,
                   app.extensions["pramaan"])
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["pramaan"].close()


def test_api_with_redis_starts_and_verifies_without_private_keys(
    issued: tuple[str, bytes], verify_only: Live
) -> None:
    seal, _pdf = issued
    assert "keyring" not in verify_only.runtime.__dict__, "no private key was opened"
    verdict = verify_only.http.post(verify_only.url("/api/v1/verify"), json={"qr": seal},
                                    timeout=60).json()
    assert verdict["current"] is True, verdict
    assert "keyring" not in verify_only.runtime.__dict__


def test_inline_api_without_private_keys_refuses_at_startup(tmp_path: Path,
                                                            keys_dir: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}",
                             public_only(keys_dir, tmp_path / "public-keys"))
    with pytest.raises(KeyMaterialMissing):
        create_app(settings)  # no Redis: this process issues, so it needs the keys


def test_cli_verify_works_without_private_keys(tmp_path: Path, keys_dir: Path) -> None:
    home = tmp_path / "home"
    settings = make_settings(home, f"sqlite:///{home / 'var' / 'pramaan.db'}", keys_dir)
    app = create_app(settings)
    runtime = app.extensions["pramaan"]
    initialise(runtime)
    from issuer.issue import issue_certificate
    from issuer.models import Department
    from issuer.submit import submit

    with runtime.sessions() as session, session.begin():
        department = session.get(Department, "pmc-births-deaths")
        assert department is not None
        cert_id = submit(session, department, "test", sample("birth-2")).id
    issue_certificate(runtime, cert_id)
    with runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.pdf_path and record.pdf_sha256
        seal, pdf = record.seal_text or "", runtime.store.get(record.pdf_path, record.pdf_sha256)
    runtime.close()
    (tmp_path / "cert.pdf").write_bytes(pdf)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRAMAAN_", "DATABASE_URL",
                                                                     "REDIS_URL"))}
    env.update(PRAMAAN_HOME=str(home),
               PRAMAAN_KEYS_DIR=str(public_only(keys_dir, tmp_path / "public-keys")),
               PRAMAAN_STORE_DIR=str(settings.store_dir))
    for args in (["--qr", seal], [str(tmp_path / "cert.pdf")]):
        result = subprocess.run([sys.executable, "-m", "cli", "verify", *args], env=env,
                                cwd=ROOT, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["current"] is True
