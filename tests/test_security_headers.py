"""The security headers of every answer of every route, found by walking the app's url_map
(tests/route_walk.py) over real HTTP, http and https: nosniff, no referrer, no framing, a strict
CSP on every page (and nothing in a page it would block), HSTS exactly when the base is https,
no CORS with credentials, one Date. test_http_headers checks chosen answers in detail; this
covers every route, including routes added since (a route the walker cannot fill or an answer
type it does not know fails here). The same walk under gunicorn (`pramaan serve`, as in
production): no answer names a server version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, Live
from tests.route_walk import Seen, World, browser, walk, world
from tests.test_web_server import free_port

REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin"}
# Sources that let a page run script the server did not send as a file of its own.
UNSAFE_SCRIPT = {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:", "http:", "https:",
                 "'unsafe-hashes'"}
HSTS_MIN_SECONDS = 180 * 24 * 3600


@pytest.fixture(params=["http", "https"])
def walked(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str,
           keys_dir: Path) -> Iterator[World]:
    base = "https://verify.pmc.example" if request.param == "https" else None
    extra = {"verify_base_url": base} if base else {}
    yield from world(tmp_path, sqlite_url, keys_dir, **extra)


def policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def page_problems(seen: Seen) -> list[str]:
    """What is wrong with the CSP of a page (an active document) and with the page under it."""
    header = seen.response.headers.get("Content-Security-Policy")
    if header is None:
        return ["no Content-Security-Policy"]
    csp = policy(header)
    problems = []
    script = csp.get("script-src", csp.get("default-src"))
    if script is None or UNSAFE_SCRIPT & set(script):
        problems.append(f"script-src {script}")
    if csp.get("object-src", csp.get("default-src")) != ["'none'"]:
        problems.append("plugins not refused (object-src/default-src 'none')")
    if csp.get("base-uri") not in (["'none'"], ["'self'"]):
        problems.append("no base-uri")
    if csp.get("frame-ancestors") != ["'none'"]:
        problems.append("framing not refused (frame-ancestors 'none')")
    if "'unsafe-inline'" in csp.get("style-src", csp.get("default-src", [])):
        problems.append("inline style allowed")
    text = seen.response.text
    # Nothing the policy would block: it would break the page, or invite loosening the policy.
    if re.search(r"<script(?![^>]*\bsrc=)", text):
        problems.append("an inline <script>")
    if re.search(r"\son[a-z]+\s*=", text) or "javascript:" in text:
        problems.append("an inline event handler or javascript: URL")
    if "<style" in text or re.search(r"\sstyle\s*=", text):
        problems.append("inline style")
    return problems


def header_problems(seen: Seen, https: bool) -> list[str]:
    headers = seen.response.headers
    problems = []
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no nosniff")
    if headers.get("Referrer-Policy") not in REFERRER_POLICIES:
        problems.append(f"Referrer-Policy {headers.get('Referrer-Policy')}")
    if headers.get("X-Frame-Options") != "DENY" and "frame-ancestors 'none'" not in headers.get(
            "Content-Security-Policy", ""):
        problems.append("may be framed")
    hsts = headers.get("Strict-Transport-Security")
    if https:
        found = re.fullmatch(r"max-age=(\d+)(; ?includeSubDomains)?", hsts or "")
        if found is None or int(found.group(1)) < HSTS_MIN_SECONDS:
            problems.append(f"Strict-Transport-Security {hsts}")
    elif hsts is not None:
        problems.append("HSTS on an http base")
    if "Access-Control-Allow-Credentials" in headers:
        problems.append("CORS with credentials")
    if len(seen.response.raw.headers.getlist("Date")) != 1:
        problems.append("not exactly one Date")
    if seen.kind == "page":
        problems += page_problems(seen)
    return problems


def test_every_answer_of_every_route_carries_the_security_headers(walked: World) -> None:
    found = walked
    seen = walk(found)
    https = found.live.runtime.settings.verify_base_url.startswith("https://")
    wrong = [f"{s.label}: {', '.join(p)}" for s in seen if (p := header_problems(s, https))]
    assert wrong == [], "\n".join(wrong)
    # The walk reached every kind of answer: pages, data, files, redirects; successes,
    # refusals, not-found and wrong-method problems.
    kinds = {s.kind for s in seen}
    assert kinds == {"page", "data", "file", "empty"}, kinds
    statuses = {s.response.status_code for s in seen}
    assert {200, 303, 401, 403, 404, 405} <= statuses, statuses
    walked_rules = {s.rule for s in seen}
    assert {r.rule for r in found.rules} <= walked_rules
    media = {s.media for s in seen}
    for expected in ("text/html", "application/pdf", "application/problem+json", "text/csv",
                     "application/zip", "image/png", "text/javascript", "image/svg+xml"):
        assert expected in media, (expected, media)


@pytest.fixture
def under_gunicorn(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[World]:
    """The walk's world served by `pramaan serve` (gunicorn, as in production) as well: the
    same database, keys and store, so the same records and sessions."""
    for found in world(tmp_path, sqlite_url, keys_dir):
        settings = found.live.runtime.settings
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PRAMAAN_") and k not in ("REDIS_URL", "HOST", "PORT")}
        env.update(PRAMAAN_HOME=str(settings.home), DATABASE_URL=settings.database_url,
                   PRAMAAN_KEYS_DIR=str(settings.keys_dir),
                   PRAMAAN_STORE_DIR=str(settings.store_dir), HOST="127.0.0.1",
                   PORT=str(port), PRAMAAN_WEB_WORKERS="1", PRAMAAN_SIGN_IN_LIMIT="1000/minute")
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "cli", "serve"], cwd=ROOT,
                                       env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if requests.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            found.live = Live(base, found.live.token, found.live.runtime)
            found.callers["console officer"] = browser(found.live, "walk.officer")
            yield found
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_under_gunicorn_every_answer_names_no_server_version(under_gunicorn: World) -> None:
    seen = walk(under_gunicorn)
    wrong = [f"{s.label}: Server {s.response.raw.headers.getlist('Server')}" for s in seen
             if s.response.raw.headers.getlist("Server") != ["gunicorn"]]
    assert wrong == [], "\n".join(wrong)
    wrong = [f"{s.label}: {', '.join(p)}" for s in seen if (p := header_problems(s, False))]
    assert wrong == [], "\n".join(wrong)
    assert {r.rule for r in under_gunicorn.rules} <= {s.rule for s in seen}
