"""Thin RQ worker entry: `pramaan worker` / `python worker.py`.

Uses RQ's SimpleWorker (no fork per job) so the document-signer key, seal key and typst compiler
are loaded once per worker process, after any fork, and reused for every job; as PatientWorker
(issuer/patient_worker.py), which waits out a Redis restart instead of quitting.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from digilocker.token_vault import check_at_startup as check_token_key
from issuer.aadhaar import check_at_startup as check_aadhaar_key
from issuer.jobs import (
    DEFAULT_DELIVERY_SWEEP_SECONDS,
    DEFAULT_RTS_EVERY_MINUTES,
    DELIVER_QUEUE,
    SIGN_QUEUE,
    periodic_delivery_sweep,
    periodic_rts_escalation,
)
from issuer.log_format import configure as configure_logs
from issuer.log_format import job_context
from issuer.log_redaction import install as redact_logs
from issuer.runtime import Runtime
from issuer.settings import Settings

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)
RTS_POLL_SECONDS = 60  # how often a worker asks whether it is its turn to escalate
PUBLISH_POLL_SECONDS = 30  # how often a worker asks whether the published lists are due
LTV_POLL_SECONDS = 3600  # how often a worker asks whether today's archival round is its turn


@functools.cache
def current_runtime() -> Runtime:
    """The worker process's runtime, built on first use (never at import)."""
    return Runtime(Settings.from_env())


def issue_job(certificate_id: str) -> bool:
    """RQ entry for issuing: the id only; the job re-reads the record."""
    from issuer.db import OUTAGE_PATIENCE_SECONDS
    from issuer.issue import issue_certificate

    with _job(certificate_id):
        # A database restarted under the job costs it a wait, not a failure (and, from
        # `signing`, the two minutes before the sweeper may resume it: issue.RESUME_AFTER).
        return issue_certificate(current_runtime(), certificate_id,
                                 db_patience=OUTAGE_PATIENCE_SECONDS)


def _job(certificate_id: str | None = None) -> contextlib.AbstractContextManager[None]:
    """Every line the job logs carries its RQ job id (and its certificate's id, if one)."""
    from rq import get_current_job

    job = get_current_job()
    return job_context(job.id if job is not None else None, certificate_id)


def issue_group_job(certificate_ids: list[str]) -> int:
    """RQ entry for a group of a batch's certificates (issuer/issue_group.py): how many issued."""
    from issuer.db import OUTAGE_PATIENCE_SECONDS
    from issuer.issue_group import issue_certificates

    with _job():
        return issue_certificates(current_runtime(), certificate_ids,
                                  db_patience=OUTAGE_PATIENCE_SECONDS)


def batch_job(batch_id: str) -> int:
    """RQ entry for an approved batch: make its certificates a chunk at a time, each chunk's
    issue jobs enqueued in one round trip once it is committed."""
    from issuer.batches import make_certificates

    rt = current_runtime()
    with _job():
        return make_certificates(rt.sessions, batch_id, rt.settings,
                                 rt.dispatcher.enqueue_issues)


def deliver_job(delivery_id: int) -> str | None:
    """RQ entry for one DigiLocker push attempt: the row id only; the job re-reads the row."""
    from digilocker.deliveries import deliver

    with _job():
        return deliver(current_runtime(), delivery_id)


def run_worker(burst: bool = False, queues: tuple[str, ...] = (SIGN_QUEUE, DELIVER_QUEUE),
               rts_every_minutes: int = DEFAULT_RTS_EVERY_MINUTES, threads: int = 1,
               metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> bool:
    """Work the queues until stopped (or, with burst, until they are empty), and take turns
    with the other workers at the RTS escalation (start_rts_ticker). With `threads` > 1, that
    many workers in threads of this process share its keys (issuer/job_threads). With a
    `metrics_port`, this process's render and sign histograms are served there."""
    from redis import Redis
    from rq import Queue

    from issuer.patient_worker import PatientWorker

    rt = current_runtime()
    configure_logs(rt.settings.logs_as_json)  # one JSON object a line in production
    if not rt.settings.redis_url:
        raise SystemExit("REDIS_URL is not set: without Redis, jobs run inside the API process")
    if metrics_port is not None:
        from issuer.metrics import serve_process_metrics

        serve_process_metrics(metrics_host, metrics_port)
    rt.keyring  # noqa: B018 - load and check keys before taking the first job
    rt.renderer  # noqa: B018 - one renderer for every thread
    check_aadhaar_key(rt.settings)  # malformed keys refuse before the first job, as in the API
    check_token_key(rt.settings)
    connection = Redis.from_url(rt.settings.redis_url)
    stop = start_rts_ticker(rt, connection, rts_every_minutes, burst)
    stop_deliveries = start_delivery_ticker(rt, connection, burst)
    stop_publishing = start_publish_ticker(rt, connection, burst)
    stop_ltv = start_ltv_ticker(rt, connection, burst)
    stop_sweeping = start_sweep_ticker(rt, connection, burst)
    try:
        if threads > 1:
            from issuer.job_threads import thread_workers, work_in_threads

            return work_in_threads(thread_workers(rt.settings.redis_url, queues, threads),
                                   burst=burst)
        worker = PatientWorker([Queue(q, connection=connection) for q in queues],
                               connection=connection)
        return bool(worker.work(burst=burst, logging_level="INFO"))
    finally:
        stop.set()
        stop_deliveries.set()
        stop_publishing.set()
        stop_ltv.set()
        stop_sweeping.set()


def _every(name: str, turn: Callable[[], None], seconds: float, *, burst: bool,
           once_in_burst: bool) -> threading.Event:
    """Run `turn` every `seconds` in a daemon thread named `name` until the returned event is
    set; a burst worker runs it once, now, if `once_in_burst`, else not at all. Each turn
    catches and logs its own errors, so the jobs go on."""
    stop = threading.Event()
    if burst:
        if once_in_burst:
            turn()
        return stop

    def loop() -> None:
        while not stop.is_set():
            turn()
            stop.wait(seconds)

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop


def _turn_failed(message: str, exc: Exception) -> None:
    """Log a periodic turn's failure: one line when Redis or the database is out of reach (a
    restart: the next turn will do), the traceback for anything else."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from issuer.db import lost_connection

    if isinstance(exc, RedisConnectionError | RedisTimeoutError) or lost_connection(exc):
        log.warning("%s (%s: %s)", message, type(exc).__name__,
                    str(exc).strip().split("\n", 1)[0])
    else:
        log.error(message, exc_info=exc)


def start_publish_ticker(rt: Runtime, connection: Redis, burst: bool) -> threading.Event:
    """Sign the published trust list and status list when due (issuer/published), one worker
    at a time: a burst worker once, a long-running one every PUBLISH_POLL_SECONDS."""
    return _every("publish", lambda: _publish_turn(rt, connection), PUBLISH_POLL_SECONDS,
                  burst=burst, once_in_burst=True)


def _publish_turn(rt: Runtime, connection: Redis) -> None:
    from issuer.published import publish_if_due

    try:
        if publish_if_due(rt, connection):
            log.info("published the trust list and status list")
    except Exception as exc:  # noqa: BLE001 - logged (_turn_failed); the next turn tries
        _turn_failed("publishing the trust list and status list failed; the next turn tries",
                     exc)


def start_ltv_ticker(rt: Runtime, connection: Redis, burst: bool) -> threading.Event:
    """The archival timestamps (issuer/ltv), once a day across all workers, in a thread of its
    own: a long round never holds up the status list. A burst worker takes no turn."""
    return _every("ltv-refresh", lambda: _ltv_turn(rt, connection), LTV_POLL_SECONDS,
                  burst=burst, once_in_burst=False)


def _ltv_turn(rt: Runtime, connection: Redis) -> None:
    from issuer.ltv import refresh_if_due

    try:
        report = refresh_if_due(rt, connection)
        if report is not None and (report.refreshed or report.failed):
            log.info("archival timestamps: %d added, %d failed", len(report.refreshed),
                     len(report.failed))
    except Exception as exc:  # noqa: BLE001 - logged (_turn_failed); the next turn tries
        _turn_failed("the archival timestamp round failed; tomorrow's turn tries again", exc)


def start_delivery_ticker(rt: Runtime, connection: Redis, burst: bool) -> threading.Event:
    """The DigiLocker delivery sweep beside the jobs (issuer/jobs.periodic_delivery_sweep): a
    burst worker takes its turn once, before working the queues; a long-running one asks every
    DEFAULT_DELIVERY_SWEEP_SECONDS in a daemon thread. Set the event to stop."""
    return _every("delivery-sweep", lambda: _delivery_turn(rt, connection),
                  DEFAULT_DELIVERY_SWEEP_SECONDS, burst=burst, once_in_burst=True)


def _delivery_turn(rt: Runtime, connection: Redis) -> None:
    try:
        count = periodic_delivery_sweep(rt, connection, DEFAULT_DELIVERY_SWEEP_SECONDS)
    except Exception as exc:  # noqa: BLE001 - logged (_turn_failed); the next turn tries
        _turn_failed("the delivery sweep failed; the next turn tries again", exc)
        return
    if count:
        log.info("delivery sweep: %d push(es) due, enqueued", count)


def start_sweep_ticker(rt: Runtime, connection: Redis, burst: bool) -> threading.Event:
    """The sweeper beside the jobs (issuer/jobs.periodic_issue_sweep): stuck certificates and
    half-made batches go back to the queue, one worker a turn every PRAMAAN_SWEEP_SECONDS. A
    burst worker takes no turn (`pramaan sweep` is the command for that)."""
    seconds = rt.settings.sweep_seconds
    if seconds <= 0:
        return threading.Event()
    return _every("issue-sweep", lambda: _sweep_turn(rt, connection), seconds, burst=burst,
                  once_in_burst=False)


def _sweep_turn(rt: Runtime, connection: Redis) -> None:
    from issuer.jobs import periodic_issue_sweep

    try:
        count = periodic_issue_sweep(rt, connection)
    except Exception as exc:  # noqa: BLE001 - logged (_turn_failed); the next turn tries
        _turn_failed("the sweep failed; the next turn tries again", exc)
        return
    if count:
        log.info("sweep: %d stuck certificate(s) or batch(es) handed to the queue", count)


def start_rts_ticker(rt: Runtime, connection: Redis, every_minutes: int,
                     burst: bool) -> threading.Event:
    """The periodic RTS escalation beside the jobs. A burst worker takes its turn once, now; a
    long-running one asks every RTS_POLL_SECONDS in a daemon thread (the Redis key decides whose
    turn it is: issuer/jobs.periodic_rts_escalation). 0 minutes: off. Set the event to stop."""
    if every_minutes <= 0:
        return threading.Event()
    return _every("rts-escalation", lambda: _rts_turn(rt, connection, every_minutes),
                  RTS_POLL_SECONDS, burst=burst, once_in_burst=True)


def _rts_turn(rt: Runtime, connection: Redis, every_minutes: int) -> None:
    try:
        count = periodic_rts_escalation(rt, connection, every_minutes)
    except Exception as exc:  # noqa: BLE001 - logged (_turn_failed); the next turn tries
        _turn_failed("the RTS escalation failed; the next turn tries again", exc)
        return
    if count:
        log.info("RTS escalation: %d request(s) escalated", count)


def run_workers(processes: int, *, burst: bool = False,
                rts_every_minutes: int = DEFAULT_RTS_EVERY_MINUTES, threads: int = 1,
                metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> int:
    """`processes` workers side by side, so several documents are in flight at once: while
    one waits for the TSA (a network round trip, twice at B-LTA) or an OCSP responder, another
    renders and signs. Each is a process of its own, started fresh (spawned: no key, token
    session or connection of this one is shared), that loads its keys itself. SIGTERM or
    SIGINT stops them all (each finishes its job, as RQ does). Each runs `threads` workers in
    threads (issuer/job_threads). The exit status is the worst. With a `metrics_port`, this
    process serves the histograms of them all (prometheus_client's multiprocess mode: each
    child writes to PROMETHEUS_MULTIPROC_DIR, a fresh directory unless one is given)."""
    import multiprocessing
    import signal

    made = None
    if metrics_port is not None:
        from issuer.metrics import MULTIPROC_ENV, serve_process_metrics

        if not os.environ.get(MULTIPROC_ENV):
            import tempfile

            made = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="pramaan-metrics-")
        serve_process_metrics(metrics_host, metrics_port)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_worker_process, args=(burst, rts_every_minutes, threads),
                                name=f"pramaan-worker-{n}") for n in range(processes)]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if made is not None:
            import shutil

            shutil.rmtree(made, ignore_errors=True)
    return max((child.exitcode or 0) for child in children)


def _worker_process(burst: bool, rts_every_minutes: int, threads: int) -> None:
    logging.basicConfig(level=logging.INFO)
    redact_logs()
    run_worker(burst=burst, rts_every_minutes=rts_every_minutes, threads=threads)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pramaan RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--rts-every", type=int, default=DEFAULT_RTS_EVERY_MINUTES,
                        metavar="MINUTES", help="run the RTS escalation at most every MINUTES "
                        f"across all workers (default {DEFAULT_RTS_EVERY_MINUTES}; 0: off)")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="worker processes side by side (default 1, or "
                        "$PRAMAAN_WORKER_PROCESSES)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="workers in threads of each process, so several documents are in "
                        "flight while one waits for the TSA (default 1, or "
                        "$PRAMAAN_WORKER_THREADS)")
    add_metrics_arguments(parser)
    args = parser.parse_args(argv)
    try:
        processes, threads = worker_shape(args.processes, args.threads)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO)
    redact_logs()  # no log line carries an Aadhaar-looking number
    if processes > 1:
        raise SystemExit(run_workers(processes, burst=args.burst,
                                     rts_every_minutes=args.rts_every, threads=threads,
                                     metrics_port=args.metrics_port,
                                     metrics_host=args.metrics_host))
    run_worker(burst=args.burst, rts_every_minutes=args.rts_every, threads=threads,
               metrics_port=args.metrics_port, metrics_host=args.metrics_host)


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    """--metrics-port and --metrics-host (also `pramaan worker`'s)."""
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve the render and sign histograms for Prometheus on PORT")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="the address to serve them on (default 127.0.0.1)")


def worker_shape(processes: int | None, threads: int | None,
                 env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """How many worker processes, and worker threads in each: as given, else from
    $PRAMAAN_WORKER_PROCESSES / $PRAMAAN_WORKER_THREADS, else 1. Each must be 1 to 64;
    ValueError says which is not."""
    env = os.environ if env is None else env

    def pick(given: int | None, flag: str, name: str) -> int:
        if given is None:
            text = env.get(name, "1")
            try:
                given = int(text)
            except ValueError:
                raise ValueError(f"${name} must be a whole number, not {text!r}") from None
        if not 1 <= given <= 64:
            raise ValueError(f"{flag} (or ${name}) must be 1 to 64, not {given}")
        return given

    return (pick(processes, "--processes", "PRAMAAN_WORKER_PROCESSES"),
            pick(threads, "--threads", "PRAMAAN_WORKER_THREADS"))

if __name__ == "__main__":
    main()
