"""What the operators' queue page shows (api_queues.py) to a department's admin: each RQ queue's
jobs by state (all departments together: volume only), the failed jobs of the admin's own
department with the last line of their error, and the workers; and the one thing it changes,
a failed job of that department put back on its queue. A job's department is its records'
(issuer/job_owners.py); a job of another department, or of none that can be told, is neither
shown nor requeued, exactly as if it did not exist. Job arguments are record ids, never shown;
an error line is redacted like a log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from issuer.job_owners import JobRecords, owners, records_of
from issuer.log_redaction import redact
from issuer.queue_views import FailedJobView, QueuesAndWorkers, QueueView

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis import Redis
    from rq import Queue
    from rq.job import Job
    from sqlalchemy.orm import Session

MAX_FAILED = 50  # failed jobs listed per queue (the count has them all)
MAX_ERROR = 500
SCAN = 500  # failed jobs fetched from Redis at a time, to find the department's


class NoSuchFailedJob(LookupError):
    """The job is not in that queue's failed registry (requeued meanwhile, expired, unknown)."""


class NotYours(NoSuchFailedJob):
    """The failed job belongs to another department, or to none that can be told."""


@dataclass(frozen=True)
class FailedJob:
    id: str
    function: str
    ended_at: datetime | None
    error: str

    def as_dict(self) -> FailedJobView:
        return {"id": self.id, "function": self.function,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "error": self.error}


def overview(connection: Redis, names: tuple[str, ...], session: Session,
             department_id: str) -> QueuesAndWorkers:
    """Queues (counts by state of all departments, the department's failed jobs and their
    count) and workers (a current job shown only if it is the department's), as plain data."""
    from rq import Queue, Worker

    queues: list[QueueView] = []
    for name in names:
        queue = Queue(name, connection=connection)
        listed, count = _failed_of(queue, session, department_id)
        queues.append({
            "name": name,
            "counts": {"queued": queue.count,
                       "started": queue.started_job_registry.count,
                       "failed": queue.failed_job_registry.count,
                       "deferred": queue.deferred_job_registry.count,
                       "scheduled": queue.scheduled_job_registry.count,
                       "finished": queue.finished_job_registry.count},
            "yours": {"failed": count},
            "failed": [failed_job(job).as_dict() for job in listed],
        })
    workers = Worker.all(connection=connection)
    current = [w.get_current_job_id() for w in workers]
    shown = {job.id for job in owned(session, _fetch(connection, [c for c in current if c]),
                                     department_id)}
    return {"queues": queues, "workers": [
        {"name": w.name, "state": str(w.get_state()), "queues": w.queue_names(),
         "current_job": job_id if job_id in shown else None,
         "successful_jobs": w.successful_job_count, "failed_jobs": w.failed_job_count}
        for w, job_id in zip(workers, current, strict=True)]}


def _failed_of(queue: Queue, session: Session, department_id: str) -> tuple[list[Job], int]:
    """The department's first MAX_FAILED failed jobs of `queue`, and how many it has there."""
    ids = queue.failed_job_registry.get_job_ids()
    listed: list[Job] = []
    count = 0
    for start in range(0, len(ids), SCAN):
        mine = owned(session, _fetch(queue.connection, ids[start:start + SCAN]), department_id)
        count += len(mine)
        listed.extend(mine[:MAX_FAILED - len(listed)])
    return listed, count


def _fetch(connection: Redis, job_ids: Sequence[str]) -> list[Job]:
    from rq.job import Job

    return [job for job in Job.fetch_many(job_ids, connection=connection) if job is not None]


def owned(session: Session, jobs: Sequence[Job], department_id: str) -> list[Job]:
    """Those of `jobs` whose records all belong to department `department_id`."""
    records = {job.id: found for job in jobs if (found := _records(job)) is not None}
    owner = owners(session, records)
    return [job for job in jobs if owner.get(job.id) == department_id]


def _records(job: Job) -> JobRecords | None:
    from rq.exceptions import DeserializationError

    try:
        return records_of(job.func_name or "", job.args)
    except DeserializationError:
        return None


def failed_job(job: Job) -> FailedJob:
    result = job.latest_result()
    trace = (result.exc_string if result is not None else None) or ""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    error = redact(lines[-1] if lines else "")[:MAX_ERROR]
    return FailedJob(job.id, job.func_name or "", job.ended_at, error)


def requeue(connection: Redis, queue_name: str, job_id: str, session: Session,
            department_id: str) -> None:
    """Put failed job `job_id` back on `queue_name` (our jobs are idempotent), if it is
    department `department_id`'s: NotYours (a NoSuchFailedJob) otherwise."""
    from rq import Queue
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = Queue(queue_name, connection=connection)
    if job_id not in queue.failed_job_registry:
        raise NoSuchFailedJob(job_id)
    jobs = _fetch(connection, [job_id])
    if not jobs:
        raise NoSuchFailedJob(job_id)
    if not owned(session, jobs, department_id):
        raise NotYours(job_id)
    try:
        queue.failed_job_registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError) as exc:
        raise NoSuchFailedJob(job_id) from exc
