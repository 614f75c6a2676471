"""Certificate numbers are unique and gapless per type, ward office and year: under 50 concurrent
approvals on PostgreSQL (real connections, one per approval), and when a request is cancelled
(its number goes back to the series) or rejected (it never takes one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from issuer.bootstrap import initialise
from issuer.fields import today_ist
from issuer.models import Certificate, Department
from issuer.recovery import cancel
from issuer.runtime import Runtime
from issuer.submit import submit
from issuer.workflow import approve, reject
from tests.conftest import _postgres_schema, make_settings, sample

CONCURRENT = 50


@pytest.fixture
def postgres_runtime(tmp_path: Path, keys_dir: Path) -> Iterator[Runtime]:
    for url in _postgres_schema():
        runtime = Runtime(make_settings(tmp_path, url, keys_dir))
        initialise(runtime)
        try:
            yield runtime
        finally:
            runtime.close()


def officer_department(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        session.add(Department(id="registrar", name_en="Registrar", name_mr="निबंधक",
                               cert_types=["birth"], approval="officer"))


def request(n: int) -> dict[str, Any]:
    data = sample("birth-1")
    data["registration_number"] = f"B-2026-PMC-{n:06d}"
    return data


def submitted(runtime: Runtime, count: int) -> list[str]:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, "registrar")
        assert department is not None
        return [submit(session, department, "token:registrar/clerk", request(n)).id
                for n in range(count)]


def approve_now(runtime: Runtime, cert_id: str, actor: str = "token:registrar/officer") -> str:
    with runtime.sessions() as session, session.begin():
        record = session.get(Certificate, cert_id)
        assert record is not None
        approve(session, record, actor)
        assert record.number is not None
        return record.number


def series(n: int) -> str:
    return f"PMC/B/{today_ist().year}/KB/{n:06d}"


def test_fifty_concurrent_approvals_take_fifty_consecutive_numbers(
    postgres_runtime: Runtime,
) -> None:
    runtime = postgres_runtime
    officer_department(runtime)
    ids = submitted(runtime, CONCURRENT)
    start = threading.Barrier(CONCURRENT)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(cert_id: str) -> None:
        try:
            start.wait(timeout=60)
            number = approve_now(runtime, cert_id)
            with lock:
                numbers.append(number)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(numbers) == [series(n) for n in range(1, CONCURRENT + 1)]
    with runtime.sessions() as session:
        stored = {r.id: r.number for r in session.query(Certificate)
                  .filter(Certificate.department_id == "registrar")}
    assert sorted(stored.values()) == sorted(numbers)  # type: ignore[type-var]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_cancelled_request_gives_its_number_back_and_a_rejected_one_takes_none(
    db: str, request: pytest.FixtureRequest
) -> None:
    runtime: Runtime = request.getfixturevalue(f"{'postgres' if db == 'postgresql' else db}"
                                               "_runtime")
    officer_department(runtime)
    first, second, third, fourth = submitted(runtime, 4)
    assert approve_now(runtime, first) == series(1)
    assert approve_now(runtime, second) == series(2)
    with runtime.sessions() as session, session.begin():
        record = session.get(Certificate, third)
        assert record is not None
        reject(session, record, "token:registrar/officer", "duplicate")
        assert record.number is None
    with runtime.sessions() as session, session.begin():
        cancel(session, first, "operator:test", "entered in the wrong ward")
    with runtime.sessions() as session:
        cancelled = session.get(Certificate, first)
        assert cancelled is not None and cancelled.number is None
    # The released number is taken before a new one is drawn, and only once.
    assert approve_now(runtime, fourth) == series(1)
    fifth = submitted_one(runtime, 5)
    assert approve_now(runtime, fifth) == series(3)


def submitted_one(runtime: Runtime, n: int) -> str:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, "registrar")
        assert department is not None
        return submit(session, department, "token:registrar/clerk", request(n)).id


def test_series_are_per_type_and_ward(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    officer_department(runtime)
    first = submitted_one(runtime, 1)
    other_ward = request(2)
    other_ward["ward_office"] = {"en": "Hadapsar-Mundhwa Ward Office",
                                 "mr": "हडपसर-मुंढवा क्षेत्रीय कार्यालय"}
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, "registrar")
        assert department is not None
        second = submit(session, department, "token:registrar/clerk", other_ward).id
    assert approve_now(runtime, first) == series(1)
    assert approve_now(runtime, second) == f"PMC/B/{today_ist().year}/HM/000001"
