"""People's accounts: argon2id hashes (checked with the library itself), one refusal for every
failed sign-in after the same work, upgrade of old hashes, password rules, disable-not-delete."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import argon2
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from issuer import migrate
from issuer.db import make_engine, make_session_factory
from issuer.errors import Forbidden, Unauthorized, ValidationFailed
from issuer.models import AuditEvent, Department, User
from issuer.permissions import Action, require
from issuer.tokens import create_token
from issuer.users import (
    WRONG,
    add_user,
    authenticate_user,
    disable_user,
    list_users,
    password_errors,
    require_user,
)
from tests.conftest import _postgres_schema

GOOD = "kothrud-Ward-2026"
OPERATOR = "cli:registrar"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        for code in ("births", "water"):
            session.add(Department(id=code, name_en=code, name_mr="विभाग", cert_types=["birth"]))
    yield factory
    engine.dispose()


def department(session: Session, code: str = "births") -> Department:
    found = session.get(Department, code)
    assert found is not None
    return found


def new_user(sessions: sessionmaker[Session], username: str = "asha", role: str = "officer",
             password: str = GOOD, code: str = "births",
             hasher: argon2.PasswordHasher | None = None) -> None:
    with sessions() as session, session.begin():
        add_user(session, department(session, code), username, "Asha Patil", role, password,
                 actor=OPERATOR, hasher=hasher)


def stored_hash(sessions: sessionmaker[Session], username: str) -> str:
    with sessions() as session:
        return require_user(session, username).password_hash


def sign_in(sessions: sessionmaker[Session], username: str, password: str) -> str:
    """The actor of a successful sign-in (committed, as a request would), or the refusal."""
    with sessions() as session, session.begin():
        try:
            who = authenticate_user(session, username, password)
        except Unauthorized as refused:
            return f"refused: {refused.detail}"
    assert who.kind == "user"
    return f"{who.actor} {who.role} {who.department.id}"


def test_a_person_signs_in_with_their_password_only(sessions: sessionmaker[Session]) -> None:
    new_user(sessions)
    assert sign_in(sessions, "asha", GOOD) == "user:asha officer births"
    refused = f"refused: {WRONG}"
    assert sign_in(sessions, "asha", GOOD + "x") == refused
    assert sign_in(sessions, "asha", GOOD.upper()) == refused
    assert sign_in(sessions, "asha", "") == refused
    assert sign_in(sessions, "Asha", GOOD) == refused  # usernames are exact
    assert sign_in(sessions, "nobody", GOOD) == refused


def test_the_password_is_stored_only_as_an_argon2id_hash(sessions: sessionmaker[Session]) -> None:
    new_user(sessions)
    stored = stored_hash(sessions, "asha")
    assert GOOD not in stored
    # RFC 9106's second recommended option, read back by the library itself.
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert argon2.PasswordHasher().verify(stored, GOOD)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(stored, GOOD + "!")
    new_user(sessions, "ravi", "clerk")
    assert stored_hash(sessions, "ravi") != stored  # salted: same password, another hash


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash argon2 is asked to verify against (a spy on the library, not on our code)."""
    seen: list[str] = []
    verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        seen.append(hash if isinstance(hash, str) else hash.decode())
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    return seen


def test_unknown_disabled_and_wrong_cost_the_same_and_say_the_same(
    sessions: sessionmaker[Session], verifications: list[str]
) -> None:
    new_user(sessions)
    new_user(sessions, "leaver", "clerk")
    with sessions() as session, session.begin():
        disable_user(session, require_user(session, "leaver"), OPERATOR)
    answers = {}
    for username, password in (("asha", "wrong-Password-1"), ("nobody", GOOD),
                               ("leaver", GOOD), ("asha", GOOD)):
        verifications.clear()
        answers[username, password] = sign_in(sessions, username, password)
        # One argon2 verification each, against a hash of the current parameters: an unknown
        # or disabled username takes as long to refuse as a wrong password.
        assert len(verifications) == 1, (username, verifications)
        assert verifications[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert answers["asha", GOOD] == "user:asha officer births"
    refusals = {v for k, v in answers.items() if k != ("asha", GOOD)}
    assert refusals == {f"refused: {WRONG}"}


def test_a_hash_made_with_older_parameters_is_upgraded_at_sign_in(
    sessions: sessionmaker[Session]
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    new_user(sessions, hasher=weak)
    old = stored_hash(sessions, "asha")
    assert old.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert sign_in(sessions, "asha", "not-" + GOOD).startswith("refused")
    assert stored_hash(sessions, "asha") == old  # a wrong password changes nothing
    assert sign_in(sessions, "asha", GOOD) == "user:asha officer births"
    upgraded = stored_hash(sessions, "asha")
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert argon2.PasswordHasher().verify(upgraded, GOOD)
    assert sign_in(sessions, "asha", GOOD) == "user:asha officer births"
    assert stored_hash(sessions, "asha") == upgraded  # current parameters: left alone


@pytest.mark.parametrize(("password", "codes"), [
    ("short-1A", ["length"]),
    ("x" * 129, ["length"]),
    ("alllowercaseletters", ["one_class"]),
    ("123456789012345", ["one_class"]),
    ("ababababab12", ["repetitive"]),
    ("tab\there-Password1", ["control_character"]),
    ("zero\u200bwidth-Password1", ["control_character"]),
    ("my-asha-Password-1", ["contains_username"]),
    ("aaaaaaaaaaaa", ["one_class", "repetitive"]),
])
def test_password_rules(password: str, codes: list[str]) -> None:
    assert [e.code for e in password_errors(password, "asha")] == codes
    assert all(e.field == "password" for e in password_errors(password, "asha"))


@pytest.mark.parametrize("password", [
    GOOD, "x" * 120 + "Kothrud1", "correct horse battery", "पासवर्ड-कोथरूड-2026", "Ab1!Cd2@Ef3#",
])
def test_sensible_passwords_pass(password: str) -> None:
    assert password_errors(password, "asha") == []


def test_accounts_are_validated_and_usernames_are_never_reused(
    sessions: sessionmaker[Session]
) -> None:
    new_user(sessions)
    with sessions() as session, session.begin():
        disable_user(session, require_user(session, "asha"), OPERATOR)
    with sessions() as session, session.begin():
        births, water = department(session), department(session, "water")
        with pytest.raises(ValidationFailed) as taken:
            # Another department, and the holder is disabled: still taken (one audit actor).
            add_user(session, water, "asha", "Asha Shinde", "clerk", GOOD, actor=OPERATOR)
        assert [(e.field, e.code) for e in taken.value.errors] == [("username", "taken")]
        with pytest.raises(ValidationFailed) as bad:
            add_user(session, births, "Ravi K", " ", "root", "short", actor=OPERATOR)
        assert [(e.field, e.code) for e in bad.value.errors] == [
            ("username", "format"), ("full_name", "length"), ("role", "choice"),
            ("password", "length")]
        for username in ("r", "9ravi", "ravi/x", "r" * 65, "ravi%"):
            with pytest.raises(ValidationFailed):
                add_user(session, births, username, "Ravi", "clerk", GOOD, actor=OPERATOR)
        add_user(session, births, "r" * 64, "Ravi", "clerk", GOOD, actor=OPERATOR)
        assert session.scalar(select(func.count()).select_from(User)) == 2


def test_disabling_keeps_the_account_and_is_audited_once(sessions: sessionmaker[Session]) -> None:
    new_user(sessions)
    new_user(sessions, "ravi", "clerk", code="water")
    for _ in range(2):
        with sessions() as session, session.begin():
            disable_user(session, require_user(session, "asha"), OPERATOR)
    assert sign_in(sessions, "asha", GOOD) == f"refused: {WRONG}"
    with sessions() as session:
        events = [(e.actor, e.action, e.details) for e in session.scalars(
            select(AuditEvent).order_by(AuditEvent.seq))]
        assert events == [
            (OPERATOR, "user_add", {"department": "births", "username": "asha",
                                    "role": "officer"}),
            (OPERATOR, "user_add", {"department": "water", "username": "ravi",
                                    "role": "clerk"}),
            (OPERATOR, "user_disable", {"department": "births", "username": "asha",
                                        "role": "officer"}),
        ]
        assert [u.username for u in list_users(session)] == ["asha", "ravi"]
        assert [u.username for u in list_users(session, "water")] == ["ravi"]
        asha = require_user(session, "asha")
        assert asha.disabled_at is not None and asha.full_name == "Asha Patil"
    assert sign_in(sessions, "ravi", GOOD) == "user:ravi clerk water"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, its connections named so the test can see them wait."""
    for url in _postgres_schema():
        yield f"{url}&application_name=race-{uuid.uuid4().hex[:12]}"


def test_two_admins_racing_for_one_name_get_a_field_error_not_a_crash(postgres_url: str) -> None:
    """Two real connections each find the name free, then the later insert waits on the unique
    index until the first commits: it gets the field error, not an IntegrityError."""
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    outcome: dict[str, Exception] = {}

    def second(what: str) -> None:
        with sessions() as session, session.begin():
            try:
                if what == "user":
                    add_user(session, department(session), "asha", "Asha Shinde", "clerk", GOOD,
                             actor=OPERATOR)
                else:
                    create_token(session, department(session), "desk-1", "clerk")
            except Exception as exc:  # examined below; the transaction rolls back
                outcome[what] = exc

    try:
        with sessions() as session, session.begin():
            session.add(Department(id="births", name_en="b", name_mr="ब", cert_types=["birth"]))
        with sessions() as first, first.begin():
            births = department(first)
            add_user(first, births, "asha", "Asha Patil", "clerk", GOOD, actor=OPERATOR)
            create_token(first, births, "desk-1", "clerk")
            threads = [threading.Thread(target=second, args=(w,)) for w in ("user", "token")]
            for thread in threads:
                thread.start()
            wait_until_blocked(engine, 2)
        for thread in threads:
            thread.join(timeout=60)
    finally:
        engine.dispose()
    for what, field in (("user", "username"), ("token", "name")):
        refused = outcome[what]
        assert isinstance(refused, ValidationFailed), repr(refused)
        assert [(e.field, e.code) for e in refused.errors] == [(field, "taken")]


def wait_until_blocked(engine: Engine, count: int) -> None:
    """Until `count` of this engine's connections wait for a lock (PostgreSQL says so)."""
    name = engine.url.query["application_name"]
    with engine.connect() as conn:
        for _ in range(600):
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                "AND wait_event_type = 'Lock'"), {"name": name}).scalar_one()
            if waiting == count:
                return
            conn.rollback()
            time.sleep(0.05)
    raise AssertionError(f"{count} inserts never waited on the unique index")


def test_a_person_is_held_to_the_same_permission_table_as_a_token(
    sessions: sessionmaker[Session]
) -> None:
    new_user(sessions, "ravi", "clerk")
    with sessions() as session, session.begin():
        ravi = authenticate_user(session, "ravi", GOOD)
    require(sessions, ravi, Action.SUBMIT)  # a clerk submits
    with pytest.raises(Forbidden, match="a clerk may not approve"):
        require(sessions, ravi, Action.APPROVE)  # and never decides
    with sessions() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last is not None
    assert (last.actor, last.action, last.details) == ("user:ravi", "denied", {
        "attempted": "approve", "role": "clerk", "reason": "role", "department": "births"})
