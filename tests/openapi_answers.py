"""The OpenAPI document's answers, for tests/test_openapi.py: where a 2xx JSON answer is described
without its properties or allows keys beyond them, and a real answer checked against the schema
the document gives it."""

from __future__ import annotations

from typing import Any

import requests
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:pramaan:openapi"
COMPOSED = ("allOf", "anyOf", "oneOf")


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def loose_schemas(doc: dict[str, Any]) -> set[str]:
    """Where a 2xx JSON answer of `doc` allows any object or any value: an object schema
    without properties (a map), an array without items, a schema of no type. Named by the
    component they are in ("#/components/schemas/X/properties/y"), or by the answer
    ("GET /path 200 application/json") when inline."""
    found: set[str] = set()
    followed: set[str] = set()

    def walk(schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            target = schema["$ref"]
            if target not in followed:
                followed.add(target)
                walk(resolve(doc, target), target)
            return
        kinds = schema.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        composed = [key for key in COMPOSED if key in schema]
        if not kinds and not composed and not {"const", "enum"} & set(schema):
            found.add(where)  # any value at all
        if "object" in kinds and not schema.get("properties") and not composed:
            found.add(where)
        if "array" in kinds and "items" not in schema and "prefixItems" not in schema:
            found.add(where)
        for key in composed:
            for i, part in enumerate(schema[key]):
                walk(part, f"{where}/{key}/{i}")
        for name, part in schema.get("properties", {}).items():
            walk(part, f"{where}/properties/{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], f"{where}/{key}")

    for where, schema in answer_schemas(doc):
        walk(schema, where)
    return found


def open_objects(doc: dict[str, Any]) -> set[str]:
    """Where a 2xx JSON answer of `doc` has an object schema with `properties` that allows other
    keys too: neither additionalProperties nor unevaluatedProperties false on it, nor
    unevaluatedProperties false on a schema composing it (allOf, anyOf, oneOf: a part's own
    additionalProperties would refuse the other parts' keys). Named as loose_schemas names."""
    found: set[str] = set()
    followed: set[tuple[str, bool]] = set()

    def walk(schema: dict[str, Any], where: str, composed_closed: bool) -> None:
        if "$ref" in schema:
            target = schema["$ref"]
            if (target, composed_closed) not in followed:
                followed.add((target, composed_closed))
                walk(resolve(doc, target), target, composed_closed)
            return
        closes_parts = composed_closed or schema.get("unevaluatedProperties") is False
        closed = closes_parts or schema.get("additionalProperties") is False
        if "properties" in schema and not closed:
            found.add(where)
        for key in COMPOSED:
            for i, part in enumerate(schema.get(key, [])):
                walk(part, f"{where}/{key}/{i}", closes_parts)
        for name, part in schema.get("properties", {}).items():
            walk(part, f"{where}/properties/{name}", False)
        for key in ("items", "additionalProperties", "unevaluatedProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], f"{where}/{key}", False)

    for where, schema in answer_schemas(doc):
        walk(schema, where, False)
    return found


def answer_schemas(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The schema of each 2xx JSON answer of `doc`, named "GET /path 200 application/json"."""
    return [(f"{method.upper()} {path} {status} {media}", content["schema"])
            for path, item in doc["paths"].items() for method, operation in item.items()
            for status, answer in operation["responses"].items() if status.startswith("2")
            for media, content in answer.get("content", {}).items() if is_json(media)]


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    found: dict[str, Any] = node
    return found


def conforms(doc: dict[str, Any], answer: requests.Response, path: str,
             method: str = "get") -> Any:
    """`answer`'s JSON body, after checking it (formats too) against the schema `doc` gives
    that status and media type of operation `method` `path`; fails listing every error."""
    media = answer.headers.get("Content-Type", "").split(";")[0].strip()
    documented = doc["paths"][path][method]["responses"][str(answer.status_code)]["content"]
    assert media in documented, (path, answer.status_code, media, list(documented))
    body = answer.json()
    errors = answer_errors(doc, path, method, str(answer.status_code), media, body)
    assert errors == [], (path, answer.status_code, errors)
    return body


def answer_errors(doc: dict[str, Any], path: str, method: str, status: str, media: str,
                  body: Any) -> list[str]:
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in (
        "paths", path, method, "responses", status, "content", media, "schema"))
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/{pointer}"}, registry=registry,
                                     format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(body)]
