"""Minimal COSE_Sign1 (RFC 9052) with ES256, built on cbor2 and cryptography directly.

Only what the QR seal needs: tag 18, protected header {1: -7 (ES256), 4: kid}, an empty
unprotected map, and a 64-byte r||s signature over
Sig_structure = ["Signature1", protected, b"", payload]. (pycose 1.1 cannot decode with cbor2 6.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.errors import SealError

COSE_SIGN1_TAG: Final = 18
HEADER_ALG: Final = 1
HEADER_KID: Final = 4
ALG_ES256: Final = -7

_COORDINATE_BYTES: Final = 32
_MAX_DEPTH: Final = 16


@dataclass(frozen=True)
class Sign1:
    """A decoded (not yet verified) COSE_Sign1 message."""

    kid: bytes
    protected: bytes
    payload: bytes
    signature: bytes


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _P256_ORDER // 2

def sign1(payload: bytes, key: ec.EllipticCurvePrivateKey, kid: bytes) -> bytes:
    """Return the tagged COSE_Sign1 of `payload`, signed ES256 by the P-256 `key`.

    Signatures are deterministic (RFC 6979) when cryptography supports it, so the same
    payload, key and kid always give the same bytes.
    """
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("ES256 needs a P-256 key")
    protected = _protected_header(kid)
    der = key.sign(_to_be_signed(protected, payload), _es256(deterministic=True))
    r, s = decode_dss_signature(der)
    if s > _HALF_ORDER:
        s = _P256_ORDER - s  # low-S form: (r, n - s) is the same signature's only twin
    signature = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return _encode(protected, payload, signature)


def decode1(data: bytes) -> Sign1:
    """Parse a tagged COSE_Sign1 with ES256 and a kid; raise `SealError("malformed")` on
    anything else (wrong tag or shape, other algorithm, trailing bytes, duplicate keys)."""
    item = strict_loads(data)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise SealError("malformed", "not a tagged COSE_Sign1")
    parts = item.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise SealError("malformed", "COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = parts
    if not isinstance(protected, bytes) or not isinstance(payload, bytes):
        raise SealError("malformed", "protected header and payload must be byte strings")
    if not isinstance(unprotected, Mapping) or unprotected:
        raise SealError("malformed", "the unprotected header must be an empty map")
    if not isinstance(signature, bytes) or len(signature) != 2 * _COORDINATE_BYTES:
        raise SealError("malformed", "an ES256 signature is 64 bytes")
    header = strict_loads(protected)
    if not isinstance(header, Mapping) or set(header) != {HEADER_ALG, HEADER_KID}:
        raise SealError("malformed", "the protected header must hold exactly alg and kid")
    kid = header[HEADER_KID]
    if not isinstance(kid, bytes) or protected != _protected_header(kid):
        # Re-encoding also rejects look-alikes such as float keys or a non-canonical order.
        raise SealError("malformed", "the protected header must be exactly {1: -7, 4: kid}")
    if data != _encode(protected, payload, signature):
        # Only the preferred (shortest) CBOR encoding is accepted, so one message has one form.
        raise SealError("malformed", "COSE_Sign1 is not in preferred CBOR encoding")
    return Sign1(kid=kid, protected=protected, payload=payload, signature=signature)


def verify1(msg: Sign1, public_key: ec.EllipticCurvePublicKey) -> bool:
    """Return True if `msg` carries a valid ES256 signature by the P-256 `public_key`."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return False
    r = int.from_bytes(msg.signature[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(msg.signature[_COORDINATE_BYTES:], "big")
    if s > _HALF_ORDER:
        return False  # we only ever write low-S signatures; the high-S twin is a second form
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            _to_be_signed(msg.protected, msg.payload),
            _es256(deterministic=False),
        )
    except InvalidSignature:
        return False
    return True


def strict_loads(data: bytes) -> Any:
    """Decode exactly one CBOR item from `data` (no trailing bytes, no duplicate map keys,
    definite lengths only, bounded nesting); raise `SealError("malformed")` otherwise.

    cbor2 6 returns tuples and `frozendict`s (not a dict subclass) inside tags; callers must
    accept both shapes (test with `collections.abc.Mapping` / `Sequence`).
    """
    stream = BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream, max_depth=_MAX_DEPTH, allow_indefinite=False, allow_duplicate_keys=False
    )
    try:
        item = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise SealError("malformed", f"invalid CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise SealError("malformed", "trailing bytes after the CBOR item")
    return item


def _encode(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def _protected_header(kid: bytes) -> bytes:
    return cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid}, canonical=True)


def _to_be_signed(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def _es256(*, deterministic: bool) -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)
