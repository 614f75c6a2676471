"""The `applicant` block every certificate type carries: who asked, and how to reach them.

One validator for every type, so a mobile number or an Aadhaar number means the same thing on a
birth, death or no-dues request. None of it is printed; the Aadhaar number is not even stored
(issuer/aadhaar.py), so it is checked strictly here: a mistyped number would be hashed into a
value that matches no one. Only the top-level `applicant` block may carry one: that is where it
is taken out of the request before anything is stored. Error messages never repeat the value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from issuer.aadhaar import normalise, number_problem
from issuer.fields import MAX_KEY_SHOWN, Checker
from issuer.verhoeff import is_valid

# +91 and ten digits, or the ten digits alone; Indian mobile numbers start with 6, 7, 8 or 9.
MOBILE = re.compile(r"(?:\+91)?[6-9][0-9]{9}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 254  # RFC 5321's longest path
FIELDS = {"name", "mobile", "email"}
# An Aadhaar number written into free text ("Aadhaar: 2341 2341 2346."). Identifiers glue their
# parts with - / _ . ("B-2026-PMC-004512"), so a number joined to one of those is left alone.
STRAY = re.compile(r"(?<![0-9A-Za-z/_.-])[2-9][0-9]{3}( ?)[0-9]{4}\1[0-9]{4}"
                   r"(?![0-9A-Za-z/_-]|\.[0-9A-Za-z])")
STRAY_CODE = "aadhaar_not_allowed"


def check_applicant(check: Checker, data: Mapping[str, Any], path: str = "applicant",
                    required: bool = True) -> dict[str, Any] | None:
    """Check `data[<last part of path>]` as an applicant block, reporting under `path`.
    Returns the block when it is an object (with or without problems), else None."""
    key = path.rsplit(".", 1)[-1]
    applicant = check.obj(data, key, path, required)
    if applicant is None:
        return None
    # issuer/aadhaar.take_aadhaar takes the number out of `applicant` only.
    check.unknown(applicant, path, FIELDS | {"aadhaar"} if path == "applicant" else FIELDS)
    check.text(applicant, "name", f"{path}.name", max_len=120)
    _mobile(check, applicant, f"{path}.mobile")
    check.text(applicant, "email", f"{path}.email", required=False, pattern=EMAIL,
               max_len=MAX_EMAIL, letters=False)
    if path == "applicant":
        _aadhaar(check, applicant, f"{path}.aadhaar")
    check_no_stray_aadhaar(check)
    applicant_dict: dict[str, Any] = applicant
    return applicant_dict


def _mobile(check: Checker, applicant: Mapping[str, Any], path: str) -> None:
    before = len(check.errors)
    value = check.text(applicant, "mobile", path, required=False, max_len=13, letters=False)
    if value is None or len(check.errors) > before:
        return
    if not MOBILE.fullmatch(value):
        check.fail(path, "format", "must be an Indian mobile number: 10 digits starting with "
                                   "6, 7, 8 or 9, optionally after +91")


def _aadhaar(check: Checker, applicant: Mapping[str, Any], path: str) -> None:
    before = len(check.errors)
    value = check.text(applicant, "aadhaar", path, required=False, max_len=14, letters=False)
    if value is None or len(check.errors) > before:
        return
    problem = number_problem(value)
    if problem is not None:
        check.fail(path, *problem)


def check_no_stray_aadhaar(check: Checker) -> None:
    """Refuse an Aadhaar number anywhere in the request but an `aadhaar` field: in a remark or
    an address it would be stored, sealed and printed in clear.

    Only text with letters in it is free text (identifiers and dates have none), and only a
    number that passes the Verhoeff check counts, so a reference number is not mistaken for one.
    Each place is reported once, however many applicant blocks a type checks."""
    reported = {(e.field, e.code) for e in check.errors}
    stack: list[tuple[str, Any]] = [("", check.root)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{_shown(k)}" if where else _shown(k), v)
                         for k, v in value.items() if k != "aadhaar")
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(value))
        elif isinstance(value, str) and (where, STRAY_CODE) not in reported and _stray(value):
            reported.add((where, STRAY_CODE))
            check.fail(where, STRAY_CODE, "looks like an Aadhaar number, which is never printed "
                                          "or stored: send it as applicant.aadhaar only")


def _shown(key: str) -> str:
    return key if len(key) <= MAX_KEY_SHOWN else key[:MAX_KEY_SHOWN] + "…"


def _stray(text: str) -> bool:
    if not any(c.isalpha() for c in text):
        return False
    return any(is_valid(normalise(m.group(0))) for m in STRAY.finditer(text))
