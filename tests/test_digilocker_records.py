"""The pull path's two statements run on the DBAPI cursor (digilocker/records.DriverStatement):
they must read and write exactly what SQLAlchemy's own execution does, on SQLite and on
PostgreSQL (a non-UTC session time zone there), so the replay guard and its pruning still work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from digilocker.records import _BY_ID, _REPLAYS, first_use, prune_replays
from issuer.bootstrap import initialise
from issuer.db import as_utc
from issuer.models import Certificate, Department
from issuer.runtime import Runtime
from tests.conftest import make_settings

REQUEST = {"child": {"name": {"en": "Aarav Deshmukh", "mr": "आरव देशमुख"},
                     "date_of_birth": "2026-02-21"}, "ward_office": {"en": "Kothrud"}}


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[Runtime]:
    """A set-up runtime on each database (SQLite, and PostgreSQL in India's time zone)."""
    runtime = Runtime(make_settings(tmp_path, database_url, keys_dir))
    initialise(runtime)
    yield runtime
    runtime.close()


def test_a_record_read_on_the_driver_is_what_sqlalchemy_reads(runtime: Runtime) -> None:
    issued = datetime(2026, 2, 21, 18, 45, 7, 123456, tzinfo=UTC)
    with runtime.sessions() as session:
        department = session.scalars(select(Department)).first()
        assert department is not None
        record = Certificate(
            id=str(uuid.uuid4()), department_id=department.id, cert_type="birth",
            registration_number="B-2026-1", state="issued", request=REQUEST,
            submitted_by="clerk", number="PMC/B/2026/1", due_at=issued, issued_at=issued,
            pdf_path="ab/cd.pdf", pdf_sha256="ab" * 32)
        session.add(record)
        session.commit()
    with runtime.engine.connect() as connection:
        expected = connection.execute(_BY_ID.statement, {"id": record.id}).first()
        got = _BY_ID.run(connection, {"id": record.id})
        assert _BY_ID.run(connection, {"id": str(uuid.uuid4())}) is None
    assert expected is not None and got == tuple(expected)
    assert got[3] == REQUEST and as_utc(got[5]) == issued


def test_the_replay_guard_on_the_driver_refuses_a_second_use_and_prunes_old_ones(
        runtime: Runtime) -> None:
    now = datetime(2026, 12, 2, 3, 0, 0, 654321, tzinfo=UTC)
    old = now - timedelta(seconds=601)
    engine = runtime.engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        assert first_use(connection, "pulldoc", "fresh", now, 300)
        assert first_use(connection, "pulldoc", "old", old, 300)
        assert not first_use(connection, "pulldoc", "fresh", now, 300)
        assert first_use(connection, "pulluri", "fresh", now, 300)  # per operation
        stored = dict(connection.execute(select(_REPLAYS.c.txn, _REPLAYS.c.seen_at)).all())
        assert {k: as_utc(v) for k, v in stored.items()} == {
            "pulldoc:fresh": now, "pulldoc:old": old, "pulluri:fresh": now}
        # Stored exactly as SQLAlchemy stores it (SQLite keeps text: the format must match).
        connection.execute(insert(_REPLAYS), {"txn": "core", "seen_at": now})
        raw: dict[str, Any] = dict(connection.exec_driver_sql(
            "SELECT txn, seen_at FROM digilocker_replays WHERE txn IN "
            "('core', 'pulldoc:fresh')").all())
        assert raw["core"] == raw["pulldoc:fresh"]
        connection.execute(delete(_REPLAYS).where(_REPLAYS.c.txn == "core"))
        prune_replays(connection, now, 300)  # forgets what is older than twice the window
        left = set(connection.execute(select(_REPLAYS.c.txn)).scalars())
    assert left == {"pulldoc:fresh", "pulluri:fresh"}
