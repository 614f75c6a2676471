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
from issuer.certtypes.base import SealFacts
from issuer.certtypes.common_fields import (
    APPLICANT,
    MAX_ADDRESS,
    MAX_NAME,
    MAX_PLACE,
    MAX_REMARKS,
    REGISTRAR,
    SEXES,
    reference,
    upper_reference,
    ward,
    ward_of,
)
from issuer.errors import FieldError
from issuer.field_specs import (
    Bilingual,
    Body,
    Choice,
    Day,
    Obj,
    Rule,
    TextOrBilingual,
    Whole,
    before,
)

# Whose name the register records beside the deceased's (form 2: father or husband; the
# template prints "Name of the <relation>").
RELATIONS = ("father", "mother", "husband", "wife", "spouse", "guardian")
# Older than anyone ever recorded (122): a typing mistake, not an age.
MAX_AGE = 125
CAUSE = "cause_of_death"
BODY = Body(
    "death",
    (
        reference("registration_number"),
        Day("registration_date"),
        ward(),
        Obj("deceased", (
            Bilingual("name", MAX_NAME),
            Choice("sex", SEXES),
            Whole("age_years", 0, MAX_AGE, "must be a whole number of years (0 under one year)",
                  f"must be between 0 and {MAX_AGE} years"),
            Day("date_of_death"),
            Bilingual("place_of_death", MAX_PLACE),
        )),
        Obj("relative", (Choice("relation", RELATIONS), Bilingual("name", MAX_NAME))),
        Bilingual("permanent_address", MAX_ADDRESS),
        Bilingual("remarks", MAX_REMARKS, required=False, allow_empty=True),
        TextOrBilingual(CAUSE, MAX_PLACE, description="As the register keeps it; checked, "
                        "then dropped: never stored, printed or sealed (RBD Act s. 17)."),
        APPLICANT,
    ),
    (Rule("registration_date", "before_death", "not before the date of death",
          before("registration_date", "deceased.date_of_death",
                 "the registration date is before the date of death")),),
    description="A death certificate request (Registration of Births and Deaths Act, 1969).",
)
TOP_LEVEL = BODY.top_level


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

    body = BODY

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a death request, or an empty list."""
        return BODY.validate(data)

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

