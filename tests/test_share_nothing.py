"""Every process shares nothing but the services (issue 11): two API servers and two workers,
each a process of its own with its own PRAMAAN_HOME (no shared directory), against one
PostgreSQL, one Redis and one S3 store (SeaweedFS on 127.0.0.1), and the key files (key
material, as an HSM would be). A certificate submitted through API A is signed by whichever
worker takes it and downloaded and verified through API B, byte for byte the same; a batch
spreads over both workers; killing API A and one worker (the whole process group, SIGKILL, as a
machine dies) in the middle of the batch loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from issuer.bootstrap import initialise
from issuer.models import AuditEvent, BatchRow, Certificate
from issuer.runtime import Runtime
from issuer.settings import Settings
from tests.conftest import ROOT, Live, _another_token, make_settings, sample
from tests.s3_server import S3Server
from tests.test_batch_outages import SLOW_TSA, issued, start_batch
from tests.test_batches import OFFICE, wait_until
from tests.test_digilocker_e2e import free_port

ROWS = 100  # four groups of 25: two in hand, two waiting when both workers have signed


def process_env(settings: Settings, s3: S3Server, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRAMAAN_", "AWS_"))}
    env.update(s3.environment())
    env.update({
        "PRAMAAN_HOME": str(home), "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "", "PRAMAAN_KEYS_DIR": str(settings.keys_dir),
        "PRAMAAN_STORE_URL": settings.store_url or "", "PRAMAAN_VERIFY_BASE_URL":
        settings.verify_base_url, **extra})
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the whole process group: a machine that dies takes its children along."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill(process)


def api(settings: Settings, s3: S3Server, home: Path, log: Path) -> tuple[
        subprocess.Popen[bytes], str]:
    port = free_port()
    process = spawn(["-m", "cli", "serve"], process_env(
        settings, s3, home, PORT=str(port), PRAMAAN_WEB_WORKERS="1", PRAMAAN_WEB_THREADS="4"),
        log)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(base + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return process.poll() is not None  # dead: stop waiting, the assert says why

    wait_until(answers, 60, f"the API did not start: {log.read_text(errors='replace')[-2000:]}")
    assert process.poll() is None, log.read_text(errors="replace")[-2000:]
    return process, base


@pytest.fixture
def shared(tmp_path: Path, keys_dir: Path, redis_url: str, s3_url: str) -> Iterator[Settings]:
    """The services, and the database made ready once (the schema, the dev department)."""
    from tests.conftest import _postgres_schema

    for database_url in _postgres_schema():
        settings = make_settings(tmp_path / "setup", database_url, keys_dir,
                                 redis_url=redis_url, store_url=s3_url)
        runtime = Runtime(settings)
        try:
            initialise(runtime)
        finally:
            runtime.close()
        yield settings


def test_two_apis_and_two_workers_share_only_the_services(
        shared: Settings, s3_server: S3Server, tmp_path: Path) -> None:
    homes = {name: tmp_path / name for name in ("api-a", "api-b", "worker-1", "worker-2")}
    for home in homes.values():
        home.mkdir()
    worker_extra = {"PRAMAAN_SWEEP_SECONDS": "1", "PRAMAAN_SWEEP_AFTER_SECONDS": "0",
                    "PRAMAAN_WORKER_PROCESSES": "1", "PRAMAAN_WORKER_THREADS": "1", **SLOW_TSA}
    workers = {name: spawn([str(ROOT / "worker.py"), "--rts-every", "0"],
                           process_env(shared, s3_server, homes[name], **worker_extra),
                           tmp_path / f"{name}.log") for name in ("worker-1", "worker-2")}
    api_a, base_a = api(shared, s3_server, homes["api-a"], tmp_path / "api-a.log")
    api_b, base_b = api(shared, s3_server, homes["api-b"], tmp_path / "api-b.log")
    runtime = Runtime(shared)  # this test's own view of the database
    try:
        token = _another_token(runtime)
        via_a, via_b = Live(base_a, token, runtime), Live(base_b, token, runtime)

        # One certificate: in through A, out through B.
        made = via_a.post_json("/api/v1/certificates", sample("birth-1"))
        assert made.status_code == 202, made.text
        cert_id = made.json()["id"]
        wait_until(lambda: via_b.get(f"/api/v1/certificates/{cert_id}").json()["state"]
                   == "issued", 120, "the certificate was not issued")
        from_b = via_b.get(f"/api/v1/certificates/{cert_id}/pdf").content
        from_a = via_a.get(f"/api/v1/certificates/{cert_id}/pdf").content
        assert from_a == from_b and from_b.startswith(b"%PDF-")
        checked = requests.post(base_b + "/api/v1/verify/pdf", data=from_b, timeout=120,
                                headers={"Content-Type": "application/pdf"}).json()
        assert checked["genuine"] and checked["status"] == "current", checked
        for home in homes.values():  # nothing written to any process's own directory
            assert not (home / "var" / "store").exists()

        # A batch through A; A and worker 1 die in the middle of it.
        batch_id = start_batch(via_a, ROWS)
        wait_until(lambda: len(signers_of(runtime, batch_id)) >= 2, 180,
                   "the batch did not spread over both workers")
        dying = held_jobs(shared, workers["worker-1"])  # (none if it was between jobs)
        kill(api_a)
        kill(workers["worker-1"])
        assert issued(via_b, batch_id) < ROWS, "killed too late to prove anything"
        time_passes(shared, runtime, dying)
        wait_until(lambda: issued(via_b, batch_id) == ROWS, 300,
                   f"the batch did not finish: {issued(via_b, batch_id)} of {ROWS}")
        with runtime.sessions() as session:
            made = session.scalars(select(Certificate).join(
                BatchRow, BatchRow.certificate_id == Certificate.id).where(
                BatchRow.batch_id == batch_id)).all()
            serials = sorted(int((c.number or "").rsplit("/", 1)[1]) for c in made)
            assert serials == list(range(serials[0], serials[0] + ROWS))  # no gap, no repeat
            ids = [c.id for c in made]
            signs = session.execute(select(AuditEvent.certificate_id, AuditEvent.actor).where(
                AuditEvent.action == "sign", AuditEvent.certificate_id.in_(ids))).all()
        assert sorted(c for c, _ in signs) == sorted(ids)  # each signed once
        signers = {actor for _, actor in signs}
        assert len(signers) >= 2, signers  # both workers signed part of it
        office = Live(base_b, _token(runtime, OFFICE), runtime)
        for one in ids[:5] + ids[-5:]:
            answer = office.get(f"/api/v1/certificates/{one}/pdf")
            assert answer.status_code == 200 and answer.content.startswith(b"%PDF-")
    finally:
        for process in (api_a, api_b, *workers.values()):
            stop(process)
        runtime.close()


def signers_of(runtime: Runtime, batch_id: str) -> set[str]:
    """Who signed the batch's certificates so far (the signing process, issue.worker_name)."""
    with runtime.sessions() as session:
        return set(session.scalars(select(AuditEvent.actor).join(
            BatchRow, BatchRow.certificate_id == AuditEvent.certificate_id).where(
            BatchRow.batch_id == batch_id, AuditEvent.action == "sign")))


def held_jobs(settings: Settings, worker: subprocess.Popen[bytes]) -> list[str]:
    """The RQ jobs the processes of `worker`'s group are working on now."""
    from redis import Redis
    from rq import Queue, Worker
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    group = {int(p) for p in os.listdir("/proc") if p.isdigit() and _group_of(int(p))
             == worker.pid}
    with Redis.from_url(settings.redis_url or "") as redis:
        names = {w.name for w in Worker.all(connection=redis) if w.pid in group}
        started = StartedJobRegistry(queue=Queue("sign", connection=redis)).get_job_ids()
        jobs = [job for job in Job.fetch_many(started, connection=redis) if job is not None]
        return [job.id for job in jobs if job.worker_name in names]


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def time_passes(settings: Settings, runtime: Runtime, jobs: list[str]) -> None:
    """As if five minutes passed since the worker died (issue.RESUME_AFTER, RQ's heartbeat
    TTL): what it held is `signing` and untouched, its jobs' heartbeats expired. (As in
    tests/test_batches.py's SIGKILL test.)"""
    from datetime import timedelta

    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry
    from sqlalchemy import update

    from issuer.db import utcnow
    from issuer.models import State

    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.state == State.SIGNING.value)
                        .values(updated_at=utcnow() - timedelta(minutes=5)))
    with Redis.from_url(settings.redis_url or "") as redis:
        registry = StartedJobRegistry(queue=Queue("sign", connection=redis))
        for job in jobs:
            redis.zadd(registry.key, {job: time.time() - 1})


def _token(runtime: Runtime, code: str) -> str:
    from issuer.models import Department
    from issuer.tokens import create_token

    with runtime.sessions() as session, session.begin():
        department = session.get(Department, code)
        assert department is not None
        return create_token(session, department, "share-nothing", "clerk")


def test_the_worker_signature_names_its_process() -> None:
    """What the spread check above relies on: the sign event names host and process."""
    from issuer.issue import worker_name

    assert worker_name().endswith(f":{os.getpid()}")
