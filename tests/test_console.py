"""The officers' console over real HTTP: sign-in sessions kept in the database with their cookie
flags, CSRF on every form, lock-out after repeated failures, the queue by ward with RTS due
dates, approval bound to what was shown, reject and revoke with reasons, search, a clerk's own
requests and an auditor who changes nothing."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from issuer.db import utcnow
from issuer.departments import add_department
from issuer.models import AuditEvent, Certificate, User, WebSession
from issuer.settings import Settings
from issuer.tokens import create_token
from issuer.users import add_user
from issuer.web_sessions import MAX_FAILURES
from tests.conftest import Live, make_settings, sample, serve

PASSWORD = "correct horse 42"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    """The suite's settings with room for the sign-ins these tests make from one address (the
    sign-in rate limit has its own test below)."""
    return make_settings(tmp_path, database_url, keys_dir, sign_in_limit="1000/minute")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DIGEST = re.compile(r'name="fields_digest" value="([0-9a-f]+)"')


@dataclass
class Office:
    live: Live
    code: str
    clerk_token: str

    def submit(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        body = data or sample("birth-1")
        if data is None:
            body["registration_number"] = f"B-2026-PMC-{uuid.uuid4().int % 10**6:06d}"
        answer = requests.post(self.live.url("/api/v1/certificates"), json=body, timeout=60,
                               headers={"Authorization": f"Bearer {self.clerk_token}"})
        assert answer.status_code == 202, answer.text
        made: dict[str, Any] = answer.json()
        return made


def office(live: Live) -> Office:
    """A births office whose requests wait for an officer, with one person of each role
    (username = role + the office's code) and a clerk's API token."""
    code = f"b{uuid.uuid4().hex[:6]}"
    with live.runtime.sessions() as session, session.begin():
        department = add_department(session, code, "Births office", "जन्म नोंदणी कार्यालय",
                                    approval="officer", types=["birth"], actor="test")
        for role in ("clerk", "officer", "auditor", "admin"):
            add_user(session, department, f"{role}.{code}", f"{role.title()} Person", role,
                     PASSWORD, actor="test")
        token = create_token(session, department, "clerk-api", "clerk")
    return Office(live, code, token)


class Person:
    """A browser signed in to the console (requests keeps its cookies)."""

    def __init__(self, live: Live, username: str, password: str = PASSWORD) -> None:
        self.live = live
        self.http = requests.Session()
        self.page = ""
        self.sign_in_answer = self.sign_in(username, password)

    def sign_in(self, username: str, password: str) -> requests.Response:
        form = self.http.get(self.live.url("/console/sign-in"), timeout=60)
        token = CSRF.search(form.text)
        assert token
        return self.http.post(self.live.url("/console/sign-in"), timeout=60,
                              allow_redirects=False,
                              data={"csrf": token.group(1), "username": username,
                                    "password": password})

    def get(self, path: str) -> requests.Response:
        answer = self.http.get(self.live.url(path), timeout=60, allow_redirects=False)
        self.page = answer.text
        return answer

    def post(self, path: str, **form: str) -> requests.Response:
        if "csrf" not in form:
            found = CSRF.search(self.page)
            assert found, "open a page with a form first"
            form["csrf"] = found.group(1)
        return self.http.post(self.live.url(path), data=form, timeout=60, allow_redirects=False)


def issued_now(live: Live, cert_id: str) -> Certificate:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with live.runtime.sessions() as session:
            record = session.get(Certificate, cert_id)
            assert record is not None
            if record.state == "issued":
                return record
        time.sleep(0.1)
    raise AssertionError(f"{cert_id} was not issued")


def test_sign_in_sets_a_safe_session_cookie_kept_only_as_a_hash(live: Live) -> None:
    place = office(live)
    officer = Person(live, f"officer.{place.code}")
    answer = officer.sign_in_answer
    assert answer.status_code == 303 and answer.headers["Location"] == "/console"
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie")
                  if c.startswith("pramaan_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    with live.runtime.sessions() as session:
        kept = [w.id_sha256 for w in session.scalars(select(WebSession))]
    assert value not in kept and len(kept) == 1
    home = officer.get("/console")
    assert home.status_code == 200 and "Officer Person" in home.text
    assert home.headers["Cache-Control"] == "no-store"
    # Signed out, the same cookie opens nothing.
    assert officer.post("/console/sign-out").status_code == 303
    stolen = requests.get(live.url("/console"), cookies={"pramaan_console": value},
                          allow_redirects=False, timeout=60)
    assert stolen.status_code == 303 and stolen.headers["Location"] == "/console/sign-in"


def test_a_wrong_password_and_an_unknown_user_look_the_same_and_repeated_failures_lock(
        live: Live) -> None:
    place = office(live)
    username = f"officer.{place.code}"
    wrong = Person(live, username, "not the password 1")
    nobody = Person(live, "nobody.here", "not the password 1")
    assert wrong.sign_in_answer.status_code == nobody.sign_in_answer.status_code == 401
    strip = re.compile(r'(value=")[^"]*(")')  # the typed username, and the form's token
    assert strip.sub(r"\1\2", wrong.sign_in_answer.text) == strip.sub(
        r"\1\2", nobody.sign_in_answer.text)
    assert "username or password is wrong" in wrong.sign_in_answer.text
    for _ in range(MAX_FAILURES - 1):
        assert Person(live, username, "not the password 1").sign_in_answer.status_code == 401
    # Locked now: the right password is refused too, with the same words, until it ends.
    locked = Person(live, username)
    assert locked.sign_in_answer.status_code == 401
    assert "username or password is wrong" in locked.sign_in_answer.text
    with live.runtime.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one()
        assert user.locked_until is not None
        actions = [e.action for e in session.scalars(
            select(AuditEvent).where(AuditEvent.actor == f"user:{username}"))]
        assert actions.count("sign_in_failed") == MAX_FAILURES
        assert "sign_in_refused" in actions
        user.locked_until = utcnow()  # the lock has run out
    assert Person(live, username).sign_in_answer.status_code == 303


def test_every_form_needs_the_session_s_csrf_token(live: Live) -> None:
    place = office(live)
    made = place.submit()
    officer = Person(live, f"officer.{place.code}")
    officer.get(f"/console/c/{made['id']}")
    digest = DIGEST.search(officer.page)
    assert digest
    refused = officer.post(f"/console/c/{made['id']}/approve", csrf="x" * 43,
                           fields_digest=digest.group(1))
    assert refused.status_code == 403
    with live.runtime.sessions() as session:
        assert session.get(Certificate, made["id"]).state == "submitted"  # type: ignore[union-attr]
    # The sign-in form too: without the cookie's twin it is not even tried.
    stranger = requests.post(live.url("/console/sign-in"), timeout=60, data={
        "csrf": "y" * 43, "username": f"officer.{place.code}", "password": PASSWORD})
    assert stranger.status_code == 403


def test_the_queue_groups_by_ward_soonest_due_first_and_marks_overdue(live: Live) -> None:
    place = office(live)
    kothrud = place.submit()
    late = place.submit()  # the same ward (sample birth-1), long past its due date
    hadapsar = sample("birth-2")
    hadapsar["registration_number"] = "B-2026-PMC-888001"
    other_ward = place.submit(hadapsar)
    with live.runtime.sessions() as session, session.begin():
        record = session.get(Certificate, late["id"])
        assert record is not None
        record.due_at = utcnow().replace(year=2025)
    officer = Person(live, f"officer.{place.code}")
    page = officer.get("/console").text
    assert "Requests awaiting approval" in page
    sections = page.split('<section class="ward">')[1:]
    assert [re.search(r"<h2>Ward office: ([^<]+) \(", s).group(1)  # type: ignore[union-attr]
            for s in sections] == ["Hadapsar-Mundhwa Ward Office", "Kothrud-Bavdhan Ward Office"]
    assert other_ward["id"] in sections[0]
    order = re.findall(r'/console/c/([0-9a-f-]{36})"', sections[1])
    assert order == [late["id"], kothrud["id"]]  # soonest due first
    assert page.count('class="overdue"') == 1 and "(overdue)" in sections[1]
    due = kothrud["due_at"][:10].split("-")
    assert "-".join(reversed(due)) in sections[1]  # the RTS due date as DD-MM-YYYY


def test_an_officer_approves_what_was_shown_and_a_change_since_is_refused(live: Live) -> None:
    place = office(live)
    made = place.submit()
    officer = Person(live, f"officer.{place.code}")
    officer.get(f"/console/c/{made['id']}")
    shown = DIGEST.search(officer.page)
    assert shown
    preview = officer.http.get(live.url(f"/console/c/{made['id']}/preview.png"), timeout=60)
    assert preview.headers["Content-Type"] == "image/png"
    assert preview.content.startswith(b"\x89PNG")
    # The clerk amends the request after the officer looked.
    amended = {**sample("birth-1"), "registration_number": made["registration_number"]}
    amended["child"] = {**amended["child"], "place_of_birth": {
        "en": "Kamla Nehru Hospital, Pune", "mr": "कमला नेहरू रुग्णालय, पुणे"}}
    changed = requests.put(live.url(f"/api/v1/certificates/{made['id']}"),
                           json=amended, timeout=60,
                           headers={"Authorization": f"Bearer {place.clerk_token}"})
    assert changed.status_code == 200, changed.text
    stale = officer.post(f"/console/c/{made['id']}/approve", fields_digest=shown.group(1))
    assert stale.status_code == 409
    assert "changed after this page showed it" in stale.text
    with live.runtime.sessions() as session:
        assert session.get(Certificate, made["id"]).state == "submitted"  # type: ignore[union-attr]
    # Looked at again, approved: issued, and the console offers its PDF.
    fresh = DIGEST.search(stale.text)
    assert fresh and fresh.group(1) != shown.group(1)
    done = officer.post(f"/console/c/{made['id']}/approve", fields_digest=fresh.group(1))
    assert done.status_code == 303
    record = issued_now(live, made["id"])
    assert record.approved_by == f"user:officer.{place.code}"
    page = officer.get(f"/console/c/{made['id']}").text
    assert record.number is not None and record.number in page
    pdf = officer.http.get(live.url(f"/console/c/{made['id']}/pdf"), timeout=60)
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def test_reject_and_revoke_need_a_reason_and_record_it(live: Live) -> None:
    place = office(live)
    one, two = place.submit(), place.submit()
    officer = Person(live, f"officer.{place.code}")
    officer.get(f"/console/c/{one['id']}")
    assert officer.post(f"/console/c/{one['id']}/reject", reason=" ").status_code == 422
    assert officer.post(f"/console/c/{one['id']}/reject",
                        reason="the hospital record differs").status_code == 303
    officer.get(f"/console/c/{two['id']}")
    digest = DIGEST.search(officer.page)
    assert digest
    officer.post(f"/console/c/{two['id']}/approve", fields_digest=digest.group(1))
    issued_now(live, two["id"])
    officer.get(f"/console/c/{two['id']}")
    assert officer.post(f"/console/c/{two['id']}/revoke",
                        reason="registered twice").status_code == 303
    with live.runtime.sessions() as session:
        rejected = session.get(Certificate, one["id"])
        revoked = session.get(Certificate, two["id"])
        assert rejected is not None and revoked is not None
        assert (rejected.state, rejected.decision_reason) == ("rejected",
                                                              "the hospital record differs")
        assert (revoked.state, revoked.decision_reason) == ("revoked", "registered twice")


def test_a_clerk_submits_and_sees_their_requests_but_never_decides(live: Live) -> None:
    place = office(live)
    clerk = Person(live, f"clerk.{place.code}")
    clerk.get("/console/new")
    bad = clerk.post("/console/new", body='{"type": "birth", "type": "death"}')
    assert bad.status_code == 400
    invalid = clerk.post("/console/new", body=json.dumps({"type": "birth"}))
    assert invalid.status_code == 422 and "registration_number" in invalid.text
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-888777"
    made = clerk.post("/console/new", body=json.dumps(data, ensure_ascii=False))
    assert made.status_code == 303
    cert_id = made.headers["Location"].split("/console/c/")[1].split("?")[0]
    mine = clerk.get("/console").text
    assert "Requests I submitted" in mine and cert_id in mine
    page = clerk.get(f"/console/c/{cert_id}").text
    assert 'id="approve"' not in page
    digest = DIGEST.search(Person(live, f"officer.{place.code}").get(
        f"/console/c/{cert_id}").text)
    assert digest
    refused = clerk.post(f"/console/c/{cert_id}/approve", fields_digest=digest.group(1))
    assert refused.status_code == 403 and "Your role may not do this" in refused.text
    # The officer's queue shows what the clerk submitted; it is the clerk's, not the officer's.
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.submitted_by == f"user:clerk.{place.code}"


def test_an_auditor_sees_everything_and_changes_nothing(live: Live) -> None:
    place = office(live)
    made = place.submit()
    auditor = Person(live, f"auditor.{place.code}")
    home = auditor.get("/console").text
    assert "All records (read only)" in home and made["id"] in home
    page = auditor.get(f"/console/c/{made['id']}").text
    assert 'id="approve"' not in page and 'id="reject"' not in page
    digest = DIGEST.search(Person(live, f"officer.{place.code}").get(
        f"/console/c/{made['id']}").text)
    assert digest
    for action, form in (("approve", {"fields_digest": digest.group(1)}),
                         ("reject", {"reason": "no"}), ("revoke", {"reason": "no"})):
        assert auditor.post(f"/console/c/{made['id']}/{action}", **form).status_code == 403
    assert auditor.get("/console/new").status_code == 403


def test_search_and_other_departments_records_are_not_found(live: Live) -> None:
    place, other = office(live), office(live)
    made = place.submit()
    theirs = other.submit()
    officer = Person(live, f"officer.{place.code}")
    found = officer.get(f"/console/search?q={made['registration_number'].lower()}").text
    assert made["id"] in found
    assert theirs["id"] not in officer.get(
        f"/console/search?q={theirs['registration_number']}").text
    assert officer.get(f"/console/c/{theirs['id']}").status_code == 404
    assert officer.get(f"/console/c/{theirs['id']}/preview.png").status_code == 404


def test_without_a_session_every_page_goes_to_sign_in(live: Live) -> None:
    for path in ("/console", "/console/search?q=x", f"/console/c/{uuid.uuid4()}",
                 "/console/new"):
        answer = requests.get(live.url(path), allow_redirects=False, timeout=60)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console/sign-in"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_console_in_marathi(live: Live) -> None:
    place = office(live)
    officer = Person(live, f"officer.{place.code}")
    page = officer.get("/console?lang=mr").text
    assert '<html lang="mr">' in page and "मंजुरीच्या प्रतीक्षेतील विनंत्या" in page
    assert "साइन आउट करा" in page


def test_a_session_ends_when_idle_at_its_longest_or_when_its_account_is_disabled(
        live: Live) -> None:
    from issuer import web_sessions
    from issuer.users import disable_user

    place = office(live)
    username = f"officer.{place.code}"
    with live.runtime.sessions() as session, session.begin():
        signed = web_sessions.sign_in(session, username, PASSWORD)
    start = utcnow()
    with live.runtime.sessions() as session, session.begin():
        assert web_sessions.current(session, signed.cookie, start) is not None
        assert web_sessions.current(session, signed.cookie + "x", start) is None
        idle = start + web_sessions.IDLE + web_sessions.TOUCH_EVERY
        assert web_sessions.current(session, signed.cookie, idle) is None
    # Kept busy, it still ends at its longest.
    moment = start
    with live.runtime.sessions() as session, session.begin():
        while moment + web_sessions.IDLE / 2 < start + web_sessions.LONGEST:
            moment += web_sessions.IDLE / 2
            assert web_sessions.current(session, signed.cookie, moment) is not None
        assert web_sessions.current(session, signed.cookie,
                                    start + web_sessions.LONGEST) is None
    person = Person(live, username)
    assert person.get("/console").status_code == 200
    with live.runtime.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one()
        disable_user(session, user, "test")
    assert person.get("/console").status_code == 303


def test_failures_count_in_a_row_a_success_or_a_lock_starts_again(live: Live) -> None:
    place = office(live)
    username = f"officer.{place.code}"
    for _ in range(MAX_FAILURES - 1):
        assert Person(live, username, "not the password 1").sign_in_answer.status_code == 401
    assert Person(live, username).sign_in_answer.status_code == 303  # resets the count
    assert Person(live, username, "not the password 1").sign_in_answer.status_code == 401
    assert Person(live, username).sign_in_answer.status_code == 303  # not locked: 1 in a row
    for _ in range(MAX_FAILURES):
        Person(live, username, "not the password 1")
    with live.runtime.sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one()
        assert user.locked_until is not None
        user.locked_until = utcnow()  # the lock has run out
    assert Person(live, username, "not the password 1").sign_in_answer.status_code == 401
    assert Person(live, username).sign_in_answer.status_code == 303  # one failure, not a lock


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_ins_are_rate_limited_per_client_address(
        tmp_path: Path, database_url: str, keys_dir: Path) -> None:
    for live in serve(make_settings(tmp_path, database_url, keys_dir, sign_in_limit="3/minute")):
        place = office(live)
        answers = [Person(live, f"officer.{place.code}", "not the password 1").sign_in_answer
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert "Too many attempts" in answers[-1].text
        assert int(answers[-1].headers["Retry-After"]) > 0
