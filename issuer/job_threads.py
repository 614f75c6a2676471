"""Several RQ workers in threads of one process (`pramaan worker --threads N`).

A document waits on the network for most of its signing at B-T and above: a round trip to the
TSA for the signature's timestamp, another for the document timestamp at B-LTA, and whatever
OCSP responder it asks. Threads keep several documents in flight in one process: while one
waits, another renders and signs (typst, the hashes and the RSA signature leave the interpreter
lock to the others while they wait too). Processes (`--processes`) do the same at the cost of
a copy of the keys, fonts and compiler each; on a machine with few cores, many processes end up
slower than a few processes of several threads (`make bench-overlap`).

Each thread is an RQ worker of its own (registered, visible in `rq info`, with its own Redis
connection), sharing the process's runtime: its keys (a PKCS#11 session serialises its own
operations), its renderer (one compile at a time per compiler) and its database pool.

Signals reach the main thread only, so the workers install none: SIGTERM or SIGINT asks each
to stop after its current job (an idle one looks every STOP_POLL_SECONDS), a second one stops
the process at once, as RQ's cold shutdown does (a record left `signing` is picked up by the
sweep).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty

from issuer.patient_worker import PatientWorker

log = logging.getLogger(__name__)
STOP_POLL_SECONDS = 1  # how often an idle worker thread looks whether it is asked to stop
MAX_THREADS = 64


class InThreadWorker(PatientWorker):
    """RQ's SimpleWorker (the job runs in the worker's own thread; waiting out a Redis outage:
    issuer/patient_worker), fit to run beside others in threads: job timeouts by a timer, not
    SIGALRM (which only the main thread may take); no signal handlers; and a stop asked from
    another thread (`stopping`) is seen between jobs and, when idle, within
    STOP_POLL_SECONDS."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, stopping: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping

    def _install_signal_handlers(self) -> None:
        """None: the process's main thread takes the signals (work_in_threads)."""

    def stop_asked(self) -> bool:
        return self.stopping.is_set() or super().stop_asked()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> Any:
        """RQ's dequeue (a heartbeat, then a blocking pop), in waits of STOP_POLL_SECONDS so
        that a stop is seen; raises StopRequested (RQ's own way out of its loop) when asked.
        A burst worker's single look at the queues is RQ's unchanged."""
        if timeout is None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not self.stopping.is_set():
            found = super().dequeue_job_and_maintain_ttl(STOP_POLL_SECONDS, STOP_POLL_SECONDS)
            if found is not None:
                return found
        raise StopRequested


def thread_workers(redis_url: str, queues: Sequence[str], threads: int) -> list[InThreadWorker]:
    """`threads` InThreadWorkers on `queues`, each with its own Redis connection, sharing one
    stop event (work_in_threads sets it)."""
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be 1 to {MAX_THREADS}, not {threads}")
    stopping = threading.Event()
    workers = []
    for _ in range(threads):
        connection = Redis.from_url(redis_url)
        workers.append(InThreadWorker([Queue(q, connection=connection) for q in queues],
                                      connection=connection, stopping=stopping))
    return workers


def work_in_threads(workers: Sequence[InThreadWorker], *, burst: bool) -> bool:
    """Run each of `workers` (thread_workers) in a thread of its own until stopped (burst:
    until the queues are empty) and return whether any of them worked a job. A worker that
    fails (Redis gone, say) stops the others after their jobs, and its exception is raised
    here. Must be called in the main thread: it takes SIGTERM and SIGINT while it runs (see
    the module)."""
    stopping = workers[0].stopping
    threads = len(workers)
    worked = [False] * threads
    failures: list[Exception] = []

    def work(n: int) -> None:
        try:
            worked[n] = bool(workers[n].work(burst=burst, logging_level="INFO"))
        except Exception as exc:  # e.g. Redis unreachable: the others stop too
            log.exception("worker thread %d failed; the others stop after their jobs", n)
            failures.append(exc)
            stopping.set()
        finally:
            workers[n].connection.close()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            log.warning("second %s: stopping now, jobs in flight are left to the sweep",
                        signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("%s: each worker thread stops after its current job",
                 signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        pool = [threading.Thread(target=work, args=(n,), name=f"rq-worker-{n}", daemon=True)
                for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            while thread.is_alive():
                thread.join(0.5)  # wakes to let a signal's handler run
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]  # as a worker alone would: the process fails, its supervisor sees
    return any(worked)
