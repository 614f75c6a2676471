"""Birth certificate: schema (Registration of Births and Deaths Act, 1969) and seal facts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import templates
from issuer.applicant import check_applicant
from issuer.certtypes.base import SealFacts
from issuer.certtypes.common_fields import (
    MAX_ADDRESS,
    MAX_NAME,
    MAX_PLACE,
    MAX_REFERENCE,
    MAX_REMARKS,
    REFERENCE,
    REGISTRAR,
    SEXES,
    check_reference,
    check_ward,
    upper_reference,
    ward_of,
)
from issuer.errors import FieldError
from issuer.fields import Checker

# Kept under their first names for callers and tests that use them.
MAX_REGISTRATION = MAX_REFERENCE
REGISTRATION = REFERENCE
TOP_LEVEL = {
    "type",
    "registration_number",
    "registration_date",
    "ward_office",
    "child",
    "mother",
    "father",
    "permanent_address",
    "remarks",
    "applicant",
}


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

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a birth request, or an empty list."""
        if not isinstance(data, dict):
            return [FieldError("", "type", "the request body must be a JSON object")]
        check = Checker(data)
        check.unknown(data, "", TOP_LEVEL)
        check_reference(check, data, "registration_number", "registration_number")
        registered = check.day(data, "registration_date", "registration_date")
        check_ward(check, data)
        born = None
        child = check.obj(data, "child", "child")
        if child is not None:
            check.unknown(child, "child", {"name", "sex", "date_of_birth", "place_of_birth"})
            check.bilingual(child, "name", "child.name", max_len=MAX_NAME)
            check.choice(child, "sex", "child.sex", SEXES)
            born = check.day(child, "date_of_birth", "child.date_of_birth")
            check.bilingual(child, "place_of_birth", "child.place_of_birth", max_len=MAX_PLACE)
        for parent, required in (("mother", True), ("father", False)):
            person = check.obj(data, parent, parent, required)
            if person is not None:
                check.unknown(person, parent, {"name"})
                check.bilingual(person, "name", f"{parent}.name", max_len=MAX_NAME)
        check.bilingual(data, "permanent_address", "permanent_address", max_len=MAX_ADDRESS)
        check.bilingual(data, "remarks", "remarks", required=False, max_len=MAX_REMARKS,
                        allow_empty=True)
        check_applicant(check, data)
        if born and registered and registered < born:
            check.fail("registration_date", "before_birth",
                       "the registration date is before the date of birth")
        return check.errors

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
