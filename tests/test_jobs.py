"""Jobs: RQ on real Redis with a real worker process; a job run twice signs once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from issuer.issue import issue_certificate
from issuer.models import AuditEvent, Certificate
from issuer.settings import Settings
from tests.conftest import ROOT, Live, make_settings, sample, serve


def sign_events(live: Live, cert_id: str) -> int:
    with live.runtime.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(AuditEvent).where(
                AuditEvent.certificate_id == cert_id, AuditEvent.action == "sign")
        ) or 0


def state_of(live: Live, cert_id: str) -> Certificate:
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        return record


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PRAMAAN_HOME": str(settings.home),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "PRAMAAN_KEYS_DIR": str(settings.keys_dir),
        "PRAMAAN_STORE_DIR": str(settings.store_dir),
    })
    return env


def run_worker_burst(settings: Settings) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"],
                            env=worker_env(settings), cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def live_rq(tmp_path: Path, database_url: str, keys_dir: Path, redis_url: str) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url))


def test_rq_worker_issues_and_a_repeat_signs_once(live_rq: Live) -> None:
    live = live_rq
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert created.status_code == 202, created.text
    cert_id = created.json()["id"]
    assert created.json()["state"] == "approved"  # queued, not yet signed
    # The same job enqueued again while queued is one job.
    live.runtime.dispatcher.enqueue_issue(cert_id)
    run_worker_burst(live.runtime.settings)
    first = state_of(live, cert_id)
    assert first.state == "issued" and first.pdf_sha256
    assert sign_events(live, cert_id) == 1
    # Enqueued again after it ran: the job re-reads the record and does nothing.
    live.runtime.dispatcher.enqueue_issue(cert_id)
    run_worker_burst(live.runtime.settings)
    second = state_of(live, cert_id)
    assert second.pdf_sha256 == first.pdf_sha256
    assert sign_events(live, cert_id) == 1
    pdf = live.get(f"/api/v1/certificates/{cert_id}/pdf")
    assert pdf.status_code == 200


def test_redis_down_at_submit_loses_nothing(tmp_path: Path, database_url: str,
                                           keys_dir: Path, redis_url: str) -> None:
    # Port 1 on loopback: nothing listens, so every Redis call fails at once.
    down = make_settings(tmp_path, database_url, keys_dir, redis_url="redis://127.0.0.1:1/0")
    for live in serve(down):
        created = live.post_json("/api/v1/certificates", sample("birth-1"))
        assert created.status_code == 202, created.text
        assert created.json()["state"] == "approved"  # recorded; the sweeper will enqueue it
    # Redis is back: the sweeper hands the record to a worker and it is issued.
    for live in serve(make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url)):
        from issuer.sweep import sweep

        cert_id = created.json()["id"]
        assert sweep(live.runtime, older_than_seconds=0) == 1
        run_worker_burst(live.runtime.settings)
        assert state_of(live, cert_id).state == "issued"


def test_pdf_before_issue_is_409(live_rq: Live) -> None:
    created = live_rq.post_json("/api/v1/certificates", sample("birth-2"))
    cert_id = created.json()["id"]
    response = live_rq.get(f"/api/v1/certificates/{cert_id}/pdf")
    assert response.status_code == 409
    assert response.json()["code"] == "not_issued"


def test_job_run_twice_in_process_signs_once(live: Live) -> None:
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    cert_id = created.json()["id"]
    assert state_of(live, cert_id).state == "issued"
    assert issue_certificate(live.runtime, cert_id) is False
    assert issue_certificate(live.runtime, "00000000-0000-4000-8000-000000000000") is False
    assert sign_events(live, cert_id) == 1


def test_concurrent_runs_record_one_issue(live_rq: Live) -> None:
    # Workers racing on the same record: the row lock (PostgreSQL) or the write lock
    # (SQLite) lets exactly one of them record the issue; the others find it issued.
    live = live_rq
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    results: list[bool] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            results.append(issue_certificate(live.runtime, cert_id))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sign_events(live, cert_id) == 1
    assert sorted(results) == [False, False, True], (results, errors)


def test_sweeper_recovers_work_lost_with_redis(live_rq: Live) -> None:
    from redis import Redis

    from issuer.sweep import sweep

    cert_id = live_rq.post_json("/api/v1/certificates", sample("birth-2")).json()["id"]
    settings = live_rq.runtime.settings
    assert settings.redis_url
    Redis.from_url(settings.redis_url).flushdb()  # Redis restarted without persistence
    run_worker_burst(settings)
    assert state_of(live_rq, cert_id).state == "approved", "nothing lost, nothing done yet"
    assert sweep(live_rq.runtime, older_than_seconds=0) == 1
    run_worker_burst(settings)
    assert state_of(live_rq, cert_id).state == "issued"
    assert sign_events(live_rq, cert_id) == 1


def test_signing_interrupted_after_the_intent_is_finished_from_it(live_rq: Live) -> None:
    """A worker that dies after recording the intent leaves `signing`; nobody else signs it
    while it may still be in progress, and once abandoned the sweeper's job finishes it with the
    recorded seal: one `seal` and one `sign` event."""
    from datetime import timedelta

    from sqlalchemy import update

    from issuer.issue import RESUME_AFTER, record_intent
    from issuer.sweep import sweep

    live = live_rq
    cert_id = live.post_json("/api/v1/certificates", sample("birth-2")).json()["id"]
    intent = record_intent(live.runtime, cert_id)  # ...and then the worker "dies"
    assert intent is not None
    assert live.get(f"/api/v1/certificates/{cert_id}").json()["state"] == "signing"
    run_worker_burst(live.runtime.settings)  # the queued job finds it fresh: hands off
    assert state_of(live, cert_id).state == "signing"
    stale = state_of(live, cert_id).updated_at - RESUME_AFTER - timedelta(seconds=5)
    with live.runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id)
                        .values(updated_at=stale))
    assert sweep(live.runtime, older_than_seconds=0) == 1
    run_worker_burst(live.runtime.settings)
    done = state_of(live, cert_id)
    assert done.state == "issued" and done.seal_text == intent.seal_text
    with live.runtime.sessions() as session:
        seals = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.certificate_id == cert_id, AuditEvent.action == "seal"))
    assert seals == 1
    assert sign_events(live, cert_id) == 1


def test_several_worker_processes_share_the_queue_and_each_certificate_is_signed_once(
        live_rq: Live) -> None:
    ids = []
    for n in range(12):
        request = sample("birth-1")
        request["registration_number"] = f"B-2026-PMC-{200000 + n}"
        created = live_rq.post_json("/api/v1/certificates", request)
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst",
                             "--processes", "2"],
                            env=worker_env(live_rq.runtime.settings), cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(state_of(live_rq, cert_id).state == "issued" for cert_id in ids)
    assert all(sign_events(live_rq, cert_id) == 1 for cert_id in ids)
    # Two processes of their own (each loads its keys after it starts), not this one.
    with live_rq.runtime.sessions() as session:
        actors = set(session.scalars(select(AuditEvent.actor).where(
            AuditEvent.action == "sign")))
    pids = {actor.rsplit(":", 1)[1] for actor in actors}
    assert str(os.getpid()) not in pids
    assert result.stderr.count(": done, quitting") == 2, result.stderr[-2000:]  # two workers
    assert 1 <= len(pids) <= 2


def test_the_number_of_worker_processes_is_checked() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--processes", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "--processes must be 1 to 64" in result.stderr
