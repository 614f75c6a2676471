"""JSON Schemas (2020-12) of the API's bodies and answers, for the OpenAPI document
(api_openapi.py). Certificate requests come from each type's field specs, the very ones that
validate them (issuer/field_specs.py); admin bodies, reasons and `corrects` from the objects
that check them (issuer/plain_fields.py, declared in issuer/tokens.py, users.py, workflow.py,
submit.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from issuer import tokens, users, workflow
from issuer.certtypes import CertType
from issuer.field_specs import Body
from issuer.models import State
from issuer.submit import CORRECTS, CORRECTS_FIELD

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
    k: NULLABLE_STRING for k in ("name", "mobile", "email", "aadhaar")}}
_PUSH: Schema = {"type": "object", "properties": {
    "delivery": {"type": "integer"}, "certificate": STRING, "action": STRING, "state": STRING,
    "attempts": {"type": "integer"}, "next_try_at": NULLABLE_STRING,
    "last_error": NULLABLE_STRING, "delivered_at": NULLABLE_STRING,
    "created_at": NULLABLE_STRING}}
_STATES = [s.value for s in State]

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
            "self": STRING, "pdf": STRING, "superseded_by": STRING}},
        "delivery": {"anyOf": [{"type": "null"}, {**_PUSH, "properties": {
            **_PUSH["properties"], "pushes": {"type": "array", "items": _PUSH}}}]},
        "status_url": STRING,
    },
}

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
    "CertificateView": _CERTIFICATE_VIEW,
    "CertificateDetail": {"allOf": [ref("CertificateView"), {"type": "object", "properties": {
        "request": {"type": "object", "description": "The request as stored (canonical)"},
        "fields_digest": STRING}}]},
    "CertificateList": {
        "type": "object", "required": ["certificates", "next_after"],
        "properties": {"certificates": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "state", "links"],
            "properties": {k: v for k, v in _CERTIFICATE_VIEW["properties"].items() if k in {
                "id", "type", "state", "registration_number", "number", "ward_code",
                "submitted_by", "due_at", "corrects", "superseded_by", "applicant", "links"}}}},
            "next_after": {**NULLABLE_STRING, "description": "The next page's `after`"}}},
    "Approval": {"type": "object", "properties": {"fields_digest": {
        "type": "string", "description": "The digest the officer saw (409 if it changed)"}}},
    "Reason": workflow.REASON_BODY.schema(),
    "Verification": {
        "type": "object", "required": ["genuine", "status", "current", "checks"],
        "properties": {"genuine": {"type": "boolean"}, "status": STRING,
                       "current": {"type": "boolean"}, "reason": NULLABLE_STRING,
                       "checks": {"type": "array", "items": {
                           "type": "object", "properties": {
                               "name": STRING, "ok": {"type": "boolean"},
                               "reason": NULLABLE_STRING}}},
                       "certificate": {"type": ["object", "null"]}}},
    "DigilockerLink": {"type": "object", "required": ["certificate", "url", "expires_at"],
                       "properties": {"certificate": STRING, "url": STRING,
                                      "expires_at": TIME}},
    "NewToken": tokens.NEW_TOKEN.schema(),
    "Token": {"type": "object", "required": ["name", "role", "status"], "properties": {
        "name": STRING, "role": STRING, "department": STRING, "actor": STRING,
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
        "created_at": TIME, "expires_at": NULLABLE_TIME, "revoked_at": NULLABLE_TIME}},
    "TokenCreated": {"allOf": [ref("Token"), {"type": "object", "required": ["token"],
                                              "properties": {"token": STRING}}]},
    "NewUser": users.NEW_USER.schema(),
    "User": {"type": "object", "required": ["username", "role", "status"], "properties": {
        "username": STRING, "full_name": STRING, "role": STRING, "department": STRING,
        "actor": STRING, "status": {"type": "string", "enum": ["active", "disabled"]},
        "created_at": TIME, "disabled_at": NULLABLE_TIME}},
    "AuditPage": {"type": "object", "required": ["events", "next_after"], "properties": {
        "events": {"type": "array", "items": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "at": TIME, "actor": STRING, "action": STRING,
            "certificate_id": NULLABLE_STRING, "details": {},
            "prev_hash": NULLABLE_STRING, "hash": STRING}}},
        "next_after": NULLABLE_INT}},
    "RtsReport": {"type": "object", "required": ["offices", "totals"], "properties": {
        "generated_at": TIME, "due_within_working_days": {"type": "integer"},
        "horizon": TIME, "totals": {"type": "object"},
        "offices": {"type": "array", "items": {"type": "object"}}}},
    "Batch": {"type": "object", "required": ["id", "type", "state", "rows", "links"],
              "properties": {
                  "id": STRING, "type": STRING, "state": STRING, "mode": STRING,
                  "file_name": NULLABLE_STRING, "sha256": STRING,
                  "rows": {"type": "object", "properties": {
                      k: NULLABLE_INT for k in ("total", "valid", "invalid")}},
                  "progress": {"type": "object"}, "uploaded_by": NULLABLE_STRING,
                  "sample_seen_by": NULLABLE_STRING, "decided_by": NULLABLE_STRING,
                  "decision_reason": NULLABLE_STRING,
                  "row_errors": {"type": "array"}, "links": {"type": "object"},
                  "retried": {"type": "integer"}}},
    "BatchSample": {"type": "object", "required": ["batch", "specimens"], "properties": {
        "batch": STRING, "specimens": {"type": "array", "items": {
            "type": "object", "properties": {"line": {"type": "integer"}, "pdf": STRING}}}}},
}
