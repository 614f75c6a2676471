"""Decisions on a request, each one transaction with its audit event: approve (maker-checker,
against the fields the officer saw), reject, revoke, and a clerk's amendment of a draft.

    submitted -> approved -> signing -> issued -> revoked | superseded (by a correction)
    submitted -> rejected

The caller commits, then (after approve) enqueues the issue job.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy.orm import Session

from digilocker.deliveries import plan_revoked
from issuer import audit, counters, published
from issuer.certtypes import cert_type
from issuer.db import utcnow
from issuer.errors import Conflict, InvalidTransition, ValidationFailed
from issuer.fields import today_ist
from issuer.models import Certificate, State
from issuer.plain_fields import Chars, Fields

AUTO_APPROVER = "system:auto-approve"
MAX_REASON = 500
# The body of a reject or revoke (a certificate's or a batch's), published from this object.
REASON = Chars("reason", 1, MAX_REASON, ("required", "give the reason"),
               long=("too_long", f"must be at most {MAX_REASON} characters"), not_blank=True)
REASON_BODY = Fields((REASON,), closed=False)  # other keys are ignored
# The body of an approval: optionally the digest the officer was shown (request_digest).
FIELDS_DIGEST = Chars("fields_digest", 64, 64, (
    "format", "the fields_digest shown with the request: 64 lower-case hex digits"),
    missing=("type", "the fields_digest shown with the request, as a string"),
    pattern=re.compile("[0-9a-f]{64}"), required=False,
    description="The fields_digest the officer was shown (SHA-256, hex); if the request has "
                "changed since, 409 request_changed. Absent or null: approve as it is now.")
APPROVAL_BODY = Fields((FIELDS_DIGEST,), closed=False)  # other keys are ignored


class StaleApproval(Conflict):
    code = "request_changed"
    title = "The request changed since it was shown"


def request_digest(record: Certificate) -> str:
    """SHA-256 of the stored request as shown to an officer, with the HMAC of the Aadhaar number
    it carried (kept out of the request), as canonical JSON. An approval that names a digest
    approves exactly these fields: an amendment of either changes it."""
    return digest_of(record.request, record.aadhaar_hmac)


def digest_of(request: Any, aadhaar_hmac: str | None) -> str:
    """`request_digest` of a request not (yet) in a record."""
    body = json.dumps({"request": request, "aadhaar_hmac": aadhaar_hmac},
                      # equivalent: ensure_ascii=None (falsy, the same as False)
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))  # equivalent
    return hashlib.sha256(body.encode()).hexdigest()


def _require_state(record: Certificate, wanted: State, doing: str) -> None:
    if record.state != wanted.value:
        raise InvalidTransition(
            f"certificate {record.id} is {record.state}; only a {wanted.value} certificate can "
            f"be {doing}", state=record.state)


def reason_of(body: Any) -> str:
    """The `reason` of a reject or revoke body: required, 1 to MAX_REASON characters."""
    reason = body.get("reason") if isinstance(body, dict) else None
    wrong = REASON.check(reason)
    if wrong is not None:
        raise ValidationFailed([wrong])
    return str(reason).strip()


def approve(session: Session, record: Certificate, actor: str, *,
            seen_digest: str | None = None, rule: str = "officer") -> None:
    """submitted -> approved: the certificate number and status-list index are drawn here.

    Never by the submitter; when `seen_digest` is given it must be the digest of the request
    as it is now (an amendment after the officer looked is not approved unseen)."""
    _require_state(record, State.SUBMITTED, "approved")
    if actor == record.submitted_by:
        raise InvalidTransition("the approver must not be the person who submitted",
                                state=record.state)
    digest = request_digest(record)
    if seen_digest is not None and seen_digest != digest:
        raise StaleApproval(
            f"certificate {record.id} was amended after the digest you approved was shown; "
            "look at it again", fields_digest=digest)
    kind = cert_type(record.cert_type)
    assert kind is not None
    record.number = counters.certificate_number(session, kind.number_prefix, today_ist().year,
                                                record.ward_code)
    record.status_index = counters.status_index(session)
    record.state = State.APPROVED.value
    record.approved_by = actor
    record.updated_at = utcnow()
    audit.record(session, actor=actor, action="approve", certificate_id=record.id,
                 details={"number": record.number, "rule": rule, "fields_digest": digest})


def reject(session: Session, record: Certificate, actor: str, reason: str) -> None:
    """submitted -> rejected, with the reason. No number was drawn, none is used."""
    _require_state(record, State.SUBMITTED, "rejected")
    record.state = State.REJECTED.value
    record.decided_by = actor
    record.decision_reason = reason
    record.updated_at = utcnow()
    audit.record(session, actor=actor, action="reject", certificate_id=record.id,
                 details={"reason": reason})


def revoke(session: Session, record: Certificate, actor: str, reason: str) -> None:
    """issued -> revoked, with the reason and date; verification reports both."""
    _require_state(record, State.ISSUED, "revoked")
    now = utcnow()
    record.state = State.REVOKED.value
    record.decided_by = actor
    record.decision_reason = reason
    record.revoked_at = now
    record.updated_at = now
    audit.record(session, actor=actor, action="revoke", certificate_id=record.id,
                 details={"reason": reason, "number": record.number})
    published.mark_status_changed(session)  # offline verifiers learn it at the next turn
    plan_revoked(session, record)  # delete it from a linked locker (the caller enqueues)


def amend(session: Session, record: Certificate, actor: str, request: dict[str, Any]) -> None:
    """A clerk replaces the fields of a request still waiting for approval (same type and
    registration; already validated by the caller). An approval against the old digest fails."""
    _require_state(record, State.SUBMITTED, "amended")
    before = request_digest(record)
    record.request = request
    record.updated_at = utcnow()
    audit.record(session, actor=actor, action="amend", certificate_id=record.id,
                 details={"before": before, "after": request_digest(record)})
