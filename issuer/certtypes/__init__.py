"""The certificate types this service issues, by type code (see registry.py)."""

from __future__ import annotations

from issuer.certtypes.base import CertType, SealFacts
from issuer.certtypes.registry import (
    cert_type,
    doc_type_code,
    known_types,
    register,
    rts_days,
    template_file,
    unregister,
)

__all__ = [
    "CertType",
    "SealFacts",
    "cert_type",
    "doc_type_code",
    "known_types",
    "register",
    "rts_days",
    "template_file",
    "unregister",
]
