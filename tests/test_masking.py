"""Contact details as lists and views show them: recognisable, not usable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from api import certificate_view
from issuer.masking import applicant_view, mask_aadhaar, mask_email, mask_mobile
from issuer.models import Certificate
from tests.conftest import sample


@pytest.mark.parametrize(("mobile", "shown"), [
    ("+919800000012", "+91******0012"),
    ("9800000012", "******0012"),
    (" 9800000012 ", "******0012"),
    ("+91", "******"),
    ("12", "******"),
    ("+4479460001234", "******1234"),  # an old record's foreign number: the last four only
])
def test_mask_mobile(mobile: str, shown: str) -> None:
    assert mask_mobile(mobile) == shown


@pytest.mark.parametrize(("email", "shown"), [
    ("sandeep.k@example.in", "s*******@example.in"),
    ("r.shaikh@example.in", "r*******@example.in"),
    ("a@b.co", "a*******@b.co"),
    ("a@b@example.in", "a*******@example.in"),
    ("@example.in", "*******"),
    ("no-at-sign", "*******"),
])
def test_mask_email(email: str, shown: str) -> None:
    assert mask_email(email) == shown


def test_masks_do_not_give_away_the_length() -> None:
    assert len(mask_email("ab@example.in")) == len(mask_email("abcdefghijkl@example.in"))
    assert len(mask_mobile("9800000012")) == len(mask_mobile("7000000001"))


def test_mask_aadhaar() -> None:
    assert mask_aadhaar("1049") == "XXXX XXXX 1049"


def test_applicant_view_masks_contact_details_and_shows_aadhaar_last_four() -> None:
    view = applicant_view(sample("birth-1"), "1049")
    assert view == {"name": "Sandeep Trimbak Kulkarni", "mobile": "+91******0012",
                    "email": "s*******@example.in", "aadhaar": "XXXX XXXX 1049"}


@pytest.mark.parametrize("request_data", [
    {}, {"applicant": None}, {"applicant": "x"},
    {"applicant": {"name": "Asha Patil", "mobile": "", "email": None}},
])
def test_applicant_view_of_what_is_missing_is_none(request_data: dict[str, Any]) -> None:
    view = applicant_view(request_data)
    assert view["mobile"] is None and view["email"] is None and view["aadhaar"] is None


def record(request_data: dict[str, Any], last4: str | None = None) -> Certificate:
    now = datetime.now(UTC)
    return Certificate(id=str(uuid.uuid4()), department_id="pmc-births-deaths",
                       cert_type=request_data["type"], registration_number="B-1",
                       state="submitted", request=request_data, submitted_by="token:x/y",
                       due_at=now, created_at=now, updated_at=now, aadhaar_last4=last4)


def test_certificate_view_shows_the_applicant_masked() -> None:
    view = certificate_view(record(sample("birth-1"), "1049"))
    assert view["applicant"] == {"name": "Sandeep Trimbak Kulkarni", "mobile": "+91******0012",
                                 "email": "s*******@example.in", "aadhaar": "XXXX XXXX 1049"}
    text = repr(view)
    assert "9800000012" not in text and "sandeep.k@" not in text


def test_certificate_view_without_aadhaar_or_email() -> None:
    view = certificate_view(record(sample("birth-2")))
    assert view["applicant"] == {"name": "Pradnya Prashant Kshirsagar",
                                 "mobile": "+91******0013", "email": None, "aadhaar": None}
