"""Lists of a department's certificates: filtered, paged by a cursor, contact details masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from issuer.db import as_utc
from issuer.errors import FieldError, ValidationFailed
from issuer.masking import applicant_view
from issuer.models import Certificate, State
from issuer.plain_fields import ChoiceParam, TextParam, WholeParam

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# The query parameters checked here, published from these objects (api_openapi.py).
STATE = ChoiceParam("state", tuple(s.value for s in State),
                    f"must be one of: {', '.join(s.value for s in State)}")
LIMIT = WholeParam("limit", 1, MAX_LIMIT, DEFAULT_LIMIT, f"must be a number from 1 to {MAX_LIMIT}")
# A page's `next_after`: the last row's creation time in microseconds since the epoch (at most
# 17 digits, so within year 5138 and every one a datetime), '_', its id (a UUID as we write it).
CURSOR = re.compile(r"[0-9]{1,17}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
AFTER = TextParam("after", "query", 38, 54, "format", "pass back the next_after of a page",
                  pattern=CURSOR,
                  examples=("1767225600000000_00000000-0000-4000-8000-000000000000",),
                  description="next_after of a page (opaque: pass it back as it came)")


@dataclass(frozen=True)
class Page:
    records: list[Certificate]
    next_after: str | None  # pass as ?after= for the next page


def certificate_page(session: Session, department_id: str, args: Mapping[str, str]) -> Page:
    """Newest first. Query: state, type, registration_number, limit (1-500), after (cursor)."""
    errors: list[FieldError] = []
    query = select(Certificate).where(Certificate.department_id == department_id)
    state = STATE.parse(args.get("state"), errors)
    if state is not None:
        query = query.where(Certificate.state == state)
    if args.get("type") is not None:
        query = query.where(Certificate.cert_type == args["type"])
    if args.get("registration_number") is not None:
        query = query.where(Certificate.registration_number == args["registration_number"])
    limit = LIMIT.parse(args.get("limit"), errors)
    after = _cursor(args.get("after"), errors)
    if errors:
        raise ValidationFailed(errors)
    if after is not None:
        at, last_id = after
        query = query.where(or_(Certificate.created_at < at,
                                (Certificate.created_at == at) & (Certificate.id < last_id)))
    rows = list(session.scalars(
        query.order_by(Certificate.created_at.desc(), Certificate.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _cursor_of(rows[-1]) if more else None
    return Page(rows, cursor)


def _cursor_of(record: Certificate) -> str:
    """Opaque to clients and safe in a URL: the last row's creation time (microseconds since
    the epoch) and id."""
    micros = (as_utc(record.created_at) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{record.id}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(raw: str | None, errors: list[FieldError]) -> tuple[datetime, str] | None:
    cursor = AFTER.parse(raw, errors)
    if cursor is None:
        return None
    micros, _, last_id = cursor.partition("_")
    return _EPOCH + timedelta(microseconds=int(micros)), last_id


def list_view(record: Certificate) -> dict[str, Any]:
    """One line of a list: no particulars beyond the registration, contact details masked."""
    return {
        "id": record.id,
        "type": record.cert_type,
        "state": record.state,
        "registration_number": record.registration_number,
        "number": record.number,
        "ward_code": record.ward_code,
        "submitted_by": record.submitted_by,
        "due_at": as_utc(record.due_at).isoformat(),
        "corrects": record.corrects,
        "superseded_by": record.superseded_by,
        "applicant": applicant_view(record.request, record.aadhaar_last4),
        "links": {"self": f"/api/v1/certificates/{record.id}"},
    }
