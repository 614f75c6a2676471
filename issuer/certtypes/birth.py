"""Birth certificate: schema (Registration of Births and Deaths Act, 1969) and seal facts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from issuer.certtypes.base import SealFacts
from issuer.errors import FieldError
from issuer.fields import MAX_WORD, Checker

# A registration number prints as one word, so it is held to the longest word the template can
# print (the database column, 64, has room to spare): one limit for pattern, length and print.
MAX_REGISTRATION = MAX_WORD
REGISTRATION = re.compile(rf"[A-Za-z0-9][A-Za-z0-9/_.-]{{0,{MAX_REGISTRATION - 1}}}")
MOBILE = re.compile(r"\+?[0-9]{10,13}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SEXES = ("male", "female", "other")
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
    rts_days = 7

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a birth request, or an empty list."""
        if not isinstance(data, dict):
            return [FieldError("", "type", "the request body must be a JSON object")]
        check = Checker(data)
        check.unknown(data, "", TOP_LEVEL)
        check.text(data, "registration_number", "registration_number",
                   max_len=MAX_REGISTRATION, pattern=REGISTRATION, letters=False)
        registered = check.day(data, "registration_date", "registration_date")
        check.bilingual(data, "ward_office", "ward_office", max_len=120)
        born = None
        child = check.obj(data, "child", "child")
        if child is not None:
            check.unknown(child, "child", {"name", "sex", "date_of_birth", "place_of_birth"})
            check.bilingual(child, "name", "child.name", max_len=100)
            check.choice(child, "sex", "child.sex", SEXES)
            born = check.day(child, "date_of_birth", "child.date_of_birth")
            check.bilingual(child, "place_of_birth", "child.place_of_birth", max_len=200)
        for parent, required in (("mother", True), ("father", False)):
            person = check.obj(data, parent, parent, required)
            if person is not None:
                check.unknown(person, parent, {"name"})
                check.bilingual(person, "name", f"{parent}.name", max_len=100)
        check.bilingual(data, "permanent_address", "permanent_address", max_len=300)
        check.bilingual(data, "remarks", "remarks", required=False, max_len=300,
                        allow_empty=True)
        applicant = check.obj(data, "applicant", "applicant")
        if applicant is not None:
            check.unknown(applicant, "applicant", {"name", "mobile", "email"})
            check.text(applicant, "name", "applicant.name", max_len=120)
            check.text(applicant, "mobile", "applicant.mobile", required=False, pattern=MOBILE,
                       max_len=16, letters=False)
            check.text(applicant, "email", "applicant.email", required=False, pattern=EMAIL,
                       letters=False)
        if born and registered and registered < born:
            check.fail("registration_date", "before_birth",
                       "the registration date is before the date of birth")
        return check.errors

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        """Registration numbers compare without regard to case or surrounding blanks."""
        return {**data, "registration_number": data["registration_number"].strip().upper()}

    def registration_number(self, data: Mapping[str, Any]) -> str:
        return str(data["registration_number"])

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        child = data["child"]
        return SealFacts(
            holder={"en": child["name"]["en"], "mr": child["name"]["mr"]},
            dates={"birth": child["date_of_birth"]},
            ward=data["ward_office"]["en"],
        )
