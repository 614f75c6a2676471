"""Does the DigiLocker account holder's Aadhaar name/DOB/UID fit the certificate? (PROTOCOL.md
§2.2, §10: DigiLocker sends them only when the issuer opted in, and asks issuers to match before
releasing a certificate.)

The people a certificate may be pulled by, per type: birth, the child (grown up) or the applicant
(a parent); death, the applicant or the relative named (the deceased has no locker); property
no-dues, any owner or the applicant. Names compare after NFC, case folding and collapsing spaces;
dates as days. A person matches when every detail sent that the record holds for that person is
equal, and at least one is; anything else is a near miss, which DigiLocker answers as pending
(Status 9), never with a certificate.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

_DATE_FORMATS = ("%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d")


@dataclass(frozen=True)
class Person:
    """What a record holds of one person who may pull it."""

    names: tuple[str, ...]  # normalised, every script the record has
    born: date | None = None
    uid_hmac: str | None = None


@dataclass(frozen=True)
class Claim:
    """The Aadhaar details DigiLocker sent (empty strings for those not sent); `uid_hmac` is the
    HMAC of the UID under our Aadhaar key, or "" when none was sent or it could not be computed."""

    full_name: str = ""
    dob: str = ""
    uid_sent: bool = False
    uid_hmac: str = ""

    @property
    def empty(self) -> bool:
        """Nothing sent: DigiLocker did not opt this issuer in, or left the details out."""
        return not (self.full_name or self.dob or self.uid_sent)


def normalise_name(name: str) -> str:
    """NFC, case-folded, runs of white space as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def parse_day(text: str) -> date | None:
    """A date written DD-MM-YYYY (DigiLocker's form), DD/MM/YYYY or YYYY-MM-DD; else None."""
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    return None


def matches(claim: Claim, people: Iterable[Person]) -> bool:
    """Whether some person fits every detail of `claim` the record holds for them (and one at
    least). An empty claim matches nobody: callers skip matching when nothing was sent."""
    return any(_fits(claim, person) for person in people)


def _fits(claim: Claim, person: Person) -> bool:
    confirmed = 0
    if claim.full_name:
        if normalise_name(claim.full_name) not in person.names:
            return False
        confirmed += 1
    if claim.dob and person.born is not None:
        if parse_day(claim.dob) != person.born:
            return False
        confirmed += 1
    if claim.uid_sent and person.uid_hmac is not None:
        if not claim.uid_hmac or claim.uid_hmac != person.uid_hmac:
            return False
        confirmed += 1
    return confirmed > 0


def people(kind: str, request: Mapping[str, Any], aadhaar_hmac: str | None) -> list[Person]:
    """Who may pull a certificate of type `kind` with this stored request (see the module)."""
    applicant = request.get("applicant") or {}
    found = [Person(_names(applicant.get("name")), None, aadhaar_hmac)]
    if kind == "birth":
        child = request.get("child") or {}
        found.append(Person(_names(child.get("name")), _iso_day(child.get("date_of_birth"))))
    elif kind == "death":
        found.append(Person(_names((request.get("relative") or {}).get("name"))))
    elif kind == "property_no_dues":
        found.extend(Person(_names(owner.get("name"))) for owner in request.get("owners") or ())
    return [person for person in found if person.names]


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, Mapping):
        return ()
    return tuple(normalise_name(v) for v in value.values() if isinstance(v, str) and v.strip())


def _iso_day(value: Any) -> date | None:
    return parse_day(value) if isinstance(value, str) else None
