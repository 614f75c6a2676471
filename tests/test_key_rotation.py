"""Key rotation: new keys staged to take over at a given moment; certificates issued before a
rotation keep verifying after it (issue, rotate, issue, verify both, offline); a running
process switches on time; the old seal certificate stays trusted, the old private keys go."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.issue import issue_certificate
from issuer.models import AuditEvent, Certificate, Department
from issuer.runtime import Runtime
from issuer.submit import submit
from signing import rotation
from signing.devpki import DevPki
from signing.errors import KeyMaterialMissing, SigningError
from signing.seal import decode_seal
from signing.validate import validate_pdf
from tests.conftest import SAMPLES, make_settings, sample

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keys(tmp_path: Path, pki: DevPki) -> Path:
    shutil.copytree(pki.keys_dir, tmp_path / "keys")
    return tmp_path / "keys"


def runtime_of(tmp_path: Path, keys: Path) -> Runtime:
    built = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", keys,
                                  tsa_url="none"))
    initialise(built)
    return built


def issue(runtime: Runtime, name: str) -> Certificate:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "test:clerk", sample(name)).id
    assert issue_certificate(runtime, cert_id)
    with runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        return record


@pytest.fixture
def runtimes(tmp_path: Path, keys: Path) -> Iterator[list[Runtime]]:
    made: list[Runtime] = []
    yield made
    for runtime in made:
        runtime.close()


def test_staged_keys_sign_from_their_moment_in_a_running_process(
    tmp_path: Path, keys: Path, runtimes: list[Runtime]
) -> None:
    runtimes.append(runtime_of(tmp_path, keys))
    old_kid = runtimes[0].keyring.seal_kid
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    staged = rotation.stage(keys, moment)
    assert staged.activate_at == moment and not staged.due()
    runtime = Runtime(runtimes[0].settings)  # a worker started after the staging
    runtimes.append(runtime)
    keyring = runtime.keyring
    assert keyring.active().seal_kid == old_kid  # not yet
    new_kid = keyring.active(moment).seal_kid
    assert new_kid != old_kid
    before = issue(runtime, "birth-1")
    time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
    after = issue(runtime, "birth-2")  # the same process, past the moment: the new keys
    assert (before.seal_kid, after.seal_kid) == (old_kid.hex(), new_kid.hex())
    # Both verify, and the new seal was trusted already while only staged.
    from issuer.verify import verify_qr

    for record in (before, after):
        assert record.seal_text is not None
        assert verify_qr(runtime, record.seal_text).current


def test_issue_rotate_issue_and_both_verify_offline(tmp_path: Path, keys: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(PRAMAAN_HOME=str(tmp_path), PRAMAAN_KEYS_DIR=str(keys),
               PRAMAAN_TSA_URL="none")

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    assert pramaan("init").returncode == 0
    first = pramaan("issue", "--data", str(SAMPLES / "birth-1.json"), "--out",
                    str(tmp_path / "first.pdf"))
    assert first.returncode == 0, first.stderr
    old_seal = (keys / "seal.crt").read_bytes()
    old_signer_key = (keys / "signer.key").read_bytes()

    rotated = pramaan("keys", "rotate", "--actor", "ops")
    assert rotated.returncode == 0, rotated.stderr
    assert "are the current ones now" in rotated.stdout
    assert not (keys / "next").exists()
    assert (keys / "seal.crt").read_bytes() != old_seal
    assert (keys / "signer.key").read_bytes() != old_signer_key  # the old private key is gone
    (retired,) = (keys / "seal-retired").glob("*.crt")
    assert retired.read_bytes() == old_seal
    assert len(list((keys / "signer-retired").glob("*.crt"))) == 1

    second = pramaan("issue", "--data", str(SAMPLES / "birth-2.json"), "--out",
                     str(tmp_path / "second.pdf"))
    assert second.returncode == 0, second.stderr
    kids = {decode_seal(validate_pdf((tmp_path / pdf).read_bytes(), [keys / "root.crt"])
                        .info["PramaanSeal"]).message.kid for pdf in ("first.pdf", "second.pdf")}
    assert len(kids) == 2  # sealed by the old key, then by the new
    for pdf in ("first.pdf", "second.pdf"):
        verified = pramaan("verify", str(tmp_path / pdf))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["current"] is True
    checked = pramaan("keys", "check")
    assert checked.returncode == 0, checked.stdout

    runtime = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'pramaan.db'}",
                                    keys))
    try:
        with runtime.sessions() as session:
            (event,) = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "keys_rotate"))
            assert event.actor == "cli:ops"
            assert set(event.details) == {"activate_at", "seal_kid", "signer_kid"}
    finally:
        runtime.close()


def test_one_rotation_waits_at_a_time_and_a_due_one_is_promoted_first(keys: Path) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    rotation.stage(keys, later)
    with pytest.raises(SigningError, match="a rotation is already staged for") as refused:
        rotation.stage(keys, later + dt.timedelta(days=1))
    assert refused.value.code == "invalid_rotation"
    assert rotation.promote(keys) is False  # not due: nothing moves
    (keys / "next" / "activate-at").write_text(
        (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat())
    staged_seal = (keys / "next" / "seal.crt").read_bytes()
    rotation.stage(keys, later)  # the due one becomes current, a new one is staged
    assert (keys / "seal.crt").read_bytes() == staged_seal
    assert (keys / "next" / "seal.crt").read_bytes() != staged_seal


def test_what_cannot_be_rotated_is_refused_by_name(keys: Path, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="needs a time zone"):
        rotation.stage(keys, dt.datetime(2030, 1, 1))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "seal.crt").write_bytes(b"x")
    with pytest.raises(KeyMaterialMissing, match=r"lack signer\.key, signer\.crt, seal\.key"):
        rotation.stage(keys, dt.datetime.now(dt.UTC), tmp_path / "new")
    (keys / "ca.key").unlink()
    with pytest.raises(KeyMaterialMissing, match="no development CA key"):
        rotation.stage(keys, dt.datetime.now(dt.UTC))
    assert not (keys / "next").exists()
