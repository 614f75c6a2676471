"""API bearer tokens: random, shown once, stored only as SHA-256, expiring and revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit
from issuer.db import as_utc, utcnow
from issuer.errors import FieldError, NotFound, Unauthorized, ValidationFailed
from issuer.models import ApiToken, Department
from issuer.plain_fields import Chars, Fields, OneOf, WholeNumber

ROLES = ("clerk", "officer", "auditor", "admin")  # what each may do: issuer/permissions.py
MAX_NAME = 30
# A name appears in URLs (/api/v1/tokens/<name>/revoke) and in audit actors: keep it plain.
NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
DEFAULT_EXPIRES_DAYS = 365
MAX_EXPIRES_DAYS = 3650  # a credential nobody remembers making should not outlive a decade
# POST /api/v1/tokens, checked here and published from the same objects (api_schemas.py).
NAME = Chars("name", 1, MAX_NAME, ("length", f"token names are 1 to {MAX_NAME} characters"),
             pattern=NAME_CHARS,
             mismatch=("characters", "token names use letters, digits, '.', '_' and '-' only"),
             description="Unique in the department (code taken)")
ROLE = OneOf("role", ROLES, f"role must be one of {ROLES}")
EXPIRES_DAYS = WholeNumber("expires_days", 1, MAX_EXPIRES_DAYS, DEFAULT_EXPIRES_DAYS, "range",
                           f"a whole number of days, 1 to {MAX_EXPIRES_DAYS}")
NEW_TOKEN = Fields((NAME, ROLE, EXPIRES_DAYS))


class TokenRefused(ValidationFailed, ValueError):
    """A token that cannot be made, with field errors (an API 422). Also a ValueError: its text
    is the reason, as callers of create_token have always read it."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(errors, "; ".join(e.message for e in errors))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_token(session: Session, department: Department, name: object, role: object,
                    expires_days: object) -> list[FieldError]:
    """Every reason the token cannot be made (empty: it can). Arguments may come straight from a
    JSON body, hence `object`."""
    errors: list[FieldError] = []
    bad_name = NAME.check(name)
    if bad_name is not None:
        # The actor written into audit events is token:<department>/<name>.
        errors.append(bad_name)
    elif isinstance(name, str) and find_token(session, department.id, name) is not None:
        # Two tokens with one name would be one audit actor. The database refuses it too
        # (uq_api_tokens_department_name, also for revoked tokens, whose name stays in the audit
        # chain); asking first gives the caller a clear error instead of an IntegrityError.
        errors.append(_taken(department.id, name))
    errors += [e for e in (ROLE.check(role), EXPIRES_DAYS.check(expires_days)) if e]
    return errors


def _taken(department_id: str, name: str) -> FieldError:
    return FieldError("name", "taken",
                      f"department {department_id} already has a token named {name!r} "
                      "(names are unique per department: each is an audit actor)")


def create_token(session: Session, department: Department, name: str, role: str = "admin", *,
                 expires_days: int = DEFAULT_EXPIRES_DAYS, actor: str | None = None) -> str:
    """A new token for `department`; the caller must show it now, it cannot be recovered.

    With `actor` (an operator, an admin) the creation is an audit event in the caller's
    transaction. `pramaan init` makes its first tokens before anyone exists to name."""
    errors = check_new_token(session, department, name, role, expires_days)
    if errors:
        raise TokenRefused(errors)
    token = "pmn_" + secrets.token_urlsafe(32)  # equivalent: None (the default is 32 bytes)
    expires_at = utcnow() + timedelta(days=expires_days)
    department_id = department.id  # still readable after a failed flush expires `department`
    row = ApiToken(department_id=department_id, name=name, role=role, token_sha256=_hash(token),
                   expires_at=expires_at)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        # Another transaction took the name between our check and this insert. The caller's
        # transaction is spoilt either way; it rolls back and its caller gets a field error.
        raise TokenRefused([_taken(department_id, name)]) from None
    if actor is not None:
        audit.record(session, actor=actor, action="token_create",
                     details={"department": department_id, "name": name, "role": role,
                              "expires_at": expires_at.isoformat()})
    return token


def find_token(session: Session, department_id: str, name: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.department_id == department_id,
                                                  ApiToken.name == name)).first()


def departments_with_token(session: Session, name: str) -> list[str]:
    """Departments that have a token called `name` (to audit an admin reaching for one)."""
    # Without the order_by (a mutant) SQLite still answers in department order, reading the
    # (department_id, name) unique index; PostgreSQL does not, and the test's PostgreSQL run
    # kills the mutant (tests/test_tokens.py, department_by_department).
    return list(session.scalars(select(ApiToken.department_id).where(ApiToken.name == name)
                                .order_by(ApiToken.department_id)))  # equivalent: see above


def list_tokens(session: Session, department_id: str | None = None) -> list[ApiToken]:
    """Tokens (never their secrets, which are not stored), oldest first."""
    query = select(ApiToken).order_by(ApiToken.department_id, ApiToken.id)
    if department_id is not None:
        query = query.where(ApiToken.department_id == department_id)
    return list(session.scalars(query))


def revoke_token(session: Session, department: Department, name: str, actor: str) -> ApiToken:
    """Revoke for good (the name stays taken: it is an audit actor). Revoking a revoked token
    changes nothing and records nothing."""
    row = session.scalars(select(ApiToken).where(ApiToken.department_id == department.id,
                                                 ApiToken.name == name).with_for_update()).first()
    if row is None:
        raise NotFound(f"department {department.id} has no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor=actor, action="token_revoke",
                     details={"department": department.id, "name": name, "role": row.role})
    return row


def token_status(row: ApiToken, now: datetime | None = None) -> str:
    """active, revoked or expired (revocation wins: it was someone's decision)."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= (now or utcnow()):
        return "expired"
    return "active"


def describe(row: ApiToken) -> dict[str, Any]:
    """A token as its department's admins see it: never the secret (which is not stored)."""
    return {
        "name": row.name,
        "role": row.role,
        "department": row.department_id,
        "actor": f"token:{row.department_id}/{row.name}",
        "status": token_status(row),
        "created_at": as_utc(row.created_at).isoformat(),
        "expires_at": as_utc(row.expires_at).isoformat() if row.expires_at else None,
        "revoked_at": as_utc(row.revoked_at).isoformat() if row.revoked_at else None,
    }


@dataclass(frozen=True)
class Principal:
    """Who is calling: the actor name written into audit events."""

    department: Department
    token_name: str  # the token's name, or the person's username
    role: str
    kind: str = "token"  # "token" (API client) or "user" (a person signed in)

    @property
    def actor(self) -> str:
        if self.kind == "user":
            return f"user:{self.token_name}"
        return f"token:{self.department.id}/{self.token_name}"


def authenticate(session: Session, token: str) -> Principal:
    row = session.execute(
        select(ApiToken, Department)
        # Without this onclause (a mutant) SQLAlchemy infers the same join from the one FK.
        .join(Department, Department.id == ApiToken.department_id)  # equivalent: onclause
        .where(ApiToken.token_sha256 == _hash(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    api_token, department = row
    # Tokens made before expiry existed (expires_at NULL) keep working until revoked.
    if token_status(api_token) == "expired":
        raise Unauthorized("the bearer token has expired; ask an administrator for a new one")
    return Principal(department, api_token.name, api_token.role)
