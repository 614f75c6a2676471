"""A department's part of the audit chain, for its auditors, in pages.

The chain is one for the corporation (one hash chain cannot be split). An event belongs to a
department when it concerns one of its certificates, when one of its tokens or people did it,
or when it names the department (administration, refusals: `department`, `target_department`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, literal, or_, select
from sqlalchemy.orm import Session

from issuer.db import as_utc
from issuer.errors import FieldError, ValidationFailed
from issuer.models import AuditEvent, Certificate, User
from issuer.plain_fields import WholeParam

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_SEQ = 2**31 - 1  # audit_events.seq is a 32-bit integer
# The query parameters checked here, published from these objects (api_openapi.py).
AFTER = WholeParam("after", 0, MAX_SEQ, 0, f"a whole number from 0 to {MAX_SEQ}",
                   exact_digits=True, description="next_after of a page (a seq, exclusive)")
LIMIT = WholeParam("limit", 1, MAX_LIMIT, DEFAULT_LIMIT, f"a whole number from 1 to {MAX_LIMIT}",
                   exact_digits=True)


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_after: int | None  # pass as ?after= for the next page


def belongs_to(department_id: str) -> ColumnElement[bool]:
    """The condition an event must meet to be shown to `department_id`'s auditors."""
    certificates = select(Certificate.id).where(Certificate.department_id == department_id)
    people = select(literal("user:", String) + User.username).where(
        User.department_id == department_id)
    return or_(
        AuditEvent.certificate_id.in_(certificates),
        # Department codes hold no '%', '_' or '/' (issuer/departments.CODE), so the prefix is
        # exact; older codes are still matched exactly by the other conditions.
        AuditEvent.actor.startswith(f"token:{department_id}/", autoescape=True),
        AuditEvent.actor.in_(people),
        AuditEvent.details["department"].as_string() == department_id,
        AuditEvent.details["target_department"].as_string() == department_id,
    )


def audit_page(session: Session, department_id: str, args: Mapping[str, str]) -> AuditPage:
    """Oldest first. Query: after (a seq, exclusive), limit (1 to MAX_LIMIT)."""
    errors: list[FieldError] = []
    after = AFTER.parse(args.get("after"), errors)
    limit = LIMIT.parse(args.get("limit"), errors)
    if errors:
        raise ValidationFailed(errors)
    rows = list(session.scalars(
        select(AuditEvent).where(AuditEvent.seq > after, belongs_to(department_id))
        .order_by(AuditEvent.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].seq if more else None)


def event_view(event: AuditEvent) -> dict[str, Any]:
    return {"seq": event.seq, "at": as_utc(event.at).isoformat(), "actor": event.actor,
            "action": event.action, "certificate_id": event.certificate_id,
            "details": event.details, "prev_hash": event.prev_hash, "hash": event.hash}
