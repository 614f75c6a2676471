"""An RQ worker that waits out a Redis outage instead of quitting in the middle of its work.

RQ 3.0's own worker retries only its wait for the next job: a lost connection anywhere else (while
it marks a job started or records its result, between jobs, at its heartbeat) ends the work loop,
and the process with it. A job that had finished its work then stays `started` in Redis until its
heartbeat expires, minutes later, and a Redis restart takes every worker down at once for its
supervisor to start again. PatientWorker does each of those Redis steps again, with backoff,
until Redis answers: the job in hand is recorded finished when Redis is back and the worker goes
on to the next one. A stop asked for during the wait (SIGTERM) ends it: what the job did is in
the database already, and the sweeper hands on whatever is left (issuer/sweep.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus

from issuer.log_format import certificate_of, job_context

log = logging.getLogger(__name__)
REDIS_GONE = (RedisConnectionError, RedisTimeoutError)
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 5.0  # between tries, on top of redis-py's own retries of each command

T = TypeVar("T")
ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


class PatientWorker(SimpleWorker):
    """RQ's SimpleWorker whose every Redis step outside the wait for a job is tried again,
    with backoff, while Redis is unreachable (see the module)."""

    def stop_asked(self) -> bool:
        """Whether this worker was asked to stop (then it waits for Redis no longer)."""
        return bool(self._stop_requested)

    def patiently(self, what: str, step: Callable[[], T]) -> T:
        """`step()`, tried again while Redis is unreachable, until it answers or a stop is
        asked for (then the connection error is raised). One warning when the wait starts,
        one line when it ends."""
        waiting_since: float | None = None
        pause = FIRST_WAIT_SECONDS
        while True:
            try:
                result = step()
            except REDIS_GONE as exc:
                if self.stop_asked():
                    raise
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    log.warning("Redis is unreachable while %s (%s); waiting for it", what, exc)
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_WAIT_SECONDS)
                continue
            if waiting_since is not None:
                log.info("Redis answers again after %.1f s; %s done", time.monotonic() -
                         waiting_since, what)
            return result

    # SimpleWorker.execute_job, its two Redis steps patient.
    # Every line logged meanwhile (RQ's own too) carries the job id (issuer/log_format.py).
    def execute_job(self, job: Job, queue: Queue) -> None:
        with job_context(job.id, certificate_of(job)):
            execution = self.patiently(f"starting job {job.id}",
                                       lambda: self.prepare_execution(job))
            self.perform_job(job, queue, execution)
        self.patiently("marking the worker idle", lambda: self.set_state(WorkerStatus.IDLE))

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False
                              ) -> None:
        start = super().prepare_job_execution
        self.patiently(f"marking job {job.id} started",
                       lambda: start(job, remove_from_intermediate_queue))

    def _finalize_success(self, job: Job, queue: Queue, execution: Execution,
                          return_value: Any) -> None:
        record = super()._finalize_success
        self.patiently(f"recording that job {job.id} finished",
                       lambda: record(job, queue, execution, return_value))

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution,
                          exc_info: ExcInfo) -> None:
        record = super()._finalize_failure
        self.patiently(f"recording that job {job.id} failed",
                       lambda: record(job, queue, execution, exc_info))

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, patient; and a worker that Redis forgot (restarted without its
        data) registers again, or `rq info` would not count it."""
        beat = super().heartbeat
        if pipeline is not None:  # only queued on the pipeline: nothing sent yet
            beat(timeout, pipeline)
            return

        def beat_registered() -> None:
            beat(timeout)
            if not self.connection.sismember(self.redis_workers_keys, self.key):
                log.warning("Redis has no record of worker %s (restarted without its data); "
                            "registering it again", self.name)
                self.connection.delete(self.key)  # the heartbeat's, without a birth
                self.register_birth()  # type: ignore[no-untyped-call]

        self.patiently("sending the worker's heartbeat", beat_registered)

    def check_for_suspension(self, burst: bool) -> None:
        check = super().check_for_suspension
        self.patiently("asking whether workers are suspended", lambda: check(burst))

    def run_maintenance_tasks(self) -> None:
        clean = super().run_maintenance_tasks
        self.patiently("cleaning RQ's registries", clean)

    def teardown(self) -> None:
        """RQ's (the worker's record marked dead), unless Redis is unreachable as the worker
        stops: the record then expires by itself within its TTL."""
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        except REDIS_GONE as exc:
            log.warning("Redis is unreachable as the worker stops (%s); its record in Redis "
                        "expires by itself", exc)
