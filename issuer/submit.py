"""Accepting a request: validate, refuse duplicates, record and approve it in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit, wards
from issuer.aadhaar import key_source, take_aadhaar
from issuer.canonical import canonical_request
from issuer.certtypes import CertType, cert_type, known_types, rts_days
from issuer.db import utcnow
from issuer.errors import DuplicateCertificate, FieldError, InvalidTransition, ValidationFailed
from issuer.fields import MAX_DEPTH, nesting_depth
from issuer.models import PENDING_STATES, Certificate, Department, State
from issuer.plain_fields import Reference
from issuer.render import nfc
from issuer.rts_calendar import due_at, load_calendar, shipped_calendar
from issuer.settings import Settings
from issuer.workflow import AUTO_APPROVER, approve

CORRECTS = "corrects"
# A correction's reference, checked here and published from this object (api_schemas.py).
CORRECTS_FIELD = Reference(CORRECTS, "format", "must be the id of the certificate being corrected",
                           "A correction: the id of the issued certificate it replaces.")


def validate(data: Any) -> tuple[str, dict[str, Any]]:
    """The type code and the NFC-normalised request, or ValidationFailed listing every problem.

    `corrects` (a correction's reference to the certificate it corrects) is not part of the
    certificate's fields: read it with `corrects_of` before validating."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("", "type", "the request body must be a JSON object")])
    if nesting_depth(data) > MAX_DEPTH:
        raise ValidationFailed([FieldError("", "too_deep",
                                           f"objects may nest at most {MAX_DEPTH} levels")])
    kind = cert_type(data.get("type"))
    if kind is None:
        choices = ", ".join(sorted(known_types()))
        raise ValidationFailed([FieldError("type", "choice", f"must be one of: {choices}")])
    clean = nfc({k: v for k, v in data.items() if k != CORRECTS})
    errors = kind.validate(clean)
    if errors:
        raise ValidationFailed(errors)
    return kind.code, kind.canonical(canonical_request(clean))


def corrects_of(data: Any) -> str | None:
    """The id a correction names under `corrects`, or None for a new request."""
    if not isinstance(data, dict) or data.get(CORRECTS) is None:
        return None
    wrong = CORRECTS_FIELD.check(data[CORRECTS])
    if wrong is not None:
        raise ValidationFailed([wrong])
    return str(uuid.UUID(data[CORRECTS]))


def active_registrations(session: Session, department_id: str, code: str,
                         registrations: Sequence[str]) -> set[str]:
    """Which of `registrations` have a current (or in-progress) certificate of the department,
    as `find_active` judges each, in one query."""
    pending = [s.value for s in PENDING_STATES]
    return set(session.scalars(
        select(Certificate.registration_number).where(
            Certificate.department_id == department_id,
            Certificate.cert_type == code,
            Certificate.registration_number.in_(list(registrations)),
            or_(Certificate.state == State.ISSUED.value,
                and_(Certificate.state.in_(pending), Certificate.corrects.is_(None))),
        )))


def find_active(session: Session, department_id: str, code: str,
                registration: str) -> Certificate | None:
    """The department's current (or in-progress) certificate for a registration, if any; a
    correction on its way does not count (the certificate it corrects does).

    Registration numbers belong to a department's own registry: another department's numbers
    are neither blocked by nor revealed to it."""
    pending = [s.value for s in PENDING_STATES]
    return session.scalars(
        select(Certificate).where(
            Certificate.department_id == department_id,
            Certificate.cert_type == code,
            Certificate.registration_number == registration,
            or_(Certificate.state == State.ISSUED.value,
                and_(Certificate.state.in_(pending), Certificate.corrects.is_(None))),
        )
    ).first()


@dataclass(frozen=True)
class Prepared:
    """A valid request ready to be recorded: its type, the clean fields (Aadhaar taken out,
    only its last four digits and HMAC kept), registration number, ward office and, for a
    correction, the certificate it corrects."""

    code: str
    clean: dict[str, Any]
    aadhaar_last4: str | None
    aadhaar_hmac: str | None
    registration: str
    ward: str
    corrects: str | None


def prepare(session: Session, department: Department, data: Any,
            settings: Settings | None = None) -> Prepared:
    """Validate `data` for `department` (ValidationFailed lists every problem), without
    recording anything."""
    target_id = corrects_of(data)
    code, clean = validate(data)
    # aadhaar: out of the request before anything else sees it; only last4 + HMAC are kept.
    clean, aadhaar_last4, aadhaar_hmac = take_aadhaar(clean, key_source(settings))
    kind = cert_type(code)
    assert kind is not None
    if code not in department.cert_types:
        raise ValidationFailed(
            [FieldError("type", "not_allowed", f"department {department.id} does not issue {code}")]
        )
    registration = kind.registration_number(clean)
    ward = _ward_code(session, department.id, kind.ward_office(clean)["en"])
    return Prepared(code, clean, aadhaar_last4, aadhaar_hmac, registration, ward, target_id)


def submit(session: Session, department: Department, actor: str, data: Any,
           settings: Settings | None = None) -> Certificate:
    """Record a valid request (or a correction) as submitted; a department with automatic
    approval also approves it here. The caller commits, then enqueues the issue job."""
    return record_request(session, department, actor, prepare(session, department, data,
                                                               settings), settings)


def record_request(session: Session, department: Department, actor: str, ready: Prepared,
                   settings: Settings | None = None) -> Certificate:
    """Record a prepared request as submitted (approved too, with automatic approval), after
    refusing a duplicate: DuplicateCertificate, or InvalidTransition for a correction. (A
    batch's chunk is recorded at once: issuer/batch_records.py.)"""
    code, registration, target_id = ready.code, ready.registration, ready.corrects
    kind = cert_type(code)
    assert kind is not None
    if target_id is not None:
        _check_correction(session, department.id, target_id, code, registration)
    else:
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
        request=ready.clean,
        submitted_by=actor,
        corrects=target_id,
        ward_code=ready.ward,
        aadhaar_last4=ready.aadhaar_last4,
        aadhaar_hmac=ready.aadhaar_hmac,
        due_at=due_for(settings, kind, now),
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        # Another request for the same registration (or another correction of the same
        # certificate) won the race between our check and insert.
        session.rollback()
        if target_id is not None:
            raise InvalidTransition(f"certificate {target_id} already has a correction in "
                                    "progress", state=State.ISSUED.value) from None
        winner = find_active(session, department.id, code, registration)
        raise _duplicate(winner, department.id) from None
    audit.record(session, actor=actor, action="submit", certificate_id=record.id,
                 details={"type": code, "registration_number": registration,
                          "ward": ready.ward, "corrects": target_id})
    if department.approval == "automatic":
        approve(session, record, AUTO_APPROVER, rule="automatic")
    return record


def _ward_code(session: Session, department_id: str, name_en: str) -> str:
    office = wards.resolve(session, department_id, name_en)
    if office is None:
        raise ValidationFailed([FieldError("ward_office.en", "unknown_ward",
                                           "is not one of the department's ward offices")])
    return office if isinstance(office, str) else office.code


def due_for(settings: Settings | None, kind: CertType, now: datetime) -> datetime:
    """The RTS deadline: the type's time limit (PRAMAAN_RTS_DAYS overrides it) in working days
    of the holiday calendar (PRAMAAN_HOLIDAYS_FILE, else the shipped one)."""
    if settings is None:
        return due_at(shipped_calendar(), now, kind.rts_days)
    return due_at(load_calendar(settings), now, rts_days(settings, kind))


def _check_correction(session: Session, department_id: str, target_id: str, code: str,
                      registration: str) -> None:
    """A correction corrects an issued certificate of the same department, type and
    registration, one correction at a time."""
    target = session.get(Certificate, target_id)
    if target is None or target.department_id != department_id:
        raise ValidationFailed([FieldError(CORRECTS, "not_found",
                                           f"no certificate {target_id} in this department")])
    if target.state != State.ISSUED.value:
        raise InvalidTransition(f"certificate {target_id} is {target.state}; only an issued "
                                "certificate can be corrected", state=target.state)
    errors = []
    if target.cert_type != code:
        errors.append(FieldError("type", "correction_mismatch",
                                 f"a correction of a {target.cert_type} certificate is a "
                                 f"{target.cert_type} request"))
    if target.registration_number != registration:
        errors.append(FieldError("registration_number", "correction_mismatch",
                                 "a correction keeps the registration number "
                                 f"{target.registration_number}"))
    if errors:
        raise ValidationFailed(errors)
    pending = session.scalars(
        select(Certificate.id).where(Certificate.corrects == target_id,
                                     Certificate.state.in_([s.value for s in PENDING_STATES]))
    ).first()
    if pending is not None:
        raise InvalidTransition(f"certificate {target_id} already has correction {pending} in "
                                "progress", state=target.state, correction=pending)


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
