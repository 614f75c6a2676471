"""Ward offices: which office a request belongs to (its numbering series and RTS officers)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer import audit
from issuer.errors import FieldError, NotFound, ValidationFailed
from issuer.models import Department, WardOffice

# Words that name the kind of office, not the office: left out of a derived code.
_GENERIC = {"WARD", "OFFICE", "KSHETRIYA", "KARYALAYA", "REGIONAL", "THE", "OF", "AND"}
MAX_CODE = 8
# A configured office's code: upper-case letters, digits and '-' (it is part of the numbering
# series and the RTS report), at most the column's 16 characters.
OFFICE_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")
MAX_NAME = 200
MAX_OFFICER = 100
# The Right to Public Services officers of an office (RTS Act, 2015, sections 3 and 8).
OFFICERS = ("designated_officer", "first_appellate", "second_appellate")


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


def add_office(session: Session, department_id: str, code: str, name_en: str, name_mr: str,
               officers: Mapping[str, str | None], *, actor: str) -> WardOffice:
    """A new ward office of a department, audited in the caller's transaction. Its English name
    is what requests name (resolve() matches it), so two offices never share one."""
    department = require_department(session, department_id)
    errors = _office_errors(session, department.id, code, name_en, name_mr)
    errors += _officer_errors(officers)
    if errors:
        raise ValidationFailed(errors)
    office = WardOffice(department_id=department.id, code=code, name_en=name_en.strip(),
                        name_mr=name_mr.strip(), **_cleaned(officers))
    session.add(office)
    session.flush()
    audit.record(session, actor=actor, action="ward_add",
                 details={"department": department.id, **office_view(office)})
    return office


def set_officers(session: Session, department_id: str, code: str,
                 changes: Mapping[str, str | None], *, actor: str) -> WardOffice:
    """Change an office's RTS officers (an empty name clears one); the audit event names each
    change as [before, after]."""
    office = session.get(WardOffice, (department_id, code), with_for_update=True)
    if office is None:
        raise NotFound(f"department {department_id} has no ward office {code}")
    errors = _officer_errors(changes)
    if not changes:
        errors.append(FieldError("officers", "required", "name at least one officer to change"))
    if errors:
        raise ValidationFailed(errors)
    diff: dict[str, list[str | None]] = {}
    for field, value in _cleaned(changes).items():
        before = getattr(office, field)
        if before != value:
            diff[field] = [before, value]
            setattr(office, field, value)
    audit.record(session, actor=actor, action="ward_set",
                 details={"department": department_id, "code": code, "changes": diff})
    return office


def list_offices(session: Session, department_id: str | None = None) -> list[WardOffice]:
    query = select(WardOffice).order_by(WardOffice.department_id, WardOffice.code)
    if department_id is not None:
        query = query.where(WardOffice.department_id == department_id)
    return list(session.scalars(query))


def departments_with(session: Session, code: str) -> list[str]:
    """The departments that have an office with this code (to find an office by code alone)."""
    return list(session.scalars(select(WardOffice.department_id).where(WardOffice.code == code)
                                .order_by(WardOffice.department_id)))


def office_department(session: Session, code: str) -> str:
    """The one department with an office `code`; NotFound when none or several have one."""
    owners = departments_with(session, code)
    if len(owners) != 1:
        raise NotFound(f"no ward office {code}" if not owners else
                       f"ward office {code} exists in {', '.join(owners)}: name the department")
    return owners[0]


def require_department(session: Session, department_id: str) -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(f"no department {department_id}")
    return department


def office_view(office: WardOffice) -> dict[str, Any]:
    return {"department": office.department_id, "code": office.code, "name_en": office.name_en,
            "name_mr": office.name_mr, **{f: getattr(office, f) for f in OFFICERS}}


def _office_errors(session: Session, department_id: str, code: object, name_en: object,
                   name_mr: object) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(code, str) or not OFFICE_CODE.fullmatch(code):
        errors.append(FieldError("code", "format", "1 to 16 characters: upper-case letters, "
                                 "digits or '-', not starting with '-'"))
    elif session.get(WardOffice, (department_id, code)) is not None:
        errors.append(FieldError("code", "taken", f"department {department_id} already has a "
                                 f"ward office {code}"))
    for field, name in (("name_en", name_en), ("name_mr", name_mr)):
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            errors.append(FieldError(field, "length", f"1 to {MAX_NAME} characters"))
    if isinstance(name_en, str) and name_en.strip():
        twin = next((o for o in configured(session, department_id)
                     if same_name(o.name_en, name_en)), None)
        if twin is not None:
            errors.append(FieldError("name_en", "taken", f"ward office {twin.code} is already "
                                     f"named {twin.name_en!r}"))
    return errors


def _officer_errors(officers: Mapping[str, object]) -> list[FieldError]:
    errors = [FieldError(field, "unknown", f"officers are {', '.join(OFFICERS)}")
              for field in officers if field not in OFFICERS]
    errors += [FieldError(field, "length", f"at most {MAX_OFFICER} characters")
               for field, name in officers.items()
               if field in OFFICERS and name is not None
               and (not isinstance(name, str) or len(name.strip()) > MAX_OFFICER)]
    return errors


def _cleaned(officers: Mapping[str, str | None]) -> dict[str, str | None]:
    """Names stripped; an empty name is no officer (None)."""
    return {field: (name.strip() or None) if name is not None else None
            for field, name in officers.items()}
