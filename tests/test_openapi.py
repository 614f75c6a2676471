"""The OpenAPI document (api_openapi.py): valid OpenAPI 3.1, every route in it, served with a page
that shows it; and the certificate request schemas held to the validators they come from:
bodies generated from each type's schema are accepted, and the same bodies broken in a way the
schema forbids are refused, at the field the schema names. The admin bodies, reasons, `corrects`
and the checked query and header parameters are held to their published limits the same way."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from api_schemas import body_of, request_name
from issuer.certtypes import known_types
from issuer.field_specs import Body
from issuer.plain_fields import CODES
from tests.conftest import Live, make_settings, sample, serve
from tests.openapi_answers import answer_errors, conforms, loose_schemas, open_objects
from tests.test_digilocker_e2e import World, world_fixture  # noqa: F401 - a fixture

# Pages for people and their files, not API operations: listed here, so a new route is either
# in the document or named here on purpose.
NOT_IN_DOCUMENT = {
    "/static/<path:filename>", "/v", "/v/assets/<name>", "/v/vendor/<name>", "/v/sw.js",
    "/v/fonts/<name>", "/api/v1/docs", "/api/v1/docs/<name>", "/admin/rq/",
    "/portal", "/portal/<kind>", "/portal/<kind>/pdf", "/portal/<kind>/digilocker",
    "/console", "/console/sign-in", "/console/sign-out", "/console/new", "/console/search",
    "/console/c/<cert_id>", "/console/c/<cert_id>/preview.png", "/console/c/<cert_id>/pdf",
    "/console/c/<cert_id>/approve", "/console/c/<cert_id>/reject",
    "/console/c/<cert_id>/revoke", "/console/admin/rq/", "/console/admin/rq/queues.json",
    "/console/admin/rq/failed/<queue_name>/<job_id>/requeue",
}
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TYPES = ("birth", "death", "property_no_dues")


def document(live: Live) -> dict[str, Any]:
    answer = live.http.get(live.url("/api/v1/openapi.json"), headers={"Authorization": ""},
                           timeout=60)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    doc: dict[str, Any] = answer.json()
    return doc


@SQLITE
def test_the_document_is_valid_openapi_3_1_and_names_every_route(live: Live) -> None:
    doc = document(live)
    validate_openapi(doc)  # raises on anything that is not OpenAPI 3.1
    assert doc["openapi"].startswith("3.1")
    app_routes = {(rule.rule, method.lower())
                  for rule in _app_rules(live) if rule.rule not in NOT_IN_DOCUMENT
                  for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(_flask(path), method) for path, item in doc["paths"].items()
                  for method in item}
    assert app_routes - documented == set()
    assert documented - app_routes == set()  # nor an operation the app does not have
    # Errors are problem+json everywhere; the token is a bearer token.
    problem = doc["components"]["responses"]["Problem"]["content"]
    assert list(problem) == ["application/problem+json"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    create = doc["paths"]["/api/v1/certificates"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CertificateRequest"}
    pdf = doc["paths"]["/api/v1/certificates/{cert_id}/pdf"]["get"]["responses"]["200"]
    assert list(pdf["content"]) == ["application/pdf"]


@SQLITE
def test_the_published_request_schemas_accept_the_samples(live: Live) -> None:
    schemas = document(live)["components"]["schemas"]
    for name in ("birth-1", "birth-2", "death-1", "property-1"):
        body = sample(name)
        schema = schemas[request_name(body["type"])]
        assert list(Draft202012Validator(schema).iter_errors(body)) == [], name
        broken = {**body, "unknown_key": 1}
        assert list(Draft202012Validator(schema).iter_errors(broken)) != [], name


@SQLITE
def test_the_docs_page_shows_the_document_under_the_pages_csp(live: Live) -> None:
    page = live.get("/api/v1/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="/api/v1/docs/api_docs.js"' in page.text
    script = live.get("/api/v1/docs/api_docs.js")
    assert script.status_code == 200 and "/api/v1/openapi.json" in script.text
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert live.get("/api/v1/docs/api_docs.css").status_code == 200
    missing = live.get("/api/v1/docs/nothing.js")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"


# Every 2xx JSON answer names its properties and no others: an object of no properties (a map),
# a value of no type or an object open beyond its properties is listed here, each with why an
# open map is its true shape.
OPEN_MAPS = {
    # This document itself: OpenAPI 3.1's own schema is its shape (checked in the first test).
    "GET /api/v1/openapi.json 200 application/json",
    # Each audit action records details of its own (the callers of issuer/audit.record).
    "#/components/schemas/AuditPage/properties/events/items/properties/details",
    # A seal's dates by name: each type names its one date (seals before the compact seal
    # carried several), so the names are the registered types', not a fixed set.
    "#/components/schemas/Verification/properties/certificate/properties/dates",
    # A request as stored, and its fields as printed (a verdict's particulars): the fields of
    # its type when it was stored, so only `type` is promised.
    "#/components/schemas/CertificateDetail/allOf/1/properties/request",
    "#/components/schemas/Verification/properties/certificate/properties/particulars",
}


@SQLITE
def test_every_json_answer_is_described_with_its_properties(live: Live) -> None:
    doc = document(live)
    assert loose_schemas(doc) | open_objects(doc) == OPEN_MAPS  # none listed that is not open
    # The walk itself finds a bare object, an array of anything and an untyped value, through
    # a $ref and inside an allOf.
    tiny = {"paths": {"/x": {"get": {"responses": {
        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
        "404": {"content": {"application/json": {"schema": {"type": "object"}}}}}}}},
        "components": {"schemas": {"A": {"allOf": [{"type": "object", "properties": {
            "m": {"type": "object"}, "l": {"type": "array"}, "v": {}}}]}}}}
    assert loose_schemas(tiny) == {f"#/components/schemas/A/allOf/0/properties/{k}"
                                   for k in ("m", "l", "v")}


@SQLITE
def test_every_json_answer_object_with_properties_is_closed(live: Live) -> None:
    assert open_objects(document(live)) - OPEN_MAPS == set()
    # The walk itself: closed by additionalProperties, or by unevaluatedProperties on the
    # schema composing it (through a $ref, nested); open when neither, or when the composing
    # schema only closes itself, or explicitly.
    closed: dict[str, Any] = {"additionalProperties": False}
    part = {"type": "object", "properties": {"a": {"type": "string"}}}
    tiny = {"paths": {"/x": {"get": {"responses": {
        "200": {"content": {"application/json": {"schema": {"type": "object", "properties": {
            "shut": {**part, **closed}, "open": part,
            "said": {**part, "additionalProperties": True},
            "made": {"allOf": [{"$ref": "#/components/schemas/A"}, {"allOf": [part]}],
                     "unevaluatedProperties": False},
            "loose": {"allOf": [part], **closed},
            "deep": {**closed, "properties": {"in": part}, "unevaluatedProperties": False}},
            **closed}}}},
        "404": {"content": {"application/json": {"schema": part}}}}}}},
        "components": {"schemas": {"A": part}}}
    answer = "GET /x 200 application/json/properties"
    assert open_objects(tiny) == {f"{answer}/{k}" for k in ("open", "said")} | {
        f"{answer}/loose/allOf/0", f"{answer}/deep/properties/in"}


def _seal_of(live: Live, cert_id: str) -> str:
    from issuer.models import Certificate

    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.seal_text, cert_id
        return record.seal_text


@SQLITE
def test_real_verification_answers_are_as_documented(live: Live) -> None:
    doc, http = document(live), _clients(live)
    made = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert made.status_code == 202, made.text
    first = made.json()["id"]
    seen: dict[str, Any] = {}

    def verified(qr: str) -> Any:
        answer = live.post_json("/api/v1/verify", {"qr": qr})
        body = conforms(doc, answer, "/api/v1/verify", "post")
        seen[body["status"]] = body
        return body

    current = verified(_seal_of(live, first))
    assert current["current"] and "particulars" in current["certificate"]
    pdf = live.get(f"/api/v1/certificates/{first}/pdf")
    for data in (pdf.content, b"%PDF-1.7\n%%EOF\n"):  # the issued file, and an unsigned one
        answer = live.http.post(live.url("/api/v1/verify/pdf"), data=data, timeout=60,
                                headers={"Content-Type": "application/pdf"})
        assert conforms(doc, answer, "/api/v1/verify/pdf", "post")["genuine"] is (
            data == pdf.content)
    # A correction supersedes the first; revoked, the correction is revoked.
    fixed = live.post_json("/api/v1/certificates", {**sample("birth-1"), "corrects": first})
    assert fixed.status_code == 202, fixed.text
    second = fixed.json()["id"]
    assert verified(_seal_of(live, first))["certificate"]["current_number"]
    revoked = http["officer"].post(live.url(f"/api/v1/certificates/{second}/revoke"),
                                   json={"reason": "issued in error"}, timeout=60)
    assert revoked.status_code == 200, revoked.text
    assert verified(_seal_of(live, second))["certificate"]["revoked_reason"]
    assert verified(_seal_of(live, first))["certificate"]["current_status"] == "revoked"
    # Not genuine: a genuine seal behind another site's link, and no seal at all.
    assert verified("https://example.org/v#" + _seal_of(live, first).partition("#")[2])[
        "checks"][0] == {"name": "link", "ok": False, "reason": "foreign_link"}
    assert verified("not a seal")["certificate"] is None
    assert set(seen) == {"current", "superseded", "revoked", "invalid"}


@SQLITE
def test_real_reports_batches_and_published_answers_are_as_documented(live: Live) -> None:
    from issuer.db import utcnow
    from tests.rts_records import office, request
    from tests.test_batches import (
        approve_over_http,
        as_csv,
        births,
        officer_department,
        post_batch,
    )

    doc, http = document(live), _clients(live)
    # A record's own answers (before the office below makes the ward a checked field).
    issued = live.post_json("/api/v1/certificates", sample("birth-2"))
    assert issued.status_code == 202, issued.text
    conforms(doc, issued, "/api/v1/certificates", "post")
    conforms(doc, live.get(f"/api/v1/certificates/{issued.json()['id']}"),
             "/api/v1/certificates/{cert_id}")
    conforms(doc, live.get("/api/v1/certificates"), "/api/v1/certificates")
    # The RTS report: an overdue request of a configured office, one due soon of a ward that is
    # not one.
    office(live.runtime, "KB")
    request(live.runtime, utcnow() - timedelta(days=5), ward="KB")
    request(live.runtime, utcnow() + timedelta(hours=1), ward="ZZ")
    rts = conforms(doc, http["auditor"].get(live.url("/api/v1/rts?due_within=60"), timeout=60),
                   "/api/v1/rts")
    assert {r["status"] for o in rts["offices"] for r in o["requests"]} == {"overdue",
                                                                           "due_soon"}
    assert None in {o["designated_officer"] for o in rts["offices"]}
    # A batch uploaded (and again), shown, sampled, approved, retried; another rejected.
    people = officer_department(live)
    data = as_csv([*births(2, first=700), {**births(1, first=702)[0], "registration_number": ""}])
    batch = conforms(doc, post_batch(live, people["clerk"], data), "/api/v1/batches", "post")
    assert batch["row_errors"] and batch["state"] == "awaiting_approval"
    again = post_batch(live, people["clerk"], data)
    assert again.status_code == 200 and conforms(doc, again, "/api/v1/batches", "post")
    url = f"/api/v1/batches/{batch['id']}"
    conforms(doc, people["clerk"].get(live.url(url), timeout=60), "/api/v1/batches/{batch_id}")
    conforms(doc, people["clerk"].get(live.url(url + "/sample"), timeout=60),
             "/api/v1/batches/{batch_id}/sample")
    approved = conforms(doc, approve_over_http(live, people["officer"], batch["id"]),
                        "/api/v1/batches/{batch_id}/approve", "post")
    assert approved["sample_seen_by"] and approved["progress"]["issued"] == 2
    retried = people["officer"].post(live.url(url + "/retry"), timeout=60)
    assert conforms(doc, retried, "/api/v1/batches/{batch_id}/retry", "post")["retried"] == 0
    other = post_batch(live, people["clerk"], as_csv(births(1, first=710))).json()
    conforms(doc, people["officer"].post(live.url(f"/api/v1/batches/{other['id']}/reject"),
                                         json={"reason": "wrong office"}, timeout=60),
             "/api/v1/batches/{batch_id}/reject", "post")
    # What anyone may read: the verify page's anchors and manifest, the signed lists.
    anyone = requests.Session()
    for path in ("/v/roots.json", "/v/manifest.webmanifest", "/healthz"):
        conforms(doc, anyone.get(live.url(path), timeout=60), path)
    for name in ("trust-list", "status-list"):
        conforms(doc, anyone.get(live.url(f"/.well-known/pramaan/{name}.json"), timeout=60),
                 "/.well-known/pramaan/{name}.json")
    # The audit trail of all of the above; the queues (no Redis here).
    audit = conforms(doc, http["auditor"].get(live.url("/api/v1/audit?limit=200"), timeout=60),
                     "/api/v1/audit")
    assert audit["events"]
    conforms(doc, http["admin"].get(live.url("/admin/rq/queues.json"), timeout=60),
             "/admin/rq/queues.json")


@SQLITE
def test_real_decisions_and_admin_answers_are_as_documented(live: Live) -> None:
    from issuer.models import Department
    from issuer.tokens import create_token
    from tests.test_workflow import DEPT, Desk

    doc, http, desk = document(live), _clients(live), Desk(live)
    # A record submitted, amended, shown, approved and revoked; another rejected.
    one = "/api/v1/certificates/{cert_id}"
    made = conforms(doc, desk.call("clerk-1", "POST", "/api/v1/certificates", sample("birth-1")),
                    "/api/v1/certificates", "post")
    url = f"/api/v1/certificates/{made['id']}"
    amended = sample("birth-1")
    amended["child"]["name"]["en"] = "Aarav Sandip Kulkarni"
    conforms(doc, desk.call("clerk-1", "PUT", url, amended), one, "put")
    digest = conforms(doc, desk.call("officer-1", "GET", url), one)["fields_digest"]
    approved = conforms(doc, desk.call("officer-1", "POST", url + "/approve",
                                       {"fields_digest": digest}), one + "/approve", "post")
    assert approved["approved_by"]
    revoked = conforms(doc, desk.call("officer-1", "POST", url + "/revoke",
                                      {"reason": "issued in error"}), one + "/revoke", "post")
    assert revoked["state"] == "revoked"
    other = desk.submit(sample("death-1"))["id"]
    rejected = desk.call("officer-1", "POST", f"/api/v1/certificates/{other}/reject",
                         {"reason": "wrong office"})
    assert conforms(doc, rejected, one + "/reject", "post")["decision_reason"] == "wrong office"
    # A token and a person's account: made, listed, ended.
    admin = http["admin"]
    token = admin.post(live.url("/api/v1/tokens"), json={"name": "desk-9", "role": "clerk"},
                       timeout=60)
    assert conforms(doc, token, "/api/v1/tokens", "post")["token"]
    assert conforms(doc, admin.get(live.url("/api/v1/tokens"), timeout=60), "/api/v1/tokens")[
        "tokens"]
    conforms(doc, admin.post(live.url("/api/v1/tokens/desk-9/revoke"), timeout=60),
             "/api/v1/tokens/{name}/revoke", "post")
    person = admin.post(live.url("/api/v1/users"), timeout=60, json={
        "username": "meera", "full_name": "Meera Joshi", "role": "officer",
        "password": PASSWORDISH})
    assert conforms(doc, person, "/api/v1/users", "post")["username"] == "meera"
    assert conforms(doc, admin.get(live.url("/api/v1/users"), timeout=60), "/api/v1/users")[
        "users"]
    disabled = admin.post(live.url("/api/v1/users/meera/disable"), timeout=60)
    assert conforms(doc, disabled, "/api/v1/users/{username}/disable", "post")["disabled_at"]
    # Their audit events, each action's own details, in both departments.
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEPT)
        assert department is not None
        auditor = create_token(session, department, "auditor-1", "auditor")
    actions = set()
    for reader in (http["auditor"], requests.Session()):
        reader.headers.setdefault("Authorization", f"Bearer {auditor}")
        audit = conforms(doc, reader.get(live.url("/api/v1/audit?limit=200"), timeout=60),
                         "/api/v1/audit")
        actions |= {event["action"] for event in audit["events"]}
    assert {"token_create", "user_disable", "approve", "revoke", "reject"} <= actions, actions


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_digilocker_callback_and_deliveries_are_as_documented(world: World) -> None:
    doc = document(world.live)
    issued = world.desk.issued(sample("birth-1"))
    made = world.desk.call("clerk-1", "POST",
                           f"/api/v1/certificates/{issued['id']}/digilocker-link")
    link = conforms(doc, made, "/api/v1/certificates/{cert_id}/digilocker-link", "post")
    assert link["certificate"] == issued["id"]
    linked = world.link(issued["id"])
    errors = answer_errors(doc, "/digilocker/callback", "get", "200", "application/json",
                           linked)
    assert errors == [] and linked["delivery"]["pushes"], (errors, linked)
    shown = world.desk.call("officer-1", "GET", f"/api/v1/certificates/{issued['id']}")
    assert conforms(doc, shown, "/api/v1/certificates/{cert_id}")["delivery"]["action"] == "A"


@pytest.fixture
def queued(tmp_path: Path, keys_dir: Path, redis_url: str, database_url: str) -> Iterator[Live]:
    """The app with Redis: the queue page shows RQ's queues and workers."""
    yield from serve(make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url))


@SQLITE
def test_the_queue_page_and_a_requeue_are_as_documented(queued: Live, redis_url: str) -> None:
    from redis import Redis
    from rq import Queue, Worker

    from issuer.jobs import SIGN_QUEUE
    from tests.test_queue_page import bearer, failed_issue

    doc, headers = document(queued), bearer(queued)
    job_id = failed_issue(queued, redis_url)
    with Redis.from_url(redis_url) as connection:
        Worker([Queue(SIGN_QUEUE, connection=connection)], connection=connection,
               name="openapi-worker").register_birth()
    page = conforms(doc, requests.get(queued.url("/admin/rq/queues.json"), headers=headers,
                                      timeout=60), "/admin/rq/queues.json")
    assert page["redis"] and page["workers"] and page["queues"][0]["failed"], page
    done = requests.post(queued.url(f"/admin/rq/failed/{SIGN_QUEUE}/{job_id}/requeue"),
                         headers=headers, timeout=60, allow_redirects=False)
    assert conforms(doc, done, "/admin/rq/failed/{queue_name}/{job_id}/requeue", "post")[
        "requeued"] is True


def _app_rules(live: Live) -> Iterator[Any]:
    from api import create_app

    yield from create_app(live.runtime.settings).url_map.iter_rules()


def _flask(path: str) -> str:
    return path.replace("{line}", "<int:line>").replace("{", "<").replace("}", ">")


# Bodies from each type's schema. The sample schema (issuer/field_specs.py) narrows text to what
# passes the checks JSON Schema cannot state; each body is also checked against the published
# schema, so the published one is no narrower than what the validator accepts.


def _body(code: str) -> Body:
    kind = known_types()[code]
    body = body_of(kind)
    assert body is not None, code
    return body


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """JSON values of `schema`, from Schemathesis's generator (as an operation's body)."""
    import schemathesis

    api = schemathesis.openapi.from_dict({
        "openapi": "3.1.0", "info": {"title": "bodies", "version": "1"},
        "paths": {"/body": {"post": {
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"description": "OK"}}}}}})
    operation = next(iter(api.get_all_operations())).ok()
    return operation.as_strategy().map(lambda case: case.body)


def _rule_codes(body: Body) -> set[str]:
    return {rule.code for rule in body.rules}


@pytest.mark.parametrize("code", TYPES)
def test_bodies_generated_from_a_types_schema_are_accepted(code: str) -> None:
    body = _body(code)
    published = Draft202012Validator(body.schema())
    seen = {"clean": 0}

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(data=from_schema(body.schema(sample=True)))
    def accepted(data: dict[str, Any]) -> None:
        assert list(published.iter_errors(data)) == []
        errors = known_types()[code].validate(data)
        # Only the rules between fields (dates in order) may refuse a generated body.
        assert {e.code for e in errors} <= _rule_codes(body), errors
        seen["clean"] += not errors

    accepted()
    assert seen["clean"] > 0  # some bodies passed whole, not only by the rules' leave


# What a mutation does, and the error code the validator must give at that field (ACCEPTED:
# none, the value is at the schema's limit).
ACCEPTED = ""
def _mutations(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(dotted field, expected code, how to change the value there) for `value` of `schema`."""
    if "properties" in schema and isinstance(value, dict):
        where = f"{path}." if path else ""
        for key in schema.get("required", []):
            if key != "type" and key in value:
                yield f"{where}{key}", "required", ("drop", key)
        yield f"{where}x_unknown", "unknown_field", ("add", "x_unknown")
        for key, child in value.items():
            if key != "type":
                for field, code, change in _mutations(schema["properties"][key], child,
                                                      f"{where}{key}"):
                    yield field, code, (key, change)
    elif schema.get("type") == "array" and isinstance(value, list):
        for i, item in enumerate(value):
            for field, code, change in _mutations(schema["items"], item, f"{path}.{i}"):
                yield field, code, (i, change)
    elif isinstance(value, str):
        yield path, "type", ("set", 7)
        text = schema.get("x-pramaan-text", {})
        if text.get("letters") and "maxLength" in schema:  # free text: its longest is accepted
            word = "कखगघङचछजझञ " if text.get("script") == "devanagari" else "Abcdefghij "
            yield path, ACCEPTED, ("set", (word * schema["maxLength"])[:schema["maxLength"]])
        if "enum" in schema:
            yield path, "choice", ("set", "zz")
        elif "maxLength" in schema:
            yield path, "too_long", ("set", "a" * (schema["maxLength"] + 1))
    elif isinstance(value, int):
        yield path, "type", ("set", "7")
        yield path, "out_of_range", ("set", max(schema["enum"]) + 1)


def _apply(value: Any, change: Any) -> Any:
    step, rest = change
    if step == "drop":
        return {k: v for k, v in value.items() if k != rest}
    if step == "add":
        return {**value, rest: "x"}
    if step == "set":
        return rest
    copied = copy.copy(value)
    copied[step] = _apply(value[step], rest)
    return copied


@pytest.mark.parametrize("code", TYPES)
def test_generated_bodies_changed_past_the_schemas_limits_are_refused(code: str) -> None:
    body = _body(code)
    sample_schema = body.schema(sample=True)
    published = Draft202012Validator(body.schema())

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(data=from_schema(sample_schema), pick=st.randoms(use_true_random=False))
    def refused(data: dict[str, Any], pick: Any) -> None:
        mutations = list(_mutations(sample_schema, data, ""))
        assert len(mutations) > 20
        for field, expected, change in pick.sample(mutations, 12):
            changed = _apply(data, change)
            errors = {(e.field, e.code) for e in known_types()[code].validate(changed)}
            if expected == ACCEPTED:
                assert list(published.iter_errors(changed)) == [], field
                assert {e for e in errors if e[0] == field} == set(), (field, errors)
                continue
            assert list(published.iter_errors(changed)) != [], (field, expected)
            assert (field, expected) in errors, (field, expected, errors)

    refused()


# The admin bodies and the checked query and header parameters (issuer/plain_fields.py) held to
# the limits the served document states, over HTTP: a value at a documented limit passes its
# check, one past it is refused at that field with one of the codes the document lists. Both
# are also judged by the published schema, so neither side can move alone.

CHECKED_PARAMETERS = {("/api/v1/certificates", "get", "state"),
                      ("/api/v1/certificates", "get", "limit"),
                      ("/api/v1/certificates", "get", "after"),
                      ("/api/v1/batches", "post", "type"),
                      ("/api/v1/audit", "get", "after"), ("/api/v1/audit", "get", "limit"),
                      ("/api/v1/rts", "get", "due_within"), ("/api/v1/rts", "get", "ward"),
                      ("/api/v1/batches", "post", "mode"),
                      ("/api/v1/batches", "post", "Idempotency-Key")}
PASSWORDISH = "Qz9!kLm2#Rtw"  # two classes, five different characters, no 'a' (usernames')


def _clients(live: Live) -> dict[str, Any]:
    from issuer.bootstrap import DEV_DEPARTMENT
    from issuer.models import Department
    from issuer.tokens import create_token

    made = {}
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        for role in ("admin", "officer", "auditor"):
            made[role] = create_token(session, department, f"limits-{role}", role)
    http = {}
    for role, token in made.items():
        http[role] = requests.Session()
        http[role].headers["Authorization"] = f"Bearer {token}"
    http["clerk"] = live.http
    return http


def _text(length: int, seed: str, pad: str = "a") -> str:
    return (seed + pad * length)[:length]


def _bounds(schema: dict[str, Any], seed: str, pad: str) -> Iterator[tuple[bool, Any]]:
    """(whether the check must pass it, a value) at and past each limit `schema` states."""
    if "enum" in schema:
        yield from ((True, option) for option in schema["enum"])
        yield False, "zz-not-an-option"
    elif schema.get("type") == "integer":
        yield from ((True, schema["minimum"]), (True, schema["maximum"]),
                    (False, schema["maximum"] + 1))
        if schema["minimum"] > 0:
            yield False, schema["minimum"] - 1
        # Not numbers the checks could choke on (int() refuses 5000 digits and "²"): refused.
        yield from ((False, "9" * 5000), (False, "²"), (False, "-1"))
    elif "pattern" in schema and "examples" in schema:  # values of the pattern, and not
        for example in schema["examples"]:
            yield from ((True, example), (False, example + "!"), (False, "!" + example))
        yield False, _text(schema["maxLength"] + 1, seed, pad)
    elif "maxLength" in schema:
        low, high = schema["minLength"], schema["maxLength"]
        yield from ((True, _text(low, seed, pad)), (True, _text(high, seed, pad)),
                    (False, _text(high + 1, seed, pad)))
        if low > 0:
            yield False, _text(low - 1, seed, pad)


def _field_errors(answer: requests.Response, field: str) -> set[str]:
    assert answer.status_code < 500, answer.text
    if answer.status_code != 422:
        return set()
    return {e["code"] for e in answer.json()["errors"] if e["field"] == field}


@SQLITE
def test_admin_bodies_are_held_to_their_published_limits(live: Live) -> None:
    schemas = document(live)["components"]["schemas"]
    http = _clients(live)
    bases = {"NewToken": ("/api/v1/tokens", {"name": "n", "role": "clerk"}),
             "NewUser": ("/api/v1/users", {"username": "u", "full_name": "A Person",
                                           "role": "clerk", "password": PASSWORDISH})}
    count = 0
    for name, (path, base) in bases.items():
        schema = schemas[name]
        published = Draft202012Validator(schema)
        assert schema["additionalProperties"] is False
        extra = http["admin"].post(live.url(path), json={**base, "x_unknown": 1}, timeout=60)
        assert "unknown" in _field_errors(extra, "x_unknown") & set(schema[CODES])
        for key, child in schema["properties"].items():
            pad = PASSWORDISH if key == "password" else "a"
            for ok, value in _bounds(child, f"{key[0]}{count}x" if pad == "a" else "", pad):
                count += 1
                body = {**base, key: value}
                if key != "name" and "name" in body:
                    body["name"] = f"n{count}"  # a new name each time: no `taken`
                if key != "username" and "username" in body:
                    body["username"] = f"u{count}x"
                codes = _field_errors(http["admin"].post(live.url(path), json=body, timeout=60),
                                      key)
                assert (list(published.iter_errors(body)) == []) is ok, (name, key, value)
                if ok:
                    assert codes == set(), (name, key, value, codes)
                else:
                    assert codes and codes <= set(child[CODES]), (name, key, value, codes)
    assert count > 20


@SQLITE
def test_reasons_and_corrects_are_held_to_their_published_limits(live: Live) -> None:
    from jsonschema import FormatChecker

    schemas = document(live)["components"]["schemas"]
    http = _clients(live)
    reason = schemas["Reason"]["properties"]["reason"]
    published = Draft202012Validator(schemas["Reason"])
    nobody = "00000000-0000-4000-8000-000000000000"
    for path in (f"/api/v1/certificates/{nobody}/reject", f"/api/v1/certificates/{nobody}/revoke",
                 f"/api/v1/batches/{nobody}/reject"):
        for ok, value in [*_bounds(reason, "R", "r"), (False, " " * 3), (False, None)]:
            body = {"reason": value}
            codes = _field_errors(http["officer"].post(live.url(path), json=body, timeout=60),
                                  "reason")
            assert (list(published.iter_errors(body)) == []) is ok, (path, value)
            assert (codes == set()) is ok, (path, value, codes)
            assert codes <= set(reason[CODES])
    corrects = schemas[request_name("birth")]["properties"]["corrects"]
    check = Draft202012Validator(corrects, format_checker=FormatChecker())
    for ok, value in ((True, None), (True, nobody), (False, "not-a-uuid"), (False, 7)):
        assert check.is_valid(value) is ok, value
        codes = _field_errors(live.post_json("/api/v1/certificates",
                                             {**sample("birth-1"), "corrects": value}),
                              "corrects")
        assert ("format" not in codes) is ok, (value, codes)
        assert codes <= set(corrects[CODES]) | {"not_found"}


@SQLITE
def test_checked_parameters_are_held_to_their_published_limits(live: Live) -> None:
    doc = document(live)
    http = _clients(live)
    who = {"/api/v1/certificates": "clerk", "/api/v1/audit": "auditor", "/api/v1/rts": "officer",
           "/api/v1/batches": "clerk"}
    checked = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                schema = param["schema"]
                if CODES not in schema:
                    continue
                checked.add((path, method, param["name"]))
                for ok, value in _bounds(schema, "K", "k"):
                    sent = {"headers" if param["in"] == "header" else "params": {
                        param["name"]: str(value)}}
                    if path == "/api/v1/batches":  # a file of one row, new each time
                        sent["params"] = {"type": "birth", **sent.get("params", {})}
                        sent.update(data=f"registration_number\n{value}\n".encode(),
                                    headers={**sent.get("headers", {}),
                                             "Content-Type": "text/csv"})
                    answer = http[who[path]].request(method, live.url(path), timeout=60,
                                                     **sent)
                    codes = _field_errors(answer, param["name"])
                    assert Draft202012Validator(schema).is_valid(value) is ok, (path, value)
                    assert (codes == set()) is ok, (path, param["name"], value, answer.text)
                    assert codes <= set(schema[CODES])
    assert checked == CHECKED_PARAMETERS


# Rules once checked by hand in handlers, now declared beside the other fields: each is in the
# document, and the server and the published schema agree on values at and past it.


@SQLITE
def test_the_batch_type_is_published_as_the_registered_types(live: Live) -> None:
    from issuer.certtypes import register, unregister
    from tests.test_extra_type import Marriage

    before = document(live)
    register(Marriage())  # as a deployment adds a type at start-up
    try:
        doc, registered = document(live), sorted(known_types())
    finally:
        unregister("marriage")
    for served, types in ((before, sorted(known_types())), (doc, registered)):
        upload = served["paths"]["/api/v1/batches"]["post"]
        kind = next(p for p in upload["parameters"] if p["name"] == "type")["schema"]
        assert kind["enum"] == types
        assert kind[CODES] == ["required", "choice", "not_allowed"]
        # What JSON Schema cannot say (the department's own types) is said beside it.
        assert [r["code"] for r in kind["x-pramaan-rules"]] == ["not_allowed"]
        assert "(not_allowed)" in kind["description"]
        form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert form["type"]["enum"] == types
    assert "marriage" in registered


@SQLITE
def test_the_approval_digest_and_the_verify_qr_are_held_to_their_published_limits(
        live: Live) -> None:
    from issuer.verify_request import MAX_QR

    doc = document(live)
    http = _clients(live)
    approval = doc["components"]["schemas"]["Approval"]
    digest = approval["properties"]["fields_digest"]
    assert digest["pattern"] == "^(?:[0-9a-f]{64})$" and set(digest[CODES]) == {"type", "format"}
    nobody = "/api/v1/certificates/00000000-0000-4000-8000-000000000000/approve"
    published = Draft202012Validator(approval)
    cases = [*_bounds(digest, "0", "f"), (False, "F" * 64), (False, 7), (True, None)]
    for ok, value in cases:
        body = {"fields_digest": value}
        answer = http["officer"].post(live.url(nobody), json=body, timeout=60)
        codes = _field_errors(answer, "fields_digest")
        assert published.is_valid(body) is ok, value
        assert (codes == set()) is ok, (value, answer.text)
        assert codes <= set(digest[CODES])
        if ok:
            assert answer.status_code == 404  # checked, then looked for
    verify = doc["paths"]["/api/v1/verify"]["post"]["requestBody"]["content"]
    schema = verify["application/json"]["schema"]
    qr = schema["properties"]["qr"]
    assert schema["required"] == ["qr"] and qr["maxLength"] == MAX_QR
    assert set(qr[CODES]) == {"required", "too_long"}
    for ok, value in [*_bounds(qr, "1", "1"), (False, " \n"), (False, None)]:
        answer = live.post_json("/api/v1/verify", {"qr": value})
        codes = _field_errors(answer, "qr")
        assert Draft202012Validator(schema).is_valid({"qr": value}) is ok, value
        assert (codes == set()) is ok, (len(value or ""), answer.text)
        assert codes <= set(qr[CODES])


@SQLITE
def test_the_cursor_and_the_password_rules_are_in_the_document(live: Live) -> None:
    from issuer.listing import CURSOR

    doc = document(live)
    listing = doc["paths"]["/api/v1/certificates"]["get"]["parameters"]
    after = next(p for p in listing if p["name"] == "after")["schema"]
    assert after["pattern"] == f"^(?:{CURSOR.pattern})$" and after[CODES] == ["format"]
    # A page's own next_after is of the pattern (the values at its limits: the parameter test).
    for name in ("birth-1", "birth-2"):
        live.post_json("/api/v1/certificates", sample(name)).raise_for_status()
    page = live.get("/api/v1/certificates?limit=1").json()
    assert Draft202012Validator(after).is_valid(page["next_after"]), page["next_after"]

    password = doc["components"]["schemas"]["NewUser"]["properties"]["password"]
    in_code = ["control_character", "one_class", "repetitive", "contains_username"]
    assert [r["code"] for r in password["x-pramaan-rules"]] == in_code
    assert set(password[CODES]) == {"required", "length", *in_code}
    assert all(f"({code})" in password["description"] for code in in_code)
    published = Draft202012Validator(password)
    assert published.is_valid(PASSWORDISH)
    for control in ("\x00", "\t", "\x1f", "\x7f", "\x85", "\x9f"):  # C0 and C1: the pattern's
        assert not published.is_valid(PASSWORDISH + control), repr(control)
