"""Fields and wording the shipped certificate types share (birth, death, property no-dues)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from issuer import applicant
from issuer.aadhaar import WRITTEN
from issuer.field_specs import Bilingual, Custom, Schema, Text, object_schema
from issuer.fields import MAX_WORD, Checker

# A reference (registration number, property id, receipt number) prints as one word, so it is
# held to the longest word the template can print (the database column, 64, has room to spare):
# one limit for pattern, length and print.
MAX_REFERENCE = MAX_WORD
REFERENCE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9/_.-]{{0,{MAX_REFERENCE - 1}}}")
SEXES = ("male", "female", "other")
MAX_NAME = 100
MAX_PLACE = 200
MAX_ADDRESS = 300
MAX_REMARKS = 300
MAX_WARD = 120

# Births and deaths are registered, and their certificates issued, by the Registrar (RBD Act
# 1969, section 7); the name printed in the header and the issuing-authority block.
REGISTRAR: Mapping[str, str] = MappingProxyType(
    {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"}
)


def reference(key: str) -> Text:
    """A reference: one printable word of letters, digits and / _ . - (no letters needed)."""
    return Text(key, MAX_REFERENCE, pattern=REFERENCE, letters=False)


def ward() -> Bilingual:
    return Bilingual("ward_office", MAX_WARD, description="The ward office the request "
                     "belongs to (numbering, RTS deadlines).")


def _applicant_schema(sample: bool) -> Schema:
    fields = (
        Text("name", 120),
        Text("mobile", 13, required=False, pattern=applicant.MOBILE, letters=False),
        Text("email", applicant.MAX_EMAIL, required=False, pattern=applicant.EMAIL,
             letters=False, sample_pattern=r"^[a-z]{1,10}@[a-z]{1,10}\.[a-z]{2,3}$"),
        Text("aadhaar", 14, required=False, pattern=WRITTEN, letters=False,
             description="Never stored in clear (an HMAC) and never printed; must pass the "
                         "Verhoeff check and not start with 0 or 1 (codes format, checksum)."),
    )
    schema = object_schema(fields[:3] if sample else fields, sample, description=(
        "Who asked and how to reach them; never printed. An Aadhaar number anywhere else in "
        "the request (free text) is refused: aadhaar_not_allowed."))
    schema["x-pramaan-codes"] = ["required", "type", "unknown_field", "checksum",
                                 applicant.STRAY_CODE]
    return schema


APPLICANT = Custom("applicant", lambda check, data, _path: applicant.check_applicant(check, data),
                   _applicant_schema)


def check_reference(check: Checker, parent: Mapping[str, Any], key: str, path: str) -> None:
    check.text(parent, key, path, max_len=MAX_REFERENCE, pattern=REFERENCE, letters=False)


def check_ward(check: Checker, data: Mapping[str, Any]) -> None:
    check.bilingual(data, "ward_office", "ward_office", max_len=MAX_WARD)


def ward_of(data: Mapping[str, Any]) -> dict[str, str]:
    """The request's `ward_office` as {"en", "mr"} (every shipped type names it there)."""
    ward = data["ward_office"]
    return {"en": str(ward["en"]), "mr": str(ward["mr"])}


def upper_reference(value: str) -> str:
    """References compare without regard to case or surrounding blanks."""
    return value.strip().upper()
