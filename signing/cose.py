"""Minimal COSE_Sign1 (RFC 9052) with ES256, built on cbor2 and cryptography directly.

Only what the QR seal needs: tag 18, protected header {1: -7 (ES256), 4: kid}, an empty
unprotected map, and a 64-byte r||s signature over
Sig_structure = ["Signature1", protected, b"", payload]. (pycose 1.1 cannot decode with cbor2 6.)

cbor2 only ever encodes here. Reading is a hand-rolled check of exactly the frame we write,
so nothing from a scanned seal reaches a general CBOR decoder before its signature is verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.cbor_plain import read_byte_string
from signing.errors import SealError
from signing.trust_list import KID_BYTES

COSE_SIGN1_TAG: Final = 18
HEADER_ALG: Final = 1
HEADER_KID: Final = 4
ALG_ES256: Final = -7

_COORDINATE_BYTES: Final = 32
# Tag 18 (one-byte head 0xD2) around an array of four items (0x84), as `_encode` writes it.
_FRAME_START: Final = b"\xd2\x84"
_EMPTY_MAP: Final = b"\xa0"


@dataclass(frozen=True)
class Sign1:
    """The frame of a COSE_Sign1 message, its signature not yet verified and its payload unread."""

    kid: bytes
    protected: bytes
    payload: bytes
    signature: bytes


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _P256_ORDER // 2


class EcdsaKey(Protocol):
    """What `sign1` and the sealer use of a P-256 private key: cryptography's
    EllipticCurvePrivateKey has it, and so does a key in a PKCS#11 token
    (signing/pkcs11_backend.py)."""

    @property
    def curve(self) -> ec.EllipticCurve: ...

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...


def sign1(payload: bytes, key: EcdsaKey, kid: bytes) -> bytes:
    """Return the tagged COSE_Sign1 of `payload`, signed ES256 by the P-256 `key`, with the
    8-byte `kid` in the protected header (the only header shape `decode1` reads back).

    Signatures are deterministic (RFC 6979) when cryptography supports it, so the same
    payload, key and kid always give the same bytes.
    """
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("ES256 needs a P-256 key")
    if len(kid) != KID_BYTES:
        raise ValueError(f"a seal kid is {KID_BYTES} bytes")
    protected = _protected_header(kid)
    der = key.sign(_to_be_signed(protected, payload), _es256(deterministic=True))
    r, s = decode_dss_signature(der)
    # `>=` here differs only when s == n // 2 exactly, a 2**-256 event for RFC 6979 nonces.
    if s > _HALF_ORDER:  # equivalent: `>=` (s == n // 2 never occurs, see above)
        s = _P256_ORDER - s  # low-S form: (r, n - s) is the same signature's only twin
    signature = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return _encode(protected, payload, signature)


def decode1(data: bytes) -> Sign1:
    """Read the frame of a tagged COSE_Sign1 exactly as `sign1` writes it, without interpreting
    the byte strings it carries; the signature is NOT checked (see `verify1`).

    The frame is tag 18 around an array of four items: the protected header (a byte string that
    must equal, byte for byte, the header `sign1` writes for the 8-byte kid at its end), an empty
    unprotected map, the payload (a byte string, returned unread) and a 64-byte signature. Heads
    must be definite and in their shortest form, with no trailing bytes. Nothing in the message
    reaches a general CBOR decoder: the payload is attacker data until its signature is checked.
    Raises `SealError("malformed")` on anything else.
    """
    if not data.startswith(_FRAME_START):
        raise SealError("malformed", "not a tagged COSE_Sign1 array of four items")
    protected, pos = read_byte_string(data, len(_FRAME_START))
    # The kid is the last 8 bytes of the only header we write; rebuilding that header from
    # them and comparing bytes checks everything else without decoding anything.
    kid = protected[-KID_BYTES:]
    if protected != _protected_header(kid):
        raise SealError("malformed", "the protected header must be exactly {1: -7, 4: kid}")
    if data[pos : pos + 1] != _EMPTY_MAP:
        raise SealError("malformed", "the unprotected header must be an empty map")
    payload, pos = read_byte_string(data, pos + 1)
    signature, pos = read_byte_string(data, pos)
    if len(signature) != 2 * _COORDINATE_BYTES:
        raise SealError("malformed", "an ES256 signature is 64 bytes")
    if pos != len(data):
        raise SealError("malformed", "trailing bytes after the COSE_Sign1")
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
            _es256(deterministic=False),  # equivalent: the flag only matters when signing
        )
    except InvalidSignature:
        return False
    return True


def _encode(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def _protected_header(kid: bytes) -> bytes:
    # For an 8-byte kid: A2 01 26 04 48 <kid>, so the kid is always the last 8 bytes.
    # Keys 1 then 4, an int and a byte string: the dict is already in canonical order.
    return cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid}, canonical=True)  # equivalent


def _to_be_signed(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def _es256(*, deterministic: bool) -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)
