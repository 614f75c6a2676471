"""Departments: who issues which certificate types, and how their requests are approved."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer import audit
from issuer.certtypes import known_types
from issuer.errors import FieldError, ValidationFailed
from issuer.models import Department

# Lower-case letters, digits and '-': the code appears in audit actors (token:<code>/<name>)
# and is matched there as a prefix, so it holds no '/', '%' or '_'.
CODE = re.compile(r"[a-z][a-z0-9-]{1,63}")
MAX_NAME = 200
# "officer": maker-checker, a second person approves. "automatic": approved on submission, for a
# development department only (the audit log names the rule).
APPROVAL_RULES = ("officer", "automatic")


def department_errors(session: Session, code: object, name_en: object, name_mr: object,
                      approval: object, types: Sequence[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(code, str) or not CODE.fullmatch(code):
        errors.append(FieldError("code", "format", "2 to 64 characters: a lower-case letter, "
                                 "then lower-case letters, digits or '-'"))
    elif session.get(Department, code) is not None:
        errors.append(FieldError("code", "taken", f"department {code} exists"))
    for field, name in (("name_en", name_en), ("name_mr", name_mr)):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            errors.append(FieldError(field, "length", f"1 to {MAX_NAME} characters"))
    if approval not in APPROVAL_RULES:
        errors.append(FieldError("approval", "choice",
                                 f"approval is one of {', '.join(APPROVAL_RULES)}"))
    unknown = sorted(set(types) - set(known_types()))
    if unknown or not types:
        errors.append(FieldError("types", "choice", "types are one or more of "
                                 f"{', '.join(sorted(known_types()))}"
                                 + (f" (not {', '.join(unknown)})" if unknown else "")))
    return errors


def add_department(session: Session, code: str, name_en: str, name_mr: str, *,
                   approval: str = "officer", types: Sequence[str] | None = None,
                   actor: str) -> Department:
    """A new department (every known type unless `types` says which), audited in the caller's
    transaction."""
    chosen = sorted(set(types)) if types is not None else sorted(known_types())
    errors = department_errors(session, code, name_en, name_mr, approval, chosen)
    if errors:
        raise ValidationFailed(errors)
    department = Department(id=code, name_en=name_en.strip(), name_mr=name_mr.strip(),
                            cert_types=chosen, approval=approval)
    session.add(department)
    session.flush()
    audit.record(session, actor=actor, action="department_add",
                 details={"department": code, "approval": approval, "types": chosen})
    return department


def list_departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.id)))
