"""Response headers over real HTTP (the app on Werkzeug's server on 127.0.0.1; the same headers
under gunicorn are checked in test_web_server): a Bearer challenge on every 401, nosniff,
no referrer, no framing, a strict CSP on pages whose script and style are our own files, HSTS
only for an https verify base, and one Date header even where Werkzeug adds its own."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api import PAGE_CSP
from templates import web_dir
from tests.conftest import Live, make_settings, sample, serve


@pytest.fixture
def web(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, sqlite_url, keys_dir))


@pytest.fixture
def web_https(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, sqlite_url, keys_dir,
                                   verify_base_url="https://verify.pmc.example"))


def issued_pdf(live: Live) -> requests.Response:
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert created.status_code == 202, created.text
    return live.get(created.json()["links"]["self"] + "/pdf")


def assert_common(response: requests.Response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    # Exactly one Date (the PDF and the page's files get one from make_conditional as well).
    assert len(response.raw.headers.getlist("Date")) == 1, response.raw.headers.getlist("Date")


def test_every_response_carries_the_common_headers(web: Live) -> None:
    pdf = issued_pdf(web)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    responses = [
        pdf,
        web.get("/healthz"),
        web.get("/v"),
        web.get("/v/assets/verify.js"),
        web.get("/v/assets/verify.css"),
        web.get("/no/such/route"),
        web.post_json("/api/v1/certificates", {"type": "birth"}),
        requests.get(web.url("/api/v1/certificates/x"), timeout=30),
        web.http.delete(web.url("/api/v1/certificates"), timeout=30),
    ]
    for response in responses:
        assert_common(response)
        assert "Strict-Transport-Security" not in response.headers  # http base: no HSTS
    conditional = web.http.get(pdf.url, headers={"If-None-Match": pdf.headers["ETag"]},
                               timeout=30)
    assert conditional.status_code == 304
    assert_common(conditional)


def test_401_has_a_bearer_challenge(web: Live) -> None:
    url = web.url("/api/v1/certificates")
    anonymous = requests.post(url, json=sample("birth-1"), timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="pramaan"'
    basic = requests.get(url + "/x", auth=("a", "b"), timeout=30)
    assert basic.status_code == 401
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="pramaan"'
    wrong = requests.get(url + "/x", headers={"Authorization": "Bearer pmn_nope"}, timeout=30)
    assert wrong.status_code == 401
    challenge = wrong.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="pramaan", error="invalid_token"')
    ok = web.get("/api/v1/certificates/00000000-0000-4000-8000-000000000000")
    assert ok.status_code == 404 and "WWW-Authenticate" not in ok.headers


def test_the_verify_page_runs_under_a_strict_csp(web: Live) -> None:
    page = web.get("/v")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in PAGE_CSP
    html = page.text
    # Nothing the policy would block: no inline script, style or event handler.
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+\s*=", html) is None
    # The page's script and style are our files, served with the right types.
    script = web.get("/v/assets/verify.js")
    style = web.get("/v/assets/verify.css")
    assert 'src="/v/assets/verify.js"' in html and 'href="/v/assets/verify.css"' in html
    assert script.status_code == 200 and script.headers["Content-Type"].startswith(
        "text/javascript")
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")
    assert script.content == (web_dir() / "verify.js").read_bytes()
    assert 'JSON.stringify({qr: link})' in script.text
    assert "Content-Security-Policy" not in web.get("/healthz").headers
    for other in ("verify.html", "..%2Fbirth.typ", "fonts"):
        assert web.get("/v/assets/" + other).status_code == 404


def test_the_offline_app_files_are_served_as_a_browser_needs_them(web: Live) -> None:
    # The service worker controls /v, above its own folder: only with the server's consent.
    worker = web.get("/v/sw.js")
    assert worker.status_code == 200 and worker.headers["Content-Type"].startswith(
        "text/javascript")
    assert worker.headers["Service-Worker-Allowed"] == "/v"
    assert "no-cache" in worker.headers["Cache-Control"]
    assert worker.content == (web_dir() / "sw.js").read_bytes()
    manifest = web.get("/v/manifest.webmanifest")
    assert manifest.headers["Content-Type"] == "application/manifest+json"
    app = manifest.json()
    assert app["start_url"] == "/v" and app["display"] == "standalone"
    assert web.get(app["icons"][0]["src"]).headers["Content-Type"].startswith("image/svg+xml")
    for directive in ("manifest-src 'self'", "worker-src 'self'",
                      "script-src 'self' 'wasm-unsafe-eval'"):
        assert directive in PAGE_CSP
    # Every module the page imports is served (a missing one fails the whole check).
    for name in ("seal.js", "der.js", "published.js"):
        module = web.get("/v/assets/" + name)
        assert module.status_code == 200 and module.headers["Content-Type"].startswith(
            "text/javascript"), name
    # What the page trusts: our root, and the organisation that signs the published lists.
    # The camera's decoder (fetched by make from the npm registry), as WebAssembly.
    wasm = web.get("/v/vendor/zxing_reader.wasm")
    assert wasm.status_code == 200 and wasm.headers["Content-Type"] == "application/wasm"
    assert wasm.content[:4] == b"\0asm"
    assert web.get("/v/vendor/package.json").status_code == 404
    anchors = web.get("/v/roots.json").json()
    root = x509.load_pem_x509_certificate(
        (web.runtime.settings.keys_dir / "root.crt").read_bytes())
    assert anchors["roots"] == [base64.b64encode(
        root.public_bytes(serialization.Encoding.DER)).decode()]
    assert anchors["organisation"] == "Pune Municipal Corporation (DEVELOPMENT)"


def test_hsts_only_for_an_https_verify_base(web_https: Live) -> None:
    for path in ("/v", "/healthz", "/no/such/route"):
        response = web_https.get(path)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
