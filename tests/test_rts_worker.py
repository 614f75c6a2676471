"""The RTS escalation as a periodic job of the RQ workers, on real Redis: one worker at a time,
at most once per interval; a burst worker takes its turn once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from issuer.bootstrap import initialise
from issuer.db import utcnow
from issuer.jobs import RTS_ESCALATION_KEY, periodic_rts_escalation
from issuer.models import RtsEscalation
from issuer.runtime import Runtime
from tests.conftest import ROOT, make_settings
from tests.rts_records import request
from tests.test_jobs import worker_env


@pytest.fixture
def rt(tmp_path: Path, database_url: str, keys_dir: Path, redis_url: str) -> Iterator[Runtime]:
    runtime = Runtime(make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url))
    initialise(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def escalated(rt: Runtime) -> list[tuple[str, int]]:
    with rt.sessions() as session:
        return [(e.certificate_id, e.level) for e in session.scalars(select(RtsEscalation))]


def test_one_turn_per_interval_across_workers(rt: Runtime, redis: Redis) -> None:
    late = request(rt, utcnow() - timedelta(days=2))
    assert periodic_rts_escalation(rt, redis, 15) == 1
    ttl = redis.ttl(RTS_ESCALATION_KEY)
    assert isinstance(ttl, int) and 14 * 60 < ttl <= 15 * 60
    # Another worker (or this one) asking within the interval: not its turn.
    request(rt, utcnow() - timedelta(days=1))
    assert periodic_rts_escalation(rt, redis, 15) is None
    assert escalated(rt) == [(late, 1)]
    # The interval over (the key expired): the next turn escalates what became due.
    redis.delete(RTS_ESCALATION_KEY)
    assert periodic_rts_escalation(rt, redis, 15) == 1
    assert periodic_rts_escalation(rt, redis, 15) is None


def run_burst(rt: Runtime, *extra: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst", *extra],
                            env=worker_env(rt.settings), cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_burst_worker_takes_its_turn(rt: Runtime, redis: Redis) -> None:
    late = request(rt, utcnow() - timedelta(days=2))
    run_burst(rt, "--rts-every", "0")  # off
    assert escalated(rt) == []
    assert redis.exists(RTS_ESCALATION_KEY) == 0
    run_burst(rt)
    assert escalated(rt) == [(late, 1)]
    assert redis.exists(RTS_ESCALATION_KEY) == 1
