"""Fields of the admin bodies (tokens, users, reasons, `corrects`) and the API's query and header
parameters, each declared once: the same object checks a value (with the error code and message
its endpoint has always given) and describes it as JSON Schema / an OpenAPI parameter
(api_schemas.py, api_openapi.py), so the published limits are the enforced ones.
tests/test_openapi.py holds each to that: values at a documented limit pass, values past it fail.

Unlike issuer/field_specs.py (certificate particulars through issuer/fields.py's Checker), each
field here has its own codes, kept from the imperative checks these replaced.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from issuer.errors import FieldError

Schema = dict[str, Any]
CODES = "x-pramaan-codes"
# Rules a field's own code checks because JSON Schema cannot state them (other fields, Unicode
# categories, counts of distinct characters, the caller's department): (code, rule), published
# in its codes, in `x-pramaan-rules` and in its description.
InCode = tuple[tuple[str, str], ...]


def _in_code(schema: Schema, rules: InCode) -> Schema:
    if rules:
        schema[CODES] = list(dict.fromkeys([*schema.get(CODES, []), *(c for c, _ in rules)]))
        schema["x-pramaan-rules"] = [{"code": code, "rule": rule} for code, rule in rules]
        said = "; ".join(f"{rule} ({code})" for code, rule in rules)
        schema["description"] = " ".join(filter(None, [
            schema.get("description", ""), f"Also checked, beyond this schema: {said}."]))
    return schema


class Plain(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def required(self) -> bool: ...

    def check(self, value: object) -> FieldError | None:
        """The first thing wrong with `value` (None: absent, or the JSON null), or None."""

    def schema(self) -> Schema: ...


@dataclass(frozen=True)
class Chars:
    """A string of min_len..max_len characters, optionally not blank and of a pattern.
    `short` (code, message) is for a missing, non-string, short or blank value; `long` for one
    too long; `missing` for a non-string; `mismatch` for one off the pattern (each defaults to
    `short`). Not `required`: absent or null passes. `in_code`: what its caller checks beyond."""

    key: str
    min_len: int
    max_len: int
    short: tuple[str, str]
    long: tuple[str, str] | None = None
    missing: tuple[str, str] | None = None
    pattern: re.Pattern[str] | None = None
    mismatch: tuple[str, str] | None = None
    not_blank: bool = False
    required: bool = True
    description: str = ""
    in_code: InCode = ()

    def check(self, value: object) -> FieldError | None:
        if value is None and not self.required:
            return None
        if not isinstance(value, str):
            return self._error(self.missing or self.short)
        if len(value) < self.min_len or (self.not_blank and not value.strip()):
            return self._error(self.short)
        if len(value) > self.max_len:
            return self._error(self.long or self.short)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return self._error(self.mismatch or self.short)
        return None

    def _error(self, what: tuple[str, str]) -> FieldError:
        return FieldError(self.key, *what)

    def schema(self) -> Schema:
        schema: Schema = {"type": "string" if self.required else ["string", "null"],
                          "minLength": self.min_len, "maxLength": self.max_len}
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern.pattern})$"
        elif self.not_blank:
            schema["pattern"] = r"\S"
        pairs = (self.missing, self.short, self.long, self.mismatch)
        schema[CODES] = list(dict.fromkeys(pair[0] for pair in pairs if pair is not None))
        if self.description or self.not_blank:
            schema["description"] = " ".join(filter(None, [
                self.description, "Not blank." if self.not_blank else ""]))
        return _in_code(schema, self.in_code)


@dataclass(frozen=True)
class OneOf:
    key: str
    options: tuple[str, ...]
    message: str
    code: str = "choice"
    required: bool = True

    def check(self, value: object) -> FieldError | None:
        return None if value in self.options else FieldError(self.key, self.code, self.message)

    def schema(self) -> Schema:
        return {"type": "string", "enum": list(self.options), CODES: [self.code]}


@dataclass(frozen=True)
class WholeNumber:
    """A JSON integer low..high (not a boolean, not 5.0); `default` when absent (a null is
    refused: it is not a number of days)."""

    key: str
    low: int
    high: int
    default: int
    code: str
    message: str
    required: bool = False

    def check(self, value: object) -> FieldError | None:
        if isinstance(value, bool) or not isinstance(value, int) or not (
                self.low <= value <= self.high):
            return FieldError(self.key, self.code, self.message)
        return None

    def schema(self) -> Schema:
        return {"type": "integer", "minimum": self.low, "maximum": self.high,
                "default": self.default, "description": "A JSON integer without a fraction",
                CODES: [self.code]}


@dataclass(frozen=True)
class Reference:
    """The id (a UUID) of a certificate, or null."""

    key: str
    code: str
    message: str
    description: str = ""
    required: bool = False

    def check(self, value: object) -> FieldError | None:
        if value is None:
            return None
        try:
            return None if isinstance(value, str) and uuid.UUID(value) else self._error()
        except ValueError:
            return self._error()

    def _error(self) -> FieldError:
        return FieldError(self.key, self.code, self.message)

    def schema(self) -> Schema:
        return {"type": ["string", "null"], "format": "uuid", "description": self.description,
                CODES: [self.code]}


@dataclass(frozen=True)
class Fields:
    """An admin body: a JSON object of these fields (`closed`: of no others)."""

    fields: tuple[Plain, ...]
    description: str = ""
    closed: bool = True

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def not_an_object(self) -> FieldError:
        return FieldError("", "type", "the body is a JSON object with " + ", ".join(self.keys))

    def check(self, body: object) -> list[FieldError]:
        """Every problem of `body` these fields state: not an object; else its unknown keys
        (when closed) and each field's first problem. Rules between fields are the caller's."""
        if not isinstance(body, Mapping):
            return [self.not_an_object()]
        errors = self.unknown(body) if self.closed else []
        found = (f.check(body.get(f.key)) for f in self.fields)
        return errors + [e for e in found if e is not None]

    def unknown(self, body: Mapping[str, Any]) -> list[FieldError]:
        listed = ", ".join(self.keys)
        return [FieldError(key, "unknown", f"not a field of this request ({listed})")
                for key in body if key not in self.keys]

    def schema(self) -> Schema:
        schema: Schema = {"type": "object",
                          "required": [f.key for f in self.fields if f.required],
                          "properties": {f.key: f.schema() for f in self.fields}}
        if self.description:
            schema["description"] = self.description
        if self.closed:
            schema.update({"additionalProperties": False, CODES: ["unknown"]})
        return schema


# Query and header parameters: strings as sent, or None when absent.


@dataclass(frozen=True)
class WholeParam:
    """A whole number low..high written in ASCII digits; `default` when absent. `exact_digits`:
    no more digits than `high` has (so no leading zeros)."""

    name: str
    low: int
    high: int
    default: int
    message: str
    code: str = "range"
    exact_digits: bool = False
    description: str = ""

    def parse(self, raw: str | None, errors: list[FieldError]) -> int:
        if raw is None:
            return self.default
        digits = raw.isascii() and raw.isdigit()
        width = len(raw) if self.exact_digits else len(raw.lstrip("0"))
        if not digits or width > len(str(self.high)) or not self.low <= int(raw) <= self.high:
            errors.append(FieldError(self.name, self.code, self.message))
            return self.default
        return int(raw)

    def parameter(self) -> Schema:
        return _parameter(self.name, "query", {
            "type": "integer", "minimum": self.low, "maximum": self.high,
            "default": self.default}, self.description, [self.code])


@dataclass(frozen=True)
class ChoiceParam:
    """One of `options`; absent is None, unless `missing` (code, message) refuses that."""

    name: str
    options: tuple[str, ...]
    message: str
    code: str = "choice"
    description: str = ""
    missing: tuple[str, str] | None = None
    in_code: InCode = ()

    def parse(self, raw: str | None, errors: list[FieldError]) -> str | None:
        if raw is None and self.missing is not None:
            errors.append(FieldError(self.name, *self.missing))
        elif raw is not None and raw not in self.options:
            errors.append(FieldError(self.name, self.code, self.message))
            return None
        return raw

    def schema(self) -> Schema:
        codes = [self.missing[0]] if self.missing is not None else []
        return _in_code({"type": "string", "enum": list(self.options),
                         CODES: [*codes, self.code]}, self.in_code)

    def parameter(self) -> Schema:
        return _parameter(self.name, "query", self.schema(), self.description, [])


@dataclass(frozen=True)
class TextParam:
    """A string of min_len..max_len characters (after `strip`, when it strips), of `pattern`
    when it has one (`examples`: values of it, for the document and its tests)."""

    name: str
    where: str
    min_len: int
    max_len: int
    code: str
    message: str
    strip: bool = False
    description: str = ""
    pattern: re.Pattern[str] | None = None
    examples: tuple[str, ...] = ()

    def parse(self, raw: str | None, errors: list[FieldError]) -> str | None:
        if raw is None:
            return None
        if not self.min_len <= len(raw.strip() if self.strip else raw) <= self.max_len or (
                self.pattern is not None and not self.pattern.fullmatch(raw)):
            errors.append(FieldError(self.name, self.code, self.message))
            return None
        return raw

    def parameter(self) -> Schema:
        schema: Schema = {"type": "string", "minLength": self.min_len,
                          "maxLength": self.max_len}
        if self.strip:
            schema["description"] = "Counted without surrounding spaces."
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern.pattern})$"
        if self.examples:
            schema["examples"] = list(self.examples)
        return _parameter(self.name, self.where, schema, self.description, [self.code])


def _parameter(name: str, where: str, schema: Schema, description: str,
               codes: list[str]) -> Schema:
    return {"name": name, "in": where, "required": False,
            "schema": {**schema, CODES: [*schema.get(CODES, []), *codes]},
            **({"description": description} if description else {})}
