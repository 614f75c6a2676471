"""What the officers' console lists: the queue awaiting approval (by ward office, soonest RTS
due first), a clerk's own requests, everything (auditors), a search; and one record's
particulars and history as the console shows them. Always within one department."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from issuer.certtypes import cert_type
from issuer.db import as_utc, utcnow
from issuer.masking import applicant_view
from issuer.models import AuditEvent, Certificate, State
from issuer.portal import normal_reference, printed_day

LONGEST_LIST: Final = 200
HIDDEN_PARTICULARS: Final = frozenset({"applicant", "type"})


@dataclass(frozen=True)
class Row:
    id: str
    cert_type: str
    registration: str
    holder: Mapping[str, str]
    ward: Mapping[str, str]
    state: str
    number: str
    due: str
    overdue: bool
    submitted_by: str


def row_of(record: Certificate, now: datetime) -> Row:
    kind = cert_type(record.cert_type)
    data = record.request if isinstance(record.request, dict) else {}
    holder: Mapping[str, str] = {"en": "", "mr": ""}
    ward: Mapping[str, str] = {"en": record.ward_code, "mr": record.ward_code}
    if kind is not None:
        try:
            holder = kind.seal_facts(data).holder
            ward = kind.ward_office(data)
        except (KeyError, TypeError, IndexError):
            pass  # a request stored before its type's rules changed: shown by its codes
    waiting = record.state in (State.SUBMITTED.value, State.APPROVED.value,
                               State.SIGNING.value, State.FAILED.value)
    return Row(record.id, record.cert_type, record.registration_number, holder, ward,
               record.state, record.number or "", printed_day(record.due_at),
               waiting and as_utc(record.due_at) < now, record.submitted_by)


def _rows(session: Session, query: Select[Certificate]) -> list[Row]:
    now = utcnow()
    return [row_of(r, now) for r in session.scalars(query.limit(LONGEST_LIST))]


def awaiting(session: Session, department_id: str) -> list[tuple[Mapping[str, str], list[Row]]]:
    """Requests awaiting approval, grouped by ward office, each group soonest due first."""
    rows = _rows(session, select(Certificate).where(
        Certificate.department_id == department_id,
        Certificate.state == State.SUBMITTED.value).order_by(Certificate.due_at))
    groups: dict[str, tuple[Mapping[str, str], list[Row]]] = {}
    for row in rows:
        groups.setdefault(row.ward["en"], (row.ward, []))[1].append(row)
    return [groups[name] for name in sorted(groups)]


def submitted_by(session: Session, department_id: str, actor: str) -> list[Row]:
    return _rows(session, select(Certificate).where(
        Certificate.department_id == department_id, Certificate.submitted_by == actor)
        .order_by(Certificate.created_at.desc()))


def everything(session: Session, department_id: str) -> list[Row]:
    return _rows(session, select(Certificate).where(Certificate.department_id == department_id)
                 .order_by(Certificate.created_at.desc()))


def search(session: Session, department_id: str, text: str) -> list[Row]:
    """Records whose registration number, certificate number or id is `text` (any case)."""
    wanted = normal_reference(text)
    if not wanted or len(wanted) > 64:
        return []
    return _rows(session, select(Certificate).where(
        Certificate.department_id == department_id,
        or_(Certificate.registration_number == wanted, Certificate.number == wanted,
            Certificate.id == wanted.lower())).order_by(Certificate.created_at.desc()))


def particulars(record: Certificate) -> list[tuple[str, str]]:
    """The request's fields as (dotted path, value), the applicant masked, in stored order."""
    data = record.request if isinstance(record.request, dict) else {}
    shown = [(path, value) for path, value in _flat(data, "")
             if path.split(".", 1)[0] not in HIDDEN_PARTICULARS]
    applicant = applicant_view(data, record.aadhaar_last4)
    shown.extend(_flat(applicant, "applicant."))
    return shown


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flat(item, f"{prefix}{key}.")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value, 1):
            yield from _flat(item, f"{prefix}{index}.")
    elif value is not None:
        yield prefix.rstrip("."), str(value)


def history(session: Session, record: Certificate) -> list[tuple[str, str, str]]:
    """(when, who, what) of the record's audit events, oldest first."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.certificate_id == record.id)
                             .order_by(AuditEvent.seq))
    return [(as_utc(e.at).strftime("%d-%m-%Y %H:%M UTC"), e.actor, e.action) for e in events]
