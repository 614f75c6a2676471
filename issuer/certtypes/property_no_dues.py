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
from issuer.applicant import check_applicant
from issuer.certtypes.base import SealFacts
from issuer.certtypes.common_fields import (
    MAX_ADDRESS,
    MAX_NAME,
    check_reference,
    check_ward,
    upper_reference,
    ward_of,
)
from issuer.errors import FieldError
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
TOP_LEVEL = {
    "type",
    "certificate_reference",
    "property_id",
    "ward_office",
    "owners",
    "property_address",
    "usage",
    "assessment_year",
    "tax_paid_up_to",
    "last_receipt",
    "applicant",
}


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

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a no-dues request, or an empty list."""
        if not isinstance(data, dict):
            return [FieldError("", "type", "the request body must be a JSON object")]
        check = Checker(data)
        check.unknown(data, "", TOP_LEVEL)
        check_reference(check, data, "certificate_reference", "certificate_reference")
        check_reference(check, data, "property_id", "property_id")
        check_ward(check, data)
        _owners(check, data)
        check.bilingual(data, "property_address", "property_address", max_len=MAX_ADDRESS)
        check.choice(data, "usage", "usage", USAGES)
        year = _assessment_year(check, data)
        paid_up_to = check.day(data, "tax_paid_up_to", "tax_paid_up_to", not_future=False)
        paid_on = _receipt(check, data)
        check_applicant(check, data)
        if paid_up_to and paid_on and paid_up_to < paid_on:
            check.fail("tax_paid_up_to", "before_receipt",
                       "the tax cannot be paid up to a date before the last receipt")
        if paid_up_to and year and not year[0] <= paid_up_to <= year[1]:
            check.fail("tax_paid_up_to", "outside_assessment_year",
                       f"must fall in the assessment year ({year[0]} to {year[1]})")
        return check.errors

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


def _owners(check: Checker, data: Mapping[str, Any]) -> None:
    owners = data.get("owners")
    if owners is None:
        check.fail("owners", "required", "this field is required")
    elif not isinstance(owners, list):
        check.fail("owners", "type", "must be a list of owners")
    elif not owners:
        check.fail("owners", "required", "at least one owner is required")
    elif len(owners) > MAX_OWNERS:
        check.fail("owners", "too_many", f"at most {MAX_OWNERS} owners fit on the certificate")
    else:
        for i, owner in enumerate(owners):
            path = f"owners.{i}"
            if not isinstance(owner, dict):
                check.fail(path, "type", "must be an object")
                continue
            check.unknown(owner, path, {"name"})
            check.bilingual(owner, "name", f"{path}.name", max_len=MAX_NAME)


def _assessment_year(check: Checker, data: Mapping[str, Any]) -> tuple[date, date] | None:
    """(1 April, 31 March) of the assessment year, a year that has begun."""
    raw = check.text(data, "assessment_year", "assessment_year", max_len=7, letters=False)
    if raw is None:
        return None
    match = ASSESSMENT_YEAR.fullmatch(raw)
    if match is None or int(match[2]) != (int(match[1]) + 1) % 100:
        check.fail("assessment_year", "format",
                   "must be a financial year written YYYY-YY, e.g. 2026-27")
        return None
    start = date(int(match[1]), 4, 1)
    if start.year < 1900:
        check.fail("assessment_year", "too_old", "must be in 1900 or later")
        return None
    if start > today_ist():
        check.fail("assessment_year", "future_date", "must not begin in the future")
        return None
    return start, date(start.year + 1, 3, 31)


def _receipt(check: Checker, data: Mapping[str, Any]) -> date | None:
    """The last receipt's date, when the receipt is valid enough to have one."""
    receipt = check.obj(data, "last_receipt", "last_receipt")
    if receipt is None:
        return None
    check.unknown(receipt, "last_receipt", {"number", "date", "amount_inr"})
    check_reference(check, receipt, "number", "last_receipt.number")
    paid_on = check.day(receipt, "date", "last_receipt.date")
    amount = receipt.get("amount_inr")
    if amount is None:
        check.fail("last_receipt.amount_inr", "required", "this field is required")
    elif not isinstance(amount, str):
        check.fail("last_receipt.amount_inr", "type",
                   'must be a string of rupees and paise, e.g. "18452.00"')
    elif not AMOUNT.fullmatch(amount):
        check.fail("last_receipt.amount_inr", "format",
                   'must be rupees and paise without grouping, e.g. "18452.00"')
    elif not amount.strip("0."):
        check.fail("last_receipt.amount_inr", "out_of_range", "must be more than zero")
    return paid_on
