"""Job dispatch: RQ on Redis when REDIS_URL is set, the same job function in-process otherwise.

Rules (ARCHITECTURE.md): enqueue only after the DB commit, pass the record id only, derive the
job id from the record id, and let the job re-check the record's state so a repeat is harmless.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from redis import Redis
    from rq import Queue

    from issuer.runtime import Runtime

log = logging.getLogger(__name__)

# RQ's statuses of a job that is queued, running or about to be (rq.job.JobStatus values).
_WAITING = ("queued", "started", "deferred", "scheduled")

SIGN_QUEUE = "sign"
DELIVER_QUEUE = "deliver"
ISSUE_JOB = "worker.issue_job"
ISSUE_GROUP_JOB = "worker.issue_group_job"
DELIVER_JOB = "worker.deliver_job"
BATCH_JOB = "worker.batch_job"


def issue_job_id(certificate_id: str) -> str:
    return f"issue-{certificate_id}"


GROUP_JOB_PREFIX = "issue-group-"


def issue_group_job_id(certificate_ids: Sequence[str]) -> str:
    """A group's job: named for its first record (a record is in one group: its batch chunk's)."""
    return f"{GROUP_JOB_PREFIX}{certificate_ids[0]}"


def group_key(certificate_id: str) -> str:
    """The Redis key naming the group job a record was handed to (see `enqueue_issues`)."""
    return f"pramaan:issue-group:{certificate_id}"


# How long a record's group stays known: past a day in the queue, the sweeper may hand the record
# to a job of its own (the two runs are idempotent: one issues it, the other finds it issued).
GROUP_KEY_SECONDS = 24 * 3600


def delivery_job_id(delivery_id: int) -> str:
    return f"deliver-{delivery_id}"


def batch_job_id(batch_id: str) -> str:
    return f"batch-{batch_id}"


class Dispatcher(Protocol):
    def enqueue_issue(self, certificate_id: str) -> None: ...

    def enqueue_issues(self, certificate_ids: Sequence[str]) -> None: ...

    def enqueue_delivery(self, delivery_id: int) -> None: ...

    def enqueue_batch(self, batch_id: str) -> None: ...

    def reap_abandoned(self) -> int: ...


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

    def reap_abandoned(self) -> int:
        """Nothing to reap: no job outlives this process."""
        return 0

    def enqueue_issues(self, certificate_ids: Sequence[str]) -> None:
        """A batch's chunk: issued a group at a time (issuer/issue_group.py)."""
        from issuer.issue_group import GROUP, issue_certificates

        for start in range(0, len(certificate_ids), GROUP):
            group = certificate_ids[start:start + GROUP]
            try:
                issue_certificates(self.runtime, group)
            except Exception:
                log.exception("issuing a group of %d failed; the sweeper retries what is left",
                              len(group))

    def enqueue_batch(self, batch_id: str) -> None:
        """Make an approved batch's certificates and issue them now, in this process (a
        laptop's batch; workers take large ones). Stopped halfway, `pramaan sweep` resumes."""
        from issuer.batches import make_certificates

        try:
            make_certificates(self.runtime.sessions, batch_id, self.runtime.settings,
                              self.enqueue_issues)
        except Exception:
            log.exception("making the certificates of batch %s failed; the sweeper resumes it",
                          batch_id)

    def enqueue_delivery(self, delivery_id: int) -> None:
        """Push now, in this process. An unreachable DigiLocker is recorded on the row (pending,
        next try); `pramaan digilocker retry` or a worker's sweep sends it later."""
        from digilocker.deliveries import deliver

        try:
            deliver(self.runtime, delivery_id)
        except Exception:
            log.exception("delivery %s failed; the sweeper retries it", delivery_id)


class RQDispatcher:
    """Distributed mode: one RQ job per record on the `sign` queue, id derived from the record."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.queue = Queue(SIGN_QUEUE, connection=Redis.from_url(redis_url))
        self.deliver_queue = Queue(DELIVER_QUEUE, connection=self.queue.connection)

    def enqueue_issue(self, certificate_id: str) -> None:
        from redis.exceptions import RedisError

        try:
            self._enqueue(certificate_id)
        except RedisError:
            # The record is committed and approved: nothing is lost. `pramaan sweep` hands it
            # to a worker once Redis is back.
            log.warning("could not enqueue %s (Redis unavailable); the sweeper will retry",
                        certificate_id, exc_info=True)

    def enqueue_issues(self, certificate_ids: Sequence[str]) -> None:
        """Group jobs for new certificates (a batch's chunk; issuer/issue_group.py), with each
        record's group noted for the sweeper, in one pipelined round trip. Redis down: the
        records are committed and approved, and the sweeper enqueues them."""
        from redis.exceptions import RedisError
        from rq import Queue

        from issuer.issue_group import GROUP

        groups = [list(certificate_ids[start:start + GROUP])
                  for start in range(0, len(certificate_ids), GROUP)]
        try:
            with self.queue.connection.pipeline() as pipe:
                for group in groups:
                    for certificate_id in group:
                        pipe.set(group_key(certificate_id), issue_group_job_id(group),
                                 ex=GROUP_KEY_SECONDS)
                self.queue.enqueue_many([
                    Queue.prepare_data(ISSUE_GROUP_JOB, args=(group,),
                                       job_id=issue_group_job_id(group), result_ttl=3600,
                                       failure_ttl=7 * 24 * 3600)
                    for group in groups], pipeline=pipe)
                pipe.execute()
        except RedisError:
            log.warning("could not enqueue %d certificates (Redis unavailable); the sweeper "
                        "will retry", len(certificate_ids), exc_info=True)

    def reap_abandoned(self) -> int:
        """Mark failed the jobs of workers that died holding them (SIGKILL, a lost machine):
        their heartbeat stopped (a started job lives for its heartbeat TTL after the last beat:
        up to the job's timeout and a minute, 4 minutes for ours). Until then it counts as
        running and is not enqueued again; RQ reaps only every ten minutes. How many found."""
        from rq.exceptions import InvalidJobOperation, NoSuchJobError
        from rq.registry import FailedJobRegistry, StartedJobRegistry

        found = 0
        for queue in (self.queue, self.deliver_queue):
            registry = StartedJobRegistry(queue=queue)
            expired = registry.get_expired_job_ids()
            found += len(expired)
            registry.cleanup()
            # A group job goes back to the queue whole (its records are not each in a job of
            # their own that the sweep below would replace); it resumes what its worker began.
            for job_id in expired:
                if job_id.startswith(GROUP_JOB_PREFIX):
                    try:
                        FailedJobRegistry(queue=queue).requeue(job_id)
                    except (InvalidJobOperation, NoSuchJobError):
                        log.info("abandoned group job %s is gone already", job_id)
        return found

    def enqueue_batch(self, batch_id: str) -> None:
        """The job making an approved batch's certificates, once (its id is the batch's)."""
        from redis.exceptions import RedisError

        try:
            enqueue_once(self.queue, BATCH_JOB, batch_id, batch_job_id(batch_id))
        except RedisError:
            log.warning("could not enqueue batch %s (Redis unavailable); the sweeper will "
                        "retry", batch_id, exc_info=True)

    def _enqueue(self, certificate_id: str) -> None:
        from rq.exceptions import DuplicateJobError

        if self._in_waiting_group(certificate_id):
            log.info("issue of %s is queued in its group", certificate_id)
            return
        try:
            self._enqueue_unique(certificate_id)
        except DuplicateJobError:
            self._requeue_if_done(certificate_id)

    def _enqueue_unique(self, certificate_id: str) -> None:
        self.queue.enqueue_call(ISSUE_JOB, args=(certificate_id,),
                                job_id=issue_job_id(certificate_id), unique=True,
                                result_ttl=3600, failure_ttl=7 * 24 * 3600)

    def _in_waiting_group(self, certificate_id: str) -> bool:
        """Whether the record's group job (if it has one) is still queued or running."""
        group = self.queue.connection.get(group_key(certificate_id))
        if group is None:
            return False
        return _waiting(self.queue, group.decode() if isinstance(group, bytes) else str(group))

    def _requeue_if_done(self, certificate_id: str) -> None:
        """A job that already ran (finished or failed) may be re-run: the job is idempotent.
        One still queued or running is left alone."""
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job

        job_id = issue_job_id(certificate_id)
        try:
            job = Job.fetch(job_id, connection=self.queue.connection)
        except NoSuchJobError:
            job = None
        if job is not None and job.get_status(refresh=True) in _WAITING:
            log.info("issue job for %s is already queued", certificate_id)
            return
        if job is not None:
            job.delete()
        try:
            self._enqueue_unique(certificate_id)
        except DuplicateJobError:
            log.info("issue job for %s was enqueued concurrently", certificate_id)


    def enqueue_delivery(self, delivery_id: int) -> None:
        """One RQ job per delivery on the `deliver` queue (job id from the row id). A job
        already queued or running is left alone; one that ran is replaced (the row says whether
        anything is left to do). Redis down: the row stays pending for the sweeper."""
        from redis.exceptions import RedisError

        try:
            enqueue_once(self.deliver_queue, DELIVER_JOB, delivery_id,
                         delivery_job_id(delivery_id))
        except RedisError:
            log.warning("could not enqueue delivery %s (Redis unavailable); the sweeper will "
                        "retry", delivery_id, exc_info=True)


def _waiting(queue: Queue, job_id: str) -> bool:
    """Whether job `job_id` is queued, running or about to be."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return Job.fetch(job_id, connection=queue.connection).get_status(refresh=True) in _WAITING
    except NoSuchJobError:
        return False


def enqueue_once(queue: Queue, func: str, arg: object, job_id: str) -> None:
    """Enqueue `func(arg)` as `job_id` unless a job of that id is queued or running."""
    from rq.exceptions import DuplicateJobError, NoSuchJobError
    from rq.job import Job

    for _ in range(2):
        try:
            queue.enqueue_call(func, args=(arg,), job_id=job_id, unique=True, result_ttl=600,
                               failure_ttl=7 * 24 * 3600)
            return
        except DuplicateJobError:
            try:
                job = Job.fetch(job_id, connection=queue.connection)
            except NoSuchJobError:
                continue
            if job.get_status(refresh=True) in _WAITING:
                return
            job.delete()
    log.info("job %s was enqueued concurrently", job_id)


def make_dispatcher(runtime: Runtime) -> Dispatcher:
    if runtime.settings.redis_url:
        return RQDispatcher(runtime.settings.redis_url)
    return InlineDispatcher(runtime)


# The periodic RTS escalation (issuer/rts_escalation.py) in the RQ workers. The Redis key is the
# lock and the clock at once: SET NX with an expiry of one interval lets one worker run it, and
# no worker run it again before the interval is over. A run longer than the interval could
# overlap the next one; escalations are idempotent, so that costs time, never a duplicate.
RTS_ESCALATION_KEY = "pramaan:rts-escalation"
DEFAULT_RTS_EVERY_MINUTES = 15


def periodic_rts_escalation(runtime: Runtime, redis: Redis, every_minutes: int,
                            now: datetime | None = None) -> int | None:
    """Run the escalation if it is this worker's turn: the number escalated, or None when
    another worker holds the turn (ran it less than `every_minutes` ago)."""
    from issuer.db import utcnow
    from issuer.rts_calendar import load_calendar
    from issuer.rts_escalation import escalate_all

    if not redis.set(RTS_ESCALATION_KEY, socket.gethostname(), nx=True,
                     ex=max(1, every_minutes) * 60):
        return None
    done = escalate_all(runtime.sessions, load_calendar(runtime.settings), now or utcnow())
    return len(done)


# The periodic delivery sweep (digilocker/deliveries.sweep_due) in the RQ workers, the same way:
# one worker per interval enqueues the DigiLocker pushes whose next try is due. Enqueueing is
# idempotent (job ids from row ids), so an overlap costs nothing.
DELIVERY_SWEEP_KEY = "pramaan:delivery-sweep"
DEFAULT_DELIVERY_SWEEP_SECONDS = 60


def periodic_delivery_sweep(runtime: Runtime, redis: Redis, every_seconds: int,
                            now: datetime | None = None) -> int | None:
    """Enqueue due deliveries if it is this worker's turn: how many, or None (not our turn)."""
    from digilocker.deliveries import sweep_due

    if not redis.set(DELIVERY_SWEEP_KEY, socket.gethostname(), nx=True,
                     ex=max(1, every_seconds)):
        return None
    return sweep_due(runtime, now)


# The sweeper (issuer/sweep.py) in the RQ workers, the same way: one worker per interval hands
# stuck certificates and half-made batches to the queue again. Jobs re-check their record, so an
# overlap costs a look, never a second certificate.
ISSUE_SWEEP_KEY = "pramaan:issue-sweep"


def periodic_issue_sweep(runtime: Runtime, redis: Redis) -> int | None:
    """Sweep if it is this worker's turn: how many were handed on, or None (not our turn)."""
    from issuer.sweep import sweep

    every = runtime.settings.sweep_seconds
    if every <= 0 or not redis.set(ISSUE_SWEEP_KEY, socket.gethostname(), nx=True, ex=every):
        return None
    return sweep(runtime, older_than_seconds=runtime.settings.sweep_after_seconds)
