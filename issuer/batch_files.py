"""Reading a batch file: CSV (UTF-8, a header row naming the fields, nested fields by dotted
names such as `child_name.en`) or JSON Lines (one request object per line), into numbered rows.

Nothing here knows what a valid request is (issuer/batches.py asks issuer/submit.py); this only
turns bytes into `(line, dict)` pairs or refuses the file as a whole, with the line at fault.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from issuer.errors import FieldError, ValidationFailed
from issuer.fields import DuplicateKey, parse_json

FORMATS: Final = ("csv", "jsonl")
MAX_ROWS: Final = 100_000
"""Rows in one batch at most: a season's file is split into batches of this size."""


@dataclass(frozen=True)
class Row:
    """One request of a batch file: its line number in the file (the header is line 1 of a CSV)
    and the request as an object, or the reason it is not one (`problem`)."""

    line: int
    data: dict[str, Any]
    problem: FieldError | None = None


def format_of(name: str | None, content_type: str | None) -> str | None:
    """"csv" or "jsonl" from a file name's ending or a media type, else None."""
    lowered = (name or "").lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    media = (content_type or "").split(";")[0].strip().lower()
    return {"text/csv": "csv", "application/x-ndjson": "jsonl",
            "application/jsonl": "jsonl", "application/jsonlines": "jsonl"}.get(media)


def read_rows(data: bytes, file_format: str) -> list[Row]:
    """Every row of the file, in order. Raises `ValidationFailed` for a file that cannot be read
    at all (not UTF-8, no header, too many rows); a row that is not a request is a `Row` with a
    `problem`, reported with the others."""
    try:
        text = data.decode("utf-8-sig")  # a byte order mark (Excel's "CSV UTF-8") is dropped
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldError("file", "encoding",
                                           f"is not UTF-8 (byte {exc.start})")]) from None
    rows = list(_csv_rows(text) if file_format == "csv" else _jsonl_rows(text))
    if not rows:
        raise ValidationFailed([FieldError("file", "empty", "holds no rows")])
    if len(rows) > MAX_ROWS:
        raise ValidationFailed([FieldError("file", "too_many_rows",
                                           f"holds {len(rows)} rows; at most {MAX_ROWS}")])
    return rows


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(name.strip() for name in header):
            raise ValidationFailed([FieldError("file", "no_header",
                                               "the first line must name the fields")])
        names = [name.strip() for name in header]
        problem = _header_problem(names)
        if problem is not None:
            raise ValidationFailed([problem])
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (a trailing newline in a spreadsheet export)
            if len(cells) != len(names):
                yield Row(line, {}, FieldError("", "columns", f"has {len(cells)} cells; the "
                                               f"header names {len(names)}"))
                continue
            yield Row(line, _nested(names, cells))
    except csv.Error as exc:
        raise ValidationFailed([FieldError("file", "csv",
                                           f"line {reader.line_num}: {exc}")]) from None


def _header_problem(names: list[str]) -> FieldError | None:
    seen: set[str] = set()
    for name in names:
        parts = name.split(".")
        if not all(parts):
            return FieldError("file", "header", f"column {name!r} is not a field name")
        if name in seen:
            return FieldError("file", "header", f"column {name!r} is named twice")
        seen.add(name)
    for name in names:  # `a` and `a.b` cannot both be columns: `a` would be text and object
        prefix = name + "."
        if any(other.startswith(prefix) for other in names):
            return FieldError("file", "header", f"column {name!r} is also the start of "
                              "a nested field's name")
    return None


def _nested(names: list[str], cells: list[str]) -> dict[str, Any]:
    """{"child_name.en": "A"} as {"child_name": {"en": "A"}}; an empty cell is left out."""
    row: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=True):
        value = cell.strip()
        if not value:
            continue
        *parents, leaf = name.split(".")
        node = row
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return row


def _jsonl_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = parse_json(line)
        except RecursionError:
            yield Row(number, {}, FieldError("", "json", "is nested too deeply"))
            continue
        except ValueError as exc:  # DuplicateKey included
            reason = str(exc) if isinstance(exc, DuplicateKey) else str(exc).split(":")[0]
            yield Row(number, {}, FieldError("", "json", f"is not JSON: {reason}"))
            continue
        if not isinstance(value, dict):
            yield Row(number, {}, FieldError("", "type", "must be a JSON object"))
            continue
        yield Row(number, value)
