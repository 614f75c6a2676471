"""Ward offices: which office a request belongs to (its numbering series and RTS officers)."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.models import WardOffice

# Words that name the kind of office, not the office: left out of a derived code.
_GENERIC = {"WARD", "OFFICE", "KSHETRIYA", "KARYALAYA", "REGIONAL", "THE", "OF", "AND"}
MAX_CODE = 8


def same_name(a: str, b: str) -> bool:
    """Office names compare without regard to case, spacing or Unicode form."""
    return _key(a) == _key(b)


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def derived_code(name_en: str) -> str:
    """A short code from the English name when the department has not configured its offices:
    the initials of its distinctive words ("Kothrud-Bavdhan Ward Office" -> "KB")."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name_en.upper()) if w and w not in _GENERIC]
    code = "".join(w[0] for w in words)[:MAX_CODE]
    return code or "W"


def configured(session: Session, department_id: str) -> list[WardOffice]:
    return list(session.scalars(
        select(WardOffice).where(WardOffice.department_id == department_id)
        .order_by(WardOffice.code)
    ))


def resolve(session: Session, department_id: str, name_en: str) -> WardOffice | str | None:
    """The configured office named `name_en`; None if the department configured offices and this
    is not one of them; else (no offices configured) a code derived from the name."""
    offices = configured(session, department_id)
    if not offices:
        return derived_code(name_en)
    return next((o for o in offices if same_name(o.name_en, name_en)), None)
