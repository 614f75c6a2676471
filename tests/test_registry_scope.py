"""Registration numbers belong to a department's own registry: no squatting across departments,
and a 409 never tells one department about another's records."""

from __future__ import annotations

import requests

from issuer.models import Department
from issuer.tokens import create_token
from tests.conftest import Live, sample


def second_department(live: Live, dept_id: str = "pmc-ward-kothrud-births") -> requests.Session:
    with live.runtime.sessions() as session, session.begin():
        session.add(Department(id=dept_id, name_en="Kothrud ward registrar",
                               name_mr="कोथरूड क्षेत्रीय निबंधक", cert_types=["birth"],
                               approval="automatic"))
        session.flush()
        department = session.get(Department, dept_id)
        assert department is not None
        token = create_token(session, department, "clerk-1", "clerk")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def test_another_department_cannot_squat_or_probe_our_numbers(live: Live) -> None:
    other = second_department(live)
    data = sample("birth-1")
    # B claims a number A has not used yet: it is B's own registry, so it gets its own record...
    theirs = other.post(live.url("/api/v1/certificates"), json=data, timeout=60)
    assert theirs.status_code == 202, theirs.text
    # ...and A can still register the same number in its registry.
    ours = live.post_json("/api/v1/certificates", data)
    assert ours.status_code == 202, ours.text
    assert ours.json()["id"] != theirs.json()["id"]
    assert ours.json()["state"] == theirs.json()["state"] == "issued"


def test_409_is_only_within_the_department_and_points_to_its_own_record(live: Live) -> None:
    other = second_department(live)
    data = sample("birth-2")
    ours = live.post_json("/api/v1/certificates", data).json()
    theirs = other.post(live.url("/api/v1/certificates"), json=data, timeout=60)
    assert theirs.status_code == 202, "another department's number is not a conflict"
    again = other.post(live.url("/api/v1/certificates"), json=data, timeout=60)
    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "duplicate_registration"
    assert problem["certificate_id"] == theirs.json()["id"] != ours["id"]
    assert ours["id"] not in again.text
    mine_again = live.post_json("/api/v1/certificates", data).json()
    assert mine_again["certificate_id"] == ours["id"] and theirs.json()["id"] not in str(
        mine_again)
