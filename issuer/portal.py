"""The citizen portal's lookup: a certificate found by what its holder knows.

A birth or death certificate is found by its registration number and the date of birth or
death, a property tax no-dues certificate by its certificate reference and the property id.
Every wrong combination gives the same answer (`None`): a wrong number, a right number with a
wrong date, a number of another type or of a record that never became a certificate. What is
found is the record as it stands now: a corrected certificate leads to its correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.db import as_utc
from issuer.fields import IST
from issuer.models import Certificate, State

MAX_REFERENCE = 64  # the registration_number column
MAX_CHAIN = 16  # corrections of corrections followed, at most


@dataclass(frozen=True)
class Kind:
    """What the portal asks for one type: the reference's name and the second fact's."""

    code: str
    second: str  # "date" (of birth/death: `person`.`field` in the request) or "property_id"
    person: str = ""
    field: str = ""


KINDS: Final = {
    "birth": Kind("birth", "date", "child", "date_of_birth"),
    "death": Kind("death", "date", "deceased", "date_of_death"),
    "property_no_dues": Kind("property_no_dues", "property_id"),
}

# A record in one of these states has nothing to show its holder: it never was and never will
# be a certificate. They are refused like a wrong combination.
_HIDDEN = (State.CANCELLED.value,)


@dataclass(frozen=True)
class Found:
    """The record the holder's details lead to, and what the holder may do with it."""

    record: Certificate

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def downloadable(self) -> bool:
        return self.record.state == State.ISSUED.value and self.record.pdf_path is not None


def parse_date(text: str) -> date | None:
    """A date as a browser's date field sends it (YYYY-MM-DD) or as the paper prints it
    (DD-MM-YYYY, also with / or .); None for anything else."""
    text = text.strip()
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def printed_day(moment: datetime | None) -> str:
    """A stored moment as the paper prints a date: its day in India, DD-MM-YYYY."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(IST).strftime("%d-%m-%Y")


def normal_reference(text: str) -> str:
    """References compare without regard to case or surrounding blanks, as they are stored."""
    return text.strip().upper()


def find(session: Session, kind: Kind, reference: str, second: str) -> Found | None:
    """The record for these details, followed to its current correction; None when they do
    not name one (whatever the reason)."""
    wanted = normal_reference(reference)
    if not wanted or len(wanted) > MAX_REFERENCE:
        return None
    records = session.scalars(
        select(Certificate)
        .where(Certificate.cert_type == kind.code, Certificate.registration_number == wanted,
               Certificate.state.not_in(_HIDDEN))
        .order_by(Certificate.created_at.desc())
    ).all()
    hits = [r for r in records if _second_matches(kind, r.request, second)]
    if not hits:
        return None
    # An issued certificate before a request still in the works (a correction not yet issued).
    hits.sort(key=lambda r: r.state not in (State.ISSUED.value, State.SUPERSEDED.value))
    return Found(_current(session, hits[0]))


def _second_matches(kind: Kind, request: Any, second: str) -> bool:
    if not isinstance(request, dict):
        return False
    if kind.second == "property_id":
        stored = request.get("property_id")
        return isinstance(stored, str) and normal_reference(stored) == normal_reference(second)
    day = parse_date(second)
    person = request.get(kind.person)
    return (day is not None and isinstance(person, dict)
            and person.get(kind.field) == day.isoformat())


def _current(session: Session, record: Certificate) -> Certificate:
    """A superseded certificate's current correction (the holder's details named the old)."""
    for _ in range(MAX_CHAIN):
        if record.superseded_by is None:
            return record
        newer = session.get(Certificate, record.superseded_by)
        if newer is None:
            return record
        record = newer
    return record
