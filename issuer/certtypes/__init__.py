"""The certificate types this service issues, by type code."""

from __future__ import annotations

from issuer.certtypes.base import CertType, SealFacts
from issuer.certtypes.birth import Birth

__all__ = ["CertType", "SealFacts", "cert_type", "known_types"]


def known_types() -> dict[str, CertType]:
    """Type code -> type. Death and property no-dues come in a later issue."""
    return {"birth": Birth()}


def cert_type(code: object) -> CertType | None:
    """The type for `code`, or None when the service does not issue it."""
    return known_types().get(code) if isinstance(code, str) else None
