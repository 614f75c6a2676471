"""Small, composable field checks that collect FieldErrors instead of stopping at the first."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from issuer.errors import FieldError

IST = timezone(timedelta(hours=5, minutes=30), "IST")
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
# What the shipped fonts (Noto Sans, Noto Sans Devanagari) can print: Latin, Devanagari and its
# extensions, joiners, general punctuation and the rupee sign. Anything else would print as an
# empty box on a legal document, so it is refused at the door.
_PRINTABLE = re.compile(
    "[\u0020-\u007E\u00A0-\u024F\u0900-\u097F\uA8E0-\uA8FF\u1CD0-\u1CFF"
    "\u200C\u200D\u2010-\u2027\u20B9]*"
)
MAX_WORD = 40
MAX_DEPTH = 8
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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
    ) -> str | None:
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
        en = self.text(value, "en", f"{path}.en", max_len=max_len, allow_empty=allow_empty)
        mr = self.text(value, "mr", f"{path}.mr", max_len=max_len, allow_empty=allow_empty)
        if mr and mr.strip() and not _DEVANAGARI.search(mr):
            self.fail(f"{path}.mr", "not_devanagari", "the Marathi text must be in Devanagari")
        if en and en.strip() and not allow_empty and _DEVANAGARI.search(en) and not re.search(
            r"[A-Za-z]", en
        ):
            self.fail(f"{path}.en", "not_latin", "the English text must be in Latin script")
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
        raw = self.text(parent, key, path, required=required, max_len=10)
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
        value = self.text(parent, key, path, max_len=40)
        if value is not None and value not in options:
            self.fail(path, "choice", f"must be one of: {', '.join(options)}")
            return None
        return value

    def unknown(self, value: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.fail(where, "unknown_field", "is not a field of this certificate type")
