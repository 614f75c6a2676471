"""`pramaan doctor`: a sound installation passes every check (exit 0); each broken thing (the
database unreachable or behind on migrations, Redis down or without workers, keys missing or
expired, the TSA unreachable, a wrong DigiLocker secret, a bad setting) is one line naming it
in plain words, exit 1, no traceback and no secret. Real PostgreSQL, Redis, dev PKI, a TSA over
HTTP, the DigiLocker emulator, SoftHSM, SeaweedFS; nothing listening for "unreachable"."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from issuer.db import make_engine
from issuer.doctor import Check, as_json, as_text, diagnose, masked
from issuer.migrate import alembic_config, upgrade
from signing.devpki import DevPki
from signing.timestamps import tsa_wsgi_app
from tests.conftest import ROOT
from tests.digilocker_emulator import CLIENT_ID, CLIENT_SECRET, RunningEmulator, emulator
from tests.fixture_scope import shared
from tests.s3_server import S3Server
from tests.test_signer_expiry import EXPIRED, reissue
from tests.test_signing_timestamps import authority_of
from tests.test_signing_timestamps import serve as serve_wsgi

__all__ = ["emulator"]  # a fixture, used by name below

PRAMAAN = ROOT / ".venv" / "bin" / "pramaan"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "97531864"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def migrated(database_url: str) -> str:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return database_url


def home_env(home: Path, keys: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a development installation in `home` with the keys in `keys`."""
    return {"PRAMAAN_HOME": str(home), "PRAMAAN_KEYS_DIR": str(keys),
            "DATABASE_URL": database_url, **extra}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {f"{check.area} / {check.name}": check for check in checks}


def problems(checks: list[Check]) -> dict[str, Check]:
    return {name: check for name, check in by_name(checks).items() if not check.ok}


def run_doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/pramaan doctor` in a process of its own, with only `env` configured."""
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith(("PRAMAAN_", "DIGILOCKER_", "AWS_", "SOFTHSM"))
             and name not in ("DATABASE_URL", "REDIS_URL", "PORT", "HOST")}
    return subprocess.run([str(PRAMAAN), "doctor", *args], env={**clean, **env},
                          cwd=env.get("PRAMAAN_HOME"), capture_output=True, text=True,
                          timeout=120, check=False)


def plain(done: subprocess.CompletedProcess[str]) -> str:
    """The whole output, checked to be words: no traceback anywhere."""
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return output


@pytest.fixture
def keys(tmp_path: Path, keys_dir: Path) -> DevPki:
    """A copy of the session's dev PKI that a test may damage."""
    shutil.copytree(keys_dir, tmp_path / "keys")
    return DevPki.at(tmp_path / "keys")


@pytest.fixture
def sqlite_home(tmp_path: Path) -> str:
    return migrated(f"sqlite:///{tmp_path / 'pramaan.db'}")


@pytest.fixture(scope=shared("module"))
def tsa_url(keys_dir: Path) -> Iterator[str]:
    """The dev PKI's TSA answering over HTTP on 127.0.0.1, as a licensed one would."""
    yield from serve_wsgi(tsa_wsgi_app(authority_of(DevPki.at(keys_dir))))


def test_a_sound_installation_passes_every_check_in_a_process_of_its_own(
        tmp_path: Path, keys_dir: Path, sqlite_home: str) -> None:
    done = run_doctor(home_env(tmp_path, keys_dir, sqlite_home))
    output = plain(done)
    assert done.returncode == 0, output
    lines = done.stdout.splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]), output
    assert lines[-1] == f"all {len(lines) - 1} checks ok"
    for expected in ("ok      configuration / settings: read from the environment (development",
                     f"ok      database / connection: connected to {sqlite_home}",
                     "ok      database / schema: at revision ",
                     "ok      Redis / Redis: REDIS_URL is not set",
                     "ok      keys / document signer: CN=Pramaan Dev Document Signer",
                     "ok      keys / test signature: a PAdES B-T signature validates",
                     "ok      TSA / time-stamping authority: the development TSA (in process) "
                     "answered", "ok      DigiLocker / DigiLocker: not configured"):
        assert expected in done.stdout, output
    machine = run_doctor(home_env(tmp_path, keys_dir, sqlite_home), "--json")
    report = json.loads(machine.stdout)
    assert machine.returncode == 0 and report["ok"] is True and report["problems"] == 0
    schema = next(check for check in report["checks"] if check["name"] == "schema")
    assert schema["area"] == "database" and schema["ok"] and schema["fix"] == ""
    assert schema["detail"].startswith("at revision ")
    assert len(report["checks"]) == len(lines) - 1


def test_a_sound_installation_on_each_database(tmp_path: Path, keys_dir: Path,
                                               database_url: str) -> None:
    checks = diagnose(home_env(tmp_path, keys_dir, migrated(database_url)))
    assert all(check.ok for check in checks), as_text(checks)
    assert by_name(checks)["database / connection"].detail.startswith("connected to ")


def test_a_database_that_cannot_be_reached_is_named_without_its_password(
        tmp_path: Path, keys_dir: Path) -> None:
    url = f"postgresql+psycopg://pramaan:s3cret-Pw@127.0.0.1:{free_port()}/pramaan"
    done = run_doctor(home_env(tmp_path, keys_dir, url))
    output = plain(done)
    assert done.returncode == 1
    assert "s3cret-Pw" not in output
    line = next(line for line in done.stdout.splitlines() if "database / connection" in line)
    assert line.startswith("PROBLEM database / connection: cannot connect to "
                           "postgresql+psycopg://pramaan:***@127.0.0.1:"), line
    assert "Connection refused" in line and "-> check DATABASE_URL" in line, line
    # Not a URL at all, or a SQLite file that is not there (never created by the check).
    for bad, said in (("nonsense", "DATABASE_URL=nonsense is not a database URL"),
                      (f"sqlite:///{tmp_path / 'none.db'}",
                       f"no database file at {tmp_path / 'none.db'}")):
        named = problems(diagnose(home_env(tmp_path, keys_dir, bad)))
        assert list(named) == ["database / connection"]
        assert named["database / connection"].detail == said
    assert not (tmp_path / "none.db").exists()


def test_a_database_behind_on_migrations_says_run_migrate(tmp_path: Path, keys_dir: Path,
                                                          database_url: str) -> None:
    env = home_env(tmp_path, keys_dir, database_url)
    if database_url.startswith("sqlite"):
        make_engine(database_url).dispose()  # the file, empty
        (tmp_path / "pramaan.db").touch()
    empty = problems(diagnose(env))
    assert list(empty) == ["database / schema"]
    assert empty["database / schema"].detail == "the database has no schema yet (never migrated)"
    assert empty["database / schema"].fix == "run `pramaan migrate` (it is safe to run again)"
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    engine = make_engine(database_url)
    upgrade(engine, previous)
    behind = problems(diagnose(env))
    assert list(behind) == ["database / schema"]
    assert behind["database / schema"].detail == (f"at revision {previous}; this version needs "
                                                  f"{head}")
    upgrade(engine)
    assert not problems(diagnose(env))
    with engine.begin() as connection:  # as a newer version of Pramaan would leave it
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    ahead = problems(diagnose(env))["database / schema"]
    assert ahead.detail == ("at revision 9999, which this version does not know: a newer "
                            "version of Pramaan migrated it")


def test_redis_down_is_named(tmp_path: Path, keys_dir: Path, sqlite_home: str) -> None:
    url = f"redis://:redis-Pass-1@127.0.0.1:{free_port()}/0"
    done = run_doctor(home_env(tmp_path, keys_dir, sqlite_home, REDIS_URL=url))
    output = plain(done)
    assert done.returncode == 1 and "redis-Pass-1" not in output
    assert "PROBLEM Redis / Redis: redis://:***@127.0.0.1:" in done.stdout, output
    assert "does not answer: Error 111 connecting" in done.stdout, output
    assert "-> start Redis, or correct REDIS_URL" in done.stdout


def test_redis_without_workers_is_a_problem_and_queue_depths_are_shown(
        tmp_path: Path, keys_dir: Path, sqlite_home: str, redis_url: str) -> None:
    from redis import Redis
    from rq import Queue, Worker

    env = home_env(tmp_path, keys_dir, sqlite_home, REDIS_URL=redis_url)
    named = problems(diagnose(env))
    assert list(named) == ["Redis / workers on `sign`", "Redis / workers on `deliver`"]
    assert named["Redis / workers on `sign`"].detail == "no RQ worker listens on the `sign` queue"
    assert named["Redis / workers on `sign`"].fix.startswith("start `pramaan worker`")
    connection = Redis.from_url(redis_url)
    sign, deliver = Queue("sign", connection=connection), Queue("deliver", connection=connection)
    sign.enqueue("os.getpid")
    sign.enqueue("os.getpid")
    worker = Worker([sign, deliver], connection=connection)
    worker.register_birth()  # a worker as RQ knows one: registered in Redis, listening
    try:
        checks = by_name(diagnose(env))
    finally:
        worker.register_death()
        connection.close()
    assert all(check.ok for check in checks.values()), checks
    assert checks["Redis / workers on `sign`"].detail == "1 worker(s) listening"
    assert checks["Redis / queues"].detail == ("sign: 2 waiting, 0 failed; "
                                               "deliver: 0 waiting, 0 failed")


def test_missing_keys_are_named_with_what_to_do(tmp_path: Path, sqlite_home: str) -> None:
    (tmp_path / "empty-keys").mkdir()
    done = run_doctor(home_env(tmp_path, tmp_path / "empty-keys", sqlite_home))
    output = plain(done)
    assert done.returncode == 1
    assert (f"PROBLEM keys / document signer: cannot read signer key "
            f"{tmp_path / 'empty-keys' / 'signer.key'}: No such file or directory "
            "[key_material_missing] -> put the key and certificate files in place in "
            f"{tmp_path / 'empty-keys'} (development: `pramaan keys init`)") in done.stdout, output
    assert "PROBLEM keys / seal key: cannot read seal certificate" in done.stdout
    # Everything that does not need the keys was still checked, and passed.
    assert "ok      database / schema" in done.stdout


def test_an_expired_signer_certificate_is_named(tmp_path: Path, keys: DevPki,
                                                sqlite_home: str) -> None:
    keys.signer_cert.write_bytes(reissue(keys, keys.signer_cert, EXPIRED))
    named = problems(diagnose(home_env(tmp_path, keys.keys_dir, sqlite_home)))
    assert list(named) == ["keys / document signer"]  # the rest was checked and passed
    signer = named["keys / document signer"]
    assert signer.detail.endswith(f"is valid only from {EXPIRED[0]:%Y-%m-%d %H:%M} to "
                                  f"{EXPIRED[1]:%Y-%m-%d %H:%M} UTC [certificate_not_valid]")
    assert signer.fix == ("have your CA issue a new certificate and stage it: "
                          "`pramaan keys rotate --from DIR`")


def test_a_certificate_expiring_within_days_is_a_problem(tmp_path: Path, keys_dir: Path,
                                                         sqlite_home: str) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home)
    done = run_doctor(env, "--days", "4000")
    output = plain(done)
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines()
                if "keys / document signer certificate validity" in line)
    assert line.startswith("PROBLEM keys / document signer certificate validity: expires in "), \
        output
    assert run_doctor(env, "--days", "30").returncode == 0


def test_a_tsa_that_answers_and_one_that_does_not(tmp_path: Path, keys_dir: Path,
                                                  sqlite_home: str, tsa_url: str) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home, PRAMAAN_TSA_URL=tsa_url)
    checks = by_name(diagnose(env))
    assert all(check.ok for check in checks.values()), checks
    assert checks["TSA / time-stamping authority"].detail.startswith(f"{tsa_url} answered")
    down = f"http://127.0.0.1:{free_port()}/tsa"
    done = run_doctor({**env, "PRAMAAN_TSA_URL": down})
    output = plain(done)
    assert done.returncode == 1
    assert f"PROBLEM TSA / time-stamping authority: no timestamp from the TSA: cannot reach the " \
           f"TSA at {down}" in done.stdout, output
    assert "-> check PRAMAAN_TSA_URL and that this machine reaches it" in done.stdout


def test_an_api_process_beside_redis_needs_only_the_trust_store(
        tmp_path: Path, keys: DevPki, sqlite_home: str, redis_url: str, tsa_url: str) -> None:
    for private in keys.keys_dir.glob("*.key"):
        private.unlink()
    env = home_env(tmp_path, keys.keys_dir, sqlite_home, REDIS_URL=redis_url,
                   PRAMAAN_TSA_URL=tsa_url)
    checks = by_name(diagnose(env))
    store = checks["keys / trust store"]
    assert store.ok and "an API process, which only verifies" in store.detail, store
    assert "keys / document signer" not in checks
    assert checks["TSA / time-stamping authority"].ok  # asked over HTTP without any key
    keys.seal_cert.unlink()
    down = f"http://127.0.0.1:{free_port()}/tsa"
    named = problems(diagnose({**env, "PRAMAAN_TSA_URL": down}))
    assert named["keys / trust store"].detail.startswith("cannot read seal certificate")
    assert named["TSA / time-stamping authority"].detail.startswith(
        f"no timestamp from the TSA at {down}: cannot reach")


def test_digilocker_credentials_are_tried_and_the_secret_never_shown(
        tmp_path: Path, keys_dir: Path, sqlite_home: str, emulator: RunningEmulator) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home, DIGILOCKER_BASE_URL=emulator.base,
                   DIGILOCKER_CLIENT_ID=CLIENT_ID, DIGILOCKER_CLIENT_SECRET=CLIENT_SECRET,
                   DIGILOCKER_API_KEY="test-api-key")
    checks = by_name(diagnose(env))
    assert all(check.ok for check in checks.values()), checks
    assert checks["DigiLocker / client id and secret"].detail.startswith(
        f"accepted by {emulator.base}/oauth2/1/token")
    assert checks["DigiLocker / push endpoint"].ok
    done = run_doctor({**env, "DIGILOCKER_CLIENT_SECRET": "wrong-Secret-42"})
    output = plain(done)
    assert done.returncode == 1 and "wrong-Secret-42" not in output
    assert (f"PROBLEM DigiLocker / client id and secret: DigiLocker refused DIGILOCKER_CLIENT_ID "
            f"{CLIENT_ID} with this DIGILOCKER_CLIENT_SECRET (HTTP 401 invalid_client)"
            in done.stdout), output
    unknown = problems(diagnose({**env, "DIGILOCKER_CLIENT_ID": "someone-else"}))
    assert list(unknown) == ["DigiLocker / client id and secret", "DigiLocker / push endpoint"]
    down = f"http://127.0.0.1:{free_port()}/public"
    named = problems(diagnose({**env, "DIGILOCKER_BASE_URL": down,
                               "DIGILOCKER_API_KEY": ""}))
    assert list(named) == ["DigiLocker / pull requests", "DigiLocker / client id and secret",
                           "DigiLocker / push endpoint"]
    assert named["DigiLocker / client id and secret"].detail.startswith(
        f"cannot reach the token endpoint {down}/oauth2/1/token: connection refused (nothing "
        "listens there)")
    half = problems(diagnose({**env, "DIGILOCKER_CLIENT_SECRET": ""}))
    assert half["DigiLocker / partner API"].detail == (
        "DIGILOCKER_CLIENT_SECRET not set: linking accounts and pushing documents are off")


def test_a_bad_setting_is_one_line_in_words(tmp_path: Path, keys_dir: Path,
                                            sqlite_home: str) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home, PRAMAAN_ENV="production")
    done = run_doctor(env)
    output = plain(done)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "PROBLEM configuration / settings: PRAMAAN_VERIFY_BASE_URL is not set: in production "
        "(PRAMAAN_ENV=production) QR links must point to the public https address of the "
        "verify page, not to the listen address 127.0.0.1:8000 -> correct that variable in the "
        "environment (see the README, Configuration); nothing else was checked",
        "1 problem(s) in 1 checks"], output
    report = json.loads(run_doctor({**env, "PORT": "eighty"}, "--json").stdout)
    assert report["ok"] is False and report["checks"][0]["detail"] == (
        "PORT must be an integer, got 'eighty'")


def test_production_refuses_development_keys_and_a_missing_aadhaar_key(
        tmp_path: Path, keys_dir: Path, sqlite_home: str) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home, PRAMAAN_ENV="production",
                   PRAMAAN_VERIFY_BASE_URL="https://verify.pmc.gov.in")
    named = problems(diagnose(env))
    assert list(named) == ["configuration / Aadhaar HMAC key", "keys / development keys"]
    assert named["keys / development keys"].detail.startswith(f"{keys_dir / 'root.key'} is here")
    key = "ab" * 32
    again = problems(diagnose({**env, "PRAMAAN_AADHAAR_HMAC_KEY": key}))
    assert list(again) == ["keys / development keys"]
    short = as_text(diagnose({**env, "PRAMAAN_AADHAAR_HMAC_KEY": key[:-2]}))
    assert ("PROBLEM configuration / Aadhaar HMAC key: PRAMAAN_AADHAAR_HMAC_KEY must hold at "
            "least 32 bytes, it holds 31") in short and key[:-2] not in short


def test_the_store_directory_and_bucket(tmp_path: Path, keys_dir: Path, sqlite_home: str,
                                        s3_server: S3Server, s3_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home)
    (tmp_path / "a-file").write_text("x")
    named = problems(diagnose({**env, "PRAMAAN_STORE_URL": f"file://{tmp_path / 'a-file'}"}))
    assert named["store / store"].detail == f"{tmp_path / 'a-file'} is not a directory"
    checks = by_name(diagnose({**env, "PRAMAAN_STORE_URL": s3_url}))
    assert checks["store / store"] == Check("store", "store", True,
                                            f"{s3_url} (the bucket answers)")
    missing = problems(diagnose({**env, "PRAMAAN_STORE_URL": "s3://no-such-bucket/x"}))
    assert missing["store / store"].detail.startswith("s3://no-such-bucket/x: the object store "
                                                      "answered ")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-Key-77")
    refused = as_text(diagnose({**env, "PRAMAAN_STORE_URL": s3_url}))
    assert "PROBLEM store / store" in refused and "not-the-Key-77" not in refused
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    down = problems(diagnose({**env, "PRAMAAN_STORE_URL": s3_url}))
    assert "Could not connect" in down["store / store"].detail


@pytest.fixture(scope=shared("module"))
def softhsm_conf(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Path:
    """A SoftHSM2 token "pramaan" holding the dev signer's key, made with SOFTHSM2_CONF in the
    tool's environment only (the library is never loaded into this process)."""
    assert Path(SOFTHSM).exists(), f"{SOFTHSM} is missing: apt-get install softhsm2"
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for args in (("--init-token", "--free", "--label", "pramaan", "--pin", PIN, "--so-pin",
                  "13579"),
                 ("--import", str(keys_dir / "signer.key"), "--token", "pramaan", "--label",
                  "signer", "--id", "01", "--pin", PIN)):
        done = subprocess.run(["softhsm2-util", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    return conf


def test_a_pkcs11_key_is_checked_and_its_pin_never_shown(
        tmp_path: Path, keys_dir: Path, sqlite_home: str, softhsm_conf: Path) -> None:
    env = home_env(tmp_path, keys_dir, sqlite_home, SOFTHSM2_CONF=str(softhsm_conf),
                   PRAMAAN_SIGNER_BACKEND="pkcs11", PRAMAAN_PKCS11_MODULE=SOFTHSM,
                   PRAMAAN_PKCS11_PIN=PIN)
    done = run_doctor(env)
    output = plain(done)
    assert done.returncode == 0, output
    assert "ok      keys / document signer: CN=Pramaan Dev Document Signer" in done.stdout
    assert PIN not in output
    wrong = run_doctor({**env, "PRAMAAN_PKCS11_PIN": "86420-wrong"})
    output = plain(wrong)
    assert wrong.returncode == 1 and "86420-wrong" not in output
    line = next(line for line in wrong.stdout.splitlines() if "keys / document signer:" in line)
    assert line.startswith("PROBLEM keys / document signer: cannot open PKCS#11 token"), output
    assert line.endswith("-> check PRAMAAN_PKCS11_MODULE, PRAMAAN_PKCS11_TOKEN_LABEL, "
                         "PRAMAAN_PKCS11_KEY_LABEL and PRAMAAN_PKCS11_PIN"), line


def test_json_lists_every_check_with_its_fix(tmp_path: Path) -> None:
    checks = [Check("database", "schema", False, "behind", "run `pramaan migrate`"),
              Check("Redis", "Redis", True, "answers")]
    assert json.loads(as_json(checks)) == {
        "ok": False, "problems": 1,
        "checks": [{"area": "database", "name": "schema", "ok": False, "detail": "behind",
                    "fix": "run `pramaan migrate`"},
                   {"area": "Redis", "name": "Redis", "ok": True, "detail": "answers",
                    "fix": ""}]}


def test_every_secret_of_the_environment_is_masked_whatever_says_it() -> None:
    env = {"DATABASE_URL": "postgresql+psycopg://u:db-Pass-9@h/db",
           "REDIS_URL": "redis://:redis-Pass-9@h:6379/0",
           "DIGILOCKER_CLIENT_SECRET": "dl-Secret-9", "PRAMAAN_PKCS11_PIN": "pin-9876",
           "PRAMAAN_AADHAAR_HMAC_KEY": "aadhaar-Key-9", "PRAMAAN_KEY_PASSWORD": "abc"}
    said = Check("keys", "x", False, "db-Pass-9 redis-Pass-9 dl-Secret-9 aadhaar-Key-9 abc",
                 "pin-9876")
    assert masked([said], env) == [Check("keys", "x", False, "*** *** *** *** abc", "***")]
