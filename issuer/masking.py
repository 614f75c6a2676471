"""How an applicant's contact details show in lists and views: enough to recognise, not to use.

Masks have a fixed width, so a masked value does not even give away the length of what it hides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STARS = "*" * 7


def mask_mobile(mobile: str) -> str:
    """'+919800000012' -> '+91******0012', '9800000012' -> '******0012': the last four only."""
    digits = mobile.strip()
    prefix = ""
    if digits.startswith("+91") and len(digits) > 3:
        prefix, digits = "+91", digits[3:]
    if len(digits) <= 4:
        return prefix + "*" * 6
    return prefix + "*" * 6 + digits[-4:]


def mask_email(email: str) -> str:
    """'sandeep.k@example.in' -> 's*******@example.in': the first letter and the domain."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return STARS
    return local[0] + STARS + "@" + domain


def mask_aadhaar(last4: str) -> str:
    """'1234' -> 'XXXX XXXX 1234', the form UIDAI itself prints on a masked Aadhaar."""
    return f"XXXX XXXX {last4}"


def applicant_view(request: Mapping[str, Any], aadhaar_last4: str | None = None) -> dict[str, Any]:
    """The applicant of a stored request as a list or view shows it: the name, the mobile and
    e-mail masked, the Aadhaar number (kept only as its last four digits) masked."""
    applicant = request.get("applicant")
    if not isinstance(applicant, Mapping):
        applicant = {}
    mobile, email = applicant.get("mobile"), applicant.get("email")
    return {
        "name": applicant.get("name"),
        "mobile": mask_mobile(mobile) if isinstance(mobile, str) and mobile else None,
        "email": mask_email(email) if isinstance(email, str) and email else None,
        "aadhaar": mask_aadhaar(aadhaar_last4) if aadhaar_last4 else None,
    }
