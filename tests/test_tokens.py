"""Token names are unique within a department (each is an audit actor): refused when creating,
de-duplicated by migration 0004 in databases made before it, and `pramaan token` copes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from issuer import migrate
from issuer.db import make_engine, make_session_factory, utcnow
from issuer.models import ApiToken, Department
from issuer.tokens import authenticate, create_token
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
            with pytest.raises(ValueError, match="already has a token named 'clerk-1'"):
                create_token(session, births, "clerk-1", "officer")
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


def test_pramaan_token_twice_without_a_name(home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    first = pramaan(capsys, "token", "--role", "clerk")
    second = pramaan(capsys, "token", "--role", "clerk")
    assert first[0] == 0 and second[0] == 0, (first, second)
    assert first[1].startswith("pmn_") and first[1] != second[1]
    assert "token name: clerk-" in first[2] and first[2] != second[2]
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
