"""Request bodies as small trees of field specs: one description that both checks a request
(through issuer/fields.py's Checker, with its error codes and messages) and is published as
JSON Schema 2020-12 in the OpenAPI document (api_openapi.py), so the two cannot drift.

What JSON Schema cannot say (scripts, printable characters, marks per letter, words the template
can print, Verhoeff check digits, dates not in the future, rules between fields) is said in each
schema's `description` and in `x-pramaan-*` keywords. `schema(sample=True)` is a narrower schema
whose every value passes the checks: what tests generate bodies from (tests/test_openapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from issuer.errors import FieldError
from issuer.fields import DEVANAGARI, LATIN, MAX_MARKS, MAX_WORD, Checker

Schema = dict[str, Any]
Found = dict[str, Any]  # what the walk parsed, by dotted path (dates for the rules between fields)
CODES = "x-pramaan-codes"
TEXT_CODES = ("required", "type", "too_long", "format", "unsupported_character", "stray_mark",
              "too_many_marks", "word_too_long")
# Generation patterns (sample schemas): a few short words of plain letters of each script.
_LATIN_WORDS = r"^[A-Z][a-z]{0,15}( [A-Z][a-z]{0,15}){0,2}$"
_DEVANAGARI_WORDS = r"^[क-ह][ा-ौ]?([क-ह][ा-ौ]?){0,6}( [क-ह][ा-ौ]?([क-ह][ा-ौ]?){0,6}){0,2}$"
_SAMPLE_DAY = r"^(19[0-9]{2}|20[01][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"
ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class Spec(Protocol):
    """One field of an object: how to check it and how to describe it."""

    @property
    def key(self) -> str: ...

    @property
    def required(self) -> bool: ...

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        """Check `parent[key]`, reporting under `path`; record parsed values in `found`."""

    def schema(self, sample: bool = False) -> Schema:
        """The field's JSON Schema (sample: a narrower one whose values all pass)."""


def _nullable(spec: Spec, schema: Schema, sample: bool) -> Schema:
    # A JSON null counts as absent (Checker), so an optional field may be null.
    if spec.required or sample:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def object_schema(specs: tuple[Spec, ...], sample: bool, **extra: Any) -> Schema:
    """An object of exactly these fields (unknown keys are refused: `unknown_field`)."""
    return {
        "type": "object",
        "properties": {s.key: _nullable(s, s.schema(sample), sample) for s in specs},
        "required": [s.key for s in specs if s.required],
        "additionalProperties": False,
        **extra,
    }


@dataclass(frozen=True)
class Text:
    key: str
    max_len: int = 200
    required: bool = True
    pattern: re.Pattern[str] | None = None
    allow_empty: bool = False
    letters: bool = True
    script: str | None = None
    sample_pattern: str | None = None  # for generation; else the pattern, else plain letters
    description: str = ""

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        found[path] = check.text(parent, self.key, path, required=self.required,
                                 max_len=self.max_len, pattern=self.pattern,
                                 allow_empty=self.allow_empty, letters=self.letters,
                                 script=self.script)

    def schema(self, sample: bool = False) -> Schema:
        schema: Schema = {"type": "string", "maxLength": self.max_len}
        if not self.allow_empty:
            schema["minLength"] = 1
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern.pattern})$"
        rules = ["Latin or Devanagari characters the certificate's fonts print, no control "
                 "characters", f"at most {MAX_MARKS} combining signs on a letter",
                 f"no word longer than {MAX_WORD} characters"]
        if not self.allow_empty:
            rules.insert(0, "not blank")
        if self.letters:
            rules.append("contains a letter")
        if self.script:
            rules.append(f"every letter and mark in {self.script.capitalize()} script")
        schema["description"] = " ".join(filter(None, [self.description,
                                                       "Rules: " + "; ".join(rules) + "."]))
        schema["x-pramaan-text"] = {"script": self.script, "letters": self.letters,
                                    "max_marks": MAX_MARKS, "max_word": MAX_WORD}
        codes = list(TEXT_CODES)
        if self.letters:
            codes.append("no_letters")
        if self.script:
            codes.append("not_latin" if self.script == LATIN else "not_devanagari")
        schema[CODES] = codes
        if sample:
            schema["pattern"] = self.sample_pattern or (
                f"^(?:{self.pattern.pattern})$" if self.pattern is not None
                else _DEVANAGARI_WORDS if self.script == DEVANAGARI else _LATIN_WORDS)
        return schema


@dataclass(frozen=True)
class Bilingual:
    """{"en": Latin text, "mr": Devanagari text}, both present."""

    key: str
    max_len: int = 200
    required: bool = True
    allow_empty: bool = False
    description: str = ""

    def parts(self) -> tuple[Text, Text]:
        return (Text("en", self.max_len, allow_empty=self.allow_empty, script=LATIN),
                Text("mr", self.max_len, allow_empty=self.allow_empty, script=DEVANAGARI))

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        found[path] = check.bilingual(parent, self.key, path, required=self.required,
                                      max_len=self.max_len, allow_empty=self.allow_empty)

    def schema(self, sample: bool = False) -> Schema:
        return object_schema(self.parts(), sample, description=" ".join(filter(None, [
            self.description, "In English (Latin script) and Marathi (Devanagari)."])))


@dataclass(frozen=True)
class Day:
    key: str
    required: bool = True
    not_future: bool = True
    description: str = ""
    sample_pattern: str = _SAMPLE_DAY  # for generation (dates that keep the rules, say)

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        found[path] = check.day(parent, self.key, path, required=self.required,
                                not_future=self.not_future)

    def schema(self, sample: bool = False) -> Schema:
        rules = "A date, YYYY-MM-DD, in 1900 or later" + (
            ", not in the future (India's date)" if self.not_future else "") + "."
        codes = ["required", "type", "format", "too_old"] + (
            ["future_date"] if self.not_future else [])
        return {"type": "string", "format": "date", "maxLength": 10,
                "pattern": self.sample_pattern if sample else ISO_DAY,
                "description": " ".join(filter(None, [self.description, rules])),
                "x-pramaan-not-future": self.not_future, CODES: codes}


@dataclass(frozen=True)
class Choice:
    key: str
    options: tuple[str, ...]
    required: bool = True  # Checker.choice has no optional form

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        found[path] = check.choice(parent, self.key, path, self.options)

    def schema(self, sample: bool = False) -> Schema:
        return {"type": "string", "enum": list(self.options),
                CODES: ["required", "type", "choice"]}


@dataclass(frozen=True)
class Whole:
    """A whole number within limits (a JSON number with a fraction, or a boolean, is refused)."""

    key: str
    minimum: int
    maximum: int
    type_message: str
    range_message: str
    required: bool = True

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        value = parent.get(self.key)
        if value is None:
            if self.required:
                check.fail(path, "required", "this field is required")
        elif isinstance(value, bool) or not isinstance(value, int):
            check.fail(path, "type", self.type_message)
        elif not self.minimum <= value <= self.maximum:
            check.fail(path, "out_of_range", self.range_message)
        else:
            found[path] = value

    def schema(self, sample: bool = False) -> Schema:
        # JSON Schema counts 5.0 as an integer; the check does not (a stored 5.0 would print
        # as "5.0"), so bodies are generated from the whole numbers themselves.
        limits = ({"enum": list(range(self.minimum, self.maximum + 1))} if sample
                  else {"minimum": self.minimum, "maximum": self.maximum})
        return {"type": "integer", **limits,
                "description": "A JSON integer written without a fraction (5.0 is refused).",
                CODES: ["required", "type", "out_of_range"]}


@dataclass(frozen=True)
class Obj:
    key: str
    fields: tuple[Spec, ...]
    required: bool = True

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        value = check.obj(parent, self.key, path, self.required)
        if value is not None:
            check_fields(check, value, path, self.fields, found)

    def schema(self, sample: bool = False) -> Schema:
        return object_schema(self.fields, sample,
                             **{CODES: ["required", "type", "unknown_field"]})


def check_fields(check: Checker, value: Mapping[str, Any], path: str, specs: tuple[Spec, ...],
                 found: Found, extra_keys: frozenset[str] = frozenset()) -> None:
    """Unknown keys first, then each field in order (the order errors are reported in)."""
    check.unknown(value, path, {s.key for s in specs} | extra_keys)
    for spec in specs:
        spec.check(check, value, f"{path}.{spec.key}" if path else spec.key, found)


@dataclass(frozen=True)
class Items:
    """A list of 1..max_items objects of the same fields."""

    key: str
    fields: tuple[Spec, ...]
    max_items: int
    type_message: str
    empty_message: str
    too_many_message: str
    required: bool = True

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        items = parent.get(self.key)
        if items is None:
            check.fail(path, "required", "this field is required")
        elif not isinstance(items, list):
            check.fail(path, "type", self.type_message)
        elif not items:
            check.fail(path, "required", self.empty_message)
        elif len(items) > self.max_items:
            check.fail(path, "too_many", self.too_many_message)
        else:
            for i, item in enumerate(items):
                where = f"{path}.{i}"
                if not isinstance(item, dict):
                    check.fail(where, "type", "must be an object")
                    continue
                check_fields(check, item, where, self.fields, found)

    def schema(self, sample: bool = False) -> Schema:
        return {"type": "array", "minItems": 1, "maxItems": self.max_items,
                "items": object_schema(self.fields, sample,
                                       **{CODES: ["type", "unknown_field"]}),
                CODES: ["required", "type", "too_many"]}


@dataclass(frozen=True)
class TextOrBilingual:
    """Free text as a register keeps it: one string, or English and Marathi."""

    key: str
    max_len: int
    required: bool = False
    description: str = ""

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        if isinstance(parent.get(self.key), str):
            Text(self.key, self.max_len, required=self.required).check(check, parent, path, found)
        else:
            Bilingual(self.key, self.max_len, self.required).check(check, parent, path, found)

    def schema(self, sample: bool = False) -> Schema:
        return {"anyOf": [Text(self.key, self.max_len).schema(sample),
                          Bilingual(self.key, self.max_len).schema(sample)],
                "description": self.description}


@dataclass(frozen=True)
class Custom:
    """A field whose check is a function of its own (amounts, financial years, the applicant
    block), with the schema that function enforces."""

    key: str
    run: Callable[[Checker, Mapping[str, Any], str], Any]
    describe: Callable[[bool], Schema]
    required: bool = True

    def check(self, check: Checker, parent: Mapping[str, Any], path: str, found: Found) -> None:
        found[path] = self.run(check, parent, path)

    def schema(self, sample: bool = False) -> Schema:
        return self.describe(sample)


@dataclass(frozen=True)
class Rule:
    """A rule between fields: `broken(found)` is the message when it is broken, else None."""

    field: str
    code: str
    text: str
    broken: Callable[[Found], str | None]


@dataclass(frozen=True)
class Body:
    """A certificate type's whole request: its fields, and the rules between them."""

    type_code: str
    fields: tuple[Spec, ...]
    rules: tuple[Rule, ...] = ()
    description: str = ""
    extra_keys: frozenset[str] = field(default_factory=lambda: frozenset({"type"}))

    @property
    def top_level(self) -> set[str]:
        return {s.key for s in self.fields} | set(self.extra_keys)

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with `data`, in the order the fields are declared, then the rules."""
        if not isinstance(data, dict):
            return [FieldError("", "type", "the request body must be a JSON object")]
        check = Checker(data)
        found: Found = {}
        check_fields(check, data, "", self.fields, found, self.extra_keys)
        for rule in self.rules:
            message = rule.broken(found)
            if message is not None:
                check.fail(rule.field, rule.code, message)
        return check.errors

    def schema(self, sample: bool = False) -> Schema:
        schema = object_schema(self.fields, sample, description=self.description, **{
            "x-pramaan-rules": [{"field": r.field, "code": r.code, "rule": r.text}
                                for r in self.rules]})
        schema["properties"] = {"type": {"const": self.type_code}, **schema["properties"]}
        schema["required"] = ["type", *schema["required"]]
        return schema


def before(later: str, earlier: str, message: str) -> Callable[[Found], str | None]:
    """A rule broken when the date at `later` is before the date at `earlier` (both valid)."""

    def broken(found: Found) -> str | None:
        a, b = found.get(later), found.get(earlier)
        return message if isinstance(a, date) and isinstance(b, date) and a < b else None

    return broken
