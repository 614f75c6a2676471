"""Birth certificate: schema (Registration of Births and Deaths Act, 1969) and seal facts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import templates
from issuer.certtypes.base import SealFacts
from issuer.certtypes.common_fields import (
    APPLICANT,
    MAX_ADDRESS,
    MAX_NAME,
    MAX_PLACE,
    MAX_REFERENCE,
    MAX_REMARKS,
    REFERENCE,
    REGISTRAR,
    SEXES,
    reference,
    upper_reference,
    ward,
    ward_of,
)
from issuer.errors import FieldError
from issuer.field_specs import Bilingual, Body, Choice, Day, Obj, Rule, before

# Kept under their first names for callers and tests that use them.
MAX_REGISTRATION = MAX_REFERENCE
REGISTRATION = REFERENCE
BODY = Body(
    "birth",
    (
        reference("registration_number"),
        Day("registration_date"),
        ward(),
        Obj("child", (
            Bilingual("name", MAX_NAME),
            Choice("sex", SEXES),
            Day("date_of_birth"),
            Bilingual("place_of_birth", MAX_PLACE),
        )),
        Obj("mother", (Bilingual("name", MAX_NAME),)),
        Obj("father", (Bilingual("name", MAX_NAME),), required=False),
        Bilingual("permanent_address", MAX_ADDRESS),
        Bilingual("remarks", MAX_REMARKS, required=False, allow_empty=True),
        APPLICANT,
    ),
    (Rule("registration_date", "before_birth", "not before the date of birth",
          before("registration_date", "child.date_of_birth",
                 "the registration date is before the date of birth")),),
    description="A birth certificate request (Registration of Births and Deaths Act, 1969).",
)
TOP_LEVEL = BODY.top_level


class Birth:
    code = "birth"
    number_prefix = "B"
    seal_date = "birth"
    rts_days = 7  # working days (Right to Public Services)
    doc_type = "BTCER"
    authority = REGISTRAR
    # "birth/1" rendered every birth certificate until the QR was printed larger (issue 10);
    # they re-render with it from their records.
    template_version = "birth/3"

    @property
    def templates_root(self) -> Path:
        return templates.templates_dir()

    body = BODY

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a birth request, or an empty list."""
        return BODY.validate(data)

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        """Registration numbers compare without regard to case or surrounding blanks."""
        return {**data, "registration_number": upper_reference(data["registration_number"])}

    def registration_number(self, data: Mapping[str, Any]) -> str:
        return str(data["registration_number"])

    def ward_office(self, data: Mapping[str, Any]) -> dict[str, str]:
        return ward_of(data)

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        child = data["child"]
        return SealFacts(
            holder={"en": child["name"]["en"], "mr": child["name"]["mr"]},
            dates={"birth": child["date_of_birth"]},
            ward=data["ward_office"]["en"],
        )
