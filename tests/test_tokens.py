"""Tokens: names unique within a department (each is an audit actor; refused when creating,
de-duplicated by migration 0004 in databases made before it), expiry, revocation, the audit
events of both, and `pramaan token create|list|revoke` (and the deprecated bare form)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from issuer import migrate
from issuer.db import as_utc, make_engine, make_session_factory, utcnow
from issuer.errors import NotFound, Unauthorized, ValidationFailed
from issuer.models import ApiToken, AuditEvent, Department
from issuer.tokens import (
    TokenRefused,
    authenticate,
    create_token,
    departments_with_token,
    describe,
    find_token,
    list_tokens,
    revoke_token,
    token_status,
)
from tests.conftest import sample


def department(session: sa.orm.Session, dept_id: str) -> Department:
    row = Department(id=dept_id, name_en=dept_id, name_mr="विभाग", cert_types=["birth"])
    session.add(row)
    session.flush()
    return row


def test_a_token_name_is_taken_once_per_department(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session, session.begin():
            births, water = department(session, "births"), department(session, "water")
            first = create_token(session, births, "clerk-1", "clerk")
            with pytest.raises(TokenRefused, match="already has a token named 'clerk-1'") as taken:
                create_token(session, births, "clerk-1", "officer")
            assert [(e.field, e.code) for e in taken.value.errors] == [("name", "taken")]
            create_token(session, water, "clerk-1", "clerk")  # another department: fine
            # The refusal left the transaction usable, and the first token still works.
            assert authenticate(session, first).actor == "token:births/clerk-1"
        with sessions() as session, pytest.raises(IntegrityError), session.begin():
            # Behind the check, the database's own constraint.
            session.add(ApiToken(department_id="births", name="clerk-1", role="clerk",
                                 token_sha256="0" * 64))
    finally:
        engine.dispose()


def test_migration_0004_renames_duplicate_token_names(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0003")
        departments = sa.table("departments", sa.column("id"), sa.column("name_en"),
                               sa.column("name_mr"), sa.column("cert_types", sa.JSON),
                               sa.column("created_at", sa.DateTime(timezone=True)))
        tokens = sa.table("api_tokens", sa.column("id"), sa.column("department_id"),
                          sa.column("name"), sa.column("role"), sa.column("token_sha256"),
                          sa.column("created_at", sa.DateTime(timezone=True)))
        long_name = "n" * 30
        rows = [("births", "clerk"), ("births", "clerk"), ("births", "clerk"),
                ("water", "clerk"), ("births", long_name), ("births", long_name)]
        with engine.begin() as conn:
            conn.execute(sa.insert(departments), [
                {"id": d, "name_en": d, "name_mr": "विभाग", "cert_types": ["birth"],
                 "created_at": utcnow()} for d in ("births", "water")])
            conn.execute(sa.insert(tokens), [
                {"id": i, "department_id": d, "name": n, "role": "clerk",
                 "token_sha256": f"{i:064x}", "created_at": utcnow()}
                for i, (d, n) in enumerate(rows, start=1)])
        migrate.upgrade(engine)
        with engine.connect() as conn:
            after = dict(conn.execute(sa.select(tokens.c.id, tokens.c.name)).all())
    finally:
        engine.dispose()
    # The oldest keeps its name; later duplicates get distinct ones; other departments untouched.
    assert after[1] == "clerk" and after[4] == "clerk" and after[5] == long_name
    births = [after[i] for i in (1, 2, 3, 5, 6)]
    assert len(set(births)) == len(births), births
    assert all(len(name) <= 100 for name in births)


@pytest.fixture
def home(tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from cli import main

    for name in ("DATABASE_URL", "REDIS_URL", "PRAMAAN_STORE_DIR", "PRAMAAN_VERIFY_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRAMAAN_HOME", str(tmp_path))
    monkeypatch.setenv("PRAMAAN_KEYS_DIR", str(keys_dir))
    with pytest.raises(SystemExit) as done:
        main(["init"])
    assert done.value.code == 0
    return tmp_path


def pramaan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    from cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_deprecated_pramaan_token_twice_without_a_name(home: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    first = pramaan(capsys, "token", "--role", "clerk")
    second = pramaan(capsys, "token", "--role", "clerk")
    assert first[0] == 0 and second[0] == 0, (first, second)
    assert first[1].startswith("pmn_") and first[1] != second[1]
    assert "token name: clerk-" in first[2] and first[2] != second[2]
    assert "deprecated form; use `pramaan token create" in first[2]
    named = pramaan(capsys, "token", "--name", "reception")
    again = pramaan(capsys, "token", "--name", "reception")
    assert named[0] == 0 and again[0] == 2
    assert "already has a token named 'reception'" in again[2] and again[1] == ""


def test_pramaan_issue_refuses_duplicate_keys(home: Path, tmp_path: Path) -> None:
    from cli import main

    text = json.dumps(sample("birth-1"), ensure_ascii=False)
    path = tmp_path / "twice.json"
    path.write_text(text[:-1] + ', "registration_number": "B-OTHER-1"}', encoding="utf-8")
    with pytest.raises(SystemExit) as refused:
        main(["issue", "--data", str(path)])
    assert "duplicate key 'registration_number'" in str(refused.value.code)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sa.orm.sessionmaker[sa.orm.Session]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_tokens_expire(sessions: sa.orm.sessionmaker[sa.orm.Session]) -> None:
    with sessions() as session, session.begin():
        births = department(session, "births")
        yearly = create_token(session, births, "yearly", "clerk")
        daily = create_token(session, births, "daily", "clerk", expires_days=1)
        legacy = create_token(session, births, "legacy", "clerk")
        rows = {t.name: t for t in list_tokens(session, "births")}
        # The default is a year; the period starts now.
        assert rows["yearly"].expires_at is not None and rows["daily"].expires_at is not None
        assert abs(as_utc(rows["yearly"].expires_at) - utcnow() - timedelta(days=365)) < \
            timedelta(minutes=1)
        assert abs(as_utc(rows["daily"].expires_at) - utcnow() - timedelta(days=1)) < \
            timedelta(minutes=1)
        rows["daily"].expires_at = utcnow() - timedelta(seconds=1)
        rows["legacy"].expires_at = None  # made before tokens expired: valid until revoked
    with sessions() as session:
        assert authenticate(session, yearly).token_name == "yearly"
        assert authenticate(session, legacy).token_name == "legacy"
        with pytest.raises(Unauthorized, match="has expired"):
            authenticate(session, daily)
        assert [token_status(t) for t in list_tokens(session)] == ["active", "expired",
                                                                   "active"]


@pytest.mark.parametrize(("name", "role", "days", "errors"), [
    ("", "clerk", 30, [("name", "length")]),
    ("c" * 31, "clerk", 30, [("name", "length")]),
    ("front desk", "clerk", 30, [("name", "characters")]),
    ("a/b", "clerk", 30, [("name", "characters")]),
    ("ok", "root", 30, [("role", "choice")]),
    ("ok", "clerk", 0, [("expires_days", "range")]),
    ("ok", "clerk", 3651, [("expires_days", "range")]),
    ("ok", "clerk", True, [("expires_days", "range")]),
    (7, None, "30", [("name", "length"), ("role", "choice"), ("expires_days", "range")]),
])
def test_token_requests_are_refused_field_by_field(
    sessions: sa.orm.sessionmaker[sa.orm.Session], name: str, role: str, days: int,
    errors: list[tuple[str, str]]
) -> None:
    with sessions() as session, session.begin():
        births = department(session, "births")
        with pytest.raises(TokenRefused) as refused:
            create_token(session, births, name, role, expires_days=days)
        assert [(e.field, e.code) for e in refused.value.errors] == errors
        assert str(refused.value) == "; ".join(e.message for e in refused.value.errors)
        # A ValidationFailed for the API (422 with field errors), a ValueError for old callers.
        assert isinstance(refused.value, ValidationFailed)
        assert isinstance(refused.value, ValueError)
        assert list_tokens(session) == []
        for days_ok in (1, 3650):
            create_token(session, births, f"ok-{days_ok}", "auditor", expires_days=days_ok)


def test_revoking_is_audited_once_and_the_name_stays_taken(
    sessions: sa.orm.sessionmaker[sa.orm.Session]
) -> None:
    with sessions() as session, session.begin():
        births = department(session, "births")
        token = create_token(session, births, "desk-1", "clerk", actor="cli:registrar")
    for _ in range(2):
        with sessions() as session, session.begin():
            row = revoke_token(session, department_of(session, "births"), "desk-1",
                               "token:births/admin")
            assert row.revoked_at is not None
    with sessions() as session, session.begin():
        births = department_of(session, "births")
        with pytest.raises(Unauthorized, match="unknown or revoked"):
            authenticate(session, token)
        with pytest.raises(NotFound):
            revoke_token(session, births, "desk-2", "token:births/admin")
        with pytest.raises(ValueError, match="already has a token named 'desk-1'"):
            create_token(session, births, "desk-1", "clerk")
        events = [(e.actor, e.action, e.details) for e in
                  session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq))]
        row = find_token(session, "births", "desk-1")
        assert row is not None and row.expires_at is not None
    assert events == [
        ("cli:registrar", "token_create", {"department": "births", "name": "desk-1",
                                           "role": "clerk",
                                           "expires_at": as_utc(row.expires_at).isoformat()}),
        ("token:births/admin", "token_revoke", {"department": "births", "name": "desk-1",
                                                "role": "clerk"}),
    ]


def department_of(session: sa.orm.Session, code: str) -> Department:
    found = session.get(Department, code)
    assert found is not None
    return found


def test_pramaan_token_create_list_revoke(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from issuer.bootstrap import DEV_DEPARTMENT

    made = pramaan(capsys, "token", "create", "--department", DEV_DEPARTMENT, "--role",
                   "auditor", "--name", "audit-desk", "--expires-days", "30")
    assert made[0] == 0, made
    secret = made[1].strip()
    assert secret.startswith("pmn_") and made[1] == secret + "\n"  # the token alone on stdout
    assert f"audit actor token:{DEV_DEPARTMENT}/audit-desk" in made[2]
    listed = pramaan(capsys, "token", "list", "--department", DEV_DEPARTMENT)
    assert listed[0] == 0 and secret not in listed[1]
    rows = {t["name"]: t for t in json.loads(listed[1])}
    assert set(rows) == {"dev-clerk", "dev-admin", "audit-desk"}
    assert (rows["audit-desk"]["role"], rows["audit-desk"]["status"]) == ("auditor", "active")
    assert "token_sha256" not in rows["audit-desk"]
    again = pramaan(capsys, "token", "create", "--department", DEV_DEPARTMENT, "--role", "clerk",
                    "--name", "audit-desk")
    assert again[0] == 2 and again[1] == "" and "already has a token named" in again[2]
    revoked = pramaan(capsys, "token", "revoke", "--department", DEV_DEPARTMENT, "--name",
                      "audit-desk")
    assert revoked[0] == 0 and json.loads(revoked[1])["status"] == "revoked"
    missing = pramaan(capsys, "token", "revoke", "--department", "nowhere", "--name", "x")
    assert missing[0] == 2 and "no department nowhere" in missing[2]
    for bad in (["--expires-days", "0"], ["--role", "root"]):
        args = ["token", "create", "--department", DEV_DEPARTMENT, "--role", "clerk",
                "--name", "n-1", *bad]
        with pytest.raises(SystemExit) as refused:
            from cli import main

            main(args)
        assert refused.value.code == 2
    from issuer.runtime import Runtime
    from issuer.settings import Settings

    runtime = Runtime(Settings.from_env())
    try:
        with runtime.sessions() as session:
            events = [(e.actor, e.action, e.details["name"]) for e in session.scalars(
                sa.select(AuditEvent).where(AuditEvent.action.like("token_%"))
                .order_by(AuditEvent.seq))]
    finally:
        runtime.close()
    operator = f"cli:{getpass.getuser()}"
    assert events == [(operator, "token_create", "audit-desk"),
                      (operator, "token_revoke", "audit-desk")]


def test_tokens_are_listed_and_found_department_by_department(
    sessions: sa.orm.sessionmaker[sa.orm.Session]
) -> None:
    """Listing sorts by department first (then age), a name is looked up in the caller's
    department only, and an admin's view of a token names every field."""
    with sessions() as session, session.begin():
        zoo, births = department(session, "zoo"), department(session, "births")
        create_token(session, zoo, "ops", "clerk")  # made first: the lowest id
        create_token(session, births, "ops", "admin")
        create_token(session, births, "desk", "clerk")
    with sessions() as session, session.begin():
        assert [(t.department_id, t.name) for t in list_tokens(session)] == [
            ("births", "ops"), ("births", "desk"), ("zoo", "ops")]
        assert departments_with_token(session, "ops") == ["births", "zoo"]
        assert departments_with_token(session, "desk") == ["births"]
        # zoo has no "desk": the births token of that name is not zoo's to revoke.
        with pytest.raises(NotFound) as missing:
            revoke_token(session, department_of(session, "zoo"), "desk", "token:zoo/admin")
        assert str(missing.value) == "department zoo has no token named 'desk'"
        desk = find_token(session, "births", "desk")
        assert desk is not None and desk.revoked_at is None and desk.expires_at is not None
        assert describe(desk) == {
            "name": "desk", "role": "clerk", "department": "births",
            "actor": "token:births/desk", "status": "active",
            "created_at": as_utc(desk.created_at).isoformat(),
            "expires_at": as_utc(desk.expires_at).isoformat(),
            "revoked_at": None,
        }
        ops = revoke_token(session, department_of(session, "births"), "ops", "token:x/admin")
        ops.expires_at = None  # a token from before tokens expired
        assert ops.revoked_at is not None
        assert (describe(ops)["status"], describe(ops)["expires_at"],
                describe(ops)["revoked_at"]) == ("revoked", None,
                                                 as_utc(ops.revoked_at).isoformat())
