"""Property tax no-dues certificate: schema and seal facts.

The Property Tax Department certifies that the tax on one property is paid up to a date and that
nothing is in arrears. Its own reference for the certificate (`certificate_reference`) is what
the registry keeps unique (`registration_number`): one current certificate per reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import templates
from issuer.certtypes.base import SealFacts
from issuer.certtypes.common_fields import (
    APPLICANT,
    MAX_ADDRESS,
    MAX_NAME,
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
    Custom,
    Day,
    Found,
    Items,
    Obj,
    Rule,
    Schema,
    before,
)
from issuer.fields import Checker, today_ist

AUTHORITY: Mapping[str, str] = MappingProxyType(
    {"en": "Property Tax Department", "mr": "मालमत्ता कर विभाग"}
)
USAGES = ("residential", "commercial", "industrial", "mixed", "open_plot")
# Co-owners printed one under the other; more than this would not fit one page with every other
# field at its limit (tests/test_templates_maximal.py renders exactly that).
MAX_OWNERS = 10
# Rupees and paise as the receipt prints them, without grouping: "18452.00". A string, never a
# JSON number, so no amount passes through a binary float. Up to 99,99,99,99,999.99.
AMOUNT = re.compile(r"(0|[1-9][0-9]{0,10})\.[0-9]{2}")
# A financial year, 1 April to 31 March: "2026-27".
ASSESSMENT_YEAR = re.compile(r"([0-9]{4})-([0-9]{2})")
_DEVANAGARI_DIGITS = str.maketrans("0123456789", "०१२३४५६७८९")


def _assessment_year(check: Checker, data: Mapping[str, Any], path: str
                     ) -> tuple[date, date] | None:
    """(1 April, 31 March) of the assessment year, a year that has begun."""
    raw = check.text(data, "assessment_year", path, max_len=7, letters=False)
    if raw is None:
        return None
    match = ASSESSMENT_YEAR.fullmatch(raw)
    if match is None or int(match[2]) != (int(match[1]) + 1) % 100:
        check.fail(path, "format", "must be a financial year written YYYY-YY, e.g. 2026-27")
        return None
    start = date(int(match[1]), 4, 1)
    if start.year < 1900:
        check.fail(path, "too_old", "must be in 1900 or later")
        return None
    if start > today_ist():
        check.fail(path, "future_date", "must not begin in the future")
        return None
    return start, date(start.year + 1, 3, 31)


def _year_schema(sample: bool) -> Schema:
    return {"type": "string", "maxLength": 7,
            "pattern": r"^2023-24$" if sample
            else f"^(?:{ASSESSMENT_YEAR.pattern})$",
            "description": "A financial year (1 April to 31 March) written YYYY-YY, the second "
                           "year the first plus one, begun already and in 1900 or later.",
            "x-pramaan-codes": ["required", "type", "format", "too_old", "future_date"]}


def _amount(check: Checker, receipt: Mapping[str, Any], path: str) -> None:
    amount = receipt.get("amount_inr")
    if amount is None:
        check.fail(path, "required", "this field is required")
    elif not isinstance(amount, str):
        check.fail(path, "type", 'must be a string of rupees and paise, e.g. "18452.00"')
    elif not AMOUNT.fullmatch(amount):
        check.fail(path, "format", 'must be rupees and paise without grouping, e.g. "18452.00"')
    elif not amount.strip("0."):
        check.fail(path, "out_of_range", "must be more than zero")


def _amount_schema(sample: bool) -> Schema:
    return {"type": "string", "pattern": f"^(?:{AMOUNT.pattern})$", "not": {"const": "0.00"},
            "description": "Rupees and paise as a string (never a JSON number), more than "
                           "zero, without grouping: \"18452.00\".",
            "x-pramaan-codes": ["required", "type", "format", "out_of_range"]}


def _paid_up_to_outside_year(found: Found) -> str | None:
    paid_up_to, year = found.get("tax_paid_up_to"), found.get("assessment_year")
    if paid_up_to and year and not year[0] <= paid_up_to <= year[1]:
        return f"must fall in the assessment year ({year[0]} to {year[1]})"
    return None


BODY = Body(
    "property_no_dues",
    (
        reference("certificate_reference"),
        reference("property_id"),
        ward(),
        Items("owners", (Bilingual("name", MAX_NAME),), MAX_OWNERS, "must be a list of owners",
              "at least one owner is required",
              f"at most {MAX_OWNERS} owners fit on the certificate"),
        Bilingual("property_address", MAX_ADDRESS),
        Choice("usage", USAGES),
        Custom("assessment_year", _assessment_year, _year_schema),
        # Generated bodies keep the rules: a receipt in 2023-24, paid up to a later day of it.
        Day("tax_paid_up_to", not_future=False,
            sample_pattern=r"^2023-1[0-2]-(0[1-9]|1[0-9]|2[0-8])$"),
        Obj("last_receipt", (
            reference("number"),
            Day("date", sample_pattern=r"^2023-0[4-9]-(0[1-9]|1[0-9]|2[0-8])$"),
            Custom("amount_inr", _amount, _amount_schema),
        )),
        APPLICANT,
    ),
    (
        Rule("tax_paid_up_to", "before_receipt", "not before the last receipt's date",
             before("tax_paid_up_to", "last_receipt.date",
                    "the tax cannot be paid up to a date before the last receipt")),
        Rule("tax_paid_up_to", "outside_assessment_year", "within the assessment year",
             _paid_up_to_outside_year),
    ),
    description="A property tax no-dues certificate request.",
)
TOP_LEVEL = BODY.top_level


class PropertyNoDues:
    code = "property_no_dues"
    number_prefix = "P"
    seal_date = "paid_up_to"
    # Default; departments set their own notified limit with PRAMAAN_RTS_DAYS.
    rts_days = 15
    doc_type = "PRTAX"
    authority = AUTHORITY
    template_version = "property_no_dues/3"

    @property
    def templates_root(self) -> Path:
        return templates.templates_dir()

    body = BODY

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a no-dues request, or an empty list."""
        return BODY.validate(data)

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        """References compare without regard to case or surrounding blanks."""
        return {**data, "certificate_reference": upper_reference(data["certificate_reference"])}

    def registration_number(self, data: Mapping[str, Any]) -> str:
        return str(data["certificate_reference"])

    def ward_office(self, data: Mapping[str, Any]) -> dict[str, str]:
        return ward_of(data)

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        """The first owner stands for all: "X and 2 others" / "X व इतर २" keeps the seal (and
        its QR) as small as a birth certificate's however many owners there are."""
        owners = data["owners"]
        first = owners[0]["name"]
        others = len(owners) - 1
        en, mr = first["en"], first["mr"]
        if others:
            en += f" and {others} other" + ("s" if others > 1 else "")
            mr += f" व इतर {str(others).translate(_DEVANAGARI_DIGITS)}"
        return SealFacts(
            holder={"en": en, "mr": mr},
            dates={"paid_up_to": data["tax_paid_up_to"]},
            ward=data["ward_office"]["en"],
        )

