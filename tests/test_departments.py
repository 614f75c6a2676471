"""Department isolation over real HTTP: a second department's tokens can neither read nor download
the first's certificates, and cannot even tell them apart from ids that do not exist."""

from __future__ import annotations

import uuid

import requests

from issuer.models import Department
from issuer.runtime import Runtime
from issuer.tokens import create_token
from tests.conftest import Live, sample


def department_client(runtime: Runtime, dept_id: str,
                      cert_types: tuple[str, ...] = ("birth",)) -> requests.Session:
    """A new department with one clerk token, as an HTTP session sending that token."""
    with runtime.sessions() as session, session.begin():
        department = Department(id=dept_id, name_en=f"{dept_id} registrar",
                                name_mr="क्षेत्रीय निबंधक", cert_types=list(cert_types),
                                approval="automatic")
        session.add(department)
        session.flush()
        token = create_token(session, department, "clerk-1", "clerk")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def issued(live: Live, http: requests.Session, name: str) -> dict:
    created = http.post(live.url("/api/v1/certificates"), json=sample(name), timeout=60)
    assert created.status_code == 202, created.text
    record = http.get(live.url(created.json()["status_url"]), timeout=60).json()
    assert record["state"] == "issued", record
    return record


def anonymous(response: requests.Response, cert_id: str) -> tuple[int, str, dict]:
    """The response with the asked-for id blanked out, to compare with another id's."""
    body = response.json()
    body["detail"] = body["detail"].replace(cert_id, "<id>")
    return response.status_code, response.headers["Content-Type"], body


def test_another_department_cannot_read_or_download_and_learns_nothing(live: Live) -> None:
    ours = issued(live, live.http, "birth-1")
    other = department_client(live.runtime, "pmc-ward-aundh-births")
    missing = str(uuid.uuid4())

    for path in (ours["links"]["self"], ours["links"]["pdf"]):
        theirs = other.get(live.url(path), timeout=60)
        assert theirs.status_code == 404, theirs.text
        assert theirs.json()["code"] == "not_found"
        assert b"%PDF" not in theirs.content and ours["number"] not in theirs.text
        nothing = other.get(live.url(path.replace(ours["id"], missing)), timeout=60)
        assert anonymous(theirs, ours["id"]) == anonymous(nothing, missing)

    # Knowing the PDF's hash does not help: no 304 "not modified" for someone else's file.
    etag = {"If-None-Match": f'"{ours["pdf_sha256"]}"'}
    assert other.get(live.url(ours["links"]["pdf"]), headers=etag, timeout=60).status_code == 404
    # The owner still reads both.
    assert live.get(ours["links"]["self"]).json()["id"] == ours["id"]
    assert live.get(ours["links"]["pdf"]).content.startswith(b"%PDF")


def test_isolation_holds_both_ways_between_two_departments(live: Live) -> None:
    aundh = department_client(live.runtime, "pmc-ward-aundh-births")
    kothrud = department_client(live.runtime, "pmc-ward-kothrud-births")
    a = issued(live, aundh, "birth-1")
    k = issued(live, kothrud, "birth-2")
    assert a["department"] == "pmc-ward-aundh-births"
    assert k["department"] == "pmc-ward-kothrud-births"
    for http, own, foreign in ((aundh, a, k), (kothrud, k, a)):
        assert http.get(live.url(own["links"]["pdf"]), timeout=60).status_code == 200
        assert http.get(live.url(foreign["links"]["self"]), timeout=60).status_code == 404
        assert http.get(live.url(foreign["links"]["pdf"]), timeout=60).status_code == 404
    # The first department (the live fixture's admin token) sees neither.
    assert live.get(a["links"]["self"]).status_code == 404
    assert live.get(k["links"]["pdf"]).status_code == 404


def test_a_department_issues_only_its_own_certificate_types(live: Live) -> None:
    property_office = department_client(live.runtime, "pmc-property-tax", ("property",))
    refused = property_office.post(live.url("/api/v1/certificates"), json=sample("birth-1"),
                                   timeout=60)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("type", "not_allowed")]
