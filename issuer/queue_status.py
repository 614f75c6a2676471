"""What the operators' queue page shows (api_queues.py): each RQ queue's jobs by state, its
failed jobs with the last line of their error, and the workers; and the one thing it changes,
a failed job put back on its queue. Job arguments are record ids, never shown; an error line is
redacted like a log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from issuer.log_redaction import redact

if TYPE_CHECKING:
    from redis import Redis
    from rq.job import Job

MAX_FAILED = 50  # failed jobs listed per queue (the count has them all)
MAX_ERROR = 500


class NoSuchFailedJob(LookupError):
    """The job is not in that queue's failed registry (requeued meanwhile, expired, unknown)."""


@dataclass(frozen=True)
class FailedJob:
    id: str
    function: str
    ended_at: datetime | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "function": self.function,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "error": self.error}


def overview(connection: Redis, names: tuple[str, ...]) -> dict[str, Any]:
    """Queues (counts by state, failed jobs) and workers, as plain data."""
    from rq import Queue, Worker

    queues = []
    for name in names:
        queue = Queue(name, connection=connection)
        failed_ids = queue.failed_job_registry.get_job_ids(0, MAX_FAILED - 1)
        queues.append({
            "name": name,
            "counts": {"queued": queue.count,
                       "started": queue.started_job_registry.count,
                       "failed": queue.failed_job_registry.count,
                       "deferred": queue.deferred_job_registry.count,
                       "scheduled": queue.scheduled_job_registry.count,
                       "finished": queue.finished_job_registry.count},
            "failed": [failed_job(job).as_dict()
                       for job in queue.job_class.fetch_many(failed_ids, connection=connection)
                       if job is not None],
        })
    workers = [{"name": w.name, "state": str(w.get_state()),
                "queues": w.queue_names(), "current_job": w.get_current_job_id(),
                "successful_jobs": w.successful_job_count, "failed_jobs": w.failed_job_count}
               for w in Worker.all(connection=connection)]
    return {"queues": queues, "workers": workers}


def failed_job(job: Job) -> FailedJob:
    result = job.latest_result()
    trace = (result.exc_string if result is not None else None) or ""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    error = redact(lines[-1] if lines else "")[:MAX_ERROR]
    return FailedJob(job.id, job.func_name or "", job.ended_at, error)


def requeue(connection: Redis, queue_name: str, job_id: str) -> None:
    """Put failed job `job_id` back on `queue_name` (our jobs are idempotent)."""
    from rq import Queue
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = Queue(queue_name, connection=connection)
    if job_id not in queue.failed_job_registry:
        raise NoSuchFailedJob(job_id)
    try:
        queue.failed_job_registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError) as exc:
        raise NoSuchFailedJob(job_id) from exc
