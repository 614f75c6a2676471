"""A way out for every failure: an operator retries a failed record or cancels a stuck one.

A record that could not be issued after `issue.MAX_ATTEMPTS` tries is `failed`, with its error
recorded. Retrying puts it back to `approved` with a fresh intent (a new seal is made: the old
one was never issued); cancelling ends it for good. Neither a failed nor a cancelled record
blocks a corrected resubmission of the same registration. Both are audited.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit, counters
from issuer.db import utcnow
from issuer.errors import InvalidTransition, NotFound
from issuer.models import Certificate, State
from issuer.submit import find_active

CANCELLABLE = (State.SUBMITTED.value, State.APPROVED.value, State.SIGNING.value,
               State.FAILED.value)
MAX_REASON = 300


def retry(session: Session, certificate_id: str, actor: str) -> Certificate:
    """failed -> approved, attempts reset, the stale intent dropped. The caller commits, then
    enqueues the issue job. Refused when a corrected resubmission holds the registration."""
    record = _locked(session, certificate_id)
    if record.state != State.FAILED.value:
        raise InvalidTransition(f"certificate {record.id} is {record.state}; only a failed "
                                "certificate can be retried", state=record.state)
    if find_active(session, record.department_id, record.cert_type,
                   record.registration_number) is not None:
        raise _taken(record)
    taken = _taken(record)  # built now: a failed write below expires the record's attributes
    previous_error = record.last_error
    record.state = State.APPROVED.value
    record.attempts = 0
    record.last_error = None
    record.issued_at = None
    record.seal_text = None
    record.seal_kid = None
    record.fields_sha256 = None
    record.template_version = None
    record.updated_at = utcnow()
    try:
        # A resubmission committed since the check above breaks the unique index here. (No
        # savepoint: begin_nested() would flush these changes before it, outside its scope.)
        session.flush()
    except IntegrityError:
        raise taken from None
    audit.record(session, actor=actor, action="retry", certificate_id=record.id,
                 details={"previous_error": previous_error})
    return record


def cancel(session: Session, certificate_id: str, actor: str, reason: str) -> Certificate:
    """submitted / approved / signing / failed -> cancelled, for good; its number is released.

    An issued certificate is never cancelled (it is revoked or superseded instead). A job
    still working on a cancelled record cannot issue it: marking issued needs `signing`."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidTransition(f"give a reason of 1 to {MAX_REASON} characters")
    record = _locked(session, certificate_id)
    if record.state not in CANCELLABLE:
        raise InvalidTransition(f"certificate {record.id} is {record.state} and cannot be "
                                "cancelled", state=record.state)
    previous = record.state
    released = record.number
    record.state = State.CANCELLED.value
    record.decided_by = actor
    record.decision_reason = reason
    record.updated_at = utcnow()
    if released is not None:
        # Never issued, so its number goes back to the series (kept gapless): the next approval
        # takes it. The seal that named it (if one was made) belongs to a cancelled record and
        # verifies as not issued.
        record.number = None
        session.flush()
        counters.release(session, released)
    audit.record(session, actor=actor, action="cancel", certificate_id=record.id,
                 details={"reason": reason, "from": previous, "error": record.last_error,
                          "released_number": released})
    return record


def _taken(record: Certificate) -> InvalidTransition:
    return InvalidTransition(
        f"registration {record.registration_number} already has a newer certificate in "
        "progress or issued; cancel this one instead", state=State.FAILED.value
    )


def _locked(session: Session, certificate_id: str) -> Certificate:
    # Locked and read afresh: a cancel while the job marks the record issued waits, then sees
    # it issued (on PostgreSQL; SQLite's writer locks the whole database).
    record = session.get(Certificate, certificate_id, with_for_update=True,
                         populate_existing=True)
    if record is None:
        raise NotFound(f"no certificate {certificate_id}")
    return record
