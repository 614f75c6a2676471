"""People's sign-in sessions for the console, and the lock-out after failed sign-ins.

A session is a random cookie value of which only the SHA-256 is stored, with its own CSRF token,
an idle timeout and an absolute end. After MAX_FAILURES wrong passwords in a row an account is
locked for LOCK_FOR; a locked account is refused with the same words as a wrong password (no
oracle for which usernames exist), after the same work. Every sign-in, failure, lock and
sign-out is an audit event. Nothing here knows of HTTP: the caller sets and reads the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer import audit
from issuer.db import as_utc, utcnow
from issuer.errors import Unauthorized
from issuer.models import Department, User, WebSession
from issuer.tokens import Principal
from issuer.users import authenticate_user

MAX_FAILURES: Final = 5
LOCK_FOR: Final = timedelta(minutes=15)
IDLE: Final = timedelta(minutes=30)
LONGEST: Final = timedelta(hours=12)
TOUCH_EVERY: Final = timedelta(minutes=1)  # seen_at is written at most this often


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, their forms' token, and the cookie value (only at sign-in)."""

    principal: Principal
    csrf: str
    full_name: str
    cookie: str = ""


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def sign_in(session: Session, username: str, password: str,
            now: datetime | None = None) -> SignedIn:
    """A new session for `username`, or Unauthorized (users.WRONG) for a wrong password, an
    unknown, disabled or locked account. The caller commits either way: a failure is counted."""
    now = now or utcnow()
    user = session.scalars(select(User).where(User.username == username)).first()
    locked = user is not None and user.locked_until is not None and as_utc(
        user.locked_until) > now
    try:
        who = authenticate_user(session, username, password)  # the same work in every case
    except Unauthorized:
        _failed(session, user, now)
        raise
    assert user is not None
    if locked:
        audit.record(session, actor=f"user:{username}", action="sign_in_refused",
                     details={"reason": "locked"})
        raise Unauthorized(_wrong())
    user.failed_sign_ins = 0
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(WebSession(id_sha256=_digest(cookie), user_id=user.id, csrf=csrf,
                           created_at=now, seen_at=now, ends_at=now + LONGEST))
    audit.record(session, actor=who.actor, action="sign_in", details={"role": who.role})
    return SignedIn(who, csrf, user.full_name, cookie)


def _wrong() -> str:
    from issuer.users import WRONG

    return WRONG


def _failed(session: Session, user: User | None, now: datetime) -> None:
    if user is None:
        return
    user.failed_sign_ins += 1
    details: dict[str, object] = {"failures": user.failed_sign_ins}
    if user.failed_sign_ins >= MAX_FAILURES:
        user.locked_until = now + LOCK_FOR
        user.failed_sign_ins = 0
        details["locked_until"] = user.locked_until.isoformat()
    audit.record(session, actor=f"user:{user.username}", action="sign_in_failed",
                 details=details)


def current(session: Session, cookie: str, now: datetime | None = None) -> SignedIn | None:
    """The session this cookie opens, if it is live (not signed out, not idle past IDLE, not
    past its end, its account enabled); None otherwise. The caller commits (seen_at)."""
    if not cookie:
        return None
    now = now or utcnow()
    row = session.execute(
        select(WebSession, User, Department)
        .join(User, User.id == WebSession.user_id)
        .join(Department, Department.id == User.department_id)
        .where(WebSession.id_sha256 == _digest(cookie))
    ).first()
    if row is None:
        return None
    web, user, department = row
    if (web.ended_at is not None or user.disabled_at is not None
            or as_utc(web.seen_at) + IDLE <= now or as_utc(web.ends_at) <= now):
        return None
    if now - as_utc(web.seen_at) >= TOUCH_EVERY:
        web.seen_at = now
    who = Principal(department, user.username, user.role, kind="user")
    return SignedIn(who, web.csrf, user.full_name)


def sign_out(session: Session, cookie: str, now: datetime | None = None) -> None:
    """End the session of this cookie (if any). The caller commits."""
    now = now or utcnow()
    web = session.get(WebSession, _digest(cookie)) if cookie else None
    if web is None or web.ended_at is not None:
        return
    web.ended_at = now
    user = session.get(User, web.user_id)
    audit.record(session, actor=f"user:{user.username if user else '?'}", action="sign_out")


def same_token(sent: str, kept: str) -> bool:
    """A form's CSRF token against the session's, in constant time."""
    return bool(kept) and secrets.compare_digest(sent.encode(), kept.encode())
