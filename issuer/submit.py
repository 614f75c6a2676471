"""Accepting a request: validate, refuse duplicates, record and approve it in one transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit, counters
from issuer.canonical import canonical_request
from issuer.certtypes import cert_type, known_types
from issuer.db import utcnow
from issuer.errors import DuplicateCertificate, FieldError, InvalidTransition, ValidationFailed
from issuer.fields import MAX_DEPTH, nesting_depth, today_ist
from issuer.models import ACTIVE_STATES, Certificate, Department, State
from issuer.render import nfc

# The approval workflow (clerk submits, a different officer approves) is a later issue. Until
# then every accepted request is approved by the system, in its own audited transition.
AUTO_APPROVER = "system:auto-approve"


def validate(data: Any) -> tuple[str, dict[str, Any]]:
    """The type code and the NFC-normalised request, or ValidationFailed listing every problem."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("", "type", "the request body must be a JSON object")])
    if nesting_depth(data) > MAX_DEPTH:
        raise ValidationFailed([FieldError("", "too_deep",
                                           f"objects may nest at most {MAX_DEPTH} levels")])
    kind = cert_type(data.get("type"))
    if kind is None:
        choices = ", ".join(sorted(known_types()))
        raise ValidationFailed([FieldError("type", "choice", f"must be one of: {choices}")])
    clean = nfc(data)
    errors = kind.validate(clean)
    if errors:
        raise ValidationFailed(errors)
    return kind.code, kind.canonical(canonical_request(clean))


def find_active(session: Session, department_id: str, code: str,
                registration: str) -> Certificate | None:
    """The department's current (or in-progress) certificate for a registration, if any.

    Registration numbers belong to a department's own registry: another department's numbers
    are neither blocked by nor revealed to it."""
    return session.scalars(
        select(Certificate).where(
            Certificate.department_id == department_id,
            Certificate.cert_type == code,
            Certificate.registration_number == registration,
            Certificate.state.in_([s.value for s in ACTIVE_STATES]),
        )
    ).first()


def submit(session: Session, department: Department, actor: str, data: Any) -> Certificate:
    """Record a valid request as submitted, then approved. The caller commits, then enqueues."""
    code, clean = validate(data)
    kind = cert_type(code)
    assert kind is not None
    if code not in department.cert_types:
        raise ValidationFailed(
            [FieldError("type", "not_allowed", f"department {department.id} does not issue {code}")]
        )
    registration = kind.registration_number(clean)
    existing = find_active(session, department.id, code, registration)
    if existing is not None:
        raise _duplicate(existing, department.id)
    now = utcnow()
    record = Certificate(
        id=str(uuid.uuid4()),
        department_id=department.id,
        cert_type=code,
        registration_number=registration,
        state=State.SUBMITTED.value,
        request=clean,
        submitted_by=actor,
        due_at=now + timedelta(days=kind.rts_days),
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        # Another request for the same registration won the race between our check and insert.
        session.rollback()
        winner = find_active(session, department.id, code, registration)
        raise _duplicate(winner, department.id) from None
    audit.record(session, actor=actor, action="submit", certificate_id=record.id,
                 details={"type": code, "registration_number": registration})
    approve(session, record, AUTO_APPROVER)
    return record


def approve(session: Session, record: Certificate, actor: str) -> None:
    """submitted -> approved: the certificate number and status-list index are drawn here."""
    if record.state != State.SUBMITTED.value:
        raise InvalidTransition(f"certificate {record.id} is {record.state}, not submitted")
    if actor == record.submitted_by:
        raise InvalidTransition("the approver must not be the person who submitted")
    kind = cert_type(record.cert_type)
    assert kind is not None
    record.number = counters.certificate_number(session, kind.number_prefix, today_ist().year)
    record.status_index = counters.status_index(session)
    record.state = State.APPROVED.value
    record.approved_by = actor
    record.updated_at = utcnow()
    audit.record(session, actor=actor, action="approve", certificate_id=record.id,
                 details={"number": record.number})


def _duplicate(existing: Certificate | None, department_id: str) -> DuplicateCertificate:
    # Only the department that holds the record learns its id and state.
    if existing is None or existing.department_id != department_id:
        return DuplicateCertificate("a current certificate exists for this registration number")
    return DuplicateCertificate(
        f"registration {existing.registration_number} already has certificate {existing.id} "
        f"({existing.state})",
        certificate_id=existing.id,
        href=f"/api/v1/certificates/{existing.id}",
        state=existing.state,
    )
