"""What the pipeline needs to know of a certificate type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from issuer.errors import FieldError


class CertType(Protocol):
    """One certificate type: its schema and the facts the seal and numbering take from it."""

    code: str  # the type code in requests, URLs and the seal ("birth")
    number_prefix: str  # in the certificate number: PMC/<prefix>/<year>/<serial>
    rts_days: int  # Maharashtra Right to Public Services Act deadline

    def validate(self, data: Any) -> list[FieldError]: ...

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]: ...

    def registration_number(self, data: Mapping[str, Any]) -> str: ...

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts: ...


@dataclass(frozen=True)
class SealFacts:
    """The essentials a verifier sees from the QR alone."""

    holder: Mapping[str, str]  # {"en": ..., "mr": ...}
    dates: Mapping[str, str]  # the type's key date(s), ISO 8601
    ward: str
