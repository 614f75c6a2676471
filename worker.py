"""Thin RQ worker entry: `pramaan worker` / `python worker.py`.

Uses RQ's SimpleWorker (no fork per job) so the document-signer key, seal key and typst compiler
are loaded once per worker process, after any fork, and reused for every job.
"""

from __future__ import annotations

import argparse
import functools
import logging

from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE
from issuer.runtime import Runtime
from issuer.settings import Settings

log = logging.getLogger(__name__)


@functools.cache
def current_runtime() -> Runtime:
    """The worker process's runtime, built on first use (never at import)."""
    return Runtime(Settings.from_env())


def issue_job(certificate_id: str) -> bool:
    """RQ entry for issuing: the id only; the job re-reads the record."""
    from issuer.issue import issue_certificate

    return issue_certificate(current_runtime(), certificate_id)


def run_worker(burst: bool = False, queues: tuple[str, ...] = (SIGN_QUEUE, DELIVER_QUEUE)) -> bool:
    """Work the queues until stopped (or, with burst, until they are empty)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    rt = current_runtime()
    if not rt.settings.redis_url:
        raise SystemExit("REDIS_URL is not set: without Redis, jobs run inside the API process")
    rt.keyring  # noqa: B018 - load and check keys before taking the first job
    connection = Redis.from_url(rt.settings.redis_url)
    worker = SimpleWorker([Queue(q, connection=connection) for q in queues], connection=connection)
    return bool(worker.work(burst=burst, logging_level="INFO"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pramaan RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run_worker(burst=args.burst)


if __name__ == "__main__":
    main()
