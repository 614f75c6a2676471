"""The whole permission matrix over real HTTP, on SQLite and PostgreSQL: every role x every
action x the caller's own department or another one.

An allowed cell succeeds (and a reading one changes nothing). A forbidden cell is refused:
403 for the role; for another department's record, token or person exactly the answer a target
that exists nowhere gets (404; for a correction's `corrects` reference, the same field error),
so existence does not leak. It writes exactly one `denied` audit event naming the caller and the
action, and changes nothing else in any table. Two departments, both approving by officer, each
with a token of every role; 104 cells, run on each database.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select, text

from issuer.departments import add_department
from issuer.models import AuditEvent, Base
from issuer.permissions import Action
from issuer.tokens import ROLES, create_token
from issuer.users import add_user
from tests.conftest import DATABASES, Live, _postgres_schema, make_settings, sample, serve
from tests.fixture_scope import shared

OWN, OTHER = "pmc-matrix-own", "pmc-matrix-other"
PASSWORD = "Matrix-Password-2026"
REASON = {"reason": "entered against the wrong registration"}
# The issue's words, written out here rather than read from issuer/permissions.py, so that a
# wrong table there fails this test instead of moving its expectations.
MAY: dict[str, set[str]] = {
    "clerk": {"submit", "correct", "amend", "read", "read_pdf", "list"},  # submits, corrects
    "officer": {"approve", "reject", "revoke", "read", "read_pdf", "list",
                "rts_report"},  # decides
    "auditor": {"read", "read_pdf", "list", "rts_report", "audit_read"},  # reads, changes nothing
    "admin": {"token_create", "token_list", "token_revoke", "user_create", "user_list",
              "user_disable", "read", "read_pdf", "list"},  # people and tokens
}


@dataclass
class World:
    """The live server, a token of every role in both departments, and shared targets (left
    untouched by forbidden cells, which is what the test checks)."""

    live: Live
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)  # (department, role)
    submitted: dict[str, str] = field(default_factory=dict)  # department -> certificate id
    issued: dict[str, str] = field(default_factory=dict)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def http(self, department: str, role: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.tokens[department, role]}"
        return session

    def request_body(self) -> dict[str, Any]:
        """A valid birth request with a registration number no other request has."""
        body = sample("birth-1")
        body["registration_number"] = f"B-2026-PMC-{next(self.serial):06d}"
        return body

    def submit(self, department: str) -> str:
        made = self.http(department, "clerk").post(self.live.url("/api/v1/certificates"),
                                                   json=self.request_body(), timeout=60)
        assert made.status_code == 202, made.text
        assert made.json()["state"] == "submitted"
        cert_id: str = made.json()["id"]
        return cert_id

    def issue(self, department: str) -> str:
        cert_id = self.submit(department)
        done = self.http(department, "officer").post(
            self.live.url(f"/api/v1/certificates/{cert_id}/approve"), timeout=60)
        assert done.status_code == 200, done.text
        state = self.http(department, "auditor").get(
            self.live.url(f"/api/v1/certificates/{cert_id}"), timeout=60).json()["state"]
        assert state == "issued", state
        return cert_id

    def token(self, department: str) -> str:
        name = f"spare-{next(self.serial)}"
        with self.live.runtime.sessions() as session, session.begin():
            create_token(session, self._department(session, department), name, "clerk")
        return name

    def user(self, department: str) -> str:
        username = f"person-{next(self.serial)}"
        with self.live.runtime.sessions() as session, session.begin():
            add_user(session, self._department(session, department), username, "A Person",
                     "clerk", PASSWORD, actor="test:setup")
        return username

    @staticmethod
    def _department(session: Any, code: str) -> Any:
        from issuer.models import Department

        return session.get(Department, code)


@pytest.fixture(scope=shared("module"), params=DATABASES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          keys_dir: Path) -> Iterator[World]:
    home = tmp_path_factory.mktemp("matrix")
    urls = (iter([f"sqlite:///{home / 'pramaan.db'}"]) if request.param == "sqlite"
            else _postgres_schema())
    url = next(urls)
    try:
        for live in serve(make_settings(home, url, keys_dir)):
            world = World(live)
            with live.runtime.sessions() as session, session.begin():
                for code in (OWN, OTHER):
                    department = add_department(session, code, f"{code} office", "कार्यालय",
                                                approval="officer", types=["birth"],
                                                actor="test:setup")
                    for role in ROLES:
                        world.tokens[code, role] = create_token(session, department,
                                                                f"matrix-{role}", role)
            for code in (OWN, OTHER):
                world.submitted[code] = world.submit(code)
                world.issued[code] = world.issue(code)
            yield world
    finally:
        for _ in urls:  # the PostgreSQL schema is dropped when its generator finishes
            pass


# What each action does over HTTP: (permission, method, path, body), given a target prepared
# by `target` (a certificate id, a token name or a username) in the department it names.
@dataclass(frozen=True)
class Operation:
    permission: Action
    method: str
    path: str  # "{t}" is the target
    success: int
    target: Callable[[World, str, bool], str] | None = None  # (world, department, fresh)
    body: Callable[[World, str], Any] | None = None  # (world, target)
    reaches_other: bool = False  # names a record, token or person (so "another department")
    read_only: bool = False


def _submitted(world: World, department: str, fresh: bool) -> str:
    return world.submit(department) if fresh else world.submitted[department]


def _issued(world: World, department: str, fresh: bool) -> str:
    return world.issue(department) if fresh else world.issued[department]


def _own_request(world: World, cert_id: str) -> dict[str, Any]:
    """The stored request of `cert_id` (for an amendment or a correction of it)."""
    from issuer.models import Certificate

    with world.live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        body = dict(record.request)
    body["remarks"] = {"en": "Corrected spelling of the place of birth.",
                       "mr": "जन्मस्थळाचे शुद्धलेखन दुरुस्त केले."}
    return body


def _new_token_body(world: World, _target: str) -> dict[str, Any]:
    return {"name": f"made-{next(world.serial)}", "role": "clerk", "expires_days": 30}


def _new_user_body(world: World, _target: str) -> dict[str, Any]:
    return {"username": f"made-{next(world.serial)}", "full_name": "Made Here", "role": "clerk",
            "password": PASSWORD}


OPERATIONS: dict[str, Operation] = {
    "submit": Operation(Action.SUBMIT, "POST", "/api/v1/certificates", 202,
                        body=lambda w, _t: w.request_body()),
    "correct": Operation(Action.CORRECT, "POST", "/api/v1/certificates", 202, _issued,
                         lambda w, t: {**_own_request(w, t), "corrects": t}, reaches_other=True),
    "amend": Operation(Action.CORRECT, "PUT", "/api/v1/certificates/{t}", 200, _submitted,
                       _own_request, reaches_other=True),
    "read": Operation(Action.READ, "GET", "/api/v1/certificates/{t}", 200, _issued,
                      reaches_other=True, read_only=True),
    "read_pdf": Operation(Action.READ, "GET", "/api/v1/certificates/{t}/pdf", 200, _issued,
                          reaches_other=True, read_only=True),
    "list": Operation(Action.READ, "GET", "/api/v1/certificates", 200, read_only=True),
    "approve": Operation(Action.APPROVE, "POST", "/api/v1/certificates/{t}/approve", 200,
                         _submitted, reaches_other=True),
    "reject": Operation(Action.REJECT, "POST", "/api/v1/certificates/{t}/reject", 200,
                        _submitted, lambda _w, _t: REASON, reaches_other=True),
    "revoke": Operation(Action.REVOKE, "POST", "/api/v1/certificates/{t}/revoke", 200, _issued,
                        lambda _w, _t: REASON, reaches_other=True),
    "rts_report": Operation(Action.RTS_READ, "GET", "/api/v1/rts", 200, read_only=True),
    "audit_read": Operation(Action.AUDIT_READ, "GET", "/api/v1/audit", 200, read_only=True),
    "token_create": Operation(Action.MANAGE_TOKENS, "POST", "/api/v1/tokens", 201,
                              body=_new_token_body),
    "token_list": Operation(Action.MANAGE_TOKENS, "GET", "/api/v1/tokens", 200, read_only=True),
    "token_revoke": Operation(Action.MANAGE_TOKENS, "POST", "/api/v1/tokens/{t}/revoke", 200,
                              lambda w, d, _f: w.token(d), reaches_other=True),
    "user_create": Operation(Action.MANAGE_USERS, "POST", "/api/v1/users", 201,
                             body=_new_user_body),
    "user_list": Operation(Action.MANAGE_USERS, "GET", "/api/v1/users", 200, read_only=True),
    "user_disable": Operation(Action.MANAGE_USERS, "POST", "/api/v1/users/{t}/disable", 200,
                              lambda w, d, _f: w.user(d), reaches_other=True),
}

CELLS = [(role, name, where) for role in ROLES for name, op in OPERATIONS.items()
         for where in (("own", "other") if op.reaches_other else ("own",))]


def snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit chain (compared on its own), in key order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with world.live.runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in ("audit_events", "audit_head"):
                continue
            keys = ", ".join(c.name for c in table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in session.execute(
                text(f"SELECT * FROM {table.name} ORDER BY {keys}"))]  # our own table names
    return rows


def chain(world: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The audit chain as (hash, actor, action, details), oldest first."""
    with world.live.runtime.sessions() as session:
        return [(e.hash, e.actor, e.action, e.details) for e in
                session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


@pytest.mark.parametrize(("role", "operation", "where"), CELLS,
                         ids=[f"{r}-{o}-{w}" for r, o, w in CELLS])
def test_permission_matrix(world: World, role: str, operation: str, where: str) -> None:
    op = OPERATIONS[operation]
    department = OWN if where == "own" else OTHER
    permitted = operation in MAY[role] and where == "own"
    # A forbidden cell acts on the shared targets (so "nothing else changed" is checked on
    # records in the right state for the action); an allowed one on targets of its own.
    target = op.target(world, department, permitted) if op.target else ""
    body = op.body(world, target) if op.body else None
    before_rows, before_chain = snapshot(world), chain(world)

    response = world.http(OWN, role).request(op.method, world.live.url(op.path.format(t=target)),
                                             json=body, timeout=60)

    after_rows, after_chain = snapshot(world), chain(world)
    if permitted:
        assert response.status_code == op.success, response.text
        assert not [e for e in after_chain[len(before_chain):] if e[2] == "denied"]
        if op.read_only:
            assert (after_rows, after_chain) == (before_rows, before_chain)
        return
    assert response.headers["Content-Type"].startswith("application/problem+json")
    if operation not in MAY[role]:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    else:
        # Another department's: exactly the answer a target that does not exist gets.
        assert response.status_code in (404, 422), response.text
        assert anonymous(response, target) == nowhere(world, role, op, body, target)
    assert after_rows == before_rows, "a refused request changed nothing but the audit chain"
    assert after_chain[:len(before_chain)] == before_chain
    new = after_chain[len(before_chain):]
    assert [(actor, action, details["attempted"], details["role"])
            for _, actor, action, details in new] == [
        (f"token:{OWN}/matrix-{role}", "denied", op.permission.value, role)]


def nowhere(world: World, role: str, op: Operation, body: Any,
            target: str) -> tuple[int, str]:
    """The answer to the same request naming a target that exists nowhere (the id or name in
    the path, or a correction's `corrects`), anonymised: it must write no audit event."""
    missing = ("00000000-0000-4000-8000-000000000000" if op.permission != Action.MANAGE_TOKENS
               and op.permission != Action.MANAGE_USERS else "nobody-anywhere")
    if isinstance(body, dict) and body.get("corrects") == target:
        body = {**body, "corrects": missing}
    before = chain(world)
    response = world.http(OWN, role).request(op.method, world.live.url(op.path.format(t=missing)),
                                             json=body, timeout=60)
    assert chain(world) == before
    return anonymous(response, missing)


def anonymous(response: requests.Response, target: str) -> tuple[int, str]:
    """Status and problem body with the named target blanked out."""
    return response.status_code, response.text.replace(target, "<target>")


def test_the_matrix_covers_every_role_and_action() -> None:
    """Every role and every permission the API can exercise appears; RETRY is the CLI's."""
    assert {r for r, _, _ in CELLS} == set(ROLES)
    assert {OPERATIONS[o].permission for _, o, _ in CELLS} == set(Action) - {Action.RETRY}
    assert len(CELLS) == 104
