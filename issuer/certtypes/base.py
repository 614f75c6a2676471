"""What the pipeline needs to know of a certificate type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from issuer.errors import FieldError


class CertType(Protocol):
    """One certificate type: its schema, its templates and the facts that numbering, deadlines,
    DigiLocker and the seal take from it.

    Everything a type is lives here, so adding one takes a class like this, a typst template and
    `issuer.certtypes.register` (README: Certificate types). The data members are read-only
    properties, so a plain class attribute satisfies them."""

    @property
    def code(self) -> str:
        """The type code in requests, URLs and the seal ("birth")."""

    @property
    def number_prefix(self) -> str:
        """The series letter(s) in certificate numbers: PMC/<prefix>/... ("B")."""

    @property
    def rts_days(self) -> int:
        """Default Right to Public Services time limit in working days (settings override:
        `issuer.certtypes.rts_days`)."""

    @property
    def doc_type(self) -> str:
        """Default DigiLocker document type code ("BTCER"; settings override:
        `issuer.certtypes.doc_type_code`)."""

    @property
    def authority(self) -> Mapping[str, str]:
        """The issuing authority printed in the header, {"en": ..., "mr": ...}."""

    @property
    def template_version(self) -> str:
        """The template new certificates are rendered with: "<code>/<n>", recorded with each
        certificate, which is re-rendered with its recorded version ever after."""

    @property
    def templates_root(self) -> Path:
        """The typst compile root holding this type's templates as <code>/<n>.typ."""

    def validate(self, data: Any) -> list[FieldError]:
        """Every problem with a request of this type (NFC-normalised), or an empty list."""

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        """The request as stored: what validation accepted, normalised."""

    def registration_number(self, data: Mapping[str, Any]) -> str:
        """The department's own reference, unique among its current certificates of a type."""

    def ward_office(self, data: Mapping[str, Any]) -> Mapping[str, str]:
        """The ward office the request belongs to, {"en": ..., "mr": ...} (numbering, RTS)."""

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        """What the QR seal carries besides number and registration."""

    @property
    def seal_date(self) -> str:
        """Which of `seal_facts`' dates the seal carries, by name ("birth"): the seal writes
        the date alone and readers name it again from the type (issuer/seal_fields.py)."""


@dataclass(frozen=True)
class SealFacts:
    """The essentials a verifier sees from the QR alone."""

    holder: Mapping[str, str]  # {"en": ..., "mr": ...}
    dates: Mapping[str, str]  # the type's key date(s), ISO 8601
    ward: str
