"""Signed JSON documents the issuer publishes for offline verifiers (the seal trust list and
the status list): JWS (RFC 7515) in the flattened JSON serialization, ES256 by the seal key,
with the signer's certificate chain in the `x5c` header.

Any JOSE library reads them (tests check ours with authlib's). `open_document` is strict: one
header shape, one algorithm, a size cap, and a signer that chains to a trust root, has the
digitalSignature key usage and belongs to the expected organisation (a national root certifies
many holders; any of them could otherwise sign a list of its own keys).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathError, ValidationError

from signing.cose import EcdsaKey
from signing.errors import SigningError
from signing.file_backend import to_asn1_certificate

MAX_DOCUMENT_BYTES: Final = 4 * 1024 * 1024
_MAX_CHAIN: Final = 4
_COORDINATE: Final = 32


class DocumentRefused(SigningError):
    """A published document is malformed, not signed as we sign, or not by a trusted signer."""

    code = "document_refused"


@dataclass(frozen=True)
class OpenedDocument:
    """A verified document: its payload, and the certificate that signed it."""

    payload: dict[str, Any]
    signer: x509.Certificate = field(repr=False)


class FlattenedJws(TypedDict):
    """A JWS in the flattened JSON serialization (RFC 7515 section 7.2.2): the protected header,
    the payload and the signature, each base64url without padding; nothing else."""

    protected: str
    payload: str
    signature: str


def sign_document(payload: Mapping[str, Any], *, typ: str, key: EcdsaKey,
                  chain: Sequence[x509.Certificate]) -> FlattenedJws:
    """`payload` as a flattened JWS signed ES256 by `key`, whose certificate is `chain[0]`
    (the rest are its issuers, up to but not including the root)."""
    if not chain or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError("a published document is signed by a P-256 key with its "
                           "certificate", code="invalid_signing_config")
    header = {"alg": "ES256", "typ": typ, "x5c": [
        # equivalent: "ASCII", codec names ignore case
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for cert in chain]}
    protected = _b64url(json.dumps(header, separators=(",", ":")).encode())
    # equivalent: ensure_ascii=None, json only tests its truth, and None is false like False
    body = _b64url(json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                              sort_keys=True).encode())
    # equivalent: "ASCII", codec names ignore case
    der = key.sign(f"{protected}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    # equivalent: to_bytes without "big", the default byte order since 3.11
    signature = r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
    return {"protected": protected, "payload": body, "signature": _b64url(signature)}


def open_document(document: bytes | str, *, typ: str, roots: Sequence[x509.Certificate],
                  organisation: str, at: dt.datetime | None = None) -> OpenedDocument:
    """Check `document` (the bytes published) and return its payload.

    Refused with `DocumentRefused` unless it is a flattened JWS of type `typ`, ES256, whose
    `x5c` leaf signed it, chains to one of `roots` (as of `at`, default now) with keyUsage
    digitalSignature, and names `organisation` as its subject's O.
    """
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    outer = _json_object(raw, "the document")
    if set(outer) != {"protected", "payload", "signature"} or not all(
            isinstance(v, str) for v in outer.values()):
        raise DocumentRefused("not a flattened JWS: exactly protected, payload and signature")
    header = _json_object(_unb64url(outer["protected"]), "the protected header")
    if set(header) != {"alg", "typ", "x5c"} or header["alg"] != "ES256" or header["typ"] != typ:
        raise DocumentRefused(f"the header must be exactly alg ES256, typ {typ} and x5c")
    chain = _certificates(header["x5c"])
    signature = _unb64url(outer["signature"])
    try:
        public_key = chain[0].public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DocumentRefused(f"the signer's key cannot be read: {exc}") from exc
    if len(signature) != 2 * _COORDINATE or not isinstance(
            public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1):
        raise DocumentRefused("the signature must be ES256 by a P-256 key")
    r = int.from_bytes(signature[:_COORDINATE], "big")  # equivalent: big, the default since 3.11
    s = int.from_bytes(signature[_COORDINATE:], "big")  # equivalent: big, the default since 3.11
    try:
        public_key.verify(encode_dss_signature(r, s),
                          f"{outer['protected']}.{outer['payload']}".encode(
                              "ascii"),  # equivalent: codec names ignore case
                          ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise DocumentRefused("the signature does not match the document") from exc
    _require_trusted(chain, roots, at)
    names = chain[0].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if [n.value for n in names] != [organisation]:
        raise DocumentRefused(f"signed by {chain[0].subject.rfc4514_string()}, not by "
                              f"{organisation}")
    return OpenedDocument(payload=_json_object(_unb64url(outer["payload"]), "the payload"),
                          signer=chain[0])


def _require_trusted(chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
                     at: dt.datetime | None) -> None:
    validator = CertificateValidator(
        to_asn1_certificate(chain[0]),
        intermediate_certs=[to_asn1_certificate(c) for c in chain[1:]],
        validation_context=ValidationContext(
            # equivalent: without allow_fetching, or None: False is certvalidator's default
            trust_roots=[to_asn1_certificate(c) for c in roots], allow_fetching=False,
            moment=at),
    )
    try:
        asyncio.run(validator.async_validate_usage({"digital_signature"}))  # type: ignore[no-untyped-call]
    except (PathError, ValidationError) as exc:
        raise DocumentRefused(f"the signer is not trusted: {exc}") from exc


def _certificates(x5c: object) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not 1 <= len(x5c) <= _MAX_CHAIN or not all(
            isinstance(item, str) for item in x5c):
        raise DocumentRefused(f"x5c must hold 1 to {_MAX_CHAIN} certificates")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(item, validate=True))
                for item in x5c]
    except (ValueError, binascii.Error) as exc:
        raise DocumentRefused(f"x5c holds something that is not a certificate: {exc}") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")  # equivalent: codec names ignore case
        value = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DocumentRefused(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DocumentRefused(f"{what} is not a JSON object")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _b64url(data: bytes) -> str:
    # rstrip(b"XX=XX") strips a final X too, but none is left after the padding: what is encoded
    # here ends in "}" (the JSON) or is 64 bytes (the signature; its last letter is A, Q, g or w).
    # equivalent: "ASCII", codec names ignore case; rstrip(b"XX=XX"), nothing here ends in X
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    # Unpadded base64url only (RFC 7515 section 2): padding, other alphabets or stray
    # characters are refused rather than skipped.
    if not text or len(text) % 4 == 1 or not all(
            c.isascii() and (c.isalnum() or c in "-_")  # equivalent: "XX-_XX" adds letters
            for c in text):
        raise DocumentRefused("not unpadded base64url")
    try:
        padding = "=" * (-len(text) % 4)  # equivalent: +len pads more, which is ignored
        return base64.urlsafe_b64decode(text + padding)
    except (ValueError, binascii.Error) as exc:  # unreachable after the check above
        raise DocumentRefused("not unpadded base64url") from exc  # equivalent: unreachable
