"""The lifecycle over real HTTP in a department that approves by officer: maker-checker against
the fields shown, reject, revoke, corrections that supersede, and what verification then says.
Every transition leaves its audit event; a transition from the wrong state is a 409 naming it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from issuer.models import AuditEvent, Certificate, Department
from issuer.tokens import create_token
from issuer.verhoeff import check_digit
from issuer.verify import verify_pdf, verify_qr
from issuer.workflow import reject
from tests.conftest import (
    Live,
    _postgres_schema,
    make_settings,
    sample,
    serve,
    wait_for_a_blocked_backend,
)

DEPT = "pmc-kothrud-registrar"


class Desk:
    """A department approving by officer, with a clerk, an officer and a second officer."""

    def __init__(self, live: Live) -> None:
        self.live = live
        with live.runtime.sessions() as session, session.begin():
            department = Department(id=DEPT, name_en="Kothrud registrar",
                                    name_mr="कोथरूड निबंधक",
                                    cert_types=["birth", "death", "property_no_dues"],
                                    approval="officer")
            session.add(department)
            session.flush()
            self.tokens = {name: create_token(session, department, name, role)
                           for name, role in (("clerk-1", "clerk"), ("officer-1", "officer"),
                                              ("officer-2", "officer"))}

    def call(self, who: str, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.live.url(path), json=body, timeout=60,
                                headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.call("clerk-1", "POST", "/api/v1/certificates", body)
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()
        return created

    def show(self, cert_id: str, who: str = "officer-1") -> dict[str, Any]:
        response = self.call(who, "GET", f"/api/v1/certificates/{cert_id}")
        assert response.status_code == 200, response.text
        shown: dict[str, Any] = response.json()
        return shown

    def approve(self, cert_id: str, who: str = "officer-1",
                digest: str | None = None) -> requests.Response:
        body = {"fields_digest": digest} if digest is not None else None
        return self.call(who, "POST", f"/api/v1/certificates/{cert_id}/approve", body)

    def issued(self, body: dict[str, Any]) -> dict[str, Any]:
        cert_id = self.submit(body)["id"]
        shown = self.show(cert_id)
        approved = self.approve(cert_id, digest=shown["fields_digest"])
        assert approved.status_code == 200, approved.text
        return self.show(cert_id)


@pytest.fixture
def desk(live: Live) -> Desk:
    return Desk(live)


def events(live: Live, cert_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    with live.runtime.sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.certificate_id == cert_id)
                               .order_by(AuditEvent.seq))
        return [(e.actor, e.action, e.details) for e in rows]


def pdf_of(desk: Desk, cert_id: str) -> bytes:
    response = desk.call("officer-1", "GET", f"/api/v1/certificates/{cert_id}/pdf")
    assert response.status_code == 200, response.text
    return response.content


def test_a_submitted_request_waits_for_an_officer_then_is_issued(desk: Desk) -> None:
    created = desk.submit(sample("birth-1"))
    assert (created["state"], created["number"], created["approved_by"]) == (
        "submitted", None, None)
    shown = desk.show(created["id"])
    assert shown["request"]["child"]["name"]["en"] == "Aarav Sandeep Kulkarni"
    approved = desk.approve(created["id"], digest=shown["fields_digest"])
    assert approved.status_code == 200, approved.text
    record = desk.show(created["id"])
    assert record["state"] == "issued"
    assert record["approved_by"] == f"token:{DEPT}/officer-1"
    assert record["number"].startswith("PMC/B/")
    actions = [(actor, action) for actor, action, _ in events(desk.live, created["id"])]
    assert actions[:2] == [(f"token:{DEPT}/clerk-1", "submit"),
                           (f"token:{DEPT}/officer-1", "approve")]
    assert [a for _, a in actions[2:]] == ["seal", "sign"]
    approve_details = events(desk.live, created["id"])[1][2]
    assert approve_details["rule"] == "officer"
    assert approve_details["fields_digest"] == shown["fields_digest"]


def test_the_submitter_can_never_approve(desk: Desk, live: Live) -> None:
    # An officer token that submits (through the service's own submit function, as only a
    # clerk's token may over HTTP) still cannot approve what it submitted.
    from issuer.submit import submit
    from issuer.workflow import approve

    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEPT)
        assert department is not None
        record = submit(session, department, f"token:{DEPT}/officer-1", sample("birth-1"))
        cert_id = record.id
    refused = desk.approve(cert_id, who="officer-1")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "invalid_state"
    assert "submitted" in refused.json()["detail"]
    assert desk.show(cert_id)["state"] == "submitted"
    with live.runtime.sessions() as session, session.begin():
        stored = session.get(Certificate, cert_id)
        assert stored is not None
        with pytest.raises(Exception, match="must not be the person who submitted"):
            approve(session, stored, f"token:{DEPT}/officer-1")
    assert desk.approve(cert_id, who="officer-2").status_code == 200


def test_an_approval_of_fields_since_amended_is_refused(desk: Desk) -> None:
    created = desk.submit(sample("birth-1"))
    seen = desk.show(created["id"])["fields_digest"]
    amended = sample("birth-1")
    amended["child"]["name"]["en"] = "Aarav Sandip Kulkarni"
    response = desk.call("clerk-1", "PUT", f"/api/v1/certificates/{created['id']}", amended)
    assert response.status_code == 200, response.text
    assert response.json()["fields_digest"] != seen
    stale = desk.approve(created["id"], digest=seen)
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "request_changed"
    assert stale.json()["fields_digest"] == response.json()["fields_digest"]
    assert desk.show(created["id"])["state"] == "submitted"
    fresh = desk.approve(created["id"], digest=response.json()["fields_digest"])
    assert fresh.status_code == 200, fresh.text
    assert [a for _, a, _ in events(desk.live, created["id"])][:3] == [
        "submit", "amend", "approve"]


def test_the_digest_is_over_the_stored_request(desk: Desk, live: Live) -> None:
    created = desk.submit(sample("birth-1"))
    shown = desk.show(created["id"])
    import json

    body = json.dumps({"request": shown["request"], "aadhaar_hmac": None}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    assert shown["fields_digest"] == hashlib.sha256(body.encode()).hexdigest()
    bad = desk.approve(created["id"], digest="0" * 64)
    assert bad.status_code == 409


def test_an_amendment_keeps_type_and_registration_and_only_drafts_change(desk: Desk) -> None:
    created = desk.submit(sample("birth-1"))
    other = sample("birth-1")
    other["registration_number"] = "B-2026-PMC-777777"
    moved = desk.call("clerk-1", "PUT", f"/api/v1/certificates/{created['id']}", other)
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["code"] == "amend_mismatch"
    assert desk.approve(created["id"]).status_code == 200
    late = desk.call("clerk-1", "PUT", f"/api/v1/certificates/{created['id']}",
                     sample("birth-1"))
    assert late.status_code == 409 and late.json()["state"] == "issued"


def test_reject_needs_a_reason_and_consumes_no_number(desk: Desk) -> None:
    first = desk.submit(sample("birth-1"))
    path = f"/api/v1/certificates/{first['id']}/reject"
    assert desk.call("officer-1", "POST", path, {}).json()["errors"][0]["field"] == "reason"
    assert desk.call("officer-1", "POST", path, {"reason": "  "}).status_code == 422
    rejected = desk.call("officer-1", "POST", path, {"reason": "mother's name misspelt"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["decision_reason"] == "mother's name misspelt"
    assert rejected.json()["number"] is None
    again = desk.call("officer-1", "POST", path, {"reason": "twice"})
    assert again.status_code == 409 and again.json()["state"] == "rejected"
    assert desk.approve(first["id"]).status_code == 409
    # The registration is free again, and the next number is the first of the series.
    issued = desk.issued(sample("birth-1"))
    assert issued["number"].endswith("/KB/000001")
    assert ("reject", {"reason": "mother's name misspelt"}) in [
        (a, d) for _, a, d in events(desk.live, first["id"])]


def test_revoked_certificates_verify_as_revoked_with_reason_and_date(desk: Desk) -> None:
    record = desk.issued(sample("birth-1"))
    pdf = pdf_of(desk, record["id"])
    path = f"/api/v1/certificates/{record['id']}/revoke"
    assert desk.call("clerk-1", "POST", path, {"reason": "x"}).status_code == 403
    revoked = desk.call("officer-2", "POST", path, {"reason": "registered twice"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked" and revoked.json()["revoked_at"]
    verdict = verify_pdf(desk.live.runtime, pdf).as_dict()
    assert (verdict["genuine"], verdict["current"], verdict["status"]) == (True, False, "revoked")
    assert verdict["certificate"]["revoked_reason"] == "registered twice"
    assert verdict["certificate"]["revoked_at"] == revoked.json()["revoked_at"]
    with desk.live.runtime.sessions() as session:
        stored = session.get(Certificate, record["id"])
        assert stored is not None and stored.seal_text
    public = requests.post(desk.live.url("/api/v1/verify"), json={"qr": stored.seal_text},
                           timeout=60).json()  # the public endpoint, no token
    assert (public["genuine"], public["current"], public["status"]) == (True, False, "revoked")
    assert public["certificate"]["revoked_reason"] == "registered twice"
    again = desk.call("officer-1", "POST", path, {"reason": "again"})
    assert again.status_code == 409 and again.json()["state"] == "revoked"
    assert ("revoke", {"reason": "registered twice", "number": record["number"]}) in [
        (a, d) for _, a, d in events(desk.live, record["id"])]
    # Still downloadable: the holder keeps what was issued, the verifier sees it revoked.
    assert pdf_of(desk, record["id"]) == pdf


def test_a_correction_goes_through_approval_and_supersedes_when_issued(desk: Desk) -> None:
    original = desk.issued(sample("birth-1"))
    old_pdf = pdf_of(desk, original["id"])
    fixed = sample("birth-1")
    fixed["mother"]["name"] = {"en": "Shraddha Sandip Kulkarni", "mr": "श्रद्धा संदीप कुलकर्णी"}
    correction = desk.submit({**fixed, "corrects": original["id"]})
    assert correction["state"] == "submitted" and correction["corrects"] == original["id"]
    # Until the correction is issued, the original stays current.
    assert verify_pdf(desk.live.runtime, old_pdf).as_dict()["status"] == "current"
    # One correction at a time.
    refused = desk.call("clerk-1", "POST", "/api/v1/certificates",
                        {**fixed, "corrects": original["id"]})
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    desk.approve(correction["id"]).raise_for_status()
    new = desk.show(correction["id"])
    old = desk.show(original["id"])
    assert new["state"] == "issued" and new["number"] != original["number"]
    assert old["state"] == "superseded" and old["superseded_by"] == new["id"]
    verdict = verify_pdf(desk.live.runtime, old_pdf).as_dict()
    assert (verdict["genuine"], verdict["current"], verdict["status"]) == (
        True, False, "superseded")
    assert verdict["certificate"]["current_number"] == new["number"]
    assert verdict["certificate"]["superseded_by"] == new["id"]
    with desk.live.runtime.sessions() as session:
        seal = session.get(Certificate, new["id"])
        assert seal is not None and seal.seal_text
    assert verify_qr(desk.live.runtime, seal.seal_text).as_dict()["status"] == "current"
    assert ("supersede", new["id"]) in [
        (a, d.get("superseded_by")) for _, a, d in events(desk.live, original["id"])]


def test_a_correction_of_a_correction_points_old_verifiers_to_the_newest(desk: Desk) -> None:
    first = desk.issued(sample("birth-1"))
    first_pdf = pdf_of(desk, first["id"])
    second = desk.issued({**sample("birth-1"), "corrects": first["id"]})
    third = desk.issued({**sample("birth-1"), "corrects": second["id"]})
    verdict = verify_pdf(desk.live.runtime, first_pdf).as_dict()
    assert verdict["certificate"]["current_number"] == third["number"]
    assert verdict["certificate"]["current_status"] == "current"


@pytest.mark.parametrize("change, field, code", [
    ({"type": "death"}, "type", None),
    ({"registration_number": "B-2026-PMC-000001"}, "registration_number",
     "correction_mismatch"),
])
def test_a_correction_keeps_type_and_registration(
    desk: Desk, change: dict[str, Any], field: str, code: str | None
) -> None:
    original = desk.issued(sample("birth-1"))
    body = {**sample("birth-1"), **change, "corrects": original["id"]}
    refused = desk.call("clerk-1", "POST", "/api/v1/certificates", body)
    assert refused.status_code == 422, refused.text
    fields = {e["field"]: e["code"] for e in refused.json()["errors"]}
    if code is not None:
        assert fields[field] == code
    assert desk.show(original["id"])["state"] == "issued"


def test_only_an_issued_certificate_of_ours_can_be_corrected(desk: Desk, live: Live) -> None:
    pending = desk.submit(sample("birth-1"))
    refused = desk.call("clerk-1", "POST", "/api/v1/certificates",
                        {**sample("birth-1"), "corrects": pending["id"]})
    assert refused.status_code == 409 and refused.json()["state"] == "submitted"
    theirs = live.post_json("/api/v1/certificates", sample("birth-2")).json()  # dev department
    foreign = desk.call("clerk-1", "POST", "/api/v1/certificates",
                        {**sample("birth-2"), "corrects": theirs["id"]})
    unknown = desk.call("clerk-1", "POST", "/api/v1/certificates",
                        {**sample("birth-2"), "corrects": "6f1c1a36-0000-4000-8000-000000000000"})
    for response in (foreign, unknown):
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "not_found"
    garbage = desk.call("clerk-1", "POST", "/api/v1/certificates",
                        {**sample("birth-2"), "corrects": ["x"]})
    assert garbage.status_code == 422 and garbage.json()["errors"][0]["field"] == "corrects"


@pytest.mark.parametrize("action, state", [("approve", "rejected"), ("reject", "rejected"),
                                           ("revoke", "submitted")])
def test_a_transition_from_the_wrong_state_names_the_current_state(
    desk: Desk, action: str, state: str
) -> None:
    created = desk.submit(sample("birth-1"))
    if state == "rejected":
        desk.call("officer-1", "POST", f"/api/v1/certificates/{created['id']}/reject",
                  {"reason": "no"}).raise_for_status()
    before = events(desk.live, created["id"])
    response = desk.call("officer-1", "POST", f"/api/v1/certificates/{created['id']}/{action}",
                         {"reason": "r"})
    assert response.status_code == 409, response.text
    body = response.json()
    assert response.headers["Content-Type"] == "application/problem+json"
    assert (body["code"], body["state"]) == ("invalid_state", state)
    assert state in body["detail"]
    assert events(desk.live, created["id"]) == before


def test_the_list_is_the_department_s_own_newest_first_and_paged(desk: Desk, live: Live) -> None:
    live.post_json("/api/v1/certificates", sample("birth-2")).raise_for_status()  # not ours
    ids = [desk.submit(sample(name))["id"] for name in ("birth-1", "birth-2")]
    page = desk.call("officer-1", "GET", "/api/v1/certificates?limit=1").json()
    assert [c["id"] for c in page["certificates"]] == [ids[1]]
    rest = desk.call("officer-1", "GET",
                     f"/api/v1/certificates?limit=1&after={page['next_after']}").json()
    assert [c["id"] for c in rest["certificates"]] == [ids[0]] and rest["next_after"] is None
    submitted = desk.call("officer-1", "GET", "/api/v1/certificates?state=submitted").json()
    assert {c["id"] for c in submitted["certificates"]} == set(ids)
    bad = desk.call("officer-1", "GET", "/api/v1/certificates?state=nope&limit=0")
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"state", "limit"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_approval_naming_no_digest_ever_shown_is_a_field_error(desk: Desk) -> None:
    created = desk.submit(sample("birth-1"))
    shown = desk.show(created["id"])["fields_digest"]
    path = f"/api/v1/certificates/{created['id']}/approve"
    for seen, code in ((shown.upper(), "format"), (shown[:-1], "format"), (shown + "0", "format"),
                       ("g" + shown[1:], "format"), ("", "format"), (7, "type"), ([shown], "type")):
        refused = desk.call("officer-1", "POST", path, {"fields_digest": seen})
        assert refused.status_code == 422, (seen, refused.text)
        assert refused.headers["Content-Type"] == "application/problem+json"
        errors = [(e["field"], e["code"]) for e in refused.json()["errors"]]
        assert errors == [("fields_digest", code)], seen
    assert desk.show(created["id"])["state"] == "submitted"
    # null is no digest: the request is approved as it is now.
    approved = desk.call("officer-1", "POST", path, {"fields_digest": None})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cursor_no_page_gave_is_a_field_error(desk: Desk) -> None:
    some_id = "0a0b0c0d-0000-4000-8000-00000000abcd"
    headers = {"Authorization": f"Bearer {desk.tokens['officer-1']}"}

    def page(after: str) -> requests.Response:
        return requests.get(desk.live.url("/api/v1/certificates"), params={"after": after},
                            headers=headers, timeout=60)

    for after in (f"{'9' * 18}_{some_id}", f"²_{some_id}", f"١٢_{some_id}", f"-1_{some_id}",
                  f"12_{some_id.upper()}", f"12_{some_id[:-1]}", f"12{some_id}", "12_x", ""):
        refused = page(after)
        assert refused.status_code == 422, (after, refused.text)
        errors = [(e["field"], e["code"]) for e in refused.json()["errors"]]
        assert errors == [("after", "format")], after
    # The longest time it takes (17 digits, the year 5138) is a page, of what came before.
    assert page(f"{'9' * 17}_{some_id}").status_code == 200


def test_an_amendment_of_only_the_aadhaar_number_changes_the_digest(desk: Desk) -> None:
    first, second = (base + check_digit(base) for base in ("86429753104", "52345678901"))
    data = sample("birth-1")
    data["applicant"]["aadhaar"] = first
    created = desk.submit(data)
    seen = desk.show(created["id"])["fields_digest"]
    data["applicant"]["aadhaar"] = second
    amended = desk.call("clerk-1", "PUT", f"/api/v1/certificates/{created['id']}", data)
    assert amended.status_code == 200, amended.text
    assert amended.json()["request"] == desk.show(created["id"])["request"]  # same fields
    assert amended.json()["fields_digest"] != seen
    assert desk.approve(created["id"], digest=seen).status_code == 409


@pytest.fixture
def postgres_desk(tmp_path: Path, keys_dir: Path) -> Iterator[Desk]:
    """The desk on PostgreSQL only: SQLite has no row locks, and the race below needs them."""
    for url in _postgres_schema():
        yield from (Desk(live) for live in serve(make_settings(tmp_path, url, keys_dir)))


def test_two_officers_deciding_one_request_at_once_do_not_both_win(
    postgres_desk: Desk,
) -> None:
    # Officer 2 is rejecting (row locked, not yet committed) when officer 1's approval arrives:
    # the approval must wait and then see the rejection. Read without the lock, it would
    # approve a request already rejected, overwriting the rejection (and drawing a number).
    desk = postgres_desk
    cert_id = desk.submit(sample("birth-1"))["id"]
    answer: list[requests.Response] = []
    with desk.live.runtime.sessions() as officer_2:
        record = officer_2.get(Certificate, cert_id, with_for_update=True)
        assert record is not None
        reject(officer_2, record, f"token:{DEPT}/officer-2", "a duplicate request")
        officer_2.flush()
        approval = threading.Thread(target=lambda: answer.append(desk.approve(cert_id)))
        approval.start()
        wait_for_a_blocked_backend(desk.live, "the approval")
        officer_2.commit()
    approval.join(timeout=60)
    assert answer and answer[0].status_code == 409, answer and answer[0].text
    assert (answer[0].json()["code"], answer[0].json()["state"]) == ("invalid_state", "rejected")
    shown = desk.show(cert_id)
    assert (shown["state"], shown["number"]) == ("rejected", None)
    assert [action for _, action, _ in events(desk.live, cert_id)] == ["submit", "reject"]
