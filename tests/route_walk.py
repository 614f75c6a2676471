"""Walk every route of the app over real HTTP: the routes come from the app's own url_map, so a
route added later is walked without anyone listing it. Each route is asked with every method it
allows (and one it does not), as each kind of caller (nobody, an API client of each role, a
person signed in to the console), with path parameters filled from a real issued certificate
and batch and with dummy values (its 404). A parameter name the walker has no value for, or an
answer of a content type it does not know, fails the walk: someone has to decide what it is.

Used by tests/test_security_headers.py (the headers of every answer) and
tests/test_csrf_and_cookies.py (the cookies every answer sets)."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from werkzeug.routing import Map, Rule

from api import create_app
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.departments import add_department
from issuer.models import Department
from issuer.tokens import create_token
from issuer.users import add_user
from tests.conftest import Live, make_settings, sample, serve

PASSWORD = "walk the routes 42"
DUMMY_ID = "00000000-0000-4000-8000-000000000000"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Methods no route should need to be walked with.
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})
# What an answer is, by its media type: a page (an active document a browser renders and runs:
# it needs the strict CSP), data for programs, a file, or no body at all (redirects, 304).
KINDS = {
    "text/html": "page",
    "image/svg+xml": "page",
    "application/json": "data",
    "application/problem+json": "data",
    "application/jose+json": "data",
    "application/manifest+json": "data",
    "text/javascript": "file",
    "text/css": "file",
    "text/plain": "file",
    "text/csv": "file",
    "application/pdf": "file",
    "application/zip": "file",
    "application/wasm": "file",
    "image/png": "file",
    "font/ttf": "file",
    "": "empty",
}


@dataclass
class World:
    """The served app and what the walk needs: ids of real records, and a caller of each kind."""

    live: Live
    url_map: Map
    office: str
    cert_id: str
    batch_id: str
    registration: str
    callers: dict[str, requests.Session] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # role -> username in `office`
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API token in `office`

    def real(self, rule: Rule, name: str) -> list[str]:
        """Values of path parameter `name` naming something that exists (or, where nothing
        may be touched, a harmless stand-in)."""
        from api import VENDOR_FILES, WEB_ASSETS, WEB_FONTS

        by_endpoint = {
            ("public.asset", "name"): sorted(WEB_ASSETS),
            ("public.font", "name"): sorted(WEB_FONTS),
            ("public.vendor", "name"): sorted(VENDOR_FILES),
            ("public.published_document", "name"): ["trust-list", "status-list"],
            ("openapi.docs_asset", "name"): ["api_docs.js", "api_docs.css"],
        }
        if (rule.endpoint, name) in by_endpoint:
            return by_endpoint[(rule.endpoint, name)]
        values = {"cert_id": self.cert_id, "batch_id": self.batch_id, "line": "1",
                  "kind": "birth", "queue_name": "sign", "job_id": "no-such-job",
                  # Never a real account or token: the walk must not disable or revoke one.
                  "username": "nobody.walk", "name": "no-such-walk", "filename": "none.css"}
        if name not in values:
            raise AssertionError(
                f"route {rule.rule} ({rule.endpoint}): the walker has no value for parameter "
                f"<{name}>; add one to tests/route_walk.py so the route is covered")
        return [values[name]]

    def dummy(self, rule: Rule, name: str) -> str:
        """A value of `name` that names nothing (the route's not-found answer)."""
        self.real(rule, name)  # the same refusal for an unknown parameter
        return "999" if name == "line" else DUMMY_ID if name.endswith("_id") else "no-such"

    @property
    def rules(self) -> list[Rule]:
        return sorted(self.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


@dataclass(frozen=True)
class Seen:
    caller: str
    method: str
    path: str
    rule: str
    response: requests.Response

    @property
    def label(self) -> str:
        return f"{self.method} {self.path} as {self.caller} -> {self.response.status_code}"

    @property
    def media(self) -> str:
        kind = self.response.headers.get("Content-Type", "")
        return kind.split(";", 1)[0].strip().lower()

    @property
    def kind(self) -> str:
        if not self.response.content and (
                300 <= self.response.status_code < 400 or self.response.status_code == 204):
            return "empty"
        if self.media not in KINDS or KINDS[self.media] == "empty":
            raise AssertionError(f"{self.label}: an answer of type {self.media!r} the walker "
                                 "does not know; add it to tests/route_walk.py KINDS")
        return KINDS[self.media]


def world(tmp_path: Path, database_url: str, keys_dir: Path, **settings: Any) -> Iterator[World]:
    """Serve the app (settings: overrides), with an officer-approved office, a person of each
    role in it, an issued certificate and a batch."""
    made = make_settings(tmp_path, database_url, keys_dir, sign_in_limit="1000/minute",
                         **settings)
    mapped = create_app(made)  # the same routes as the served app's: read its map
    mapped.extensions["pramaan"].close()
    for live in serve(made):
        yield _populate(live, mapped.url_map)


def _populate(live: Live, url_map: Map) -> World:
    code = f"w{uuid.uuid4().hex[:6]}"
    with live.runtime.sessions() as session, session.begin():
        department = add_department(session, code, "Births office", "जन्म नोंदणी कार्यालय",
                                    approval="officer", types=["birth"], actor="test")
        users = {}
        for role in ("clerk", "officer", "auditor", "admin"):
            users[role] = f"{role}.{code}"
            add_user(session, department, users[role], f"{role.title()} Person", role,
                     PASSWORD, actor="test")
        tokens = {role: create_token(session, department, f"walk-{role}", role)
                  for role in ("clerk", "officer", "admin")}
        dev = session.get(Department, DEV_DEPARTMENT)
        assert dev is not None
        dev_admin = create_token(session, dev, "walk-admin", "admin")
        # A person in the department of the certificate below: the console shows it to them.
        add_user(session, dev, "walk.officer", "Walk Officer", "officer", PASSWORD, actor="test")
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert created.status_code == 202 and created.json()["state"] == "issued", created.text
    batch = live.http.post(live.url("/api/v1/batches"), params={"type": "birth"},
                           headers={"Content-Type": "text/csv"}, timeout=120,
                           data=_one_row_csv())
    assert batch.status_code == 201, batch.text
    found = World(live, url_map, code, created.json()["id"], batch.json()["id"],
                  sample("birth-1")["registration_number"], users=users, tokens=tokens)
    found.callers = {"nobody": requests.Session(), "dev clerk": _bearer(live.token),
                     "dev admin": _bearer(dev_admin),
                     "console officer": browser(live, "walk.officer")}
    return found


def _one_row_csv() -> bytes:
    from tests.test_batches import as_csv, births

    return as_csv(births(1, first=900))


def _bearer(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


class Behind(requests.Session):
    """A browser behind the TLS-terminating proxy: its Secure cookies travel on to the app
    over loopback http (requests would keep them back)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        answer = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return answer


def browser(live: Live, username: str) -> requests.Session:
    """A browser signed in to the console as `username` (requests keeps its cookies)."""
    http = Behind()
    form = http.get(live.url("/console/sign-in"), timeout=60)
    token = CSRF.search(form.text)
    assert token, form.text
    signed = http.post(live.url("/console/sign-in"), timeout=60, allow_redirects=False,
                       data={"csrf": token.group(1), "username": username,
                             "password": PASSWORD})
    assert signed.status_code == 303, signed.text
    http.walk_answers = [form, signed]  # type: ignore[attr-defined]
    return http


def paths(found: World, rule: Rule) -> list[str]:
    """The rule's path with every real value of its parameters, and with values naming
    nothing (if it has parameters)."""
    params = [(m.group(0), m.group(1))
              for m in re.finditer(r"<(?:[^:<>]+:)?([^<>]+)>", rule.rule)]
    if not params:
        return [rule.rule]
    made = []
    for values in itertools.product(*(found.real(rule, name) for _, name in params)):
        path = rule.rule
        for (part, _), value in zip(params, values, strict=True):
            path = path.replace(part, value)
        made.append(path)
    dummy = rule.rule
    for part, name in params:
        dummy = dummy.replace(part, found.dummy(rule, name))
    return [*made, dummy]


def walk(found: World) -> list[Seen]:
    """Every route, every method it has and one it has not, as every caller."""
    seen: list[Seen] = []
    for caller in found.callers.values():
        for answer in getattr(caller, "walk_answers", []):
            seen.append(Seen("sign-in", answer.request.method or "", urlsplit(answer.url).path,
                             "", answer))
    for rule in found.rules:
        methods = sorted(set(rule.methods or ()) - SKIPPED_METHODS)
        for path in paths(found, rule):
            allowed = _allowed(found, path)
            wrong = next(m for m in ("DELETE", "PATCH", "PUT", "POST") if m not in allowed)
            for name, caller in found.callers.items():
                # A wrong method is refused before anyone is asked who they are: asked once.
                for method in [*methods, wrong] if name == "nobody" else methods:
                    answer = _ask(found, caller, method, path)
                    seen.append(Seen(name, method, path, rule.rule, answer))
                    if answer.headers.get("Content-Type", "").startswith("text/html") and (
                            method == "GET"):
                        # The same page in Marathi: the language switch sets its cookie.
                        again = _ask(found, caller, method, path + "?lang=mr")
                        seen.append(Seen(name, method, path + "?lang=mr", rule.rule, again))
    seen.append(Seen("nobody", "GET", "/no/such/route", "",
                     requests.get(found.live.url("/no/such/route"), timeout=60)))
    return seen


def _allowed(found: World, path: str) -> set[str]:
    return set(found.url_map.bind("127.0.0.1").allowed_methods(path))


def _ask(found: World, caller: requests.Session, method: str, path: str) -> requests.Response:
    url = found.live.url(path)
    if method in ("GET", "DELETE"):
        return caller.request(method, url, timeout=120, allow_redirects=False)
    if path.startswith("/api/"):
        return caller.request(method, url, json={}, timeout=120, allow_redirects=False)
    return caller.request(method, url, data={}, timeout=120, allow_redirects=False)
