"""Pushes on the `deliver` RQ queue with a real worker process and real Redis: issuing enqueues the
push after its commit, the worker sends it; a push that failed is enqueued again by the workers'
periodic sweep once due, and a repeat of the same job id is one job."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from digilocker.emulator import EmulatorConfig, create_emulator
from issuer.db import utcnow
from issuer.jobs import DELIVERY_SWEEP_KEY, periodic_delivery_sweep
from issuer.models import Delivery
from tests.conftest import ROOT, make_settings, sample, serve
from tests.digilocker_emulator import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    RunningEmulator,
    test_partner,
)
from tests.test_digilocker_e2e import World, free_port
from tests.test_jobs import worker_env


@pytest.fixture
def rq_world(tmp_path: Path, database_url: str, keys_dir: Path,
             redis_url: str) -> Iterator[World]:
    port = free_port()
    settings = make_settings(
        tmp_path, database_url, keys_dir, redis_url=redis_url,
        digilocker_base_url=f"http://127.0.0.1:{port}/public", digilocker_client_id=CLIENT_ID,
        digilocker_client_secret=CLIENT_SECRET, digilocker_redirect_uri=REDIRECT_URI,
        digilocker_api_key=API_KEY)
    for live in serve(settings):
        partner = test_partner(pull_uri_url=f"{live.base}/digilocker/pulluri",
                               pull_doc_url=f"{live.base}/digilocker/pulldoc")
        dl = RunningEmulator(create_emulator(EmulatorConfig(partners=(partner,))), port=port)
        dl.start()
        try:
            yield World(live, dl)
        finally:
            dl.stop()
            dl.http.close()


def burst(world: World) -> None:
    settings = world.live.runtime.settings
    env = worker_env(settings)
    env.update({"DIGILOCKER_BASE_URL": settings.digilocker_base_url or "",
                "DIGILOCKER_CLIENT_ID": CLIENT_ID, "DIGILOCKER_CLIENT_SECRET": CLIENT_SECRET,
                "DIGILOCKER_REDIRECT_URI": REDIRECT_URI, "DIGILOCKER_API_KEY": API_KEY})
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst",
                             "--rts-every", "0"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def only_row(world: World) -> Delivery:
    with world.live.runtime.sessions() as session:
        (row,) = session.scalars(select(Delivery))
        return row


def test_the_worker_pushes_after_issuing_and_the_sweep_retries(rq_world: World) -> None:
    world, runtime = rq_world, rq_world.live.runtime
    assert runtime.settings.redis_url
    redis = Redis.from_url(runtime.settings.redis_url)
    request = world.desk.submit(sample("birth-1"))
    world.link(request["id"])
    world.dl.faults(fail_next=1)  # the first push is answered 500
    world.desk.approve(request["id"]).raise_for_status()
    with runtime.sessions() as session:  # queued for signing: no push planned yet
        assert session.scalars(select(Delivery)).first() is None
    redis.delete(DELIVERY_SWEEP_KEY)
    burst(world)  # signs, then pushes from the deliver queue: refused once
    row = only_row(world)
    assert (row.state, row.attempts) == ("pending", 1) and "HTTP 500" in (row.last_error or "")
    # Not due yet: the sweep (this worker's turn) enqueues nothing.
    redis.delete(DELIVERY_SWEEP_KEY)
    assert periodic_delivery_sweep(runtime, redis, 60) == 0
    assert periodic_delivery_sweep(runtime, redis, 60) is None  # another worker's turn
    redis.delete(DELIVERY_SWEEP_KEY)
    assert periodic_delivery_sweep(runtime, redis, 60, now=utcnow() + timedelta(minutes=2)) == 1
    runtime.dispatcher.enqueue_delivery(row.id)  # the same job id again: still one job
    assert redis.llen("rq:queue:deliver") == 1
    with runtime.sessions() as session, session.begin():  # let the backoff pass
        stored = session.get(Delivery, row.id)
        assert stored is not None
        stored.next_try_at = utcnow() - timedelta(seconds=1)
    burst(world)
    row = only_row(world)
    assert (row.state, row.attempts) == ("delivered", 2)
    assert world.dl.state()["pushes"] == {world.uri(request["id"]): {"A": 1, "U": 0, "D": 0}}
