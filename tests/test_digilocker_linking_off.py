"""Where DigiLocker is not set up, following a link and the callback say so as a 404 problem:
not a 500 with an error logged (what Schemathesis found at stop 27)."""

from __future__ import annotations

import pytest

from tests.conftest import Live, sample


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_linking_route_is_not_found_where_digilocker_is_not_set_up(live: Live) -> None:
    assert not live.runtime.settings.digilocker_client_id
    made = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert made.status_code == 202, made.text
    cert_id = made.json()["id"]
    # The applicant's link is ours to make; following it needs DigiLocker.
    made_link = live.post_json(f"/api/v1/certificates/{cert_id}/digilocker-link", {})
    assert made_link.status_code == 200, made_link.text
    path = "/" + made_link.json()["url"].split("/", 3)[3]
    answers = [live.http.get(live.url(path), headers={"Authorization": ""},
                             allow_redirects=False),
               live.http.get(live.url("/digilocker/callback?code=x&state=y"),
                             headers={"Authorization": ""})]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json()["code"] == "digilocker_not_enabled"
