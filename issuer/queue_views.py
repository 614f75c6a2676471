"""The shape of the operators' queue page as JSON (/admin/rq/queues.json, issuer/queue_status.py
builds it) and of a requeue's answer; the OpenAPI document publishes them from here."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from issuer.typeddict_schema import DATE_TIME, Keywords


class Counts(TypedDict):
    """A queue's jobs by state, of every department (volume only)."""

    queued: int
    started: int
    failed: int
    deferred: int
    scheduled: int
    finished: int


class Yours(TypedDict):
    failed: Annotated[int, Keywords(description="The admin's department's failed jobs here")]


class FailedJobView(TypedDict):
    id: str
    function: str
    ended_at: Annotated[str | None, DATE_TIME]
    error: Annotated[str, Keywords(description="The last line of its error, redacted")]


class QueueView(TypedDict):
    name: str
    counts: Counts
    yours: Yours
    failed: list[FailedJobView]


class WorkerView(TypedDict):
    name: str
    state: str
    queues: list[str]
    current_job: Annotated[str | None, Keywords(
        description="Its job now, if that is the admin's department's")]
    successful_jobs: int
    failed_jobs: int


class QueuesAndWorkers(TypedDict):
    queues: list[QueueView]
    workers: list[WorkerView]


class QueuePage(QueuesAndWorkers):
    """RQ's queues and workers as a department's admin sees them (none without Redis)."""

    redis: bool


class Requeued(TypedDict):
    """A failed job put back on its queue (a bearer client's answer; a form is redirected)."""

    queue: str
    job: str
    requeued: Literal[True]
