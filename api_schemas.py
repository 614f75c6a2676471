"""JSON Schemas (2020-12) of the API's bodies and answers, for the OpenAPI document
(api_openapi.py). Certificate requests come from each type's field specs, the very ones that
validate them (issuer/field_specs.py); admin bodies, reasons and `corrects` from the objects
that check them (issuer/plain_fields.py, declared in issuer/tokens.py, users.py, workflow.py,
submit.py). Answers built as TypedDicts (the verdict, the RTS report, a batch, the queue page,
the published documents...) are published from those TypedDicts (issuer/typeddict_schema.py),
which mypy holds the builders to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import WebManifest
from digilocker.deliveries import DeliveryView
from digilocker.link import LinkedAnswer
from issuer import tokens, users, workflow
from issuer.batch_views import BatchView
from issuer.certtypes import CertType
from issuer.field_specs import Body
from issuer.models import State
from issuer.published import VerifierAnchors
from issuer.queue_views import QueuePage, Requeued
from issuer.rts import ReportView
from issuer.submit import CORRECTS, CORRECTS_FIELD
from issuer.typeddict_schema import schema_of
from issuer.verify import VerdictView
from signing.signed_json import FlattenedJws

PROBLEM = "application/problem+json"
Schema = dict[str, Any]
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_INT = {"type": ["integer", "null"]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def request_name(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_")) + "Request"


def body_of(kind: CertType) -> Body | None:
    """The type's field specs, when it declares them (a deployment's own type may not)."""
    body = getattr(kind, "body", None)
    return body if isinstance(body, Body) else None


def request_schema(kind: CertType) -> Schema:
    """The API body of one type: its field specs' schema, plus `corrects`."""
    body = body_of(kind)
    if body is None:
        return {"type": "object", "required": ["type"],
                "properties": {"type": {"const": kind.code}},
                "description": "A certificate type without published field specs."}
    schema = body.schema()
    # A batch CSV names the same fields by dotted names (issuer/batch_files.py); lists (owners)
    # and whole numbers need JSON Lines.
    schema["x-pramaan-csv-columns"] = csv_columns(schema)
    schema["properties"][CORRECTS] = CORRECTS_FIELD.schema()
    return schema


def csv_columns(schema: Schema, prefix: str = "") -> list[str]:
    """The dotted names of a request schema's text fields, as a batch CSV's header names them."""
    columns: list[str] = []
    for key, child in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        child = next((c for c in child.get("anyOf", []) if c.get("type") != "null"), child)
        if child.get("type") == "object":
            columns += csv_columns(child, name + ".")
        elif child.get("type") == "string" or "const" in child:
            columns.append(name)
    return columns


def certificate_request_schemas(types: Mapping[str, CertType]) -> dict[str, Schema]:
    schemas = {request_name(code): request_schema(kind) for code, kind in types.items()}
    schemas["CertificateRequest"] = {
        "description": "A certificate request; `type` names its type. Strings are NFC-normalised "
                       "first; objects nest at most 8 levels (too_deep). Field errors come back "
                       "together as a 422 problem listing every one.",
        "oneOf": [ref(request_name(code)) for code in types],
        "discriminator": {"propertyName": "type", "mapping": {
            code: f"#/components/schemas/{request_name(code)}" for code in types}},
    }
    return schemas


_FIELD_ERROR: Schema = {"type": "object", "required": ["field", "code", "message"],
                        "properties": {"field": STRING, "code": STRING, "message": STRING}}
_APPLICANT_VIEW: Schema = {"type": "object", "properties": {
    k: NULLABLE_STRING for k in ("name", "mobile", "email", "aadhaar")},
    "additionalProperties": False}
_STATES = [s.value for s in State]
# A request as stored: its type's fields as that type's request schema names them (the Aadhaar
# number kept only as its last four digits, outside it). Stored long ago, it need not meet
# today's schema, so only `type` is promised.
STORED_REQUEST: Schema = {"type": "object", "required": ["type"], "properties": {
    "type": STRING}, "additionalProperties": True,
    "description": "The request as stored (canonical: no nulls, no Aadhaar number)"}

# Open, to be composed (CertificateDetail); closed as CertificateView. Answers are closed shapes:
# tests/test_openapi.py lists the few open maps.
_CERTIFICATE_VIEW: Schema = {
    "type": "object",
    "required": ["id", "type", "state", "registration_number", "links", "applicant"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "type": STRING,
        "state": {"type": "string", "enum": _STATES},
        "registration_number": STRING, "number": NULLABLE_STRING, "department": STRING,
        "submitted_by": NULLABLE_STRING, "approved_by": NULLABLE_STRING, "due_at": TIME,
        "issued_at": NULLABLE_TIME, "template_version": NULLABLE_STRING,
        "seal_kid": NULLABLE_STRING, "pdf_sha256": NULLABLE_STRING,
        "attempts": {"type": "integer"}, "last_error": NULLABLE_STRING,
        "ward_code": NULLABLE_STRING, "corrects": NULLABLE_STRING,
        "superseded_by": NULLABLE_STRING, "decided_by": NULLABLE_STRING,
        "decision_reason": NULLABLE_STRING, "revoked_at": NULLABLE_TIME,
        "escalation_level": {"type": "integer"}, "applicant": _APPLICANT_VIEW,
        "links": {"type": "object", "required": ["self"], "properties": {
            "self": STRING, "pdf": STRING, "superseded_by": STRING},
            "additionalProperties": False},
        "delivery": schema_of(DeliveryView | None),
        "status_url": STRING,
    },
}

# Open, to be composed (TokenCreated); closed as Token.
_TOKEN: Schema = {"type": "object", "required": ["name", "role", "status"], "properties": {
    "name": STRING, "role": STRING, "department": STRING, "actor": STRING,
    "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
    "created_at": TIME, "expires_at": NULLABLE_TIME, "revoked_at": NULLABLE_TIME}}

# What each action records, by name: a map of its own per action (issuer/audit.py callers).
AUDIT_DETAILS: Schema = {"type": "object", "description": "What the action recorded: its own "
                         "keys per action"}

COMPONENTS: dict[str, Schema] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status", "detail", "code"],
        "description": "RFC 9457 problem details. `code` is stable; a 422 lists `errors`.",
        "properties": {
            "type": STRING, "title": STRING, "status": {"type": "integer"}, "detail": STRING,
            "code": STRING, "errors": {"type": "array", "items": _FIELD_ERROR},
            "error_count": {"type": "integer"}, "errors_truncated": {"type": "boolean"},
        },
    },
    "FieldError": _FIELD_ERROR,
    "CertificateView": {**_CERTIFICATE_VIEW, "additionalProperties": False},
    # The view's part open: unevaluatedProperties closes the whole (additionalProperties in a
    # part would refuse the other part's keys, so CertificateView itself is not the part).
    "CertificateDetail": {"allOf": [_CERTIFICATE_VIEW, {"type": "object", "properties": {
        "request": STORED_REQUEST,
        "fields_digest": STRING}}], "unevaluatedProperties": False},
    "CertificateList": {
        "type": "object", "required": ["certificates", "next_after"],
        "properties": {"certificates": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "state", "links"],
            "properties": {k: v for k, v in _CERTIFICATE_VIEW["properties"].items() if k in {
                "id", "type", "state", "registration_number", "number", "ward_code",
                "submitted_by", "due_at", "corrects", "superseded_by", "applicant", "links"}},
            "additionalProperties": False}},
            "next_after": {**NULLABLE_STRING, "description": "The next page's `after`"}},
        "additionalProperties": False},
    "Approval": workflow.APPROVAL_BODY.schema(),
    "Reason": workflow.REASON_BODY.schema(),
    "Verification": schema_of(VerdictView),
    "DigilockerLink": {"type": "object", "required": ["certificate", "url", "expires_at"],
                       "properties": {"certificate": STRING, "url": STRING,
                                      "expires_at": TIME}, "additionalProperties": False},
    "NewToken": tokens.NEW_TOKEN.schema(),
    "Token": {**_TOKEN, "additionalProperties": False},
    "TokenCreated": {"allOf": [_TOKEN, {"type": "object", "required": ["token"],
                                        "properties": {"token": STRING}}],
                     "unevaluatedProperties": False},
    "NewUser": users.NEW_USER.schema(),
    "User": {"type": "object", "required": ["username", "role", "status"], "properties": {
        "username": STRING, "full_name": STRING, "role": STRING, "department": STRING,
        "actor": STRING, "status": {"type": "string", "enum": ["active", "disabled"]},
        "created_at": TIME, "disabled_at": NULLABLE_TIME}, "additionalProperties": False},
    "AuditPage": {"type": "object", "required": ["events", "next_after"], "properties": {
        "events": {"type": "array", "items": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "at": TIME, "actor": STRING, "action": STRING,
            "certificate_id": NULLABLE_STRING, "details": AUDIT_DETAILS,
            "prev_hash": NULLABLE_STRING, "hash": STRING}, "additionalProperties": False}},
        "next_after": NULLABLE_INT}, "additionalProperties": False},
    "RtsReport": schema_of(ReportView),
    "Batch": schema_of(BatchView),
    "BatchSample": {"type": "object", "required": ["batch", "specimens"], "properties": {
        "batch": STRING, "specimens": {"type": "array", "items": {
            "type": "object", "required": ["line", "pdf"],
            "properties": {"line": {"type": "integer"}, "pdf": STRING},
            "additionalProperties": False}}}, "additionalProperties": False},
    "TrustAnchors": schema_of(VerifierAnchors),
    "WebManifest": schema_of(WebManifest),
    "SignedDocument": schema_of(FlattenedJws),
    "DigilockerLinked": schema_of(LinkedAnswer),
    "QueuePage": schema_of(QueuePage),
    "Requeued": schema_of(Requeued),
}
