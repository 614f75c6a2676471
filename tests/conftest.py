"""Fixtures: a dev PKI per session, a fresh database per test (SQLite and PostgreSQL), the app on a
real HTTP server on 127.0.0.1, and Redis. Under CI=true a missing service fails; elsewhere skips."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from api import create_app
from issuer.bootstrap import initialise
from issuer.runtime import Runtime
from issuer.settings import Settings
from signing.devpki import DevPki, ensure_dev_pki
from tests.fixture_scope import shared

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "samples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "PRAMAAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PRAMAAN_TEST_REDIS", "redis://127.0.0.1:6379/9")
# Mutation runs only (make mutation): PRAMAAN_TEST_DATABASES=sqlite runs each database test once.
# The normal suite and CI leave it unset and run every test against both databases.
DATABASES = [
    name for name in ("sqlite", "postgresql")
    if name in os.environ.get("PRAMAAN_TEST_DATABASES", "sqlite,postgresql").split(",")
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mutation runs only: PRAMAAN_MUTATION_TESTS names the test files that can reach the mutated
    files (tests/mutation_reach.py); the tests of the others are deselected."""
    wanted = os.environ.get("PRAMAAN_MUTATION_TESTS")
    if wanted is None:
        return
    files = set(wanted.split())
    dropped = [item for item in items if item.nodeid.partition("::")[0] not in files]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid.partition("::")[0] in files]


def service_missing(what: str, exc: BaseException) -> None:
    """Fail loudly in CI, skip on a laptop without the service."""
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope=shared("session"))
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from signing.devpki import ensure_dev_pki

    path = tmp_path_factory.mktemp("keys")
    ensure_dev_pki(path)
    return path


@pytest.fixture(scope=shared("module"))
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A dev PKI for the signing tests (module-scoped: key generation is the slow part)."""
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope=shared("module"))
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A second, unrelated dev PKI: keys the verifiers must not trust."""
    return ensure_dev_pki(tmp_path_factory.mktemp("stranger"))


@pytest.fixture
def sqlite_runtime(tmp_path: Path, keys_dir: Path) -> Iterator[Runtime]:
    """A set-up runtime (dev department and tokens) on a fresh SQLite file, for in-process
    tests of the lifecycle (fast enough for mutation runs)."""
    runtime = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir))
    initialise(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pramaan.db'}"
        return
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_missing("PostgreSQL", exc)
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        # A non-UTC session time zone, as on an Indian server: stored times must still be UTC.
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}%20-ctimezone%3DAsia/Kolkata"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pramaan.db'}"


def make_settings(home: Path, database_url: str, keys_dir: Path, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "keys_dir": keys_dir,
        "store_dir": home / "var" / "store",
        "redis_url": None,
        # B-T, as before the development default became B-LTA: long-term signing and its
        # validation cost about ten times as much, and most tests are about something else.
        # tests/test_long_term*.py, test_ltv_refresh.py and the CLI tests (the real default)
        # sign at B-LTA.
        "signature_level": "B-T" if (
            extra.get("tsa_url") in (None, "dev") and extra.get("environment") != "production"
            and (keys_dir / "tsa.key").exists()) else None,
    }
    overrides.update(extra)
    return Settings.from_env(env={}, overrides=overrides)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, keys_dir)


class Live:
    """The app served over real HTTP on 127.0.0.1, with the admin token and its runtime."""

    def __init__(self, base: str, token: str, runtime: Runtime) -> None:
        self.base = base
        self.token = token
        self.runtime = runtime
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return self.base + path

    def post_json(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), json=body, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=60, **kwargs)


def serve(settings: Settings) -> Iterator[Live]:
    app = create_app(settings)
    runtime: Runtime = app.extensions["pramaan"]
    report = initialise(runtime)
    token = report.clerk_token or _another_token(runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutdown() waits up to one interval, for every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", token, runtime)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        runtime.close()


def _another_token(runtime: Runtime) -> str:
    from issuer.bootstrap import DEV_DEPARTMENT
    from issuer.models import Department
    from issuer.tokens import create_token

    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return create_token(session, department, f"test-{uuid.uuid4().hex[:8]}", "clerk")


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    yield from serve(settings)


@pytest.fixture
def redis_url() -> Iterator[str]:
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except RedisError as exc:
        service_missing("Redis", exc)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


# The S3 server (SeaweedFS on 127.0.0.1) and a bucket per test: tests/s3_server.py.
from tests.s3_server import s3_server, s3_url  # noqa: E402, F401 - fixtures


def wait_for_a_blocked_backend(live: Live, what: str) -> None:
    """Until some other session of this PostgreSQL database waits on a row lock; `what` names
    the waiter in the failure."""
    from sqlalchemy import text

    deadline = time.monotonic() + 30
    with live.runtime.sessions() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"{what} never waited on a row lock")
