"""People's accounts (for the web console): a username, a role, a department, an argon2id hash.

Accounts are disabled, never deleted: a username stays an audit actor (`user:<username>`) for as
long as the chain is kept, so it is never handed to someone else.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit
from issuer.db import as_utc, utcnow
from issuer.errors import FieldError, NotFound, Unauthorized, ValidationFailed
from issuer.models import Department, User
from issuer.plain_fields import Chars, Fields
from issuer.tokens import ROLE, Principal

USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")  # 2-64: the users.username column
MAX_FULL_NAME = 200
MIN_PASSWORD, MAX_PASSWORD = 12, 128
# POST /api/v1/users, checked here and published from the same objects (api_schemas.py).
_USERNAME_RULE = ("format", "2 to 64 characters: a lower-case letter, then lower-case letters, "
                  "digits, '.', '_' or '-'")
USERNAME_FIELD = Chars("username", 2, 64, _USERNAME_RULE, pattern=USERNAME,
                       description="Unique across the corporation (code taken)")
FULL_NAME = Chars("full_name", 1, MAX_FULL_NAME,
                  ("length", f"the full name is 1 to {MAX_FULL_NAME} characters"), not_blank=True)
# What a password must be beyond its length, as (code, message). JSON Schema states the control
# characters (C0 and C1, as a pattern); password_errors checks the rest of Unicode's C category
# (format, private use, surrogates, unassigned) and the others, which need Unicode classes,
# counts of distinct characters or the username.
_INVISIBLE = ("control_character", "a password has no control or invisible format characters")
_ONE_CLASS = ("one_class", "mix at least two of: lower case, upper case, digits, others")
_REPETITIVE = ("repetitive", "use at least 5 different characters")
_HAS_USERNAME = ("contains_username", "a password must not contain the username")
NO_CONTROLS = re.compile(r"[^\x00-\x1f\x7f-\x9f]*")
PASSWORD = Chars("password", MIN_PASSWORD, MAX_PASSWORD,
                 ("length", f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
                 missing=("required", "a password is required"),
                 pattern=NO_CONTROLS, mismatch=_INVISIBLE,
                 in_code=(_INVISIBLE, _ONE_CLASS, _REPETITIVE, _HAS_USERNAME))
NEW_USER = Fields((USERNAME_FIELD, FULL_NAME, ROLE, PASSWORD))
# RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes), spelled out so that a
# change of the library's defaults is a visible change here (and old hashes are upgraded at the
# next sign-in: see authenticate_user).
TIME_COST, MEMORY_KIB, LANES = 3, 64 * 1024, 4
WRONG = "the username or password is wrong"  # one message for every refusal: no username oracle


def password_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=LANES,
                          hash_len=32, salt_len=16, type=Type.ID)


@functools.cache
def _decoy_hash() -> str:
    """A hash to verify against when there is no account to check, so an unknown or disabled
    username costs the same work as a wrong password."""
    return password_hasher().hash("not a password of anyone " + "x" * 16)


def password_errors(password: object, username: str = "") -> list[FieldError]:
    """What is wrong with a new password (empty: nothing)."""
    wrong = PASSWORD.check(password)
    if wrong is not None:
        return [wrong]
    text = str(password)  # the check passed: a string
    errors = []
    if any(unicodedata.category(c).startswith("C") for c in text):
        errors.append(FieldError("password", *_INVISIBLE))
    if len(set(map(_character_class, text))) < 2:
        errors.append(FieldError("password", *_ONE_CLASS))
    if len(set(text)) < 5:
        errors.append(FieldError("password", *_REPETITIVE))
    if username and username.lower() in text.lower():
        errors.append(FieldError("password", *_HAS_USERNAME))
    return errors


def _character_class(c: str) -> str:
    if c.isdigit():
        return "digit"
    if c.islower():
        return "lower"
    if c.isupper():
        return "upper"
    return "other"


def _taken(username: str) -> FieldError:
    return FieldError("username", "taken", f"the username {username!r} is taken (also by "
                      "disabled accounts: each is an audit actor)")


def user_errors(session: Session, username: object, full_name: object, role: object,
                password: object) -> list[FieldError]:
    """Every reason the account cannot be made (empty: it can). Arguments may come straight
    from a JSON body, hence `object`."""
    errors: list[FieldError] = []
    bad_username = USERNAME_FIELD.check(username)
    if bad_username is not None:
        errors.append(bad_username)
    elif session.scalars(select(User.id).where(User.username == username)).first() is not None:
        # Usernames are unique across the corporation: one audit actor, one person, forever.
        errors.append(_taken(str(username)))
    errors += [e for e in (FULL_NAME.check(full_name), ROLE.check(role)) if e]
    errors += password_errors(password, username if isinstance(username, str) else "")
    return errors


def add_user(session: Session, department: Department, username: str, full_name: str,
             role: str, password: str, *, actor: str,
             hasher: PasswordHasher | None = None) -> User:
    """A new account, audited in the caller's transaction. The password is kept only as an
    argon2id hash (`hasher`: other parameters, for tests of the upgrade path)."""
    errors = user_errors(session, username, full_name, role, password)
    if errors:
        raise ValidationFailed(errors)
    user = User(department_id=department.id, username=username, full_name=full_name.strip(),
                role=role, password_hash=(hasher or password_hasher()).hash(password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Taken between our check and this insert; the caller's transaction rolls back.
        raise ValidationFailed([_taken(username)]) from None
    audit.record(session, actor=actor, action="user_add",
                 details={"department": department.id, "username": username, "role": role})
    return user


def list_users(session: Session, department_id: str | None = None) -> list[User]:
    query = select(User).order_by(User.department_id, User.username)
    if department_id is not None:
        query = query.where(User.department_id == department_id)
    return list(session.scalars(query))


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def disable_user(session: Session, user: User, actor: str) -> User:
    """Disable for good: the account can no longer sign in; it stays as the audit actor it was.
    Disabling a disabled account changes nothing and records nothing."""
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        audit.record(session, actor=actor, action="user_disable",
                     details={"department": user.department_id, "username": user.username,
                              "role": user.role})
    return user


def describe(user: User) -> dict[str, Any]:
    """An account as its department's admins see it: never the password hash."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "department": user.department_id,
        "actor": f"user:{user.username}",
        "status": "disabled" if user.disabled_at else "active",
        "created_at": as_utc(user.created_at).isoformat(),
        "disabled_at": as_utc(user.disabled_at).isoformat() if user.disabled_at else None,
    }


def require_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def authenticate_user(session: Session, username: str, password: str) -> Principal:
    """A person signing in. Unknown, disabled and wrong-password all get the same error after
    the same work (one argon2 verification). A hash made with older parameters is replaced in
    the caller's transaction."""
    hasher = password_hasher()
    row = session.execute(
        select(User, Department).join(Department, Department.id == User.department_id)
        .where(User.username == username)
    ).first()
    user, department = row if row is not None else (None, None)
    stored = user.password_hash if user is not None else _decoy_hash()
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized(WRONG) from None
    if user is None or department is None or user.disabled_at is not None:
        raise Unauthorized(WRONG)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return Principal(department, user.username, user.role, kind="user")
