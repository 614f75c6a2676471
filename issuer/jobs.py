"""Job dispatch: RQ on Redis when REDIS_URL is set, the same job function in-process otherwise.

Rules (ARCHITECTURE.md): enqueue only after the DB commit, pass the record id only, derive the
job id from the record id, and let the job re-check the record's state so a repeat is harmless.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from issuer.runtime import Runtime

log = logging.getLogger(__name__)

SIGN_QUEUE = "sign"
DELIVER_QUEUE = "deliver"
ISSUE_JOB = "worker.issue_job"


def issue_job_id(certificate_id: str) -> str:
    return f"issue-{certificate_id}"


class Dispatcher(Protocol):
    def enqueue_issue(self, certificate_id: str) -> None: ...


class InlineDispatcher:
    """Embedded mode: run the job now, in this process. A failure is counted on the record
    (nothing lost): `pramaan sweep` retries it until it succeeds or becomes `failed`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def enqueue_issue(self, certificate_id: str) -> None:
        from issuer.issue import issue_certificate

        try:
            issue_certificate(self.runtime, certificate_id)
        except Exception:
            log.exception("issuing %s failed; the sweeper retries it", certificate_id)


class RQDispatcher:
    """Distributed mode: one RQ job per record on the `sign` queue, id derived from the record."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.queue = Queue(SIGN_QUEUE, connection=Redis.from_url(redis_url))

    def enqueue_issue(self, certificate_id: str) -> None:
        from redis.exceptions import RedisError

        try:
            self._enqueue(certificate_id)
        except RedisError:
            # The record is committed and approved: nothing is lost. `pramaan sweep` hands it
            # to a worker once Redis is back.
            log.warning("could not enqueue %s (Redis unavailable); the sweeper will retry",
                        certificate_id, exc_info=True)

    def _enqueue(self, certificate_id: str) -> None:
        from rq.exceptions import DuplicateJobError

        try:
            self._enqueue_unique(certificate_id)
        except DuplicateJobError:
            self._requeue_if_done(certificate_id)

    def _enqueue_unique(self, certificate_id: str) -> None:
        self.queue.enqueue_call(ISSUE_JOB, args=(certificate_id,),
                                job_id=issue_job_id(certificate_id), unique=True,
                                result_ttl=3600, failure_ttl=7 * 24 * 3600)

    def _requeue_if_done(self, certificate_id: str) -> None:
        """A job that already ran (finished or failed) may be re-run: the job is idempotent.
        One still queued or running is left alone."""
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job, JobStatus

        job_id = issue_job_id(certificate_id)
        try:
            job = Job.fetch(job_id, connection=self.queue.connection)
        except NoSuchJobError:
            job = None
        if job is not None and job.get_status(refresh=True) in (
            JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED
        ):
            log.info("issue job for %s is already queued", certificate_id)
            return
        if job is not None:
            job.delete()
        try:
            self._enqueue_unique(certificate_id)
        except DuplicateJobError:
            log.info("issue job for %s was enqueued concurrently", certificate_id)


def make_dispatcher(runtime: Runtime) -> Dispatcher:
    if runtime.settings.redis_url:
        return RQDispatcher(runtime.settings.redis_url)
    return InlineDispatcher(runtime)
