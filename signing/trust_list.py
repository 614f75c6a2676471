"""The seal trust list: every QR seal key ever used, found by kid.

Retired keys stay forever as verify-only (birth certificates never expire), so entries are not
checked against the clock. `to_json` gives the document to publish at a well-known URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.errors import SigningError
from signing.file_backend import load_pem_certificates, require_end_entity

KID_BYTES: Final = 8
SEAL_USAGE: Final = ("digital_signature",)
"""keyUsage bits a seal certificate needs."""


def kid_for(certificate_der: bytes) -> bytes:
    """The seal key id: the first 8 bytes of SHA-256 over the certificate's DER encoding."""
    return hashlib.sha256(certificate_der).digest()[:KID_BYTES]


@dataclass(frozen=True)
class TrustEntry:
    """One seal key a verifier accepts: its certificate and the window it signs in."""

    kid: bytes
    certificate_der: bytes = field(repr=False)
    public_key: ec.EllipticCurvePublicKey = field(repr=False)
    not_before: dt.datetime
    not_after: dt.datetime
    doc_types: tuple[str, ...] = ()

    @classmethod
    def from_certificate(
        cls, certificate: x509.Certificate, *, doc_types: tuple[str, ...] = ()
    ) -> TrustEntry:
        """Build an entry from a seal certificate (EC P-256, keyUsage digitalSignature)."""
        require_end_entity(certificate, SEAL_USAGE, "seal certificate")
        public_key = certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise SigningError(
                f"seal certificate {certificate.subject.rfc4514_string()} is not EC P-256",
                code="unsupported_key",
            )
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            kid=kid_for(der),
            certificate_der=der,
            public_key=public_key,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            doc_types=doc_types,
        )

    @property
    def subject(self) -> str:
        """The certificate subject as an RFC 4514 string."""
        return x509.load_der_x509_certificate(self.certificate_der).subject.rfc4514_string()

    def to_json(self) -> dict[str, Any]:
        """This entry as published in the trust list document."""
        return {
            "kid": self.kid.hex(),
            "alg": "ES256",
            # "ASCII" (a mutant) names the same codec: codec names are case-insensitive.
            "certificate": base64.b64encode(self.certificate_der).decode("ascii"),  # equivalent
            "signing_from": self.not_before.isoformat(),
            "signing_until": self.not_after.isoformat(),
            "doc_types": list(self.doc_types),
        }


class TrustList:
    """An immutable set of trusted seal keys, indexed by kid (kids may collide)."""

    def __init__(self, entries: Iterable[TrustEntry]) -> None:
        """Index `entries` by kid; duplicates of one certificate are kept once."""
        unique: dict[bytes, TrustEntry] = {}
        for entry in entries:
            unique.setdefault(entry.certificate_der, entry)
        self._entries = tuple(unique.values())
        by_kid: dict[bytes, list[TrustEntry]] = {}
        for entry in self._entries:
            by_kid.setdefault(entry.kid, []).append(entry)
        self._by_kid = {kid: tuple(found) for kid, found in by_kid.items()}

    @classmethod
    def from_cert_paths(
        cls, paths: Iterable[Path], *, doc_types: tuple[str, ...] = ()
    ) -> TrustList:
        """Trust every seal certificate in the PEM files at `paths`."""
        return cls(
            TrustEntry.from_certificate(cert, doc_types=doc_types)
            for path in paths
            for cert in load_pem_certificates(path, "seal certificate")
        )

    @property
    def entries(self) -> tuple[TrustEntry, ...]:
        """Every entry, in insertion order."""
        return self._entries

    def keys_for(self, kid: bytes) -> list[TrustEntry]:
        """Every trusted entry whose kid is `kid` (a verifier tries each of them)."""
        return list(self._by_kid.get(kid, ()))

    def to_json(self) -> dict[str, Any]:
        """The trust list document to publish (to be signed by the publisher)."""
        return {"version": 1, "keys": [entry.to_json() for entry in self._entries]}

    @classmethod
    def from_json(cls, document: object) -> TrustList:
        """Read a published trust list (what `to_json` wrote, with any other members).

        Each key's window is what the list declares, which may be narrower than its
        certificate's validity (a retired key stops signing when it is retired) but never wider.
        Raises `SigningError` (code "document_refused") for anything else."""
        if not isinstance(document, dict) or document.get("version") != 1 or not isinstance(
                document.get("keys"), list):
            raise SigningError("not a version 1 trust list", code="document_refused")
        return cls(_entry_of(item) for item in document["keys"])


def _entry_of(item: object) -> TrustEntry:
    try:
        if not isinstance(item, dict) or not isinstance(item.get("doc_types"), list) or not all(
                isinstance(t, str) for t in item["doc_types"]):
            raise TypeError("an entry is an object with a list of doc_types")
        der = base64.b64decode(item["certificate"], validate=True)
        certificate = x509.load_der_x509_certificate(der)
        doc_types = tuple(item["doc_types"])
        start = dt.datetime.fromisoformat(item["signing_from"])
        end = dt.datetime.fromisoformat(item["signing_until"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SigningError(f"a trust list entry cannot be read: {exc!r}",
                           code="document_refused") from exc
    entry = TrustEntry.from_certificate(certificate)  # its kid and key; the rest is declared
    if item.get("kid") != entry.kid.hex() or start.tzinfo is None or end.tzinfo is None or not (
            entry.not_before <= start <= end <= entry.not_after):
        raise SigningError(f"trust list entry {item.get('kid')!r}: its kid or window does not "
                           "match its certificate", code="document_refused")
    return TrustEntry(kid=entry.kid, certificate_der=der, public_key=entry.public_key,
                      not_before=start, not_after=end, doc_types=doc_types)
