"""The shared `applicant` block: name, Indian mobile, e-mail and an optional Aadhaar number that
must pass the Verhoeff check. Errors name the field and never repeat the value."""

from __future__ import annotations

from typing import Any

import pytest

from issuer.applicant import check_applicant
from issuer.certtypes import cert_type
from issuer.errors import FieldError
from issuer.fields import Checker
from issuer.verhoeff import check_digit, is_valid
from tests.conftest import SAMPLES, sample

VALID_AADHAAR = "234123412346"  # python-stdnum's example of a valid Aadhaar number


def errors_of(applicant: Any, **kwargs: Any) -> list[FieldError]:
    data = {"applicant": applicant}
    check = Checker(data)
    check_applicant(check, data, **kwargs)
    return check.errors


def codes(applicant: Any) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in errors_of(applicant)]


# Published check digits: Rosetta Code's task (236, 12345, 123456789012), python-stdnum's
# doctest (1234) and Perl's Algorithm::CheckDigits (1456789).
@pytest.mark.parametrize(("body", "digit"), [
    ("236", "3"), ("12345", "1"), ("123456789012", "0"), ("1234", "0"), ("1456789", "4"),
])
def test_verhoeff_check_digits_match_published_examples(body: str, digit: str) -> None:
    assert check_digit(body) == digit
    assert is_valid(body + digit)
    assert not is_valid(body + str((int(digit) + 1) % 10))


def test_verhoeff_catches_every_single_digit_error_and_adjacent_swap() -> None:
    for position in range(12):
        for digit in "0123456789":
            if digit != VALID_AADHAAR[position]:
                typo = VALID_AADHAAR[:position] + digit + VALID_AADHAAR[position + 1:]
                assert not is_valid(typo), typo
    for position in range(11):
        a, b = VALID_AADHAAR[position], VALID_AADHAAR[position + 1]
        if a != b:
            swapped = VALID_AADHAAR[:position] + b + a + VALID_AADHAAR[position + 2:]
            assert not is_valid(swapped), swapped


@pytest.mark.parametrize("value", ["", "12a4", "١٢٣", "९८७"])
def test_verhoeff_refuses_what_is_not_ascii_digits(value: str) -> None:
    assert not is_valid(value)
    if value:
        with pytest.raises(ValueError, match="ASCII digits"):
            check_digit(value)


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.json")))
def test_every_sample_applicant_is_valid(name: str) -> None:
    assert errors_of(sample(name)["applicant"]) == []


@pytest.mark.parametrize("mobile", ["+919800000012", "9800000012", "6000000000", "+917000000001"])
def test_indian_mobile_numbers_are_accepted(mobile: str) -> None:
    assert codes({"name": "Asha Patil", "mobile": mobile}) == []


@pytest.mark.parametrize("mobile", [
    "5800000000",  # Indian mobiles start with 6-9
    "+91980000001",  # nine digits after +91
    "98000000123",  # eleven digits
    "919800000012",  # country code without +
    "+449800000012",  # not India
    "98000 00012",  # blanks
    "०९८००००००१२",  # Devanagari digits
    "+91 9800000012",
])
def test_other_mobile_numbers_are_refused_without_echo(mobile: str) -> None:
    errors = errors_of({"name": "Asha Patil", "mobile": mobile})
    assert [(e.field, e.code) for e in errors] in ([("applicant.mobile", "format")],
                                                   [("applicant.mobile", "too_long")])
    assert all(mobile not in e.message for e in errors)


def test_mobile_and_email_are_optional_name_is_not() -> None:
    assert codes({"name": "Asha Patil"}) == []
    assert codes({"mobile": "9800000012"}) == [("applicant.name", "required")]


@pytest.mark.parametrize(("email", "ok"), [
    ("sandeep.k@example.in", True), ("a@b.co", True), ("no-at-sign.example.in", False),
    ("two@@example.in", False), ("blank @example.in", False), ("x@nodot", False),
    ("x" * 250 + "@example.in", False),
])
def test_email(email: str, ok: bool) -> None:
    assert (codes({"name": "Asha Patil", "email": email}) == []) is ok


@pytest.mark.parametrize("aadhaar", [VALID_AADHAAR, "2341 2341 2346", "8642 9753 1049"])
def test_a_valid_aadhaar_number_is_accepted_together_or_4_4_4(aadhaar: str) -> None:
    assert codes({"name": "Asha Patil", "aadhaar": aadhaar}) == []


@pytest.mark.parametrize(("aadhaar", "code"), [
    ("234123412347", "checksum"),  # last digit wrong
    ("243123412346", "checksum"),  # two digits swapped
    ("2341 2341 2347", "checksum"),
    ("123412341234", "format"),  # never starts with 1
    ("034123412346", "format"),  # nor with 0
    ("23412341234", "format"),  # eleven digits
    ("2341234123466", "format"),  # thirteen
    ("2341 23412346", "format"),  # blanks in only one place
    ("2341  2341 2346", "too_long"),  # two blanks
    ("2341-2341-2346", "format"),  # hyphens are not the written form
    ("२३४१२३४१२३४६", "format"),  # Devanagari digits
    (" 234123412346", "format"),
    ("2341 2341 2346 ", "too_long"),
    ("2341x2341x2346", "format"),
])
def test_a_wrong_aadhaar_number_is_refused_without_echo(aadhaar: str, code: str) -> None:
    errors = errors_of({"name": "Asha Patil", "aadhaar": aadhaar})
    assert [(e.field, e.code) for e in errors] == [("applicant.aadhaar", code)]
    digits = aadhaar.replace(" ", "")
    assert all(digits[:8] not in e.message + e.field for e in errors)


def test_the_first_digit_rule_is_said_as_such() -> None:
    [error] = errors_of({"name": "Asha Patil", "aadhaar": "1" + VALID_AADHAAR[1:]})
    assert "never starts with 0 or 1" in error.message


@pytest.mark.parametrize("value", [234123412346, ["234123412346"], {"n": "2"}, True])
def test_an_aadhaar_number_must_be_a_string(value: Any) -> None:
    assert codes({"name": "Asha Patil", "aadhaar": value}) == [("applicant.aadhaar", "type")]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_an_empty_aadhaar_is_absent(value: Any) -> None:
    assert codes({"name": "Asha Patil", "aadhaar": value}) == []


def test_unknown_fields_and_a_missing_block() -> None:
    assert codes({"name": "Asha Patil", "pan": "ABCDE1234F"}) == [("applicant.pan",
                                                                   "unknown_field")]
    assert codes(None) == [("applicant", "required")]
    assert codes("Asha Patil") == [("applicant", "type")]
    assert errors_of(None, required=False) == []


def test_a_block_under_another_path_reports_there_and_takes_no_aadhaar() -> None:
    data = {"informant": {"name": "Asha Patil", "mobile": "12345", "aadhaar": "234123412347"}}
    check = Checker(data)
    check_applicant(check, data, path="informant")
    # Only the top-level applicant block may carry an Aadhaar number: that is the one taken
    # out of the request before it is stored.
    assert [(e.field, e.code) for e in check.errors] == [("informant.aadhaar", "unknown_field"),
                                                          ("informant.mobile", "format")]


def test_birth_requests_use_the_shared_applicant_check() -> None:
    birth = cert_type("birth")
    assert birth is not None
    data = sample("birth-1")
    data["applicant"]["aadhaar"] = "2341 2341 2346"
    assert birth.validate(data) == []
    data["applicant"]["aadhaar"] = "2341 2341 2347"
    assert [(e.field, e.code) for e in birth.validate(data)] == [("applicant.aadhaar",
                                                                  "checksum")]
    data["applicant"] = {"name": "Sandeep Trimbak Kulkarni", "mobile": "5800000000"}
    assert [(e.field, e.code) for e in birth.validate(data)] == [("applicant.mobile", "format")]


@pytest.mark.parametrize(("where", "text"), [
    ("remarks.en", "Applicant's Aadhaar 2341 2341 2346."),
    ("remarks.mr", "आधार क्रमांक 234123412346"),
    ("permanent_address.en", "Flat 12 (Aadhaar:234123412346), Kothrud, Pune"),
    ("applicant.email", "234123412346@example.in"),
])
def test_an_aadhaar_number_anywhere_else_is_refused(where: str, text: str) -> None:
    birth = cert_type("birth")
    assert birth is not None
    data = sample("birth-1")
    data["applicant"]["aadhaar"] = VALID_AADHAAR
    parent, key = where.split(".")
    data[parent][key] = text
    errors = birth.validate(data)
    assert [(e.field, e.code) for e in errors] == [(where, "aadhaar_not_allowed")]
    assert "2341" not in errors[0].message


@pytest.mark.parametrize(("parent", "key", "text"), [
    ("remarks", "en", "Receipt 234123412347 (not an Aadhaar number: wrong check digit)"),
    ("remarks", "en", "Receipt 123412341234 (starts with 1)"),
    ("remarks", "en", "Reference B-234123412346 and 234123412346/7"),
    ("remarks", "en", "Phone 0234123412346"),
    ("", "registration_number", "234123412346"),  # an identifier: no letters, not free text
])
def test_numbers_that_are_not_a_stray_aadhaar_pass(parent: str, key: str, text: str) -> None:
    birth = cert_type("birth")
    assert birth is not None
    data = sample("birth-1")
    (data[parent] if parent else data)[key] = text
    assert birth.validate(data) == []


def test_the_aadhaar_field_itself_is_not_a_stray_aadhaar() -> None:
    assert codes({"name": "Asha Patil", "aadhaar": "UID 2341 2341 2346"}) == [
        ("applicant.aadhaar", "too_long")]


def test_a_stray_aadhaar_is_reported_once_per_place() -> None:
    data = {"applicant": {"name": "Asha Patil"}, "informant": {"name": "Asha Patil"},
            "notes": ["Aadhaar 2341 2341 2346"], "x" * 100: "Aadhaar 2341 2341 2346"}
    check = Checker(data)
    check_applicant(check, data)
    check_applicant(check, data, path="informant")
    assert sorted((e.field, e.code) for e in check.errors) == [
        ("notes.0", "aadhaar_not_allowed"), ("x" * 64 + "…", "aadhaar_not_allowed")]
