"""Jobs: RQ on real Redis with a real worker process; a job run twice signs once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from issuer.issue import issue_certificate
from issuer.models import AuditEvent, Certificate
from issuer.settings import Settings
from tests.conftest import ROOT, Live, make_settings, sample, serve
from worker import worker_shape


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


def run_worker_burst(settings: Settings, *flags: str,
                     env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`worker.py --burst FLAGS` until the queues are empty; it must exit 0."""
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst", *flags],
                            env=env or worker_env(settings), cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def post_births(live: Live, count: int, first: int) -> list[str]:
    """`count` birth requests, registration numbers from `first` on; their ids."""
    ids = []
    for n in range(count):
        request = sample("birth-1")
        request["registration_number"] = f"B-2026-PMC-{first + n}"
        created = live.post_json("/api/v1/certificates", request)
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    return ids


def signing_pids(live: Live) -> set[str]:
    """The process ids in the actors of the `sign` events."""
    with live.runtime.sessions() as session:
        actors = set(session.scalars(select(AuditEvent.actor).where(
            AuditEvent.action == "sign")))
    return {actor.rsplit(":", 1)[1] for actor in actors}


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
    ids = post_births(live_rq, 12, 200000)
    result = run_worker_burst(live_rq.runtime.settings, "--processes", "2")
    assert all(state_of(live_rq, cert_id).state == "issued" for cert_id in ids)
    assert all(sign_events(live_rq, cert_id) == 1 for cert_id in ids)
    # Two processes of their own (each loads its keys after it starts), not this one.
    pids = signing_pids(live_rq)
    assert str(os.getpid()) not in pids
    assert result.stderr.count(": done, quitting") == 2, result.stderr[-2000:]  # two workers
    assert 1 <= len(pids) <= 2


def test_the_number_of_worker_processes_is_checked() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--processes", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "--processes (or $PRAMAAN_WORKER_PROCESSES) must be 1 to 64, not 0" in result.stderr


@pytest.mark.parametrize(("given", "env", "expected"), [
    ((None, None), {}, (1, 1)),
    ((None, None), {"PRAMAAN_WORKER_PROCESSES": "3", "PRAMAAN_WORKER_THREADS": "8"}, (3, 8)),
    ((2, 4), {"PRAMAAN_WORKER_PROCESSES": "3", "PRAMAAN_WORKER_THREADS": "8"}, (2, 4)),
    ((64, 64), {}, (64, 64)),
])
def test_the_worker_shape_comes_from_the_flags_else_the_environment(
        given: tuple[int | None, int | None], env: dict[str, str],
        expected: tuple[int, int]) -> None:
    assert worker_shape(*given, env=env) == expected


@pytest.mark.parametrize(("given", "env", "message"), [
    ((None, 0), {}, "--threads (or $PRAMAAN_WORKER_THREADS) must be 1 to 64, not 0"),
    ((None, 65), {}, "--threads (or $PRAMAAN_WORKER_THREADS) must be 1 to 64, not 65"),
    ((65, None), {}, "--processes (or $PRAMAAN_WORKER_PROCESSES) must be 1 to 64, not 65"),
    ((None, None), {"PRAMAAN_WORKER_THREADS": "0"},
     "--threads (or $PRAMAAN_WORKER_THREADS) must be 1 to 64, not 0"),
    ((None, None), {"PRAMAAN_WORKER_THREADS": "four"},
     "$PRAMAAN_WORKER_THREADS must be a whole number, not 'four'"),
    ((None, None), {"PRAMAAN_WORKER_PROCESSES": "2.5"},
     "$PRAMAAN_WORKER_PROCESSES must be a whole number, not '2.5'"),
])
def test_a_worker_shape_out_of_range_is_refused_with_its_name(
        given: tuple[int | None, int | None], env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        worker_shape(*given, env=env)
    assert str(refused.value) == message


def test_pramaan_worker_refuses_a_bad_thread_count_cleanly() -> None:
    env = {**os.environ, "PRAMAAN_WORKER_THREADS": "lots"}
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "worker"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == "$PRAMAAN_WORKER_THREADS must be a whole number, not 'lots'"


def test_worker_threads_share_the_queue_and_each_certificate_is_signed_once(
        live_rq: Live) -> None:
    ids = post_births(live_rq, 12, 300000)
    result = run_worker_burst(live_rq.runtime.settings, "--threads", "4")
    assert all(state_of(live_rq, cert_id).state == "issued" for cert_id in ids)
    assert all(sign_events(live_rq, cert_id) == 1 for cert_id in ids)
    assert result.stderr.count(": done, quitting") == 4, result.stderr[-2000:]  # four workers
    assert len(signing_pids(live_rq)) == 1  # threads of one process


def slow_tsa_env(settings: Settings, delay_ms: int) -> dict[str, str]:
    """The worker signs at B-T with the development TSA answering after `delay_ms`."""
    return {**worker_env(settings), "PRAMAAN_TSA_URL": "dev", "PRAMAAN_SIGNATURE_LEVEL": "B-T",
            "PRAMAAN_SIGNATURE_LEVELS": "", "PRAMAAN_DEV_TSA_DELAY_MS": str(delay_ms)}


def audit_times(live: Live, action: str, ids: list[str]) -> list[object]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(AuditEvent.at).where(
            AuditEvent.action == action, AuditEvent.certificate_id.in_(ids))))


def test_worker_threads_keep_several_documents_in_flight_while_the_tsa_answers(
        live_rq: Live) -> None:
    # Each document waits 3 s for its timestamp. One at a time, each would be sealed (claimed)
    # only after the one before was signed; with three threads all three are claimed before
    # the first is signed.
    ids = post_births(live_rq, 3, 310000)
    run_worker_burst(live_rq.runtime.settings, "--threads", "3",
                     env=slow_tsa_env(live_rq.runtime.settings, 3000))
    assert all(state_of(live_rq, cert_id).state == "issued" for cert_id in ids)
    sealed, signed = audit_times(live_rq, "seal", ids), audit_times(live_rq, "sign", ids)
    assert len(sealed) == len(signed) == 3
    assert max(sealed) < min(signed), (sealed, signed)  # type: ignore[type-var]


def stop_threaded_worker_mid_job(live: Live, first: int, *,
                                 signals: int) -> tuple[int, str, str]:
    """Start `worker.py --threads 3` (TSA 4 s away), post one birth, and once its job waits for
    the TSA send SIGTERM `signals` times; the worker's exit status, stderr and the record's id."""
    from redis import Redis
    from rq import Worker

    settings = live.runtime.settings
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--threads", "3",
                               "--rts-every", "0"],
                              env=slow_tsa_env(settings, 4000), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while Worker.count(connection=redis) < 3:
            assert worker.poll() is None and time.monotonic() < deadline, "workers not up"
            time.sleep(0.1)
        [cert_id] = post_births(live, 1, first)
        while not audit_times(live, "seal", [cert_id]):  # claimed: waiting for the TSA
            assert time.monotonic() < deadline, "the job was not taken"
            time.sleep(0.05)
        for _ in range(signals):
            worker.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        _, stderr = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()  # reaped, its pipe closed
        redis.close()
    return worker.returncode, stderr, cert_id


def test_a_threaded_worker_stopped_mid_job_finishes_it_and_leaves_redis_clean(
        live_rq: Live) -> None:
    from redis import Redis
    from rq import Worker

    status, stderr, cert_id = stop_threaded_worker_mid_job(live_rq, 320000, signals=1)
    assert status == 0, stderr[-3000:]
    assert "SIGTERM: each worker thread stops after its current job" in stderr
    assert state_of(live_rq, cert_id).state == "issued"  # the job in flight was finished
    assert sign_events(live_rq, cert_id) == 1
    assert live_rq.runtime.settings.redis_url
    with Redis.from_url(live_rq.runtime.settings.redis_url) as redis:
        assert Worker.count(connection=redis) == 0  # every thread's worker said goodbye


def test_a_second_sigterm_stops_a_threaded_worker_at_once(live_rq: Live) -> None:
    status, stderr, cert_id = stop_threaded_worker_mid_job(live_rq, 330000, signals=2)
    assert status == 1, stderr[-3000:]
    assert "second SIGTERM: stopping now, jobs in flight are left to the sweep" in stderr
    record = state_of(live_rq, cert_id)
    assert record.state == "signing"  # not finished: the sweep resumes it
    assert sign_events(live_rq, cert_id) == 0


def test_a_worker_thread_that_fails_stops_the_others_and_fails_the_process(
        redis_url: str) -> None:
    from issuer.job_threads import thread_workers, work_in_threads

    workers = thread_workers(redis_url, ["pramaan-test-idle"], 3)
    # The first cannot register: a live worker of its name is there already (RQ refuses).
    workers[0].connection.hset(workers[0].key, "birth", "2026-12-02T00:00:00Z")
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    # Should the others not stop, a SIGTERM in 60 s would (and the test then fails).
    guard = threading.Timer(60, os.kill, (os.getpid(), signal.SIGTERM))
    guard.start()
    try:
        with pytest.raises(ValueError, match="There exists an active worker named"):
            work_in_threads(workers, burst=False)
        assert guard.is_alive()  # stopped by the failure, not by the guard's signal
    finally:
        guard.cancel()
        workers[0].connection.delete(workers[0].key)
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert all(w.connection.hexists(w.key, "death") for w in workers[1:])  # each said goodbye
    for w in workers:
        w.connection.close()


@pytest.mark.parametrize("threads", [0, 65])
def test_thread_workers_refuse_a_count_out_of_range(threads: int) -> None:
    from issuer.job_threads import thread_workers

    with pytest.raises(ValueError, match=f"threads must be 1 to 64, not {threads}"):
        thread_workers("redis://127.0.0.1:1/0", ["sign"], threads)


COUNTING_WORKER = """
import atexit, sys
from cryptography.hazmat.primitives import serialization
loads = []
real = serialization.load_pem_private_key
def counted(*args, **kwargs):
    loads.append(1)
    return real(*args, **kwargs)
serialization.load_pem_private_key = counted
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(str(len(loads))))
sys.argv = ["worker.py", "--burst", "--rts-every", "0"]
import worker
worker.main(sys.argv[1:])
"""


def test_a_worker_opens_its_keys_once_not_once_per_job(live_rq: Live, tmp_path: Path) -> None:
    """A real worker process counts the private keys it reads: the same for one job as for
    five (keys are loaded once per process, at its start, and reused by every job)."""
    loads = []
    for batch, first in ((1, 9100), (5, 9200)):
        ids = post_births(live_rq, batch, first)
        count_file = tmp_path / f"loads-{batch}"
        done = subprocess.run([sys.executable, "-c", COUNTING_WORKER, str(count_file)],
                              env=worker_env(live_rq.runtime.settings), cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert [state_of(live_rq, i).state for i in ids] == ["issued"] * batch, done.stderr
        loads.append(int(count_file.read_text()))
    assert loads[0] == loads[1] and loads[0] >= 2, loads  # the signer's and the seal's keys
