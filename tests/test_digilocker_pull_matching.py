"""The opt-in Aadhaar details (PROTOCOL.md §2.2, §10): FullName, DOB and UID matched against the
people a certificate may be pulled by; an exact match (after NFC, case and spaces) hands the
certificate over, a near miss is Status 9 (pending) and never a certificate."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from issuer.settings import Settings
from issuer.verhoeff import check_digit
from tests.conftest import Live, make_settings, sample
from tests.digilocker_pull_requests import KEY, doc_request, issue, post, reply, uri_request

BIRTH = {"RegistrationNumber": "B-2026-PMC-004512", "DateOfBirth": "21-02-2026"}
AADHAAR = "23456789012" + check_digit("23456789012")
OTHER_AADHAAR = "98765432109" + check_digit("98765432109")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, keys_dir, digilocker_api_key=KEY)


def with_aadhaar(name: str) -> dict[str, Any]:
    request = sample(name)
    request["applicant"]["aadhaar"] = AADHAAR
    return request


def uri_status(live: Live, extra: dict[str, str]) -> tuple[str, dict[str, str]]:
    answer = reply(post(live, "pulluri", uri_request("BTCER", {**BIRTH, **extra})))
    return answer.status, answer.details


def test_exact_matches_after_normalising_hand_the_certificate_over(live: Live) -> None:
    issue(live, with_aadhaar("birth-1"))
    decomposed = unicodedata.normalize("NFD", "आरव संदीप कुलकर्णी")
    for claim in ({"FullName": "Aarav Sandeep Kulkarni", "DOB": "21-02-2026"},  # the child
                  {"FullName": "  aarav   SANDEEP kulkarni "},
                  {"FullName": decomposed},  # Marathi, decomposed: NFC makes it equal
                  {"DOB": "21-02-2026"},
                  {"FullName": "Sandeep Trimbak Kulkarni", "UID": AADHAAR},  # the applicant
                  {"UID": AADHAAR},
                  {"FullName": "Sandeep Trimbak Kulkarni", "DOB": "01-01-1990"}):
        status, details = uri_status(live, claim)
        assert status == "1", claim
        assert "DocContent" in details
        if "UID" in claim:
            assert details["UID"] == "xxxxxxxx" + AADHAAR[-4:]  # echoed masked, never whole


def test_near_misses_are_pending_with_no_certificate(live: Live) -> None:
    issue(live, with_aadhaar("birth-1"))
    for claim in ({"FullName": "Aarav Kulkarni"},
                  {"FullName": "Aarav Sandeep Kulkarnii", "DOB": "21-02-2026"},
                  {"FullName": "Aarav Sandeep Kulkarni", "DOB": "22-02-2026"},
                  {"DOB": "2026"},
                  {"UID": OTHER_AADHAAR},
                  {"UID": "not a number"},
                  {"FullName": "Sandeep Trimbak Kulkarni", "UID": OTHER_AADHAAR},
                  {"FullName": "Someone Else Entirely"}):
        status, details = uri_status(live, claim)
        assert status == "9", claim
        assert not {"URI", "DocContent", "DataContent"} & set(details), claim
    # Pull Doc (before v1.12 it carried the details too) answers the same way.
    uri = uri_status(live, {})[1]["URI"]
    miss = reply(post(live, "pulldoc", doc_request(uri, {"FullName": "Aarav Kulkarni"})))
    assert miss.status == "9" and not miss.details
    hit = reply(post(live, "pulldoc", doc_request(uri, {"FullName": "AARAV SANDEEP KULKARNI"})))
    assert hit.status == "1" and hit.details["DocContent"]


def test_a_uid_matches_only_through_the_stored_hmac(live: Live) -> None:
    issue(live, sample("birth-1"))  # no Aadhaar number on this record
    # Nothing to check the UID against: the name decides.
    assert uri_status(live, {"UID": AADHAAR})[0] == "9"
    assert uri_status(live, {"UID": AADHAAR, "FullName": "Aarav Sandeep Kulkarni"})[0] == "1"


def test_death_and_property_holders(live: Live) -> None:
    issue(live, sample("death-1"))
    issue(live, sample("property-1"))
    death = {"RegistrationNumber": "D-2026-PMC-001877", "DateOfDeath": "09-04-2026"}
    for doc_type, params, name, expected in (
            ("DTCER", death, "Sushama Vishwanath Joshi", "1"),  # relative and applicant
            ("DTCER", death, "Vishwanath Dattatray Joshi", "9"),  # the deceased has no locker
            ("PRTAX", {"PropertyId": "PMC/PT/12/0456/00078123"}, "imtiaz yusuf shaikh", "1"),
            ("PRTAX", {"PropertyId": "PMC/PT/12/0456/00078123"}, "Imtiaz Shaikh", "9")):
        answer = reply(post(live, "pulluri", uri_request(doc_type, {**params, "FullName": name})))
        assert answer.status == expected, (doc_type, name)
