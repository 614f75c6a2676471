"""Hostile input to the pull endpoints over real HTTP. Each case gets its one right answer: 401
when the request is not authenticated, otherwise HTTP 200 with Status 0 (as issuers answer);
never a 500, never a document. The table below is what the closing note counts."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from issuer.settings import Settings
from tests.conftest import Live, make_settings, sample
from tests.digilocker_pull_requests import (
    DECLARATION,
    KEY,
    doc_request,
    issue,
    new_txn,
    now_ts,
    post,
    reply,
    sign,
    uri_request,
)

LIMIT = 16 * 1024  # PRAMAAN_MAX_BODY_BYTES for these tests


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, keys_dir, digilocker_api_key=KEY,
                         max_body_bytes=LIMIT)


def head(root: str = "PullDocRequest") -> str:
    return f'<{root} ver="1.0" ts="{now_ts()}" txn="{new_txn()}" orgId="in.gov.pmc" format="pdf">'


def xxe() -> bytes:
    return (f'{DECLARATION}<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>{head()}'
            "<DocDetails><URI>&x;</URI></DocDetails></PullDocRequest>").encode()


def parameter_entity() -> bytes:
    return (f'{DECLARATION}<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>{head()}'
            "<DocDetails><URI>u</URI></DocDetails></PullDocRequest>").encode()


def billion_laughs() -> bytes:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    return (f"{DECLARATION}<!DOCTYPE r [{entities}]>{head()}"
            "<DocDetails><URI>&l9;</URI></DocDetails></PullDocRequest>").encode()


def internal_entity() -> bytes:
    return (f'{DECLARATION}<!DOCTYPE r [<!ENTITY u "in.gov.pmc-BTCER-x">]>{head()}'
            "<DocDetails><URI>&u;</URI></DocDetails></PullDocRequest>").encode()


def huge_attribute() -> bytes:
    return (f'{DECLARATION}<PullDocRequest ts="{now_ts()}" txn="{"9" * 12000}" format="pdf">'
            "<DocDetails><URI>u</URI></DocDetails></PullDocRequest>").encode()


def huge_attribute_name() -> bytes:
    return (f'{DECLARATION}<PullDocRequest ts="{now_ts()}" txn="{new_txn()}" '
            f'a{"b" * 12000}="1"><DocDetails><URI>u</URI></DocDetails></PullDocRequest>').encode()


def huge_child() -> bytes:
    return doc_request("in.gov.pmc-BTCER-" + "x" * 12000)


def many_children() -> bytes:
    return (f"{DECLARATION}{head()}<DocDetails>" + "<UDF>1</UDF>" * 1000
            + "</DocDetails></PullDocRequest>").encode()


def deep_nesting() -> bytes:
    return (f"{DECLARATION}{head()}<DocDetails>" + "<a>" * 2000 + "</a>" * 2000
            + "</DocDetails></PullDocRequest>").encode()


def latin1() -> bytes:
    return doc_request("in.gov.pmc-BTCER-x", {"FullName": "Jos\u00e9"}).replace(
        "Jos\u00e9".encode(), "Jos\u00e9".encode("latin-1"))


def utf16() -> bytes:
    return doc_request("in.gov.pmc-BTCER-x").decode().replace(
        'encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


# (case, operation, body, how it is signed, expected): "hmac" signs the body as sent, "none"
# sends no header, "wrong" signs it with another key; expected 401, or the Status under HTTP 200.
Body = Callable[[], bytes]
CASES: list[tuple[str, str, Body, str, str]] = [
    ("XXE: external entity reading a local file", "pulldoc", xxe, "hmac", "0"),
    ("XXE: parameter entity", "pulldoc", parameter_entity, "hmac", "0"),
    ("entity bomb (billion laughs)", "pulldoc", billion_laughs, "hmac", "0"),
    ("internal entity, harmless but a DTD", "pulldoc", internal_entity, "hmac", "0"),
    ("malformed XML", "pulldoc", lambda: doc_request("u")[:-5], "hmac", "0"),
    ("not XML (JSON)", "pulluri", lambda: b'{"DocType": "BTCER"}', "hmac", "0"),
    ("empty body", "pulluri", lambda: b"", "hmac", "0"),
    ("wrong root (a Pull Doc sent to Pull URI)", "pulluri",
     lambda: doc_request("in.gov.pmc-BTCER-x"), "hmac", "0"),
    ("wrong root (an unrelated element)", "pulldoc", lambda: f"{DECLARATION}<r/>".encode(),
     "hmac", "0"),
    ("no DocDetails", "pulldoc", lambda: f"{DECLARATION}{head()}</PullDocRequest>".encode(),
     "hmac", "0"),
    ("non-UTF-8 bytes under a UTF-8 declaration", "pulldoc", latin1, "hmac", "0"),
    ("UTF-16 body", "pulldoc", utf16, "hmac", "0"),
    ("huge attribute value (12 000 characters)", "pulldoc", huge_attribute, "hmac", "0"),
    ("huge attribute name", "pulldoc", huge_attribute_name, "hmac", "0"),
    ("huge element value", "pulldoc", huge_child, "hmac", "0"),
    ("1000 DocDetails children", "pulldoc", many_children, "hmac", "0"),
    ("nesting 2000 deep", "pulldoc", deep_nesting, "hmac", "0"),
    ("unknown doc type", "pulluri", lambda: uri_request("ZZCER", {"UDF1": "x"}), "hmac", "0"),
    ("unknown URI", "pulldoc", lambda: doc_request(f"in.gov.pmc-BTCER-{uuid.uuid4()}"),
     "hmac", "0"),
    ("search values that look like SQL", "pulluri",
     lambda: uri_request("BTCER", {"RegistrationNumber": "' OR '1'='1",
                                   "DateOfBirth": "21-02-2026' --"}), "hmac", "0"),
    ("URI with a wildcard doc id", "pulldoc", lambda: doc_request("in.gov.pmc-BTCER-%"),
     "hmac", "0"),
    ("missing txn", "pulldoc",
     lambda: f'{DECLARATION}<PullDocRequest ts="{now_ts()}"><DocDetails><URI>u</URI>'
             "</DocDetails></PullDocRequest>".encode(), "hmac", "0"),
    ("wrong HMAC (another key)", "pulldoc", lambda: doc_request("u"), "wrong", "401"),
    ("missing x-digilocker-hmac and keyhash", "pulldoc", lambda: doc_request("u"), "none",
     "401"),
    ("XXE without authentication", "pulldoc", xxe, "none", "401"),
    ("entity bomb without authentication", "pulldoc", billion_laughs, "none", "401"),
    ("malformed XML without authentication", "pulluri", lambda: b"<PullURIRequest",
     "none", "401"),
]


@pytest.mark.parametrize("case,operation,make,signing,expected", CASES,
                         ids=[case[0] for case in CASES])
def test_hostile_case(live: Live, case: str, operation: str, make: Body, signing: str,
                      expected: str) -> None:
    raw = make()
    if signing == "hmac":
        response = post(live, operation, raw)
    elif signing == "wrong":
        response = post(live, operation, raw, header=sign(raw, key="not-the-key"))
    else:
        response = post(live, operation, raw, encoding=None)
    if expected == "401":
        assert response.status_code == 401, response.text[:200]
        assert "WWW-Authenticate" not in response.headers  # no bearer challenge: HMAC here
        return
    answer = reply(response)
    assert answer.status == expected, case
    assert not answer.details, case  # nothing but the status comes back
    assert b"root:" not in response.content


def test_an_external_dtd_is_never_fetched(live: Live) -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "in.gov.pmc-BTCER-x">')

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/evil.dtd"
        raw = (f'{DECLARATION}<!DOCTYPE r SYSTEM "{url}">{head()}<DocDetails><URI>&x;</URI>'
               "</DocDetails></PullDocRequest>").encode()
        assert reply(post(live, "pulldoc", raw)).status == "0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert hits == []


def chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b" " * 1024
        sent += 1024


def test_a_body_over_the_cap_is_status_0_unread(live: Live) -> None:
    padded = doc_request("u").replace(b"<DocDetails>", b" " * LIMIT + b"<DocDetails>")
    assert len(padded) > LIMIT
    answer = reply(post(live, "pulldoc", padded))  # Content-Length over the cap
    assert answer.status == "0" and answer.txn == ""
    # Chunked (no Content-Length): read up to the cap and refused the same way.
    response = requests.post(live.url("/digilocker/pulluri"), data=chunks(4 * LIMIT),
                             headers={"Content-Type": "application/xml",
                                      "x-digilocker-hmac": "eA=="}, timeout=60)
    assert reply(response).status == "0"


def test_echoed_values_are_escaped_not_injected(live: Live) -> None:
    txn = '1"><DocContent>JVBERi0=</DocContent><x y="'[:96]
    answer = reply(post(live, "pulldoc", doc_request("u", txn=txn)))
    assert (answer.status, answer.txn) == ("0", txn)
    assert not answer.details


def test_one_citizens_search_never_reaches_anothers_document(live: Live) -> None:
    first = issue(live, sample("birth-1"))
    second = issue(live, sample("birth-2"))
    # The first child's registration number with the second child's date of birth.
    crossed = {"RegistrationNumber": "B-2026-PMC-004512", "DateOfBirth": "28-02-2026"}
    assert reply(post(live, "pulluri", uri_request("BTCER", crossed))).status == "0"
    own = reply(post(live, "pulldoc", doc_request(f"in.gov.pmc-BTCER-{second['id']}")))
    assert own.status == "1"
    other = reply(post(live, "pulldoc", doc_request(f"in.gov.pmc-BTCER-{first['id']}")))
    assert own.details["DocContent"] != other.details["DocContent"]


def test_get_is_not_an_operation(live: Live) -> None:
    assert requests.get(live.url("/digilocker/pulldoc"), timeout=60).status_code == 405


def test_a_dtd_is_refused_even_where_its_entity_would_name_a_real_document(live: Live) -> None:
    record = issue(live, sample("birth-1"))
    uri = f"in.gov.pmc-BTCER-{record['id']}"
    plain = doc_request(uri)
    assert reply(post(live, "pulldoc", plain)).status == "1"
    raw = (f'{DECLARATION}<!DOCTYPE r [<!ENTITY u "{uri}">]>{head()}'
           "<DocDetails><URI>&u;</URI></DocDetails></PullDocRequest>").encode()
    answer = reply(post(live, "pulldoc", raw))
    assert answer.status == "0" and not answer.details


def test_an_oversized_value_refuses_even_a_request_for_a_real_document(live: Live) -> None:
    record = issue(live, sample("birth-1"))
    uri = f"in.gov.pmc-BTCER-{record['id']}"
    padded = doc_request(uri).replace(b'orgId="in.gov.pmc"', b'orgId="' + b"o" * 5000 + b'"')
    assert reply(post(live, "pulldoc", padded)).status == "0"
    photo = doc_request(uri, {"Photo": "A" * 1000, "FullName": "x" * 101})
    assert reply(post(live, "pulldoc", photo)).status == "0"
