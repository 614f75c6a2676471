"""Which department owns an RQ job (for the queue page, issuer/queue_status.py). A job carries
record ids only (issuer/jobs.py): an issue job a certificate's, a group issue job a list of
certificates', a delivery job a delivery's, a batch job a batch's. Its owner is the department
of those records, read from the database. A job has no owner when its function or arguments
are not one of ours, a record is gone, or its records belong to two departments."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from issuer.jobs import BATCH_JOB, DELIVER_JOB, ISSUE_GROUP_JOB, ISSUE_JOB
from issuer.models import Batch, Certificate, Delivery

CHUNK = 500  # ids per IN (...): well under SQLite's bound-parameter limit

K = TypeVar("K", str, int)


@dataclass(frozen=True)
class JobRecords:
    """The records a job works on."""

    certificates: tuple[str, ...] = ()
    deliveries: tuple[int, ...] = ()
    batches: tuple[str, ...] = ()


def records_of(function: str, args: Sequence[object]) -> JobRecords | None:
    """The records named by a call of `function` with `args`; None if it is not one of ours."""
    if len(args) != 1:
        return None
    arg = args[0]
    if function == ISSUE_JOB and isinstance(arg, str):
        return JobRecords(certificates=(arg,))
    if function == ISSUE_GROUP_JOB and isinstance(arg, list | tuple) and arg \
            and all(isinstance(one, str) for one in arg):
        return JobRecords(certificates=tuple(str(one) for one in arg))
    if function == DELIVER_JOB and isinstance(arg, int) and not isinstance(arg, bool):
        return JobRecords(deliveries=(arg,))
    if function == BATCH_JOB and isinstance(arg, str):
        return JobRecords(batches=(arg,))
    return None


def owners(session: Session, jobs: Mapping[str, JobRecords]) -> dict[str, str]:
    """Job id -> the department owning every record of that job, for the jobs that have one."""
    certificates = _lookup(session, {c for r in jobs.values() for c in r.certificates},
                           lambda ids: select(Certificate.id, Certificate.department_id)
                           .where(Certificate.id.in_(ids)))
    deliveries = _lookup(session, {d for r in jobs.values() for d in r.deliveries},
                         lambda ids: select(Delivery.id, Certificate.department_id)
                         .join(Certificate, Certificate.id == Delivery.certificate_id)
                         .where(Delivery.id.in_(ids)))
    batches = _lookup(session, {b for r in jobs.values() for b in r.batches},
                      lambda ids: select(Batch.id, Batch.department_id)
                      .where(Batch.id.in_(ids)))
    found: dict[str, str] = {}
    for job_id, records in jobs.items():
        departments = ([certificates.get(c) for c in records.certificates]
                       + [deliveries.get(d) for d in records.deliveries]
                       + [batches.get(b) for b in records.batches])
        known = {d for d in departments if d is not None}
        if departments and None not in departments and len(known) == 1:
            found[job_id] = known.pop()
    return found


def _lookup(session: Session, ids: Collection[K],
            query: Callable[[list[K]], Select[K, str]]) -> dict[K, str]:
    """Record id -> department id for those of `ids` that exist, CHUNK ids per query."""
    ordered = list(ids)
    found: dict[K, str] = {}
    for start in range(0, len(ordered), CHUNK):
        for record_id, department_id in session.execute(query(ordered[start:start + CHUNK])):
            found[record_id] = department_id
    return found
