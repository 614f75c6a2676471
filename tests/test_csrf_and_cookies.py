"""CSRF and cookies, over every route (tests/route_walk.py walks the app's url_map):

- every form a browser posts (every state-changing route outside /api/, which only bearer tokens
  open, and DigiLocker's HMAC-signed pull calls) refuses a post without its CSRF token, with a
  wrong one and with another session's, with 403 and nothing changed in the database, and
  accepts the same post with the right token. A new such route fails here until its form is
  described in FORMS;
- cookies open nothing under /api/: every API answer is the same with a signed-in browser's
  cookies as without;
- every cookie any answer sets is HttpOnly, host-only, SameSite=Strict, Secure exactly when the
  service is https, and scoped to the part of the site that set it (COOKIE_EXCEPTIONS: why
  not).

test_portal and test_console check a wrong token on one form each; this covers every form."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from werkzeug.routing import Rule

from issuer.models import Base, Certificate, State
from tests.conftest import sample
from tests.route_walk import CSRF, PASSWORD, Behind, World, browser, paths, walk, world

# Requests from machines, not browsers: signed with DigiLocker's key (HMAC), no cookies read.
MACHINE_POSTS = frozenset({"digilocker.pulldoc", "digilocker.pulluri"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BIRTH_DAY = "21-02-2026"  # birth-1's child, as the portal's form asks for it
# Cookies that may differ from the rule, and why.
COOKIE_EXCEPTIONS = {
    # The language chosen with ?lang=: it must survive a link from another site (a citizen
    # following the corporation's Marathi link), it opens and changes nothing, and it applies
    # to every page of the site.
    "pramaan_lang": {"samesite": "Lax", "path": "/"},
}


@pytest.fixture(params=["http", "https"])
def walked(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str,
           keys_dir: Path) -> Iterator[World]:
    extra = {"verify_base_url": "https://verify.pmc.example"} if request.param == "https" else {}
    yield from world(tmp_path, sqlite_url, keys_dir, portal_client_limit="1000/minute",
                     portal_number_limit="1000/minute", **extra)


@dataclass
class Attempt:
    """A form post that succeeds with `token`: who posts it, where, and what."""

    http: requests.Session
    path: str
    form: dict[str, str]
    token: str  # the right CSRF token
    other: str  # a token valid for another browser's session
    succeeds: int  # the status of the post with the right token


def snapshot(found: World) -> str:
    """Every row of every table (but a session's last-seen time, which reading a page moves)."""
    digest = hashlib.sha256()
    with found.live.runtime.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name != "seen_at"]
            rows = conn.execute(sa.select(*columns)).all()
            digest.update(repr((table.name, sorted(map(repr, rows)))).encode())
    return digest.hexdigest()


def token_of(http: requests.Session, url: str) -> str:
    found = CSRF.search(http.get(url, timeout=60).text)
    assert found, url
    return found.group(1)


def cookies_of(http: requests.Session) -> str:
    """Every cookie the browser holds, whatever its path: the worst case for the server."""
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def submitted(found: World) -> str:
    """A request waiting for an officer in the walk's office."""
    body = sample("birth-1")
    body["registration_number"] = f"B-2026-PMC-{uuid.uuid4().int % 10**6:06d}"
    answer = requests.post(found.live.url("/api/v1/certificates"), json=body, timeout=60,
                           headers={"Authorization": f"Bearer {found.tokens['clerk']}"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def settled(found: World) -> None:
    """Wait for the issue jobs an approval started (in this process, in the background)."""
    deadline = time.monotonic() + 120
    while True:
        with found.live.runtime.sessions() as session:
            busy = session.scalar(sa.select(sa.func.count()).select_from(Certificate).where(
                Certificate.state.in_([State.APPROVED.value, State.SIGNING.value])))
        if not busy:
            return
        assert time.monotonic() < deadline, "issue jobs still running"
        time.sleep(0.05)


def issued(found: World) -> str:
    cert_id = submitted(found)
    answer = requests.post(found.live.url(f"/api/v1/certificates/{cert_id}/approve"),
                           json={}, timeout=120,
                           headers={"Authorization": f"Bearer {found.tokens['officer']}"})
    assert answer.status_code == 200, answer.text
    settled(found)
    return cert_id


def portal(action: str, succeeds: int) -> Callable[[World, Rule], Attempt]:
    def attempt(found: World, rule: Rule) -> Attempt:
        mine, theirs = Behind(), Behind()
        token = token_of(mine, found.live.url("/portal/birth"))
        other = token_of(theirs, found.live.url("/portal/birth"))
        return Attempt(mine, f"/portal/birth{action}",
                       {"reference": found.registration, "second": BIRTH_DAY}, token, other,
                       succeeds)

    return attempt


def sign_in(found: World, rule: Rule) -> Attempt:
    mine, theirs = Behind(), Behind()
    token = token_of(mine, found.live.url("/console/sign-in"))
    other = token_of(theirs, found.live.url("/console/sign-in"))
    return Attempt(mine, "/console/sign-in",
                   {"username": found.users["officer"], "password": PASSWORD}, token, other, 303)


def console(role: str, path: Callable[[World], str], form: Callable[[World], dict[str, str]],
            succeeds: int = 303) -> Callable[[World, Rule], Attempt]:
    """A post by a person of `role` signed in to the console; `other` is the token of another
    person's live session."""

    def attempt(found: World, rule: Rule) -> Attempt:
        mine = browser(found.live, found.users[role])
        theirs = browser(found.live, found.users["auditor"])
        target = path(found)
        token = token_of(mine, found.live.url("/console"))
        other = token_of(theirs, found.live.url("/console"))
        return Attempt(mine, target, form(found), token, other, succeeds)

    return attempt


def approve(found: World, rule: Rule) -> Attempt:
    cert_id = submitted(found)
    made = console("officer", lambda _: f"/console/c/{cert_id}/approve", lambda _: {})(
        found, rule)
    page = made.http.get(found.live.url(f"/console/c/{cert_id}"), timeout=60).text
    digest = page.split('name="fields_digest" value="', 1)[1].split('"', 1)[0]
    made.form = {"fields_digest": digest}
    return made


def new_body(found: World) -> dict[str, str]:
    body = sample("birth-1")
    body["registration_number"] = "B-2026-PMC-777001"
    return {"body": json.dumps(body)}


# Every browser form, by endpoint ("*.view" for a view mounted under several names).
FORMS: dict[str, Callable[[World, Rule], Attempt]] = {
    "portal.lookup": portal("", 200),
    "portal.download": portal("/pdf", 200),
    "portal.to_digilocker": portal("/digilocker", 404),  # DigiLocker not configured: refused
    "console.sign_in": sign_in,
    "console.sign_out": console("officer", lambda _: "/console/sign-out", lambda _: {}),
    "console.new_request": console("clerk", lambda _: "/console/new", new_body),
    "console.approve_request": approve,
    "console.reject_request": console("officer", lambda f: f"/console/c/{submitted(f)}/reject",
                                      lambda _: {"reason": "walk"}),
    "console.revoke_certificate": console("officer", lambda f: f"/console/c/{issued(f)}/revoke",
                                          lambda _: {"reason": "walk"}),
    # Redis is not configured here: with the right token, the job is not found.
    "*.requeue_failed": lambda found, rule: console(
        "admin", lambda f: paths(f, rule)[0], lambda _: {}, 404)(found, rule),
}


def form_routes(found: World) -> list[Rule]:
    """Every state-changing route a browser's cookies could reach."""
    routes = []
    for rule in found.rules:
        if not UNSAFE & set(rule.methods or ()):
            continue
        if rule.rule.startswith("/api/") or rule.endpoint in MACHINE_POSTS:
            continue
        routes.append(rule)
    return routes


def form_of(rule: Rule) -> Callable[[World, Rule], Attempt]:
    made = FORMS.get(rule.endpoint) or FORMS.get("*." + rule.endpoint.rsplit(".", 1)[-1])
    assert made is not None, (
        f"{rule.rule} ({rule.endpoint}) takes posts from browsers: describe its form in "
        "tests/test_csrf_and_cookies.py FORMS so its CSRF check is tested")
    return made


def post(found: World, made: Attempt, token: str | None) -> requests.Response:
    form = dict(made.form)
    if token is not None:
        form["csrf"] = token
    return requests.post(found.live.url(made.path), data=form, timeout=120,
                         allow_redirects=False, headers={"Cookie": cookies_of(made.http)})


def test_every_browser_form_refuses_a_missing_wrong_or_foreign_csrf_token(
        walked: World) -> None:
    found = walked
    routes = form_routes(found)
    assert {"portal.download", "console.approve_request", "console.sign_in"} <= {
        r.endpoint for r in routes}
    for rule in routes:
        made = form_of(rule)(found, rule)
        assert made.token != made.other
        before = snapshot(found)
        for label, token in (("no token", None), ("a wrong token", "x" * 43),
                             ("another session's token", made.other)):
            refused = post(found, made, token)
            assert refused.status_code == 403, (rule.rule, label, refused.status_code)
            assert snapshot(found) == before, (rule.rule, label, "changed the database")
        accepted = post(found, made, made.token)
        assert accepted.status_code == made.succeeds, (rule.rule, accepted.text[:500])
        settled(found)


def test_cookies_open_nothing_on_the_api(walked: World) -> None:
    found = walked
    admin = browser(found.live, found.users["admin"])
    citizen = Behind()
    citizen.get(found.live.url("/portal/birth"), timeout=60)
    jar = f"{cookies_of(admin)}; {cookies_of(citizen)}"
    checked = 0
    for rule in found.rules:
        if not rule.rule.startswith("/api/"):
            continue
        for path in paths(found, rule):
            for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
                body: dict[str, str] | None = {} if method in UNSAFE else None
                bare = requests.request(method, found.live.url(path), json=body, timeout=120,
                                        allow_redirects=False)
                with_cookies = requests.request(method, found.live.url(path), json=body,
                                                timeout=120, allow_redirects=False,
                                                headers={"Cookie": jar})
                assert with_cookies.status_code == bare.status_code, (method, path)
                checked += 1
    assert checked > 20


def parsed(header: str) -> tuple[str, dict[str, str]]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    [(name, morsel)] = jar.items()
    attributes = {key: str(value) for key, value in morsel.items() if value}
    attributes["value"] = morsel.value
    return name, attributes


def cookie_problems(name: str, cookie: dict[str, str], set_by: str, https: bool) -> list[str]:
    allowed = COOKIE_EXCEPTIONS.get(name, {})
    problems = []
    deleted = cookie.get("max-age") == "0" or cookie.get("value") == ""
    path = cookie.get("path", "")
    if not path:
        problems.append("no Path")
    elif not deleted and path != allowed.get("path") and (
            path == "/" or not set_by.startswith(path)):
        problems.append(f"Path={path} is not the part of the site that set it ({set_by})")
    if "domain" in cookie:
        problems.append("a Domain (not host-only)")
    if deleted:
        return problems
    if "httponly" not in cookie:
        problems.append("not HttpOnly")
    if cookie.get("samesite") != allowed.get("samesite", "Strict"):
        problems.append(f"SameSite={cookie.get('samesite')}")
    if ("secure" in cookie) != https:
        problems.append("Secure" if not https else "not Secure on https")
    return problems


def test_every_cookie_the_service_sets_is_http_only_strict_scoped_and_secure_on_https(
        walked: World) -> None:
    found = walked
    https = found.live.runtime.settings.verify_base_url.startswith("https://")
    seen = walk(found)
    # And signing out, which clears the session's cookie.
    person = browser(found.live, found.users["officer"])
    out = person.post(found.live.url("/console/sign-out"), allow_redirects=False, timeout=60,
                      data={"csrf": token_of(person, found.live.url("/console"))})
    assert out.status_code == 303
    answers = [(s.path, s.response) for s in seen] + [("/console/sign-out", out)]
    names: set[str] = set()
    wrong = []
    for set_by, answer in answers:
        for header in answer.raw.headers.getlist("Set-Cookie"):
            name, cookie = parsed(header)
            names.add(name)
            wrong += [f"{name} from {set_by}: {p}"
                      for p in cookie_problems(name, cookie, set_by.split("?")[0], https)]
    assert wrong == [], "\n".join(sorted(set(wrong)))
    # The walk met the session, both forms' CSRF cookies and the language.
    assert len(names) >= 4, names
