"""The admin API over real HTTP: a department's admins manage its tokens and people, its auditors
page through its part of the audit chain, and nobody reaches into another department."""

from __future__ import annotations

from typing import Any

import argon2
import pytest
import requests
from sqlalchemy import select

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.departments import add_department
from issuer.models import AuditEvent, Department, User
from issuer.tokens import create_token
from tests.conftest import Live, sample

OTHER = "pmc-ward-aundh"
PASSWORD = "Kothrud-Registrar-7"


def client(live: Live, token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def token_of(live: Live, department: str, name: str, role: str) -> str:
    with live.runtime.sessions() as session, session.begin():
        found = session.get(Department, department)
        if found is None:
            found = add_department(session, department, "Aundh Ward Office", "औंध कार्यालय",
                                   approval="officer", actor="test:setup")
        return create_token(session, found, name, role)


def events(live: Live, after: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    with live.runtime.sessions() as session:
        return [(e.actor, e.action, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq))]


def head(live: Live) -> int:
    with live.runtime.sessions() as session:
        return max(session.scalars(select(AuditEvent.seq)), default=0)


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_an_admin_makes_lists_and_revokes_tokens(live: Live) -> None:
    admin = client(live, token_of(live, DEV_DEPARTMENT, "admin-1", "admin"))
    before = head(live)
    made = admin.post(live.url("/api/v1/tokens"), json={"name": "desk-2", "role": "clerk",
                                                        "expires_days": 30}, timeout=60)
    assert made.status_code == 201, made.text
    body = made.json()
    secret = body.pop("token")
    assert secret.startswith("pmn_")
    assert (body["name"], body["role"], body["status"], body["actor"]) == (
        "desk-2", "clerk", "active", f"token:{DEV_DEPARTMENT}/desk-2")
    desk = client(live, secret)
    created = desk.post(live.url("/api/v1/certificates"), json=sample("birth-1"), timeout=60)
    assert created.status_code == 202, created.text

    listed = admin.get(live.url("/api/v1/tokens"), timeout=60)
    assert listed.status_code == 200 and secret not in listed.text
    assert "token_sha256" not in listed.text
    names = {t["name"]: t["status"] for t in listed.json()["tokens"]}
    assert names == {"dev-clerk": "active", "dev-admin": "active", "admin-1": "active",
                     "desk-2": "active"}

    revoked = admin.post(live.url("/api/v1/tokens/desk-2/revoke"), timeout=60)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert problem(desk.get(live.url(created.json()["status_url"]), timeout=60), 401)
    again = admin.post(live.url("/api/v1/tokens/desk-2/revoke"), timeout=60)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    actor = f"token:{DEV_DEPARTMENT}/admin-1"
    mine = [(a, what, d.get("name")) for a, what, d in events(live, before) if a == actor]
    assert mine == [(actor, "token_create", "desk-2"), (actor, "token_revoke", "desk-2")]


def test_token_bodies_are_validated_field_by_field(live: Live) -> None:
    admin = client(live, token_of(live, DEV_DEPARTMENT, "admin-1", "admin"))
    before = head(live)
    cases: list[tuple[Any, list[tuple[str, str]]]] = [
        ([], [("", "type")]),
        ({"name": "x", "role": "clerk", "scope": "all"}, [("scope", "unknown")]),
        ({"role": "root", "expires_days": "1"}, [("name", "length"), ("role", "choice"),
                                                 ("expires_days", "range")]),
        ({"name": "front desk", "role": "clerk"}, [("name", "characters")]),
        ({"name": "dev-clerk", "role": "clerk"}, [("name", "taken")]),
        ({"name": "ok", "role": "clerk", "expires_days": 3651}, [("expires_days", "range")]),
    ]
    for body, errors in cases:
        refused = problem(admin.post(live.url("/api/v1/tokens"), json=body, timeout=60), 422)
        assert refused["code"] == "validation_failed"
        assert [(e["field"], e["code"]) for e in refused["errors"]] == errors, body
    wrong_type = admin.post(live.url("/api/v1/tokens"), data="name=x", timeout=60,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert problem(wrong_type, 415)["code"] == "unsupported_media_type"
    assert events(live, before) == []  # refused bodies change nothing, audit included


def test_another_departments_tokens_and_people_are_not_found_and_the_attempt_is_audited(
    live: Live
) -> None:
    admin = client(live, token_of(live, DEV_DEPARTMENT, "admin-1", "admin"))
    other_admin = client(live, token_of(live, OTHER, "admin-9", "admin"))
    token_of(live, OTHER, "their-clerk", "clerk")
    person = other_admin.post(live.url("/api/v1/users"), json={
        "username": "sunita", "full_name": "Sunita Jadhav", "role": "officer",
        "password": PASSWORD}, timeout=60)
    assert person.status_code == 201, person.text

    before = head(live)
    theirs = problem(admin.post(live.url("/api/v1/tokens/their-clerk/revoke"), timeout=60), 404)
    nobody = problem(admin.post(live.url("/api/v1/tokens/no-such/revoke"), timeout=60), 404)
    # Nothing tells "another department's" from "nobody's".
    assert theirs["detail"].replace("their-clerk", "?") == nobody["detail"].replace("no-such", "?")
    their_user = problem(admin.post(live.url("/api/v1/users/sunita/disable"), timeout=60), 404)
    no_user = problem(admin.post(live.url("/api/v1/users/ghost/disable"), timeout=60), 404)
    assert their_user["detail"].replace("sunita", "?") == no_user["detail"].replace("ghost", "?")

    actor = f"token:{DEV_DEPARTMENT}/admin-1"
    assert events(live, before) == [
        (actor, "denied", {"attempted": "manage_tokens", "role": "admin",
                           "reason": "other_department", "department": DEV_DEPARTMENT,
                           "target": f"token:{OTHER}/their-clerk", "target_department": OTHER}),
        (actor, "denied", {"attempted": "manage_users", "role": "admin",
                           "reason": "other_department", "department": DEV_DEPARTMENT,
                           "target": "user:sunita", "target_department": OTHER}),
    ]
    # Untouched: their token is active, their person enabled; each admin lists only their own.
    listed = other_admin.get(live.url("/api/v1/tokens"), timeout=60).json()["tokens"]
    assert {t["name"]: t["status"] for t in listed} == {"admin-9": "active",
                                                        "their-clerk": "active"}
    assert [u["username"] for u in other_admin.get(live.url("/api/v1/users"),
                                                   timeout=60).json()["users"]] == ["sunita"]
    assert admin.get(live.url("/api/v1/users"), timeout=60).json() == {"users": []}


def test_an_admin_adds_lists_and_disables_people(live: Live) -> None:
    admin = client(live, token_of(live, DEV_DEPARTMENT, "admin-1", "admin"))
    before = head(live)
    made = admin.post(live.url("/api/v1/users"), json={
        "username": "asha.patil", "full_name": "Asha Patil", "role": "officer",
        "password": PASSWORD}, timeout=60)
    assert made.status_code == 201, made.text
    assert PASSWORD not in made.text and "argon2" not in made.text
    assert made.json() | {"created_at": None} == {
        "username": "asha.patil", "full_name": "Asha Patil", "role": "officer",
        "department": DEV_DEPARTMENT, "actor": "user:asha.patil", "status": "active",
        "created_at": None, "disabled_at": None}
    with live.runtime.sessions() as session:
        stored = session.scalars(select(User.password_hash)).one()
    assert argon2.PasswordHasher().verify(stored, PASSWORD)

    refused = problem(admin.post(live.url("/api/v1/users"), json={
        "username": "asha.patil", "full_name": "", "role": "root", "password": "asha.patil1234",
        "extra": 1}, timeout=60), 422)
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [
        ("extra", "unknown"), ("username", "taken"), ("full_name", "length"),
        ("role", "choice"), ("password", "contains_username")]
    assert PASSWORD not in refused["detail"]

    disabled = admin.post(live.url("/api/v1/users/asha.patil/disable"), timeout=60)
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    listed = admin.get(live.url("/api/v1/users"), timeout=60).json()["users"]
    assert [(u["username"], u["status"]) for u in listed] == [("asha.patil", "disabled")]
    actor = f"token:{DEV_DEPARTMENT}/admin-1"
    assert [(a, what) for a, what, _ in events(live, before)] == [
        (actor, "user_add"), (actor, "user_disable")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_new_persons_password_is_refused_at_its_field_with_a_stable_code(live: Live) -> None:
    admin = client(live, token_of(live, DEV_DEPARTMENT, "admin-pw", "admin"))
    cases = [(None, "required"), (7, "required"), ("short-1A", "length"),
             ("nul\x00-Password-1", "control_character"),
             ("nel\x85-Password-1", "control_character"),
             ("zero\u200bwidth-Password1", "control_character"),
             ("alllowercaseletters", "one_class"), ("ababababab12", "repetitive"),
             ("my-Ravi.K-Password-1", "contains_username")]
    for password, code in cases:
        refused = problem(admin.post(live.url("/api/v1/users"), json={
            "username": "ravi.k", "full_name": "Ravi K", "role": "clerk", "password": password},
            timeout=60), 422)
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [("password", code)]
    made = admin.post(live.url("/api/v1/users"), json={
        "username": "ravi.k", "full_name": "Ravi K", "role": "clerk", "password": PASSWORD},
        timeout=60)
    assert made.status_code == 201, made.text


def test_an_auditor_pages_through_their_departments_part_of_the_chain(live: Live) -> None:
    auditor = client(live, token_of(live, DEV_DEPARTMENT, "auditor-1", "auditor"))
    other_clerk = client(live, token_of(live, OTHER, "clerk-9", "clerk"))
    other_auditor = client(live, token_of(live, OTHER, "auditor-9", "auditor"))
    ours = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert ours.status_code == 202, ours.text
    theirs = other_clerk.post(live.url("/api/v1/certificates"), json=sample("birth-2"), timeout=60)
    assert theirs.status_code == 202, theirs.text
    # One of theirs reaches for one of ours: both departments' auditors see the attempt.
    peek = other_clerk.get(live.url(ours.json()["status_url"]), timeout=60)
    assert peek.status_code == 404

    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = auditor.get(live.url(f"/api/v1/audit?after={after}&limit=1"), timeout=60)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["events"]) == 1  # never an empty last page
        seen += body["events"]
        if body["next_after"] is None:
            break
        assert body["next_after"] == body["events"][-1]["seq"]
        after = body["next_after"]
    everything = auditor.get(live.url("/api/v1/audit?limit=500"), timeout=60).json()
    assert seen == everything["events"] and everything["next_after"] is None
    assert [e["seq"] for e in seen] == sorted({e["seq"] for e in seen})

    ours_id, theirs_id = ours.json()["id"], theirs.json()["id"]
    ids = {e["certificate_id"] for e in seen}
    assert ours_id in ids and theirs_id not in ids
    assert {e["action"] for e in seen if e["certificate_id"] == ours_id} >= {"submit", "approve"}
    denied = [e for e in seen if e["action"] == "denied"]
    assert [(e["actor"], e["certificate_id"]) for e in denied] == [
        (f"token:{OTHER}/clerk-9", ours_id)]
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in seen)

    their_view = other_auditor.get(live.url("/api/v1/audit"), timeout=60).json()["events"]
    their_ids = {e["certificate_id"] for e in their_view}
    assert theirs_id in their_ids and ours_id in their_ids  # only through their clerk's attempt
    assert all(e["certificate_id"] != ours_id or e["action"] == "denied" for e in their_view)
    # Their department's creation is theirs; ours is not in it.
    assert any(e["action"] == "department_add" for e in their_view)
    assert not any(e["action"] == "department_add" for e in seen)

    for query in ("limit=0", "limit=501", "after=-1", "after=x", "limit=9" * 5):
        refused = problem(auditor.get(live.url(f"/api/v1/audit?{query}"), timeout=60), 422)
        assert refused["errors"][0]["code"] == "range", query
