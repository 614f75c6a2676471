"""GET /api/v1/rts over real HTTP: officers and auditors of a department see its requests due
soon or overdue; a clerk is refused (403, audited); bad query values are 422 naming the field."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import utcnow
from issuer.models import AuditEvent, Department
from issuer.rts_calendar import due_at, load_calendar
from issuer.tokens import create_token
from tests.conftest import Live
from tests.rts_records import department, office, request


def client(live: Live, role: str, department_id: str = DEV_DEPARTMENT) -> requests.Session:
    with live.runtime.sessions() as session, session.begin():
        owner = session.get(Department, department_id)
        assert owner is not None
        token = create_token(session, owner, f"{role}-rts", role)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def test_the_report_over_http(live: Live) -> None:
    rt = live.runtime
    calendar = load_calendar(rt.settings)
    now = utcnow()
    office(rt, "KB")
    department(rt, "pmc-aundh")
    overdue = request(rt, now - timedelta(days=3))
    soon = request(rt, due_at(calendar, now, 1))  # the end of the next working day
    later = request(rt, due_at(calendar, now, 5))
    other_ward = request(rt, now - timedelta(days=1), ward="HD")
    theirs = request(rt, now - timedelta(days=3), department="pmc-aundh")

    officer = client(live, "officer")
    response = officer.get(live.url("/api/v1/rts"), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["due_within_working_days"] == 2
    listed = {r["certificate_id"]: (o["ward_code"], r["status"])
              for o in body["offices"] for r in o["requests"]}
    assert listed == {overdue: ("KB", "overdue"), soon: ("KB", "due_soon"),
                      other_ward: ("HD", "overdue")}
    assert later not in response.text and theirs not in response.text
    kb = next(o for o in body["offices"] if o["ward_code"] == "KB")
    assert (kb["designated_officer"], kb["overdue"], kb["due_soon"]) == ("A. Patil", 1, 1)
    late = next(r for r in kb["requests"] if r["certificate_id"] == overdue)
    assert late["calendar_days_late"] == 3  # three days ago to the hour: three IST days
    assert late["links"]["certificate"] == f"/api/v1/certificates/{overdue}"

    wide = officer.get(live.url("/api/v1/rts"), params={"due_within": "5", "ward": "kb"},
                       timeout=60).json()
    ids = {r["certificate_id"] for o in wide["offices"] for r in o["requests"]}
    assert ids == {overdue, soon, later}

    auditor = client(live, "auditor")
    assert auditor.get(live.url("/api/v1/rts"), timeout=60).status_code == 200
    # Another department's officer sees only their own.
    theirs_only = client(live, "officer", "pmc-aundh").get(live.url("/api/v1/rts"), timeout=60)
    assert theirs_only.status_code == 200
    assert [r["certificate_id"] for o in theirs_only.json()["offices"]
            for r in o["requests"]] == [theirs]


def test_a_clerk_is_refused_and_the_refusal_is_audited(live: Live) -> None:
    request(live.runtime, utcnow() - timedelta(days=3))
    response = live.get("/api/v1/rts")  # live.http carries the development clerk token
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "forbidden"
    assert "certificate_id" not in response.text
    with live.runtime.sessions() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
    assert [e.details["attempted"] for e in denied] == ["rts_read"]
    admin = client(live, "admin")
    assert admin.get(live.url("/api/v1/rts"), timeout=60).status_code == 403


def test_bad_query_values_are_field_errors(live: Live) -> None:
    officer = client(live, "officer")
    for params, field in (({"due_within": "x"}, "due_within"),
                          ({"due_within": "-1"}, "due_within"),
                          ({"due_within": "61"}, "due_within"),
                          ({"due_within": "٣"}, "due_within"),  # an Arabic-Indic digit
                          ({"ward": "W" * 17}, "ward"),
                          ({"ward": " "}, "ward")):
        response = officer.get(live.url("/api/v1/rts"), params=params, timeout=60)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["field"] == field
    assert officer.get(live.url("/api/v1/rts"), timeout=60,
                       headers={"Authorization": "Bearer nope"}).status_code == 401
