"""A batch chunk's certificates recorded at once: submitted and approved in a few statements.

One at a time (`submit.record_request`, then `workflow.approve`) a record costs an INSERT, a
number, a status-list index and an UPDATE, each its own round trip and ORM flush. For a chunk
of an approved batch the same records, with the same fields and the same `submit` and `approve`
audit events in the same order, are written with one INSERT for all, one counter upsert per
numbering series (released numbers first, as `counters.certificate_number` takes them) and one
for the status-list indices.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from issuer import audit, counters
from issuer.certtypes import cert_type
from issuer.db import utcnow
from issuer.fields import today_ist
from issuer.models import Certificate, Department, State
from issuer.settings import Settings
from issuer.submit import Prepared, due_for
from issuer.workflow import AUTO_APPROVER, digest_of


@dataclass(frozen=True)
class Origin:
    """Who the chunk's records are from: the batch, its uploader and the officer who approved
    it (the department's automatic approval stands in for the officer where it applies)."""

    batch_id: str
    uploaded_by: str
    decided_by: str


def record_approved(session: Session, department: Department, origin: Origin,
                    rows: Sequence[tuple[int, Prepared]], settings: Settings | None) -> list[str]:
    """Record each (line, prepared request) of one certificate type, new (no correction) and
    checked free of a current certificate by the caller, as submitted and approved; their ids,
    in order. The unique index still refuses a registration that got a certificate since (the
    caller's transaction rolls back)."""
    if not rows:
        return []
    code = rows[0][1].code
    kind = cert_type(code)
    assert kind is not None and all(ready.code == code for _, ready in rows)
    assert all(ready.corrects is None for _, ready in rows)
    automatic = department.approval == "automatic"
    approver, rule = (AUTO_APPROVER, "automatic") if automatic else (origin.decided_by, "batch")
    assert approver != origin.uploaded_by  # the batch's approval refused that
    numbers = _numbers(session, kind.number_prefix, [ready.ward for _, ready in rows])
    indices = counters.status_indices(session, len(rows))
    now = utcnow()
    due = due_for(settings, kind, now)
    values: list[dict[str, Any]] = []
    # equivalent: strict=False/None (three lists of len(rows) by construction)
    for (line, ready), number, index in zip(rows, numbers, indices, strict=True):  # equivalent
        cert_id = str(uuid.uuid4())
        values.append({
            "id": cert_id, "department_id": department.id, "cert_type": code,
            "registration_number": ready.registration, "state": State.APPROVED.value,
            "request": ready.clean, "submitted_by": origin.uploaded_by,
            "corrects": None,  # equivalent: the bulk INSERT drops a misnamed key: NULL all the same
            "ward_code": ready.ward, "aadhaar_last4": ready.aadhaar_last4,
            "aadhaar_hmac": ready.aadhaar_hmac, "due_at": due, "created_at": now,
            "updated_at": now, "number": number, "status_index": index,
            "approved_by": approver})
        audit.record(session, actor=origin.uploaded_by, action="submit", certificate_id=cert_id,
                     details={"type": code, "registration_number": ready.registration,
                              "ward": ready.ward, "corrects": None,
                              "batch": origin.batch_id, "line": line})
        audit.record(session, actor=approver, action="approve", certificate_id=cert_id,
                     details={"number": number, "rule": rule,
                              "fields_digest": digest_of(ready.clean, ready.aadhaar_hmac)})
    session.execute(insert(Certificate), values)
    return [value["id"] for value in values]


def _numbers(session: Session, prefix: str, wards: Sequence[str]) -> list[str]:
    """A number for each row, from its ward office's series, drawn in row order."""
    year = today_ist().year
    wanted: dict[str, int] = {}
    for ward in wards:
        wanted[ward] = wanted.get(ward, 0) + 1
    drawn = {ward: iter(counters.certificate_numbers(session, prefix, year, ward, count))
             for ward, count in wanted.items()}
    return [next(drawn[ward]) for ward in wards]
