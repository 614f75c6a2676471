"""API bearer tokens: random, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.errors import Unauthorized
from issuer.models import ApiToken, Department

ROLES = ("clerk", "officer", "auditor", "admin")  # what each may do: issuer/permissions.py
MAX_NAME = 30


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, department: Department, name: str, role: str = "admin") -> str:
    """A new token for `department`; the caller must show it now, it cannot be recovered."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not 1 <= len(name) <= MAX_NAME:
        # The actor written into audit events is token:<department>/<name>.
        raise ValueError(f"token names are 1 to {MAX_NAME} characters")
    # Two tokens with one name would be one audit actor. The database refuses it too
    # (uq_api_tokens_department_name, also for revoked tokens, whose name stays in the audit
    # chain); asking first gives the caller a clear error instead of an IntegrityError.
    taken = session.scalars(
        select(ApiToken.id).where(ApiToken.department_id == department.id, ApiToken.name == name)
    ).first()
    if taken is not None:
        raise ValueError(f"department {department.id} already has a token named {name!r} "
                         "(names are unique per department: each is an audit actor)")
    token = "pmn_" + secrets.token_urlsafe(32)  # equivalent: None (the default is 32 bytes)
    session.add(ApiToken(department_id=department.id, name=name, role=role,
                         token_sha256=_hash(token)))
    session.flush()
    return token


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
    return Principal(department, api_token.name, api_token.role)
