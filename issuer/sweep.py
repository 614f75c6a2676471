"""Re-enqueue work that got stuck: certificates approved or signing but not issued in time,
and approved batches whose certificates are not all made.

Nothing is lost when a worker dies or Redis restarts: the record stays approved in the database
and this sweeper (run from cron or a loop) hands it to a worker again; the job is idempotent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from issuer.batches import BatchState
from issuer.db import utcnow
from issuer.models import Batch, Certificate, State
from issuer.runtime import Runtime

log = logging.getLogger(__name__)

# Approved but never picked up (Redis lost the job), or signing but never finished (a worker
# died between recording the intent and marking the record issued).
STUCK = (State.APPROVED.value, State.SIGNING.value)


def sweep(runtime: Runtime, older_than_seconds: int = 300) -> int:
    """Re-enqueue stuck records; returns how many. A `signing` record is resumed by the job
    only once it has been untouched for `issue.RESUME_AFTER`."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    try:  # jobs whose worker died: failed now, so they can be enqueued again below
        runtime.dispatcher.reap_abandoned()
    except Exception:  # Redis down: the enqueues below log it too, and nothing is lost
        log.warning("could not look for abandoned jobs", exc_info=True)
    with runtime.sessions() as session:
        ids = list(session.scalars(
            select(Certificate.id).where(Certificate.state.in_(STUCK),
                                         Certificate.updated_at < cutoff)
        ))
        # Approved batches whose certificates are not all made (the job died or was lost).
        batches = list(session.scalars(
            select(Batch.id).where(Batch.state == BatchState.APPROVED,
                                   Batch.updated_at < cutoff)))
    for cert_id in ids:
        runtime.dispatcher.enqueue_issue(cert_id)  # logs and carries on if Redis is down
    for batch_id in batches:
        runtime.dispatcher.enqueue_batch(batch_id)
    return len(ids) + len(batches)
