"""Death certificate: schema (Registration of Births and Deaths Act, 1969) and seal facts.

The cause of death is confidential: the Act's section 17 keeps it out of extracts issued from the
register. A department system may send its whole register entry, so a request may carry
`cause_of_death`; it is checked like any text and then dropped by `canonical`, so it is never
stored, printed, sealed or counted in the field digest (whose inputs are all otherwise printed:
with few possible causes, a digest over it would give the cause away to anyone who tried them).
"""

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
    MAX_REMARKS,
    REGISTRAR,
    SEXES,
    check_reference,
    check_ward,
    upper_reference,
    ward_of,
)
from issuer.errors import FieldError
from issuer.fields import Checker

# Whose name the register records beside the deceased's (form 2: father or husband; the
# template prints "Name of the <relation>").
RELATIONS = ("father", "mother", "husband", "wife", "spouse", "guardian")
# Older than anyone ever recorded (122): a typing mistake, not an age.
MAX_AGE = 125
CAUSE = "cause_of_death"
TOP_LEVEL = {
    "type",
    "registration_number",
    "registration_date",
    "ward_office",
    "deceased",
    "relative",
    "permanent_address",
    "remarks",
    "applicant",
    CAUSE,
}


class Death:
    code = "death"
    number_prefix = "D"
    seal_date = "death"
    rts_days = 7  # working days (Right to Public Services)
    doc_type = "DTCER"
    authority = REGISTRAR
    template_version = "death/3"

    @property
    def templates_root(self) -> Path:
        return templates.templates_dir()

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a death request, or an empty list."""
        if not isinstance(data, dict):
            return [FieldError("", "type", "the request body must be a JSON object")]
        check = Checker(data)
        check.unknown(data, "", TOP_LEVEL)
        check_reference(check, data, "registration_number", "registration_number")
        registered = check.day(data, "registration_date", "registration_date")
        check_ward(check, data)
        died = None
        deceased = check.obj(data, "deceased", "deceased")
        if deceased is not None:
            check.unknown(deceased, "deceased",
                          {"name", "sex", "age_years", "date_of_death", "place_of_death"})
            check.bilingual(deceased, "name", "deceased.name", max_len=MAX_NAME)
            check.choice(deceased, "sex", "deceased.sex", SEXES)
            _age(check, deceased)
            died = check.day(deceased, "date_of_death", "deceased.date_of_death")
            check.bilingual(deceased, "place_of_death", "deceased.place_of_death",
                            max_len=MAX_PLACE)
        relative = check.obj(data, "relative", "relative")
        if relative is not None:
            check.unknown(relative, "relative", {"relation", "name"})
            check.choice(relative, "relation", "relative.relation", RELATIONS)
            check.bilingual(relative, "name", "relative.name", max_len=MAX_NAME)
        check.bilingual(data, "permanent_address", "permanent_address", max_len=MAX_ADDRESS)
        check.bilingual(data, "remarks", "remarks", required=False, max_len=MAX_REMARKS,
                        allow_empty=True)
        _cause(check, data)
        check_applicant(check, data)
        if died and registered and registered < died:
            check.fail("registration_date", "before_death",
                       "the registration date is before the date of death")
        return check.errors

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        """Without the cause of death (see the module docstring); registration numbers compare
        without regard to case or surrounding blanks."""
        kept = {k: v for k, v in data.items() if k != CAUSE}
        return {**kept, "registration_number": upper_reference(data["registration_number"])}

    def registration_number(self, data: Mapping[str, Any]) -> str:
        return str(data["registration_number"])

    def ward_office(self, data: Mapping[str, Any]) -> dict[str, str]:
        return ward_of(data)

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        deceased = data["deceased"]
        return SealFacts(
            holder={"en": deceased["name"]["en"], "mr": deceased["name"]["mr"]},
            dates={"death": deceased["date_of_death"]},
            ward=data["ward_office"]["en"],
        )


def _age(check: Checker, deceased: Mapping[str, Any]) -> None:
    value = deceased.get("age_years")
    path = "deceased.age_years"
    if value is None:
        check.fail(path, "required", "this field is required")
    elif isinstance(value, bool) or not isinstance(value, int):
        check.fail(path, "type", "must be a whole number of years (0 under one year)")
    elif not 0 <= value <= MAX_AGE:
        check.fail(path, "out_of_range", f"must be between 0 and {MAX_AGE} years")


def _cause(check: Checker, data: Mapping[str, Any]) -> None:
    """Text as a register keeps it (one string, or English and Marathi); never printed."""
    if isinstance(data.get(CAUSE), str):
        check.text(data, CAUSE, CAUSE, required=False, max_len=MAX_PLACE)
    else:
        check.bilingual(data, CAUSE, CAUSE, required=False, max_len=MAX_PLACE)
