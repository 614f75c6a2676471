"""Bulk issuance: a file of requests becomes a batch, an officer approves it as a whole, and its
rows become certificates in chunks, each chunk committed and then handed to the issue jobs.

Nothing is lost or made twice: the same file (by content hash) or the same Idempotency-Key gives
back the batch it made; every valid row is kept until its certificate exists (the row names it);
making certificates resumes where a crash left it, a chunk at a time (no 10,000-row
transaction); a row whose registration got a certificate meanwhile keeps the reason instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit
from issuer.batch_files import Row, read_rows
from issuer.batch_records import Origin, record_approved
from issuer.certtypes import cert_type, known_types
from issuer.db import utcnow
from issuer.errors import (
    Conflict,
    DuplicateCertificate,
    FieldError,
    InvalidTransition,
    SampleNotSeen,
    ValidationFailed,
)
from issuer.models import Batch, BatchRow, Certificate, Department, State
from issuer.plain_fields import ChoiceParam, TextParam
from issuer.settings import Settings
from issuer.submit import (
    CORRECTS,
    Prepared,
    active_registrations,
    prepare,
)
from issuer.workflow import AUTO_APPROVER

MODES: Final = ("valid_rows", "all_or_nothing")
# The upload's parameters checked here, published from these objects (api_openapi.py).
MODE = ChoiceParam("mode", MODES, f"must be one of: {', '.join(MODES)}")
IDEMPOTENCY_KEY = TextParam("Idempotency-Key", "header", 1, 200, "length", "1 to 200 characters",
                            description="The same key again answers the batch it made (200); "
                                        "with another file, 409")
NOT_ALLOWED = ("not_allowed", "a type the department issues")


def batch_type() -> ChoiceParam:
    """The upload's `type`: a registered type (built when asked: types register at start-up)."""
    codes = tuple(sorted(known_types()))
    return ChoiceParam("type", codes, f"must be one of: {', '.join(codes)}",
                       missing=("required", "the type of every row, e.g. ?type=birth"),
                       in_code=(NOT_ALLOWED,),
                       description="The type of every row: here or as the form's `type`.")
CHUNK: Final = 200
"""Certificates made per transaction when a batch is approved."""


class BatchState:
    AWAITING_APPROVAL: Final = "awaiting_approval"
    REFUSED: Final = "refused"
    REJECTED: Final = "rejected"
    APPROVED: Final = "approved"
    ISSUING: Final = "issuing"


@dataclass(frozen=True)
class Upload:
    """What a department sent: the file's bytes and how to read and treat them."""

    data: bytes
    file_format: str
    cert_type: str
    mode: str = "valid_rows"
    file_name: str = "upload"
    idempotency_key: str | None = None


def upload(session: Session, department: Department, actor: str, sent: Upload,
           settings: Settings | None = None) -> tuple[Batch, bool]:
    """The batch of `sent`, and whether it is new: the department's batch of the same content
    or Idempotency-Key if there is one, else a new one with every row validated. The caller
    commits. Raises ValidationFailed for a file that cannot be read or a bad type or mode, and
    Conflict for an Idempotency-Key used before with another file."""
    digest = hashlib.sha256(sent.data).hexdigest()
    earlier = _earlier(session, department.id, digest, sent.idempotency_key)
    if earlier is not None:
        return earlier, False
    _check_request(department, sent)
    rows = read_rows(sent.data, sent.file_format)
    valid, errors = _validated(session, department, sent.cert_type, rows, settings)
    refused = not valid or (bool(errors) and sent.mode == "all_or_nothing")
    now = utcnow()
    batch = Batch(id=str(uuid.uuid4()), department_id=department.id, cert_type=sent.cert_type,
                  file_name=sent.file_name[:200], file_format=sent.file_format,
                  content_sha256=digest, idempotency_key=sent.idempotency_key,
                  mode=sent.mode, total_rows=len(rows), valid_rows=len(valid),
                  row_errors=errors, uploaded_by=actor, created_at=now, updated_at=now,
                  state=BatchState.REFUSED if refused else BatchState.AWAITING_APPROVAL)
    session.add(batch)
    try:
        session.flush()
    except IntegrityError:  # the same file or key, sent twice at once: the other one won
        session.rollback()
        winner = _earlier(session, department.id, digest, sent.idempotency_key)
        if winner is None:
            raise
        return winner, False
    if not refused:
        for start in range(0, len(valid), 1000):  # one INSERT per thousand rows
            session.execute(insert(BatchRow), [_row_values(batch.id, line, ready)
                                               for line, ready in valid[start:start + 1000]])
    audit.record(session, actor=actor, action="batch_upload", details={
        "batch": batch.id, "type": sent.cert_type, "sha256": digest, "rows": len(rows),
        "valid": len(valid), "invalid": len(errors), "state": batch.state})
    if not refused and department.approval == "automatic":
        _decide(session, batch, AUTO_APPROVER, BatchState.APPROVED, rule="automatic")
    return batch, True


def _earlier(session: Session, department_id: str, digest: str,
             key: str | None) -> Batch | None:
    if key is not None:
        keyed = session.scalars(select(Batch).where(Batch.department_id == department_id,
                                                    Batch.idempotency_key == key)).first()
        if keyed is not None:
            if keyed.content_sha256 != digest:
                raise Conflict(f"Idempotency-Key {key!r} was used for another file (batch "
                               f"{keyed.id})", batch_id=keyed.id)
            return keyed
    return session.scalars(select(Batch).where(Batch.department_id == department_id,
                                               Batch.content_sha256 == digest)).first()


def _check_request(department: Department, sent: Upload) -> None:
    errors: list[FieldError] = []
    if cert_type(sent.cert_type) is None or sent.cert_type not in department.cert_types:
        errors.append(FieldError("type", NOT_ALLOWED[0], f"department {department.id} issues "
                                 f"{', '.join(sorted(department.cert_types))}"))
    MODE.parse(sent.mode, errors)
    IDEMPOTENCY_KEY.parse(sent.idempotency_key, errors)
    if errors:
        raise ValidationFailed(errors)


def _validated(session: Session, department: Department, code: str, rows: Sequence[Row],
               settings: Settings | None,
               ) -> tuple[list[tuple[int, Prepared]], list[dict[str, Any]]]:
    """The valid rows (line, prepared) and the bad ones' errors, in file order. A row repeating
    an earlier row's registration, or one that already has a current certificate, is bad."""
    judged: list[tuple[int, Prepared | list[FieldError]]] = []
    first_line: dict[str, int] = {}
    for row in rows:
        problems = _row_problems(session, department, code, row, settings)
        if isinstance(problems, Prepared):
            earlier = first_line.setdefault(problems.registration, row.line)
            if earlier != row.line:
                problems = [FieldError("registration_number", "duplicate_in_file",
                                       f"line {earlier} has the same registration number")]
        judged.append((row.line, problems))
    registrations = list(first_line)
    taken: set[str] = set()
    for start in range(0, len(registrations), 500):  # one query per 500 rows, not one a row
        taken |= active_registrations(session, department.id, code,
                                      registrations[start:start + 500])
    valid: list[tuple[int, Prepared]] = []
    errors: list[dict[str, Any]] = []
    for line, problems in judged:
        if isinstance(problems, Prepared):
            if problems.registration not in taken:
                valid.append((line, problems))
                continue
            problems = [FieldError("registration_number", "duplicate",
                                   "a current certificate exists for this registration")]
        errors.append({"line": line, "errors": [e.as_dict() for e in problems]})
    return valid, errors


def _row_problems(session: Session, department: Department, code: str, row: Row,
                  settings: Settings | None) -> Prepared | list[FieldError]:
    if row.problem is not None:
        return [row.problem]
    data = dict(row.data)
    if data.setdefault("type", code) != code:
        return [FieldError("type", "mismatch", f"this batch is of {code} requests")]
    if data.get(CORRECTS) is not None:
        return [FieldError(CORRECTS, "not_in_batch", "corrections are sent one at a time")]
    try:
        return prepare(session, department, data, settings)
    except ValidationFailed as exc:
        return list(exc.errors)


def _row_values(batch_id: str, line: int, ready: Prepared) -> dict[str, Any]:
    return {"batch_id": batch_id, "line": line, "request": ready.clean,
            "registration_number": ready.registration, "ward_code": ready.ward,
            "aadhaar_last4": ready.aadhaar_last4, "aadhaar_hmac": ready.aadhaar_hmac}


def approve_batch(session: Session, batch: Batch, actor: str) -> None:
    """awaiting_approval -> approved, by someone other than the uploader who has opened a
    specimen of its rows (issuer/batch_sample.py; audited). The caller commits, then has the
    certificates made (`make_certificates`, a job)."""
    _decide(session, batch, actor, BatchState.APPROVED, rule="officer")


def reject_batch(session: Session, batch: Batch, actor: str, reason: str) -> None:
    """awaiting_approval -> rejected, with the reason (audited); no certificate is made."""
    _decide(session, batch, actor, BatchState.REJECTED, rule="officer", reason=reason)


def _decide(session: Session, batch: Batch, actor: str, state: str, *, rule: str,
            reason: str | None = None) -> None:
    if batch.state != BatchState.AWAITING_APPROVAL:
        raise InvalidTransition(f"batch {batch.id} is {batch.state}; only a batch awaiting "
                                "approval can be approved or rejected", state=batch.state)
    if actor == batch.uploaded_by:
        raise InvalidTransition("the approver must not be the person who uploaded the batch",
                                state=batch.state)
    if state == BatchState.APPROVED and rule == "officer" and actor not in batch.sample_seen_by:
        raise SampleNotSeen(f"open a specimen of the batch's rows first: GET /api/v1/batches/"
                            f"{batch.id}/sample", batch_id=batch.id)
    batch.state, batch.decided_by, batch.decided_at = state, actor, utcnow()
    batch.decision_reason = reason
    batch.updated_at = batch.decided_at
    action = "batch_approve" if state == BatchState.APPROVED else "batch_reject"
    audit.record(session, actor=actor, action=action,
                 details={"batch": batch.id, "rows": batch.valid_rows, "rule": rule,
                          **({"reason": reason} if reason else {})})


def make_certificates(sessions: Callable[[], Session], batch_id: str,
                      settings: Settings | None,
                      enqueue: Callable[[Sequence[str]], None]) -> int:
    """Make the certificates of an approved batch's rows, CHUNK rows per transaction, each
    chunk committed and then passed to `enqueue` (the issue jobs). Resumes where an earlier
    run stopped; returns how many certificates this run made."""
    made, raced = 0, 0
    while True:
        try:
            with sessions() as session:
                chunk = _make_chunk(session, batch_id, settings)
        except (DuplicateCertificate, InvalidTransition, IntegrityError):
            # A request for a row's registration came in between our check and insert (the
            # unique index refused ours): the chunk was rolled back whole; the next pass gives
            # that row its reason instead.
            raced += 1
            if raced > 3:  # equivalent bound: each pass settles at least one such row
                raise
            continue
        if chunk is None:
            return made
        if chunk:
            enqueue(chunk)
            made += len(chunk)


def _make_chunk(session: Session, batch_id: str, settings: Settings | None) -> list[str] | None:
    """One chunk: the ids of the approved certificates made (committed), or None when the batch
    has no row left (it is then `issuing`) or is not approved."""
    with session.begin():
        batch = session.get(Batch, batch_id, with_for_update=True)  # one maker per batch
        if batch is None or batch.state != BatchState.APPROVED:
            return None
        rows = session.scalars(select(BatchRow).where(
            BatchRow.batch_id == batch_id, BatchRow.certificate_id.is_(None),
            BatchRow.error.is_(None)).order_by(BatchRow.line).limit(CHUNK)).all()
        if not rows:
            batch.state, batch.updated_at = BatchState.ISSUING, utcnow()
            return None
        department = session.get(Department, batch.department_id)
        assert department is not None and batch.decided_by is not None
        taken = active_registrations(session, department.id, batch.cert_type,
                                     [row.registration_number for row in rows])
        fresh = []
        for row in rows:
            if row.registration_number in taken:
                row.error = "a current certificate for this registration was made meanwhile"
            else:
                fresh.append(row)
        made = record_approved(session, department,
                               Origin(batch.id, batch.uploaded_by, batch.decided_by),
                               [(row.line, _prepared(batch, row)) for row in fresh], settings)
        for row, certificate_id in zip(fresh, made, strict=True):
            row.certificate_id = certificate_id
        batch.updated_at = utcnow()
    return made


def _prepared(batch: Batch, row: BatchRow) -> Prepared:
    return Prepared(batch.cert_type, row.request, row.aadhaar_last4, row.aadhaar_hmac,
                    row.registration_number, row.ward_code, None)


def retry_failed_rows(session: Session, batch: Batch, actor: str) -> list[str]:
    """Retry every failed certificate of the batch (issuer/recovery.retry: audited, refused for
    one whose registration got another certificate meanwhile), each committed on its own; the
    ids to enqueue. Rows that were invalid or got no certificate stay as they are."""
    from issuer.recovery import retry

    failed = session.scalars(select(Certificate.id).join(
        BatchRow, BatchRow.certificate_id == Certificate.id).where(
        BatchRow.batch_id == batch.id, Certificate.state == State.FAILED.value)
        .order_by(BatchRow.line)).all()
    retried = []
    for certificate_id in failed:
        try:
            retry(session, certificate_id, actor)
            session.commit()
        except InvalidTransition:
            session.rollback()
            continue
        retried.append(certificate_id)
    return retried


class Progress(TypedDict):
    """A batch's rows by where they are, with the rate of issue so far and the time left."""

    pending: int
    issued: int
    failed: int
    rate_per_second: float | None
    eta_seconds: int | None
    done: bool


def progress(session: Session, batch: Batch, now: dt.datetime | None = None) -> Progress:
    """Counts of the batch's rows by where they are (pending, issued, failed: invalid rows,
    rows that got no certificate, and failed certificates), with the rate of issue so far and
    the time left at that rate."""
    states: dict[str, int] = {state: count for state, count in session.execute(
        select(Certificate.state, func.count()).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch.id).group_by(Certificate.state)).all()}
    refused_rows = session.scalar(select(func.count()).select_from(BatchRow).where(
        BatchRow.batch_id == batch.id, BatchRow.error.is_not(None))) or 0
    issued = states.get(State.ISSUED.value, 0)
    failed = states.get(State.FAILED.value, 0) + refused_rows + len(batch.row_errors)
    pending = (0 if batch.state in (BatchState.REFUSED, BatchState.REJECTED)
               else batch.total_rows - issued - failed)
    first, last = session.execute(
        select(func.min(Certificate.issued_at), func.max(Certificate.issued_at)).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch.id)).one()
    rate = _rate(issued, first, last)
    return {"pending": pending, "issued": issued, "failed": failed,
            "rate_per_second": round(rate, 2) if rate else None,
            "eta_seconds": round(pending / rate) if rate and pending else None,
            "done": pending == 0}


def _rate(issued: int, first: dt.datetime | None, last: dt.datetime | None) -> float | None:
    if issued < 2 or first is None or last is None:
        return None
    span = (last - first).total_seconds()
    return (issued - 1) / span if span > 0 else None


def error_report(batch: Batch) -> Iterable[list[str]]:
    """The bad rows as CSV rows: line, field, code, message (a header first)."""
    yield ["line", "field", "code", "message"]
    for bad in batch.row_errors:
        for error in bad["errors"]:
            yield [str(bad["line"]), error["field"], error["code"], error["message"]]

