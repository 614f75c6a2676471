"""The DigiLocker emulator over real HTTP on 127.0.0.1: its OAuth server driven by authlib's own
client (PKCE S256), Push URI checks and error codes, the pull calls it makes to an issuer (a small
stand-in issuer here that checks the HMAC itself), and fault injection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from defusedxml import ElementTree as SafeET
from flask import Flask, Response, request
from werkzeug.serving import make_server

from digilocker.emulator import EmulatorConfig, Faults
from digilocker.emulator.pull_client import keyhash, sign_body
from digilocker.emulator.pushuri import push_hmac
from tests.conftest import Live, make_settings, serve
from tests.digilocker_emulator import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    RunningEmulator,
    emulator,
    run_emulator,
    test_partner,
)

__all__ = ["emulator"]  # the fixture, imported for pytest

ASHA = "123e4567-e89b-12d3-a456-426655440000"
RAVI = "9b2f7c1e-5d4a-4f3b-8e6d-0a1b2c3d4e5f"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
XML = b'<?xml version="1.0"?><Certificate type="BTCER"/>'


# --- OAuth --------------------------------------------------------------------------------------

def session() -> OAuth2Session:
    return OAuth2Session(CLIENT_ID, CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                         code_challenge_method="S256",
                         token_endpoint_auth_method="client_secret_post")


def authorize(dl: RunningEmulator, client: OAuth2Session, verifier: str,
              user: str | None = None) -> str:
    url, _ = client.create_authorization_url(dl.base + "/oauth2/1/authorize",
                                             code_verifier=verifier)
    return dl.link(url, user)


def link(dl: RunningEmulator, user: str = "asha") -> dict[str, Any]:
    client = session()
    verifier = generate_token(64)
    token: dict[str, Any] = client.fetch_token(
        dl.base + "/oauth2/1/token", authorization_response=authorize(dl, client, verifier, user),
        code_verifier=verifier)
    return token


def test_oauth_code_flow_with_pkce_gives_the_user(emulator: RunningEmulator) -> None:
    client = session()
    verifier = generate_token(64)
    redirect = authorize(emulator, client, verifier, "ravi")
    assert redirect.startswith(REDIRECT_URI + "?code=")
    token = client.fetch_token(emulator.base + "/oauth2/1/token",
                               authorization_response=redirect, code_verifier=verifier)
    assert token["digilockerid"] == RAVI and token["name"] == "Ravi Deshmukh"
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    user = client.get(emulator.base + "/oauth2/1/user", timeout=30)
    assert user.status_code == 200
    assert user.json()["digilockerid"] == RAVI and user.json()["dob"] == "02111988"
    assert [RAVI] == [d for c, d in emulator.state()["linked"] if c == CLIENT_ID]


def test_oauth_wrong_verifier_is_refused(emulator: RunningEmulator) -> None:
    client = session()
    redirect = authorize(emulator, client, generate_token(64))
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(emulator.base + "/oauth2/1/token", authorization_response=redirect,
                           code_verifier=generate_token(64))
    assert refused.value.error == "invalid_grant"
    assert emulator.state()["linked"] == []


def test_oauth_verifier_is_required(emulator: RunningEmulator) -> None:
    client = session()
    redirect = authorize(emulator, client, generate_token(64))
    code = redirect.split("code=")[1].split("&")[0]
    answer = requests.post(emulator.base + "/oauth2/1/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_oauth_code_reuse_is_refused(emulator: RunningEmulator) -> None:
    client = session()
    verifier = generate_token(64)
    redirect = authorize(emulator, client, verifier)
    client.fetch_token(emulator.base + "/oauth2/1/token", authorization_response=redirect,
                       code_verifier=verifier)
    with pytest.raises(OAuthError) as refused:
        session().fetch_token(emulator.base + "/oauth2/1/token",
                              authorization_response=redirect, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"


def test_oauth_refresh_rotates_the_refresh_token(emulator: RunningEmulator) -> None:
    client = session()
    verifier = generate_token(64)
    first = client.fetch_token(emulator.base + "/oauth2/1/token",
                               authorization_response=authorize(emulator, client, verifier),
                               code_verifier=verifier)
    second = client.refresh_token(emulator.base + "/oauth2/1/token")
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert client.get(emulator.base + "/oauth2/1/user", timeout=30).status_code == 200
    # The old refresh token is spent, and the old access token still works until it expires.
    with pytest.raises(OAuthError) as refused:
        session().refresh_token(emulator.base + "/oauth2/1/token",
                                refresh_token=first["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_oauth_revoked_token_is_refused(emulator: RunningEmulator) -> None:
    token = link(emulator)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(emulator.base + "/oauth2/1/user", headers=headers,
                        timeout=30).status_code == 200
    revoked = requests.post(emulator.base + "/oauth2/1/revoke", timeout=30, data={
        "token": token["access_token"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert revoked.status_code == 200
    refused = requests.get(emulator.base + "/oauth2/1/user", headers=headers, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert requests.get(emulator.base + "/oauth2/1/user", timeout=30).status_code == 401


def test_authorize_refusals(emulator: RunningEmulator) -> None:
    url = emulator.base + "/oauth2/1/authorize"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).rstrip(b"=")
    good = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
            "state": "s1", "code_challenge": challenge.decode(), "code_challenge_method": "S256"}

    def get(**changes: str | None) -> requests.Response:
        params = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return requests.get(url, params=params, allow_redirects=False, timeout=30)

    assert get().status_code == 302
    # No PKCE, or plain PKCE: sent back to the client with invalid_request and the state.
    for changes in ({"code_challenge": None, "code_challenge_method": None},
                    {"code_challenge_method": "plain"}):
        answer = get(**changes)
        assert answer.status_code == 302
        assert "error=invalid_request" in answer.headers["Location"]
        assert "state=s1" in answer.headers["Location"]
    # A redirect_uri not registered exactly (trailing slash) is never redirected to.
    answer = get(redirect_uri=REDIRECT_URI + "/")
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert get(client_id="nobody").status_code == 400
    assert get(state=None).status_code == 400
    assert get(dl_test_user="nobody").status_code == 400
    denied = get(dl_test_deny="1")
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["Location"]


# --- Push URI -----------------------------------------------------------------------------------

def push_form(action: str = "A", docid: str = "B-2024-00017", who: str = ASHA,
              **changes: str) -> dict[str, str]:
    form = {"clientid": CLIENT_ID, "digilockerid": who, "uri": f"in.gov.pmc-BTCER-{docid}",
            "doctype": "BTCER", "description": "Birth Certificate", "docid": docid,
            "issuedate": "15032024", "validfrom": "15032024", "validto": "", "action": action,
            "ts": str(int(time.time()))}
    form.update(changes)
    form["hmac"] = push_hmac(form, CLIENT_SECRET)
    return form


def push(dl: RunningEmulator, form: dict[str, str], multipart: bool = False,
         timeout: float = 30) -> requests.Response:
    url = dl.base + "/account/1/pushuri"
    if multipart:
        return requests.post(url, files={k: (None, v) for k, v in form.items()}, timeout=timeout)
    return requests.post(url, data=form, timeout=timeout)


def error_of(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["error"], body["error_description"]


def test_push_add_update_delete(emulator: RunningEmulator) -> None:
    link(emulator)
    assert push(emulator, push_form("A")).status_code == 200
    uri = "in.gov.pmc-BTCER-B-2024-00017"
    assert [d["uri"] for d in emulator.state()["documents"][ASHA]] == [uri]
    assert push(emulator, push_form("U", description="Birth Certificate (corrected)"),
                multipart=True).status_code == 200
    [document] = emulator.state()["documents"][ASHA]
    assert document["description"] == "Birth Certificate (corrected)"
    assert document["updates"] == 1
    assert push(emulator, push_form("D")).status_code == 200
    state = emulator.state()
    assert state["documents"][ASHA] == []
    assert state["pushes"] == {uri: {"A": 1, "U": 1, "D": 1}}
    assert error_of(push(emulator, push_form("D"))) == (
        400, "invalid_parameter", "URI parameter is missing or invalid")


def test_push_uri_taken(emulator: RunningEmulator) -> None:
    link(emulator)
    link(emulator, "ravi")
    assert push(emulator, push_form()).status_code == 200
    assert error_of(push(emulator, push_form())) == (
        400, "invalid_parameter", "URI already exists in this account")
    assert error_of(push(emulator, push_form(who=RAVI))) == (
        400, "invalid_parameter", "URI already exists in another account")
    assert emulator.state()["pushes"]["in.gov.pmc-BTCER-B-2024-00017"]["A"] == 1


@pytest.mark.parametrize(("changes", "expected"), [
    ({"uri": ""}, "URI"),
    ({"uri": "in.gov.other-BTCER-B-2024-00017"}, "URI"),
    ({"doctype": "BT"}, "Doctype"),
    ({"docid": ""}, "Docid"),
    ({"description": " "}, "Description"),
    ({"issuedate": "2024-03-15"}, "Issuedate"),
    ({"issuedate": "31022024"}, "Issuedate"),
    ({"validto": "1"}, "Validto"),
    ({"action": "X"}, "Action"),
    ({"ts": ""}, "Timestamp"),
    ({"ts": "yesterday"}, "Timestamp"),
    ({"ts": str(int(time.time()) - 1801 - 60)}, "Timestamp"),
    ({"ts": str(int(time.time()) + 3600)}, "Timestamp"),
])
def test_push_field_errors(emulator: RunningEmulator, changes: dict[str, str],
                           expected: str) -> None:
    link(emulator)
    assert error_of(push(emulator, push_form(**changes))) == (
        400, "invalid_parameter", f"{expected} parameter is missing or invalid")
    assert emulator.state()["pushes"] == {}


def test_push_hmac_and_identity_errors(emulator: RunningEmulator) -> None:
    link(emulator)
    form = push_form()
    for bad in ("", "0" * 64, push_hmac(form, "wrong-secret"),
                push_hmac({**form, "docid": "B-2024-00018"}, CLIENT_SECRET)):
        assert error_of(push(emulator, {**form, "hmac": bad})) == (
            400, "invalid_parameter", "HMAC parameter is missing or invalid")
    assert error_of(push(emulator, push_form(clientid="nobody")))[:2] == (
        401, "invalid_client_id")
    # Ravi exists but never linked this client; nobody is no account at all.
    assert error_of(push(emulator, push_form(who=RAVI)))[:2] == (404, "invalid_digilocker_id")
    assert error_of(push(emulator, push_form(who="0" * 36)))[:2] == (
        404, "invalid_digilocker_id")
    assert emulator.state()["pushes"] == {}


@pytest.mark.parametrize("sequence", ["full", "full-no-content", "generic"])
@pytest.mark.parametrize("encoding", ["hex", "base64", "base64-hex"])
def test_push_accepts_every_listed_hmac_variant(emulator: RunningEmulator, sequence: str,
                                                encoding: str) -> None:
    link(emulator)
    form = push_form(doccontent=base64.b64encode(PDF).decode())
    form["hmac"] = push_hmac(form, CLIENT_SECRET, sequence, encoding)
    if encoding == "hex":
        form["hmac"] = form["hmac"].upper()  # hex is compared without regard to case
    assert push(emulator, form).status_code == 200
    assert emulator.state()["push_log"][-1]["hmac_variant"] == f"{sequence}/{encoding}"


def test_push_hmac_variants_can_be_narrowed() -> None:
    config = EmulatorConfig(partners=(test_partner(),), push_hmac_sequences=("full",),
                            push_hmac_encodings=("hex",), push_requires_consent=False)
    with run_emulator(config) as dl:
        generic = push_form()
        generic["hmac"] = push_hmac(generic, CLIENT_SECRET, "generic", "hex")
        assert push(dl, generic).status_code == 400
        raw = push_form()
        raw["hmac"] = push_hmac(raw, CLIENT_SECRET, "full", "base64")
        assert push(dl, raw).status_code == 400
        assert push(dl, push_form()).status_code == 200


# --- The pull side: a stand-in issuer -----------------------------------------------------------

class StandInIssuer:
    """Pull URI / Pull Doc endpoints that check x-digilocker-hmac as issuers do (§4.1: either
    encoding, over the exact bytes) and record what they received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        app = Flask("stand_in_issuer")
        app.add_url_rule("/digilocker/pulluri", "pulluri", self.pull_uri, methods=["POST"])
        app.add_url_rule("/digilocker/pulldoc", "pulldoc", self.pull_doc, methods=["POST"])
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def check(self) -> tuple[Any, str] | Response:
        body = request.get_data()
        header = request.headers.get("x-digilocker-hmac", "")
        mac = hmac.new(API_KEY.encode(), body, hashlib.sha256)
        decoded = base64.b64decode(header) if header else b""
        encoding = ("hex-base64" if hmac.compare_digest(decoded, mac.hexdigest().encode())
                    else "raw-base64" if hmac.compare_digest(decoded, mac.digest()) else None)
        root = SafeET.fromstring(body)
        with self.lock:
            self.received.append({"root": root.tag, "encoding": encoding, "header": header,
                                  "attrs": dict(root.attrib),
                                  "details": {c.tag: c.text for c in root.find("DocDetails")}})
        if encoding is None:
            return Response("Unauthorized", status=401)
        return root, encoding

    def pull_doc(self) -> Response:
        checked = self.check()
        if isinstance(checked, Response):
            return checked
        root, _ = checked
        uri = root.find("DocDetails/URI").text
        fmt = root.get("format")
        found = uri.startswith("in.gov.pmc-BTCER-")
        pdf = base64.b64encode(PDF).decode() if fmt in (None, "pdf", "both") else ""
        xml = base64.b64encode(XML).decode() if fmt in ("xml", "both") else ""
        return Response(
            f'<PullDocResponse><ResponseStatus Status="{1 if found else 0}" ts="{root.get("ts")}"'
            f' txn="{root.get("txn")}"/><DocDetails><DocContent>{pdf if found else ""}'
            f"</DocContent><DataContent>{xml if found else ''}</DataContent></DocDetails>"
            "</PullDocResponse>", mimetype="application/xml")

    def pull_uri(self) -> Response:
        checked = self.check()
        if isinstance(checked, Response):
            return checked
        root, _ = checked
        reg = root.find("DocDetails/RegistrationNumber")
        status = "1" if reg is not None and reg.text == "B-2024-00017" else "0"
        uri = "in.gov.pmc-BTCER-B-2024-00017" if status == "1" else ""
        return Response(
            f'<PullURIResponse><ResponseStatus Status="{status}" ts="{root.get("ts")}" '
            f'txn="{root.get("txn")}">{status}</ResponseStatus><DocDetails><URI>{uri}</URI>'
            f"<DocContent>{base64.b64encode(PDF).decode() if status == '1' else ''}"
            "</DocContent></DocDetails></PullURIResponse>", mimetype="application/xml")


@pytest.fixture
def issuer() -> Iterator[StandInIssuer]:
    stand_in = StandInIssuer()
    thread = threading.Thread(target=stand_in.server.serve_forever,
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stand_in
    stand_in.server.shutdown()
    thread.join(timeout=10)


def pulling(issuer: StandInIssuer, **extra: Any) -> EmulatorConfig:
    partner = test_partner(pull_uri_url=issuer.base + "/digilocker/pulluri",
                           pull_doc_url=issuer.base + "/digilocker/pulldoc")
    return EmulatorConfig(partners=(partner,), **extra)


def test_golden_vectors_of_protocol_section_4() -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><PullURIRequest '
            b'xmlns:ns2="http://tempuri.org/" ver="1.0" ts="2024-01-01T10:00:00+05:30" '
            b'txn="1704083400" orgId="in.gov.example" format="pdf"><DocDetails><DocType>BTCER'
            b"</DocType><DigiLockerId>123e4567-e89b-12d3-a456-426655440000</DigiLockerId><UDF1>"
            b"REG-2024-0001</UDF1></DocDetails></PullURIRequest>")
    assert len(body) == 354
    assert sign_body(body, "test-api-key", "hex-base64") == (
        "OWQwN2I0Nzk1NzMwZmJiMWIzZDcwMDYxZTU1NDEwZTU0YTUzYTRiMzU0YmU3NjMxMjU1NDNjZTZmZTQwODA4ZA==")
    assert sign_body(body, "test-api-key", "raw-base64") == (
        "nQe0eVcw+7Gz1wBh5VQQ5UpTpLNUvnYxJVQ85v5AgI0=")
    assert keyhash("test-api-key", "2024-01-01T10:00:00+05:30") == (
        "e055c6947b5aa5e656763a33b567817028635f133f7e96aaec25a374b66f5a63")


def test_push_pulls_the_document_and_the_locker_serves_it(issuer: StandInIssuer) -> None:
    with run_emulator(pulling(issuer)) as dl:
        token = link(dl)
        assert push(dl, push_form()).status_code == 200
        [call] = issuer.received
        assert call["root"] == "PullDocRequest" and call["encoding"] == "hex-base64"
        assert len(call["header"]) == 88 and "keyhash" not in call["attrs"]
        assert call["attrs"]["orgId"] == "in.gov.pmc" and call["attrs"]["format"] == "both"
        assert call["details"] == {"URI": "in.gov.pmc-BTCER-B-2024-00017", "DigiLockerId": ASHA}
        state = dl.state()
        [document] = state["documents"][ASHA]
        assert document["pdf_sha256"] == hashlib.sha256(PDF).hexdigest()
        assert document["xml_sha256"] == hashlib.sha256(XML).hexdigest()
        assert state["pulls"] == {"doc": 1, "uri": 0, "failed": 0}
        assert state["pull_log"][0]["echo_ok"] is True

        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        listing = requests.get(dl.base + "/oauth2/2/files/issued", headers=bearer, timeout=30)
        [item] = listing.json()["items"]
        assert item["uri"] == "in.gov.pmc-BTCER-B-2024-00017"
        assert item["mime"] == ["application/pdf", "application/xml"]
        assert item["issuerid"] == "in.gov.pmc" and item["doctype"] == "BTCER"
        v1 = requests.get(dl.base + "/oauth2/1/files/issued", headers=bearer, timeout=30)
        assert v1.json()["items"][0]["mime"] == "application/pdf"
        pdf = requests.get(dl.base + f"/oauth2/1/file/{item['uri']}", headers=bearer,
                           timeout=30)
        assert pdf.status_code == 200 and pdf.content == PDF
        assert pdf.headers["Content-Type"] == "application/pdf"
        assert pdf.headers["hmac"] == base64.b64encode(
            hmac.new(CLIENT_SECRET.encode(), PDF, hashlib.sha256).digest()).decode()
        by_query = requests.get(dl.base + "/oauth2/1/file/uri", params={"uri": item["uri"]},
                                headers=bearer, timeout=30)
        assert by_query.content == PDF
        xml = requests.get(dl.base + f"/oauth2/1/xml/{item['uri']}", headers=bearer, timeout=30)
        assert xml.content == XML
        # Another citizen's token sees neither the listing entry nor the file.
        ravi = {"Authorization": f"Bearer {link(dl, 'ravi')['access_token']}"}
        assert requests.get(dl.base + "/oauth2/2/files/issued", headers=ravi,
                            timeout=30).json()["items"] == []
        other = requests.get(dl.base + f"/oauth2/1/file/{item['uri']}", headers=ravi, timeout=30)
        assert other.status_code == 404 and other.json()["error"] == "invalid_uri"


def test_pull_signing_variants_are_switchable(issuer: StandInIssuer) -> None:
    config = pulling(issuer, pull_hmac_encoding="raw-base64", pull_send_keyhash=True,
                     pull_format="absent")
    with run_emulator(config) as dl:
        link(dl)
        assert push(dl, push_form()).status_code == 200
        [call] = issuer.received
        assert call["encoding"] == "raw-base64" and len(call["header"]) == 44
        assert call["attrs"]["keyhash"] == keyhash(API_KEY, call["attrs"]["ts"])
        assert "format" not in call["attrs"]
        [document] = dl.state()["documents"][ASHA]
        assert document["pdf_sha256"] == hashlib.sha256(PDF).hexdigest()
        assert document["xml_sha256"] is None


def test_search_calls_pull_uri_as_a_citizen(issuer: StandInIssuer) -> None:
    with run_emulator(pulling(issuer)) as dl:
        found = dl.search(ASHA, "BTCER", {"RegistrationNumber": "B-2024-00017",
                                          "DateOfBirth": "14-03-2024"}, aadhaar=True)
        assert found["ok"] and found["uri"] == "in.gov.pmc-BTCER-B-2024-00017"
        assert found["pdf_sha256"] == hashlib.sha256(PDF).hexdigest() and found["echo_ok"]
        [call] = issuer.received
        assert call["root"] == "PullURIRequest" and call["encoding"] == "hex-base64"
        assert call["details"] == {
            "DocType": "BTCER", "DigiLockerId": ASHA, "FullName": "Asha Kulkarni",
            "DOB": "14-03-2024", "RegistrationNumber": "B-2024-00017",
            "DateOfBirth": "14-03-2024"}
        [document] = dl.state()["documents"][ASHA]
        assert document["source"] == "search"
        missing = dl.search(RAVI, "BTCER", {"RegistrationNumber": "nope"})
        assert not missing["ok"] and missing["status"] == "0"
        assert "FullName" not in issuer.received[-1]["details"]
        assert RAVI not in dl.state()["documents"]


def test_pull_failure_is_recorded_and_the_file_is_pulled_again_on_open(
        issuer: StandInIssuer) -> None:
    wrong_key = test_partner(api_key="not-the-key",
                             pull_doc_url=issuer.base + "/digilocker/pulldoc")
    with run_emulator(EmulatorConfig(partners=(wrong_key,))) as dl:
        token = link(dl)
        assert push(dl, push_form()).status_code == 200  # the push itself succeeds
        state = dl.state()
        assert state["pulls"] == {"doc": 1, "uri": 0, "failed": 1}
        assert state["documents"][ASHA][0]["pull_error"] == "http 401"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        again = requests.get(dl.base + "/oauth2/1/file/in.gov.pmc-BTCER-B-2024-00017",
                             headers=bearer, timeout=30)
        assert again.status_code == 500
        assert again.json()["error"] == "repository_service_resperror"
        assert dl.state()["pulls"]["doc"] == 2


# --- Faults -------------------------------------------------------------------------------------

def outcomes(dl: RunningEmulator, count: int) -> list[str]:
    seen = []
    for n in range(count):
        try:
            answer = push(dl, push_form(docid=f"B-2024-{n:05d}"), timeout=10)
            seen.append(str(answer.status_code))
        except requests.ConnectionError:
            seen.append("dropped")
    return seen


def test_error_rate_is_seeded_and_failed_pushes_store_nothing(emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.faults(error_rate=0.5, seed=7)
    first = outcomes(emulator, 40)
    assert set(first) == {"200", "500"} and 10 <= first.count("500") <= 30
    stored = {d["uri"] for d in emulator.state()["documents"][ASHA]}
    assert stored == {f"in.gov.pmc-BTCER-B-2024-{n:05d}" for n, o in enumerate(first)
                      if o == "200"}
    assert emulator.state()["injected"]["error"] == first.count("500")
    # The same seed replays the same sequence (on fresh document ids).
    emulator.faults(seed=7)
    requests.post(emulator.root + "/emulator/reset", timeout=30)
    assert outcomes(emulator, 40) == first


def test_error_status_530_and_fail_next(emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.faults(error_status=530, fail_next=2)
    assert outcomes(emulator, 3) == ["530", "530", "200"]
    assert emulator.state()["pushes"] == {"in.gov.pmc-BTCER-B-2024-00002": {"A": 1, "U": 0,
                                                                             "D": 0}}


def test_dropped_connection_answers_nothing_and_stores_nothing(
        emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        push(emulator, push_form())
    state = emulator.state()
    assert state["pushes"] == {} and state["injected"] == {"drop": 1}


def test_lost_reply_stores_and_the_retry_is_told_it_exists(emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.faults(lost_reply_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        push(emulator, push_form())
    emulator.faults(lost_reply_rate=0.0)
    assert error_of(push(emulator, push_form())) == (
        400, "invalid_parameter", "URI already exists in this account")
    assert emulator.state()["pushes"]["in.gov.pmc-BTCER-B-2024-00017"]["A"] == 1


def test_slow_response_times_out_a_hurried_caller(emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.faults(slow_rate=1.0, delay=2.0)
    with pytest.raises(requests.ReadTimeout):
        push(emulator, push_form(), timeout=0.3)
    assert emulator.state()["injected"]["slow"] == 1


def test_down_refuses_every_partner_call_but_not_the_admin_api(
        emulator: RunningEmulator) -> None:
    token = link(emulator)
    emulator.faults(down=True)
    assert error_of(push(emulator, push_form()))[:2] == (503, "service_unavailable")
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(emulator.base + "/oauth2/1/user", headers=bearer,
                        timeout=30).status_code == 503
    emulator.faults(down_mode="drop")
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.base + "/oauth2/1/user", headers=bearer, timeout=30)
    emulator.faults(down=False)
    assert push(emulator, push_form()).status_code == 200
    assert emulator.state()["injected"]["down"] == 3


def test_stopped_emulator_refuses_connections_then_comes_back(
        emulator: RunningEmulator) -> None:
    link(emulator)
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        push(emulator, push_form())
    emulator.start()
    assert push(emulator, push_form()).status_code == 200


def test_fault_settings_are_validated(emulator: RunningEmulator) -> None:
    url = emulator.root + "/emulator/faults"
    for bad in ({"error_rate": 1.5}, {"nonsense": 1}, {"down": "yes"}, {"error_status": 200},
                {"error_rate": 0.6, "drop_rate": 0.6}, [1]):
        answer = requests.put(url, json=bad, timeout=30)
        assert answer.status_code == 400, bad
    assert requests.get(url, timeout=30).json()["error_rate"] == 0.0


def test_faults_from_configuration() -> None:
    with run_emulator(EmulatorConfig(partners=(test_partner(),), push_requires_consent=False,
                                     faults=Faults(fail_next=1, error_status=502))) as dl:
        assert outcomes(dl, 2) == ["502", "200"]


def test_admin_token_guards_the_admin_api() -> None:
    config = EmulatorConfig(partners=(test_partner(),), admin_token="admin-secret")
    with run_emulator(config) as dl:
        assert requests.get(dl.root + "/emulator/state", timeout=30).status_code == 401
        assert requests.get(dl.root + "/emulator/state", timeout=30, headers={
            "Authorization": "Bearer admin-secret"}).status_code == 200


# --- The pull side against our real app (D1's /digilocker/pulluri and /digilocker/pulldoc) -------

@pytest.fixture
def live_issuer(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[Live]:
    settings = make_settings(tmp_path, database_url, keys_dir, digilocker_api_key=API_KEY)
    yield from serve(settings)


def live_partner(live: Live, **changes: Any) -> EmulatorConfig:
    partner = test_partner(pull_uri_url=live.url("/digilocker/pulluri"),
                           pull_doc_url=live.url("/digilocker/pulldoc"), **changes)
    return EmulatorConfig(partners=(partner,))


@pytest.mark.parametrize("encoding", ["hex-base64", "raw-base64"])
def test_live_app_answers_the_emulators_signed_pulls(live_issuer: Live, encoding: str) -> None:
    config = live_partner(live_issuer)
    config = EmulatorConfig(partners=config.partners, pull_hmac_encoding=encoding)
    with run_emulator(config) as dl:
        missing = dl.search(ASHA, "BTCER", {"RegistrationNumber": "PMC-B-1999-999999",
                                            "DateOfBirth": "01-01-1999"})
        # Authenticated (not 401), nothing found: HTTP 200, Status 0, ts and txn echoed.
        assert (missing["http_status"], missing["status"], missing["echo_ok"]) == (
            200, "0", True), missing
        link(dl)
        assert push(dl, push_form(docid="PMC-B-1999-999999")).status_code == 200
        [pulled] = dl.state()["pull_log"][1:]
        assert (pulled["kind"], pulled["http_status"], pulled["status"], pulled["echo_ok"]) == (
            "doc", 200, "0", True)


def test_live_app_refuses_a_pull_signed_with_another_key(live_issuer: Live) -> None:
    with run_emulator(live_partner(live_issuer, api_key="not-our-key")) as dl:
        refused = dl.search(ASHA, "BTCER", {"RegistrationNumber": "PMC-B-1999-999999",
                                            "DateOfBirth": "01-01-1999"})
        assert refused["http_status"] == 401 and not refused["ok"]


def test_ist_shifted_timestamp_is_a_switch() -> None:
    shifted = str(int(time.time()) + 19800)
    strict = EmulatorConfig(partners=(test_partner(),), push_requires_consent=False)
    with run_emulator(strict) as dl:
        assert push(dl, push_form(ts=shifted)).status_code == 400
    lenient = EmulatorConfig(partners=(test_partner(),), push_requires_consent=False,
                             push_ts_ist_shifted=True)
    with run_emulator(lenient) as dl:
        assert push(dl, push_form(ts=shifted)).status_code == 200
        assert push(dl, push_form(docid="B-2024-00018")).status_code == 200


@pytest.mark.parametrize("accept_hex", [False, True])
def test_pkce_hex_digest_form_is_a_switch(accept_hex: bool) -> None:
    """The TS-sdk's challenge (Base64URL of the hex digest, §8.3) works only when switched on."""
    verifier = generate_token(64)
    hex_challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).hexdigest().encode()).rstrip(b"=").decode()
    config = EmulatorConfig(partners=(test_partner(),), pkce_accept_hex=accept_hex)
    with run_emulator(config) as dl:
        redirect = dl.link(dl.base + "/oauth2/1/authorize?" + requests.compat.urlencode({
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
            "state": "s", "code_challenge": hex_challenge, "code_challenge_method": "S256"}))
        code = redirect.split("code=")[1].split("&")[0]
        answer = requests.post(dl.base + "/oauth2/1/token", timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, auth=(CLIENT_ID, CLIENT_SECRET))
        assert answer.status_code == (200 if accept_hex else 400), answer.text
