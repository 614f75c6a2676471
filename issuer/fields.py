"""Small, composable field checks that collect FieldErrors instead of stopping at the first."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from issuer.errors import FieldError

IST = timezone(timedelta(hours=5, minutes=30), "IST")
# What the shipped fonts (Noto Sans, Noto Sans Devanagari) can print: Latin with its combining
# marks (U+0300-036F) and precomposed letters (Latin Extended Additional), Devanagari and its
# extensions (the Vedic signs the font has), joiners, general punctuation and the rupee sign.
# Anything else would print as an empty box on a legal document, so it is refused at the door.
_PRINTABLE = re.compile(
    "[\u0020-\u007E\u00A0-\u024F\u0300-\u036F\u1E00-\u1EFF\u0900-\u097F\uA8E0-\uA8FF"
    "\u1CD0-\u1CF6\u1CF8\u1CF9\u200C\u200D\u2010-\u2027\u20B9]*"
)
# Scripts, by block. Every letter and combining mark of a field must belong to its script; what
# belongs to neither (ASCII digits, spaces, punctuation, the rupee sign) is shared. Latin
# combining marks are Latin: NFC (applied before validation) composes most of them into the
# precomposed letters above, and the rest (say x + U+0323) print with Noto Sans like any
# accent, so they are allowed in English fields under the same cluster limit as Devanagari signs,
# and refused in Marathi fields. The joiners only steer Devanagari conjuncts: Devanagari.
LATIN = "latin"
DEVANAGARI = "devanagari"
_SCRIPT_CHARS = {
    LATIN: re.compile("[A-Za-z\u00AA\u00BA\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F"
                      "\u0300-\u036F\u1E00-\u1EFF]"),
    DEVANAGARI: re.compile("[\u0900-\u097F\uA8E0-\uA8FF\u1CD0-\u1CFF\u200C\u200D]"),
}
_SCRIPT_NAMES = {LATIN: ("not_latin", "the English text must be in Latin script"),
                 DEVANAGARI: ("not_devanagari", "the Marathi text must be in Devanagari script")}
_JOINERS = "\u200C\u200D"
# A character cluster is a letter and the combining characters after it (marks, Unicode category
# M*, and the joiners). Real Marathi needs at most three (nukta + vowel sign + anusvara, as in
# क़िं; nukta + virama + ZWJ), four with a Vedic accent; Latin after NFC one or two. More stack
# into a smear or nothing at all, so both scripts get the same limit.
MAX_MARKS = 4
# The longest run of letters the template prints in a value cell (templates/birth.typ asserts it).
MAX_WORD = 40
MAX_DEPTH = 8
# Field paths echo request keys back to the client: long keys are cut in error reports.
MAX_KEY_SHOWN = 64
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice; which value wins differs between parsers."""

    def __init__(self, key: str) -> None:
        self.key = _shown_key(key)
        super().__init__(f"duplicate key {self.key!r}")


def parse_json(text: str | bytes) -> Any:
    """Parse an untrusted request: no NaN or Infinity, no key twice in any object (at any level).

    Raises ValueError (DuplicateKey for a repeated key) or RecursionError for absurd nesting.
    """
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def _shown_key(key: str) -> str:
    return key if len(key) <= MAX_KEY_SHOWN else key[:MAX_KEY_SHOWN] + "…"


def _char(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" ({name})" if name else "")


def letters_problem(value: str) -> str | None:
    """Why `value` would print as nothing readable (no letter at all), or None."""
    if any(unicodedata.category(c).startswith("L") for c in value):
        return None
    return "must contain letters: it would print as blank space, marks or punctuation only"


def script_problem(value: str, script: str) -> str | None:
    """The first letter, mark or joiner of `value` that is not of `script`, or None."""
    own = _SCRIPT_CHARS[script]
    others = [pattern for name, pattern in _SCRIPT_CHARS.items() if name != script]
    for c in value:
        if own.match(c):
            continue
        if unicodedata.category(c)[0] in "LM" or any(p.match(c) for p in others):
            return f"{_SCRIPT_NAMES[script][1]}; {_char(c)} is not"
    return None


def marks_problem(value: str) -> tuple[str, str] | None:
    """(code, message) for a combining mark or joiner with no letter to sit on
    (`stray_mark`) or more than MAX_MARKS of them on one letter (`too_many_marks`), or None."""
    run = 0
    based = False
    for c in value:
        if unicodedata.category(c).startswith("L"):
            run, based = 0, True
        elif unicodedata.category(c).startswith("M") or c in _JOINERS:
            if not based:
                return "stray_mark", f"{_char(c)} is a combining sign without a letter before it"
            run += 1
            if run > MAX_MARKS:
                return "too_many_marks", f"has more than {MAX_MARKS} combining signs on one letter"
        else:
            run, based = 0, False
    return None


def nesting_depth(value: object) -> int:
    """How deeply lists and objects nest, computed without recursion (bodies are untrusted)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def today_ist() -> date:
    """Dates on certificates are Indian dates: 'in the future' is judged in IST."""
    return datetime.now(IST).date()


class Checker:
    """Walks one request, remembering every problem with its dotted field path."""

    def __init__(self, data: Any) -> None:
        self.errors: list[FieldError] = []
        self.root = data

    def fail(self, path: str, code: str, message: str) -> None:
        self.errors.append(FieldError(path, code, message))

    def obj(self, parent: Mapping[str, Any], key: str, path: str, required: bool = True) -> Any:
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path, "required", "this field is required")
            return None
        if not isinstance(value, dict):
            self.fail(path, "type", "must be an object")
            return None
        return value

    def text(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = True,
        max_len: int = 200,
        pattern: re.Pattern[str] | None = None,
        allow_empty: bool = False,
        letters: bool = True,
        script: str | None = None,
    ) -> str | None:
        """A string field. Unless `letters` is off (dates, numbers), it must contain letters;
        with a `script` (LATIN, DEVANAGARI), every letter and mark must be of that script."""
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path, "required", "this field is required")
            return None
        if not isinstance(value, str):
            self.fail(path, "type", "must be a string")
            return None
        stripped = value.strip()
        if not stripped and not allow_empty:
            if required:
                self.fail(path, "required", "must not be empty")
            return None
        if len(value) > max_len:
            self.fail(path, "too_long", f"must be at most {max_len} characters")
        elif any(ord(c) < 32 for c in value):
            self.fail(path, "format", "must not contain control characters")
        elif not _PRINTABLE.fullmatch(value):
            bad = next(c for c in value if not _PRINTABLE.fullmatch(c))
            self.fail(path, "unsupported_character",
                      f"contains U+{ord(bad):04X}, which the certificate cannot print "
                      "(use Latin or Devanagari script)")
        elif stripped and letters and (problem := letters_problem(value)):
            self.fail(path, "no_letters", problem)
        elif stripped and script and (problem := script_problem(value, script)):
            self.fail(path, _SCRIPT_NAMES[script][0], problem)
        elif marks := marks_problem(value):
            self.fail(path, *marks)
        elif stripped and pattern is not None and not pattern.fullmatch(value):
            self.fail(path, "format", f"does not match the expected format {pattern.pattern}")
        elif any(len(word) > MAX_WORD for word in value.split()):
            self.fail(path, "word_too_long",
                      f"has a word longer than {MAX_WORD} characters, which cannot be printed")
        return value

    def bilingual(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = True,
        max_len: int = 200,
        allow_empty: bool = False,
    ) -> dict[str, str] | None:
        value = self.obj(parent, key, path, required)
        if value is None:
            return None
        en = self.text(value, "en", f"{path}.en", max_len=max_len, allow_empty=allow_empty,
                       script=LATIN)
        mr = self.text(value, "mr", f"{path}.mr", max_len=max_len, allow_empty=allow_empty,
                       script=DEVANAGARI)
        self.unknown(value, path, {"en", "mr"})
        return {"en": en or "", "mr": mr or ""} if en is not None and mr is not None else None

    def day(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = True,
        not_future: bool = True,
    ) -> date | None:
        raw = self.text(parent, key, path, required=required, max_len=10, letters=False)
        if raw is None:
            return None
        try:
            # fromisoformat also takes week dates (2024-W01-1) and basic forms: refuse them.
            if not _ISO_DATE.fullmatch(raw):
                raise ValueError(raw)
            value = date.fromisoformat(raw)
        except ValueError:
            self.fail(path, "format", "must be a date written YYYY-MM-DD")
            return None
        if not_future and value > today_ist():
            self.fail(path, "future_date", "must not be in the future")
        if value.year < 1900:
            self.fail(path, "too_old", "must be in 1900 or later")
        return value

    def choice(
        self, parent: Mapping[str, Any], key: str, path: str, options: tuple[str, ...]
    ) -> str | None:
        value = self.text(parent, key, path, max_len=40, letters=False)
        if value is not None and value not in options:
            self.fail(path, "choice", f"must be one of: {', '.join(options)}")
            return None
        return value

    def unknown(self, value: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in value:
            if key not in allowed:
                shown = _shown_key(key)
                where = f"{path}.{shown}" if path else shown
                self.fail(where, "unknown_field", "is not a field of this certificate type")
