"""The OpenAPI 3.1 document of the whole HTTP API, at /api/v1/openapi.json, and a page that shows
it at /api/v1/docs (templates/web/api_docs.*: our own small renderer, no CDN under the CSP).

Request bodies of certificates are the types' own field specs (issuer/field_specs.py), the ones
that validate requests; admin bodies and the checked query and header parameters come from the
objects that check them (issuer/plain_fields.py). Operations are listed here by hand beside their
routes; tests/test_openapi.py fails when a Flask route is missing from this document.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template

from api_schemas import COMPONENTS, PROBLEM, certificate_request_schemas, ref
from issuer import batches, department_audit, listing, rts
from issuer.certtypes import known_types
from issuer.verify_request import VERIFY_BODY
from templates import web_dir

DOCS_ASSETS = {"api_docs.js": "text/javascript", "api_docs.css": "text/css"}
Op = dict[str, Any]


def openapi_api() -> Blueprint:
    bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

    @bp.get("/openapi.json")
    def document() -> Response:
        return jsonify(openapi_document(current_app))

    @bp.get("/docs")
    def docs_page() -> str:
        return render_template("api_docs.html")

    @bp.get("/docs/<name>")
    def docs_asset(name: str) -> Response:
        from flask import send_from_directory

        from issuer.errors import NotFound

        if name not in DOCS_ASSETS:
            raise NotFound("no such file")
        return send_from_directory(web_dir(), name, max_age=300, mimetype=DOCS_ASSETS[name])

    return bp


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document for `app`: every operation, the certificate types registered now."""
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    paths = {path: ops for path, ops in _paths().items()
             if _flask_rule(path) in routes}
    components = {"schemas": {**COMPONENTS, **certificate_request_schemas(known_types())},
                  "securitySchemes": {"bearer": {
                      "type": "http", "scheme": "bearer",
                      "description": "An API token (pmn_...) from `pramaan token create` or "
                                     "POST /api/v1/tokens; its role decides what it may do."},
                                      "metrics": {
                      "type": "http", "scheme": "bearer",
                      "description": "PRAMAAN_METRICS_TOKEN; without it, /metrics answers "
                                     "loopback clients only (403 to others)."}},
                  "responses": {"Problem": {"description": "An error (RFC 9457 problem+json, "
                                            "with a stable `code`)",
                                            "content": {PROBLEM: {"schema": ref("Problem")}}}}}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Pramaan", "version": "1",
                 "description": "Signed, verifiable municipal certificates. Every error is "
                                "application/problem+json with a stable `code`; field errors "
                                "list `errors` of {field, code, message}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": components,
    }


def _flask_rule(path: str) -> str:
    """/api/v1/x/{id} -> /api/v1/x/<id> (and the one typed converter, the sample line)."""
    rule = path.replace("{line}", "<int:line>")
    return rule.replace("{", "<").replace("}", ">")


def _problems(*statuses: int) -> dict[str, Any]:
    answers: dict[str, Any] = {str(s): {"$ref": "#/components/responses/Problem"}
                               for s in statuses}
    answers["4XX"] = {"$ref": "#/components/responses/Problem"}
    return answers


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _file(media: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {media: {"schema": {"type": "string", "format": "binary"}}}}


def _body(schema: dict[str, Any], required: bool = True,
          media: str = "application/json") -> dict[str, Any]:
    return {"required": required, "content": {media: {"schema": schema}}}


def _param(name: str, where: str = "path", schema: dict[str, Any] | None = None,
           description: str = "", required: bool | None = None) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path" if required is None
            else required, "schema": schema or {"type": "string"},
            **({"description": description} if description else {})}


def _op(summary: str, answers: dict[str, Any], *, tag: str, params: list[Any] | None = None,
        body: dict[str, Any] | None = None, public: bool = False,
        problems: tuple[int, ...] = (), security: list[Any] | None = None) -> Op:
    op: Op = {"summary": summary, "tags": [tag], "responses": {**answers, **_problems(*problems)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    if security is not None:
        op["security"] = security
    return op


CERT_ID = _param("cert_id", description="The certificate's id (a UUID; anything else is 404).")
BATCH_ID = _param("batch_id", description="The batch's id (a UUID; anything else is 404).")
REASON = _body(ref("Reason"))


def _paths() -> dict[str, dict[str, Op]]:
    return {**_certificate_paths(), **_batch_paths(), **_admin_paths(), **_public_paths(),
            **_digilocker_paths(), **_operations_paths()}


def _certificate_paths() -> dict[str, dict[str, Op]]:
    view = _json(ref("CertificateView"))
    c = "certificates"
    return {
        "/api/v1/certificates": {
            "post": _op("Submit a certificate request (or a correction: `corrects`)",
                        {"202": _json(ref("CertificateView"), "Recorded; issued later")},
                        tag=c, body=_body(ref("CertificateRequest"))),
            "get": _op("List the department's certificates, newest first",
                       {"200": _json(ref("CertificateList"))}, tag=c, params=[
                           listing.STATE.parameter(),
                           _param("type", "query"), _param("registration_number", "query"),
                           listing.LIMIT.parameter(), listing.AFTER.parameter()]),
        },
        "/api/v1/certificates/{cert_id}": {
            "get": _op("A certificate with its request and fields digest",
                       {"200": _json(ref("CertificateDetail"))}, tag=c, params=[CERT_ID]),
            "put": _op("Amend a request not yet decided (same type and registration)",
                       {"200": _json(ref("CertificateDetail"))}, tag=c, params=[CERT_ID],
                       body=_body(ref("CertificateRequest"))),
        },
        "/api/v1/certificates/{cert_id}/approve": {"post": _op(
            "Approve (an officer who did not submit it)", {"200": view}, tag=c,
            params=[CERT_ID], body=_body(ref("Approval"), required=False))},
        "/api/v1/certificates/{cert_id}/reject": {"post": _op(
            "Reject with a reason", {"200": view}, tag=c, params=[CERT_ID], body=REASON)},
        "/api/v1/certificates/{cert_id}/revoke": {"post": _op(
            "Revoke an issued certificate", {"200": view}, tag=c, params=[CERT_ID],
            body=REASON)},
        "/api/v1/certificates/{cert_id}/pdf": {"get": _op(
            "The signed PDF (byte-identical every time; ETag is its SHA-256)",
            {"200": _file("application/pdf", "The signed PDF"),
             "304": {"description": "Not modified (If-None-Match)"}}, tag=c, params=[CERT_ID])},
        "/api/v1/certificates/{cert_id}/digilocker-link": {"post": _op(
            "A link the applicant opens to link their DigiLocker account",
            {"200": _json(ref("DigilockerLink"))}, tag="digilocker", params=[CERT_ID])},
        "/api/v1/verify": {"post": _op(
            "Verify a scanned QR text (anyone; rate-limited)",
            {"200": _json(ref("Verification"))}, tag="verify", public=True,
            body=_body(VERIFY_BODY.schema()))},
        "/api/v1/verify/pdf": {"post": _op(
            "Verify a certificate's PDF as the citizen holds it (anyone; at most 2 MiB)",
            {"200": _json(ref("Verification"))}, tag="verify", public=True,
            body=_body({"type": "string", "format": "binary"}, media="application/pdf"))},
    }


def _batch_paths() -> dict[str, dict[str, Op]]:
    b = "batches"
    batch = _json(ref("Batch"))
    kind = batches.batch_type()
    upload_params = [kind.parameter(), batches.MODE.parameter(),
                     batches.IDEMPOTENCY_KEY.parameter()]
    binary = {"type": "string", "format": "binary"}
    return {
        "/api/v1/batches": {"post": _op(
            "Upload a CSV or JSON Lines batch (rows are certificate requests, flattened: "
            "see README, Bulk issuance)",
            {"201": _json(ref("Batch"), "Uploaded"), "200": _json(ref("Batch"), "The same "
             "upload again (Idempotency-Key)")}, tag=b, params=upload_params,
            body={"required": True, "content": {
                "text/csv": {"schema": binary}, "application/x-ndjson": {"schema": binary},
                "multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": binary, "type": kind.schema(),
                                   "mode": batches.MODE.schema()}}}}})},
        "/api/v1/batches/{batch_id}": {"get": _op("A batch: counts, progress, bad rows",
                                                  {"200": batch}, tag=b, params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/report.csv": {"get": _op(
            "The bad rows, one field error a line", {"200": _file("text/csv", "CSV")}, tag=b,
            params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/certificates.zip": {"get": _op(
            "Signed PDFs and a CSV of every row", {"200": _file("application/zip", "ZIP")},
            tag=b, params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/sample": {"get": _op(
            "Lines of rows spread through the file, to open as specimens",
            {"200": _json(ref("BatchSample"))}, tag=b, params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/sample/{line}.pdf": {"get": _op(
            "A row rendered as an unsigned specimen",
            {"200": _file("application/pdf", "Specimen")}, tag=b,
            params=[BATCH_ID, _param("line", schema={"type": "integer", "minimum": 0})])},
        "/api/v1/batches/{batch_id}/retry": {"post": _op(
            "Issue the failed certificates again", {"200": batch}, tag=b, params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/approve": {"post": _op(
            "Approve the batch (an officer who did not upload it and opened a specimen)",
            {"200": batch}, tag=b, params=[BATCH_ID])},
        "/api/v1/batches/{batch_id}/reject": {"post": _op(
            "Reject the batch", {"200": batch}, tag=b, params=[BATCH_ID], body=REASON)},
    }


def _admin_paths() -> dict[str, dict[str, Op]]:
    a = "admin"
    return {
        "/api/v1/tokens": {
            "post": _op("Make an API token (admins); the secret is in this answer only",
                        {"201": _json(ref("TokenCreated"), "Made")}, tag=a,
                        body=_body(ref("NewToken"))),
            "get": _op("The department's tokens", {"200": _json({
                "type": "object", "required": ["tokens"],
                "properties": {"tokens": {"type": "array", "items": ref("Token")}},
                "additionalProperties": False})}, tag=a),
        },
        "/api/v1/tokens/{name}/revoke": {"post": _op(
            "Revoke a token for good", {"200": _json(ref("Token"))}, tag=a,
            params=[_param("name")])},
        "/api/v1/users": {
            "post": _op("Add a person's account (admins)", {"201": _json(ref("User"), "Made")},
                        tag=a, body=_body(ref("NewUser"))),
            "get": _op("The department's accounts", {"200": _json({
                "type": "object", "required": ["users"],
                "properties": {"users": {"type": "array", "items": ref("User")}},
                "additionalProperties": False})}, tag=a),
        },
        "/api/v1/users/{username}/disable": {"post": _op(
            "Disable an account for good", {"200": _json(ref("User"))}, tag=a,
            params=[_param("username")])},
        "/api/v1/audit": {"get": _op(
            "The department's audit events (auditors)", {"200": _json(ref("AuditPage"))},
            tag=a, params=[
                department_audit.AFTER.parameter(), department_audit.LIMIT.parameter()])},
        "/api/v1/rts": {"get": _op(
            "Right to Public Services: requests due soon or overdue",
            {"200": _json(ref("RtsReport"))}, tag="rts", params=[
                rts.DUE_WITHIN.parameter(), rts.WARD.parameter()])},
    }


def _public_paths() -> dict[str, dict[str, Op]]:
    p = "public"
    return {
        "/healthz": {"get": _op("Liveness", {"200": _json({
            "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}},
            "additionalProperties": False})}, tag=p,
            public=True)},
        "/v/roots.json": {"get": _op("The verify page's trust anchors",
                                     {"200": _json(ref("TrustAnchors"))}, tag=p, public=True)},
        "/v/manifest.webmanifest": {"get": _op("The verify page's web app manifest", {
            "200": {"description": "Manifest",
                    "content": {"application/manifest+json": {"schema": ref("WebManifest")}}}},
            tag=p, public=True)},
        "/.well-known/pramaan/{name}.json": {"get": _op(
            "The signed seal trust list or status list (JWS)", {"200": {
                "description": "A JWS (flattened JSON serialization)",
                "content": {"application/jose+json": {"schema": ref("SignedDocument")}}}},
            tag=p, public=True,
            params=[_param("name", schema={"type": "string",
                                           "enum": ["trust-list", "status-list"]})])},
        # Its shape is OpenAPI 3.1's own (tests/test_openapi.py validates it against that).
        "/api/v1/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})},
                                            tag=p, public=True)},
    }


def _digilocker_paths() -> dict[str, dict[str, Op]]:
    d = "digilocker"
    xml = {"type": "string", "description": "DigiLocker's Pull URI/Doc request XML"}
    pull = {"200": {"description": "The response XML", "content": {
        "application/xml": {"schema": {"type": "string"}}}},
        "4XX": {"description": "Refused (authentication, replay, malformed XML): text or XML",
                "content": {"text/plain": {"schema": {"type": "string"}},
                            "application/xml": {"schema": {"type": "string"}}}}}
    hmac = _param("x-digilocker-hmac", "header", required=False,
                  description="Base64 HMAC-SHA256 of the body with the shared key")
    return {
        "/digilocker/pulluri": {"post": {
            "summary": "DigiLocker's Pull URI request (XML; HMAC-authenticated)",
            "tags": [d], "security": [], "parameters": [hmac],
            "requestBody": _body(xml, media="application/xml"), "responses": pull}},
        "/digilocker/pulldoc": {"post": {
            "summary": "DigiLocker's Pull Doc request (XML; HMAC-authenticated)",
            "tags": [d], "security": [], "parameters": [hmac],
            "requestBody": _body(xml, media="application/xml"), "responses": pull}},
        "/digilocker/link/{cert_id}": {"get": _op(
            "The applicant's link: redirects to DigiLocker's consent page",
            {"302": {"description": "To DigiLocker"}}, tag=d, public=True,
            params=[_param("cert_id"), _param("t", "query", required=True)])},
        "/digilocker/callback": {"get": _op(
            "DigiLocker's OAuth callback", {"200": {"description": "Linked", "content": {
                "application/json": {"schema": ref("DigilockerLinked")},
                "text/html": {"schema": {"type": "string"}}}}}, tag=d, public=True,
            params=[_param("code", "query"), _param("state", "query")])},
    }


def _operations_paths() -> dict[str, dict[str, Op]]:
    o = "operations"
    return {
        "/metrics": {"get": _op("Prometheus metrics (a metrics token or an admin's)", {
            "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}, tag=o,
            security=[{}, {"metrics": []}])},
        "/admin/rq/queues.json": {"get": _op("RQ queues and failed jobs (admins)",
                                             {"200": _json(ref("QueuePage"))}, tag=o)},
        "/admin/rq/failed/{queue_name}/{job_id}/requeue": {"post": _op(
            "Requeue a failed job (admins)", {"303": {"description": "Back to the queue page"},
                                              "200": _json(ref("Requeued"), "Requeued")}, tag=o,
            params=[_param("queue_name"), _param("job_id")])},
    }
