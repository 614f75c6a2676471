"""Death and property no-dues schemas through the public validator (issuer.submit.validate): the
shipped samples pass as they are; every problem is reported at once with its field path and a
stable code; what the seal, numbering and registry take from a request."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from issuer.certtypes import cert_type, doc_type_code, rts_days
from issuer.certtypes.property_no_dues import MAX_OWNERS
from issuer.errors import ValidationFailed
from issuer.fields import today_ist
from issuer.settings import Settings
from issuer.submit import validate
from tests.conftest import sample


def codes(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        validate(data)
    return {e.field: e.code for e in refused.value.errors}


def tomorrow() -> str:
    return (today_ist() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize("name", ["birth-1", "birth-2", "death-1", "property-1"])
def test_shipped_samples_validate_as_they_are(name: str) -> None:
    data = sample(name)
    code, clean = validate(copy.deepcopy(data))
    assert code == data["type"]
    assert clean == data  # already canonical: nothing added, nothing dropped


# ---------------------------------------------------------------- death
def test_death_reports_every_problem_at_once() -> None:
    data = sample("death-1")
    data["registration_number"] = "D 2026"  # a blank: not one printable word
    data["ward_office"]["mr"] = "Shivajinagar"
    data["deceased"]["name"]["en"] = "विश्वनाथ"
    data["deceased"]["sex"] = "unknown"
    data["deceased"]["age_years"] = 84.5
    data["deceased"]["place_of_death"] = {"en": "Pune"}
    data["relative"]["relation"] = "neighbour"
    data["permanent_address"]["en"] = "x" * 301
    data["applicant"]["mobile"] = "12345"
    data["extra"] = 1
    assert codes(data) == {
        "registration_number": "format",
        "ward_office.mr": "not_devanagari",
        "deceased.name.en": "not_latin",
        "deceased.sex": "choice",
        "deceased.age_years": "type",
        "deceased.place_of_death.mr": "required",
        "relative.relation": "choice",
        "permanent_address.en": "too_long",
        "applicant.mobile": "format",
        "extra": "unknown_field",
    }


def test_death_dates_not_in_future_and_death_before_registration() -> None:
    data = sample("death-1")
    data["deceased"]["date_of_death"] = tomorrow()
    data["registration_date"] = tomorrow()
    assert codes(data) == {"deceased.date_of_death": "future_date",
                           "registration_date": "future_date"}
    data = sample("death-1")
    data["deceased"]["date_of_death"] = "2026-04-12"  # registered 2026-04-11
    assert codes(data) == {"registration_date": "before_death"}
    data["deceased"]["date_of_death"] = data["registration_date"]  # same day: fine
    validate(data)
    data["deceased"]["date_of_death"] = "1899-12-31"
    assert codes(data) == {"deceased.date_of_death": "too_old"}


@pytest.mark.parametrize(
    ("age", "code"),
    [(-1, "out_of_range"), (126, "out_of_range"), (True, "type"), ("84", "type"),
     (84.0, "type"), (None, "required")],
)
def test_death_age_is_a_sane_whole_number(age: object, code: str) -> None:
    data = sample("death-1")
    data["deceased"]["age_years"] = age
    assert codes(data) == {"deceased.age_years": code}


@pytest.mark.parametrize("age", [0, 1, 125])
def test_death_age_limits_are_accepted(age: int) -> None:
    data = sample("death-1")
    data["deceased"]["age_years"] = age
    validate(data)


def test_death_requires_its_parts() -> None:
    data = sample("death-1")
    for key in ("deceased", "relative", "permanent_address", "registration_date", "ward_office"):
        del data[key]
    assert codes(data) == {"deceased": "required", "relative": "required",
                           "permanent_address": "required", "registration_date": "required",
                           "ward_office": "required"}


@pytest.mark.parametrize(
    "cause",
    ["Cardiac arrest", {"en": "Cardiac arrest", "mr": "हृदयविकाराचा झटका"}],
    ids=["text", "bilingual"],
)
def test_cause_of_death_is_accepted_and_never_kept(cause: object) -> None:
    data = sample("death-1")
    data["cause_of_death"] = cause
    code, clean = validate(data)
    assert code == "death" and "cause_of_death" not in clean
    assert "Cardiac" not in repr(clean) and "हृदय" not in repr(clean)


def test_cause_of_death_is_still_checked() -> None:
    data = sample("death-1")
    data["cause_of_death"] = {"en": "Cardiac arrest", "mr": "Cardiac arrest"}
    assert codes(data) == {"cause_of_death.mr": "not_devanagari"}
    data["cause_of_death"] = 7
    assert codes(data) == {"cause_of_death": "type"}


def test_death_registration_number_is_canonical_upper_case() -> None:
    data = sample("death-1")
    data["registration_number"] = "d-2026-pmc-001877"
    _, clean = validate(data)
    kind = cert_type("death")
    assert kind is not None
    assert kind.registration_number(clean) == "D-2026-PMC-001877"


def test_death_seal_facts_and_ward() -> None:
    kind = cert_type("death")
    assert kind is not None
    _, clean = validate(sample("death-1"))
    facts = kind.seal_facts(clean)
    assert facts.holder == {"en": "Vishwanath Dattatray Joshi", "mr": "विश्वनाथ दत्तात्रय जोशी"}
    assert facts.dates == {"death": "2026-04-09"}
    assert facts.ward == "Shivajinagar-Ghole Road Ward Office"
    assert kind.ward_office(clean) == clean["ward_office"]


# ---------------------------------------------------------------- property no-dues
def test_property_reports_every_problem_at_once() -> None:
    data = sample("property-1")
    data["property_id"] = "PMC PT 12"
    data["owners"][1]["name"]["mr"] = ""
    data["owners"][0]["share"] = "1/2"
    data["usage"] = "farm"
    data["assessment_year"] = "2026-28"
    data["last_receipt"]["amount_inr"] = "18,452.00"
    data["last_receipt"]["number"] = ""
    data["property_address"] = "Baner"
    assert codes(data) == {
        "property_id": "format",
        "owners.1.name.mr": "required",
        "owners.0.share": "unknown_field",
        "usage": "choice",
        "assessment_year": "format",
        "last_receipt.amount_inr": "format",
        "last_receipt.number": "required",
        "property_address": "type",
    }


@pytest.mark.parametrize(
    ("owners", "code"),
    [([], "required"), (None, "required"), ({"name": "x"}, "type"), (["Shaikh"], "type"),
     ([{"name": {"en": "A Shaikh", "mr": "अ शेख"}}] * (MAX_OWNERS + 1), "too_many")],
    ids=["empty", "absent", "object", "string-owner", "too-many"],
)
def test_property_needs_one_to_max_owners(owners: object, code: str) -> None:
    data = sample("property-1")
    data["owners"] = owners
    found = codes(data)
    assert found in ({"owners": code}, {"owners.0": code})


def test_property_up_to_max_owners_are_accepted() -> None:
    data = sample("property-1")
    data["owners"] = [{"name": {"en": f"Owner {chr(65 + i)} Shaikh", "mr": "इम्तियाज शेख"}}
                      for i in range(MAX_OWNERS)]
    validate(data)


@pytest.mark.parametrize(
    ("amount", "code"),
    [("18452", "format"), ("18452.5", "format"), ("-1.00", "format"), ("0018452.00", "format"),
     ("123456789012.00", "format"), ("0.00", "out_of_range"), (18452.0, "type"),
     (None, "required")],
)
def test_property_amount_is_rupees_and_paise_text(amount: object, code: str) -> None:
    data = sample("property-1")
    data["last_receipt"]["amount_inr"] = amount
    assert codes(data) == {"last_receipt.amount_inr": code}


@pytest.mark.parametrize("amount", ["0.50", "1.00", "99999999999.99"])
def test_property_amount_limits_are_accepted(amount: str) -> None:
    data = sample("property-1")
    data["last_receipt"]["amount_inr"] = amount
    validate(data)


def test_property_paid_up_to_is_not_before_the_receipt_and_inside_the_year() -> None:
    data = sample("property-1")
    data["tax_paid_up_to"] = "2026-05-13"  # receipt of 2026-05-14
    assert codes(data) == {"tax_paid_up_to": "before_receipt"}
    data["tax_paid_up_to"] = "2026-05-14"  # paid that day, up to that day
    validate(data)
    data["tax_paid_up_to"] = "2027-04-01"  # assessment year 2026-27 ends 2027-03-31
    assert codes(data) == {"tax_paid_up_to": "outside_assessment_year"}
    data["last_receipt"]["date"] = "2026-03-01"
    data["tax_paid_up_to"] = "2026-03-31"  # before the year began
    assert codes(data) == {"tax_paid_up_to": "outside_assessment_year"}


def test_property_dates_and_year_not_in_the_future() -> None:
    data = sample("property-1")
    data["last_receipt"]["date"] = tomorrow()
    today = today_ist()
    start = today.year if today.month >= 4 else today.year - 1
    data["assessment_year"] = f"{start + 1}-{(start + 2) % 100:02d}"
    found = codes(data)
    assert found["last_receipt.date"] == "future_date"
    assert found["assessment_year"] == "future_date"
    data["assessment_year"] = "1899-00"
    assert codes(data)["assessment_year"] == "too_old"


def test_property_year_may_cross_a_century() -> None:
    data = sample("property-1")
    data["assessment_year"] = "1999-00"
    data["tax_paid_up_to"] = "2000-03-31"
    data["last_receipt"]["date"] = "1999-06-01"
    validate(data)


def test_property_reference_is_the_registry_number_and_canonical() -> None:
    kind = cert_type("property_no_dues")
    assert kind is not None
    data = sample("property-1")
    data["certificate_reference"] = " pt-nd-2026-000341 "
    assert codes(data) == {"certificate_reference": "format"}  # blanks: not one word
    data["certificate_reference"] = "pt-nd-2026-000341"
    _, clean = validate(data)
    assert kind.registration_number(clean) == "PT-ND-2026-000341"


def test_property_seal_facts_name_the_first_owner_and_how_many_more() -> None:
    kind = cert_type("property_no_dues")
    assert kind is not None
    _, clean = validate(sample("property-1"))
    facts = kind.seal_facts(clean)
    assert facts.holder == {"en": "Rukhsana Imtiaz Shaikh and 1 other",
                            "mr": "रुखसाना इम्तियाज शेख व इतर १"}
    assert facts.dates == {"paid_up_to": "2027-03-31"}
    assert facts.ward == "Aundh-Baner Ward Office"
    clean["owners"] = clean["owners"][:1]
    assert kind.seal_facts(clean).holder == {"en": "Rukhsana Imtiaz Shaikh",
                                             "mr": "रुखसाना इम्तियाज शेख"}
    clean["owners"] = clean["owners"] * 12
    assert kind.seal_facts(clean).holder == {"en": "Rukhsana Imtiaz Shaikh and 11 others",
                                             "mr": "रुखसाना इम्तियाज शेख व इतर ११"}


# ---------------------------------------------------------------- what the pipeline reads
def test_type_facts() -> None:
    facts = {code: (k.number_prefix, k.doc_type, k.rts_days, dict(k.authority), k.template_version,
                    k.seal_date)
             for code in ("birth", "death", "property_no_dues")
             if (k := cert_type(code)) is not None}
    registrar = {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"}
    assert facts == {
        "birth": ("B", "BTCER", 7, registrar, "birth/3", "birth"),
        "death": ("D", "DTCER", 7, registrar, "death/3", "death"),
        "property_no_dues": ("P", "PRTAX", 15,
                             {"en": "Property Tax Department", "mr": "मालमत्ता कर विभाग"},
                             "property_no_dues/3", "paid_up_to"),
    }


def test_doc_type_codes_and_rts_days_come_from_settings_else_the_type() -> None:
    settings = Settings.from_env(env={"PRAMAAN_DOCTYPE_CODES": "death=DTHCR",
                                      "PRAMAAN_RTS_DAYS": "property_no_dues=21"})
    death, birth, prop = (cert_type(c) for c in ("death", "birth", "property_no_dues"))
    assert death is not None and birth is not None and prop is not None
    assert doc_type_code(settings, death) == "DTHCR"
    assert doc_type_code(settings, birth) == "BTCER"
    assert rts_days(settings, prop) == 21
    assert rts_days(settings, death) == 7
    plain = Settings.from_env(env={})
    assert doc_type_code(plain, prop) == "PRTAX" and rts_days(plain, prop) == 15
