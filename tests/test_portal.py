"""The citizen portal over real HTTP: the right details give the right PDF, every wrong
combination the same page, tries are limited per client and per number (in Redis when the
service has one), and the forms need their CSRF token."""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from redis import Redis
from sqlalchemy import select

from issuer.departments import add_department
from issuer.errors import ConfigError
from issuer.models import AuditEvent
from issuer.settings import Settings
from issuer.tokens import create_token
from tests.conftest import Live, make_settings, sample, serve
from tests.test_digilocker_e2e import ASHA, World, world_fixture  # noqa: F401 - a fixture
from tests.test_verify_page_browser import issued, officer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ECHOED = re.compile(r'(name="(?:reference|second)"[^>]*?value=")[^"]*"', re.S)


class Citizen:
    """A browser without an account: the portal's cookies, from one client address."""

    def __init__(self, live: Live, source: str = "127.0.0.1") -> None:
        self.live = live
        self.source = source
        self.cookies: dict[str, str] = {}
        self.token = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(self.live.base)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60,
                                                source_address=(self.source, 0))
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        answer = connection.getresponse()
        data = answer.read()
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        found = CSRF.search(data.decode("utf-8", "replace"))
        if found:
            self.token = found.group(1)
        result = {k.lower(): v for k, v in answer.getheaders()}
        connection.close()
        return answer.status, result, data

    def open(self, kind: str = "birth") -> None:
        status, _, _ = self.request("GET", f"/portal/{kind}")
        assert status == 200 and self.token

    def ask(self, kind: str, reference: str, second: str, action: str = "") -> tuple[
            int, dict[str, str], bytes]:
        if not self.token:
            self.open(kind)
        form = {"csrf": self.token, "reference": reference, "second": second}
        return self.request("POST", f"/portal/{kind}{action}", form)


def issued_birth(live: Live, **child: Any) -> dict[str, Any]:
    data = sample("birth-1")
    data["registration_number"] = f"B-2026-PMC-{uuid.uuid4().int % 10**6:06d}"
    data["child"] = {**data["child"], **child}
    cert_id = issued(live, data)
    view = live.get(f"/api/v1/certificates/{cert_id}").json()
    assert view["state"] == "issued"
    return {"id": cert_id, "data": data, "view": view}


def text_of(body: bytes) -> str:
    return body.decode("utf-8")


def without_echo(body: bytes) -> str:
    """The page with the two typed values blanked (the form gives back what was typed)."""
    return ECHOED.sub(r'\1"', text_of(body))


def test_the_right_details_download_the_issued_pdf_and_leave_an_audit_event(
        live: Live) -> None:
    made = issued_birth(live)
    citizen = Citizen(live)
    reference = made["data"]["registration_number"].lower()  # as a citizen may type it
    status, _, page = citizen.ask("birth", f"  {reference} ", "21-02-2026")
    assert status == 200, text_of(page)
    assert made["view"]["number"] in text_of(page)
    assert 'id="download"' in text_of(page)

    status, headers, pdf = citizen.ask("birth", reference, "2026-02-21", "/pdf")
    assert status == 200
    assert headers["content-type"] == "application/pdf"
    assert headers["cache-control"] == "no-store"
    record = live.get(f"/api/v1/certificates/{made['id']}").json()
    assert hashlib.sha256(pdf).hexdigest() == record["pdf_sha256"]
    with live.runtime.sessions() as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.certificate_id == made["id"],
            AuditEvent.action == "portal_download")).all()
    assert [e.actor for e in events] == ["citizen:portal"]


def test_every_wrong_combination_gets_the_same_page(live: Live) -> None:
    made = issued_birth(live)
    number = made["data"]["registration_number"]
    citizen = Citizen(live)
    refusal = citizen.ask("birth", "B-2026-PMC-999999", "21-02-2026")  # no such number
    assert refusal[0] == 404
    assert "No certificate matches these details" in text_of(refusal[2])
    same = [
        citizen.ask("birth", number, "22-02-2026"),  # the right number, a wrong date
        citizen.ask("birth", number, "22-02-2026", "/pdf"),  # the same, downloading
        citizen.ask("birth", number, "22-02-2026", "/digilocker"),  # or handing over
    ]
    for status, headers, body in same:
        assert (status, headers["content-type"]) == (refusal[0], refusal[1]["content-type"])
        assert without_echo(body) == without_echo(refusal[2])
    # A birth registration number asked for as a death certificate: the death form's refusal.
    death = citizen.ask("death", number, "21-02-2026")
    assert without_echo(death[2]) == without_echo(citizen.ask("death", "D-0", "21-02-2026")[2])
    assert death[0] == 404
    # The control: the right details are found.
    assert citizen.ask("birth", number, "21-02-2026")[0] == 200


def test_the_refusal_for_a_revoked_certificate_download_is_the_wrong_details_page(
        live: Live) -> None:
    made = issued_birth(live)
    number = made["data"]["registration_number"]
    answer = officer(live).post(live.url(f"/api/v1/certificates/{made['id']}/revoke"),
                                json={"reason": "registered twice"}, timeout=60)
    assert answer.status_code == 200, answer.text
    citizen = Citizen(live)
    status, _, page = citizen.ask("birth", number, "21-02-2026")
    assert status == 200
    assert "revoked" in text_of(page) and "registered twice" in text_of(page)
    assert 'id="download"' not in text_of(page)
    status, _, body = citizen.ask("birth", number, "21-02-2026", "/pdf")
    _, _, wrong = citizen.ask("birth", number, "20-02-2026")
    assert status == 404
    assert without_echo(body) == without_echo(wrong)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_request_in_the_works_shows_its_due_date(live: Live) -> None:
    with live.runtime.sessions() as session, session.begin():
        department = add_department(session, f"births{uuid.uuid4().hex[:4]}", "Births office",
                                    "जन्म नोंदणी कार्यालय", approval="officer", types=["birth"],
                                    actor="test")
        token = create_token(session, department, "clerk-1", "clerk")
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-777001"
    answer = requests.post(live.url("/api/v1/certificates"), json=data, timeout=60,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "submitted"
    due = answer.json()["due_at"][:10]
    status, _, page = Citizen(live).ask("birth", "B-2026-PMC-777001", "21-02-2026")
    assert status == 200
    assert "being prepared" in text_of(page)
    year, month, day = due.split("-")
    assert f"{day}-{month}-{year}" in text_of(page)
    assert 'id="download"' not in text_of(page)


def office_with_approval(live: Live) -> tuple[dict[str, str], dict[str, str]]:
    """A births office whose requests wait for an officer: (clerk, officer) auth headers."""
    with live.runtime.sessions() as session, session.begin():
        department = add_department(session, f"births{uuid.uuid4().hex[:4]}", "Births office",
                                    "जन्म नोंदणी कार्यालय", approval="officer", types=["birth"],
                                    actor="test")
        clerk = create_token(session, department, "clerk-1", "clerk")
        officer_token = create_token(session, department, "officer-1", "officer")
    return ({"Authorization": f"Bearer {clerk}"}, {"Authorization": f"Bearer {officer_token}"})


def approved_and_issued(live: Live, cert_id: str, officer_auth: dict[str, str]) -> dict[str, Any]:
    answer = requests.post(live.url(f"/api/v1/certificates/{cert_id}/approve"), json={},
                           headers=officer_auth, timeout=60)
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view: dict[str, Any] = requests.get(live.url(f"/api/v1/certificates/{cert_id}"),
                                            headers=officer_auth, timeout=60).json()
        if view["state"] == "issued":
            return view
        time.sleep(0.1)
    raise AssertionError(f"{cert_id} not issued: {view}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_correction_in_the_works_leaves_the_issued_one_then_replaces_it(live: Live) -> None:
    clerk, officer_auth = office_with_approval(live)
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-777002"
    first = requests.post(live.url("/api/v1/certificates"), json=data, headers=clerk,
                          timeout=60).json()
    approved = approved_and_issued(live, first["id"], officer_auth)
    correction = {**data, "corrects": first["id"]}
    correction["child"] = {**data["child"], "date_of_birth": "2026-02-20",
                           "name": {**data["child"]["name"], "en": "Aarav Sandip Kulkarni"}}
    second = requests.post(live.url("/api/v1/certificates"), json=correction, headers=clerk,
                           timeout=60).json()
    assert second["state"] == "submitted", second
    citizen = Citizen(live)

    _, _, page = citizen.ask("birth", "B-2026-PMC-777002", "21-02-2026")
    assert approved["number"] in text_of(page) and 'id="download"' in text_of(page)

    done = approved_and_issued(live, second["id"], officer_auth)
    assert done["number"] != approved["number"]
    # Asked with the corrected date, or with the date on the old paper: the correction.
    for day in ("20-02-2026", "21-02-2026"):
        _, _, page = citizen.ask("birth", "B-2026-PMC-777002", day)
        assert done["number"] in text_of(page) and "Aarav Sandip Kulkarni" in text_of(page)
        _, _, pdf = citizen.ask("birth", "B-2026-PMC-777002", day, "/pdf")
        assert hashlib.sha256(pdf).hexdigest() == done["pdf_sha256"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_no_dues_certificate_is_found_by_reference_and_property_id(live: Live) -> None:
    data = sample("property-1")
    cert_id = issued(live, data)
    number = live.get(f"/api/v1/certificates/{cert_id}").json()["number"]
    citizen = Citizen(live)
    status, _, page = citizen.ask("property_no_dues", "pt-nd-2026-000341",
                                  " pmc/pt/12/0456/00078123")
    assert status == 200 and number in text_of(page)
    status, _, _ = citizen.ask("property_no_dues", "PT-ND-2026-000341", "PMC/PT/12/0456/00078124")
    assert status == 404


def test_a_form_without_its_csrf_token_is_refused(live: Live) -> None:
    made = issued_birth(live)
    number = made["data"]["registration_number"]
    citizen = Citizen(live)
    citizen.open()
    good = citizen.token
    citizen.token = "x" * 43
    status, _, page = citizen.ask("birth", number, "21-02-2026", "/pdf")
    assert status == 403 and "expired" in text_of(page)
    stranger = Citizen(live)  # the token of a page, but not the cookie that came with it
    stranger.token = good
    status, _, _ = stranger.ask("birth", number, "21-02-2026", "/pdf")
    assert status == 403
    citizen.token = good
    status, _, _ = citizen.ask("birth", number, "21-02-2026", "/pdf")
    assert status == 200


def test_malformed_details_say_which_field(live: Live) -> None:
    citizen = Citizen(live)
    status, _, page = citizen.ask("birth", "", "31-02-2026")
    text = text_of(page)
    assert status == 422
    assert 'id="reference-error"' in text and 'id="second-error"' in text
    assert text.count('aria-invalid="true"') == 2
    status, _, page = citizen.ask("property_no_dues", "PT-ND-2026-000341", " ")
    assert status == 422 and 'id="second-error"' in text_of(page)
    assert 'id="reference-error"' not in text_of(page)


@pytest.fixture
def tight(tmp_path: Any, database_url: str, keys_dir: Any) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, database_url, keys_dir,
                                   portal_client_limit="3/minute",
                                   portal_number_limit="100/minute"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tries_are_limited_per_client_address(tight: Live) -> None:
    citizen = Citizen(tight)
    for date in ("01-01-2026", "02-01-2026", "03-01-2026"):
        assert citizen.ask("birth", "B-2026-PMC-000001", date)[0] == 404
    status, headers, page = citizen.ask("birth", "B-2026-PMC-000002", "04-01-2026")
    assert status == 429
    assert "Too many attempts" in text_of(page)
    assert int(headers["retry-after"]) > 0
    # Another address is not held back by this one's tries.
    assert Citizen(tight, "127.0.0.2").ask("birth", "B-2026-PMC-000001", "05-01-2026")[0] == 404


@pytest.fixture
def per_number(tmp_path: Any, database_url: str, keys_dir: Any) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, database_url, keys_dir,
                                   portal_client_limit="100/minute",
                                   portal_number_limit="2/minute"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tries_are_limited_per_number_whatever_the_address(per_number: Live) -> None:
    addresses = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    answers = [Citizen(per_number, source).ask("birth", "b-2026-pmc-000009 ", f"0{i}-01-2026")
               for i, source in enumerate(addresses, 1)]
    assert [a[0] for a in answers] == [404, 404, 429]
    # The number is what is held back: the same address asks about another one.
    assert Citizen(per_number, addresses[-1]).ask("birth", "B-2026-PMC-000010",
                                                  "01-01-2026")[0] == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_limits_are_counted_in_redis_and_shared_by_every_api_process(
        tmp_path: Any, database_url: str, keys_dir: Any, redis_url: str) -> None:
    settings = make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url,
                             portal_client_limit="3/minute", portal_number_limit="100/minute")
    first, second = serve(settings), serve(settings)
    one, two = next(first), next(second)
    try:
        assert Citizen(one).ask("birth", "B-2026-PMC-000001", "01-01-2026")[0] == 404
        assert Citizen(two).ask("birth", "B-2026-PMC-000001", "02-01-2026")[0] == 404
        assert Citizen(one).ask("birth", "B-2026-PMC-000001", "03-01-2026")[0] == 404
        assert Citizen(two).ask("birth", "B-2026-PMC-000001", "04-01-2026")[0] == 429
        keys = Redis.from_url(redis_url).keys("*pramaan-limits*")
        assert keys
        assert not any(b"B-2026" in key.upper() for key in keys)  # references hashed
    finally:
        for server in (first, second):
            server.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_public_verify_api_is_limited_per_client_with_a_problem(
        tmp_path: Any, database_url: str, keys_dir: Any) -> None:
    settings = make_settings(tmp_path, database_url, keys_dir, verify_client_limit="2/minute")
    for live in serve(settings):
        for _ in range(2):
            answer = requests.post(live.url("/api/v1/verify"), json={"qr": "123"}, timeout=60)
            assert answer.status_code == 200
        answer = requests.post(live.url("/api/v1/verify/pdf"), data=b"%PDF-1.7",
                               headers={"Content-Type": "application/pdf"}, timeout=60)
        assert answer.status_code == 429
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["code"] == "rate_limited"
        assert int(answer.headers["Retry-After"]) > 0


def test_marathi_is_chosen_by_link_by_cookie_or_by_the_browser(live: Live) -> None:
    citizen = Citizen(live)
    status, headers, page = citizen.request("GET", "/portal/birth?lang=mr")
    assert status == 200 and '<html lang="mr">' in text_of(page)
    assert "नोंदणी क्रमांक" in text_of(page) and "जन्म दिनांक" in text_of(page)
    assert headers["content-language"] == "mr"
    _, _, again = citizen.request("GET", "/portal")  # remembered
    assert '<html lang="mr">' in text_of(again) and "तुमचे प्रमाणपत्र मिळवा" in text_of(again)
    _, _, back = citizen.request("GET", "/portal?lang=en")
    assert '<html lang="en">' in text_of(back) and "Get your certificate" in text_of(back)
    _, _, browser = Citizen(live).request("GET", "/portal",
                                          headers={"Accept-Language": "mr-IN,mr;q=0.9,en;q=0.5"})
    assert '<html lang="mr">' in text_of(browser)
    # Every form field has its label, in the chosen language.
    for name in ("reference", "second"):
        assert f'<label for="{name}">' in text_of(page)


def test_the_portal_settings_refuse_a_malformed_limit(tmp_path: Any, keys_dir: Any) -> None:
    for bad in ("ten per minute", "0/minute", ""):
        with pytest.raises(ConfigError, match="PRAMAAN_PORTAL_CLIENT_LIMIT"):
            Settings.from_env(env={"PRAMAAN_HOME": str(tmp_path)},
                              overrides={"portal_client_limit": bad})
    with pytest.raises(ConfigError, match="PRAMAAN_PROXY_HOPS"):
        Settings.from_env(env={"PRAMAAN_HOME": str(tmp_path), "PRAMAAN_PROXY_HOPS": "9"})


def test_an_unknown_type_is_not_found(live: Live) -> None:
    status, _, _ = Citizen(live).request("GET", "/portal/marriage")
    assert status == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_get_it_in_digilocker_links_the_holder_s_locker_and_pushes_it(world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    world.desk.approve(request["id"]).raise_for_status()
    citizen = Citizen(world.live)
    _, _, page = citizen.ask("birth", "B-2026-PMC-004512", "21-02-2026")
    assert 'id="digilocker"' in text_of(page)

    status, headers, _ = citizen.ask("birth", "B-2026-PMC-004512", "21-02-2026", "/digilocker")
    assert status == 303
    link_path = urlsplit(headers["location"])
    assert link_path.path == f"/digilocker/link/{request['id']}"
    started = requests.get(f"{world.live.base}{link_path.path}?{link_path.query}",
                           allow_redirects=False, timeout=60)
    assert started.status_code == 302
    back = urlsplit(world.dl.link(started.headers["Location"], "asha"))
    done = requests.get(f"{world.live.base}/digilocker/callback?{back.query}", timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["digilockerid"] == ASHA
    assert done.json()["delivery"]["state"] == "delivered"
    assert world.uri(request["id"]) in world.dl.state()["pushes"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_browser_coming_back_from_digilocker_gets_a_page_in_its_language(
        world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    made = world.desk.call("clerk-1", "POST", f"/api/v1/certificates/{request['id']}/"
                           "digilocker-link").json()
    parts = urlsplit(made["url"])
    started = requests.get(f"{world.live.base}{parts.path}?{parts.query}",
                           allow_redirects=False, timeout=60)
    back = urlsplit(world.dl.link(started.headers["Location"], "asha"))
    done = requests.get(f"{world.live.base}/digilocker/callback?{back.query}", timeout=60,
                        headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                                 "Cookie": "pramaan_lang=mr"})
    assert done.status_code == 200
    assert done.headers["Content-Type"].startswith("text/html")
    assert "तुमचे डिजीलॉकर खाते जोडले गेले आहे" in done.text


def test_without_digilocker_configured_there_is_no_button_and_no_hand_over(live: Live) -> None:
    made = issued_birth(live)
    number = made["data"]["registration_number"]
    citizen = Citizen(live)
    _, _, page = citizen.ask("birth", number, "21-02-2026")
    assert 'id="download"' in text_of(page) and 'id="digilocker"' not in text_of(page)
    status, _, _ = citizen.ask("birth", number, "21-02-2026", "/digilocker")
    assert status == 404
