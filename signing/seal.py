"""The QR seal (QR.md): CWT-shaped claims -> COSE_Sign1 (ES256) -> optional DEFLATE -> digits.

The QR text is `f"{base_url}/v#"` followed by one flag digit ("1": the bytes are raw-DEFLATE
compressed, "0": they are not) and the decimal big integer of b"\\x01" + bytes. The 0x01 sentinel
byte keeps leading zero bytes, which a plain integer would drop, and makes the encoding
canonical: the digits never start with "0". Everything after "#" stays in the phone (a fragment
never reaches server logs), and digits let the QR use its compact numeric mode.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.cose import Sign1, decode1, sign1, strict_loads, verify1
from signing.errors import SealError, SigningError
from signing.file_backend import (
    load_pem_certificate,
    load_pem_private_key,
    require_end_entity,
    require_key_matches,
    require_valid_now,
)
from signing.trust_list import SEAL_USAGE, TrustEntry, TrustList, kid_for

CLAIM_ISS: Final = 1
"""Registered CWT claim `iss` (RFC 8392)."""
CLAIM_IAT: Final = 6
"""Registered CWT claim `iat` (RFC 8392), seconds since the epoch."""
PRIVATE_CLAIM: Final = -65537
"""The one claim key holding Pramaan's own fields (a map). RFC 8392 / IANA mark CWT claim keys
below -65536 as private use, so this never collides with a registered claim; registered keys
1-8 keep their CWT meaning and are never reused for our fields."""

MAX_INFLATED_BYTES: Final = 16 * 1024
"""Largest COSE message accepted after inflating (a DEFLATE bomb is cut off here)."""
MAX_DIGITS: Final = 7089
"""Longest digit string accepted (flag included): a version-40 QR holds at most 7089 digits."""

_FLAG_DEFLATED: Final = "1"
_FLAG_PLAIN: Final = "0"
_SENTINEL: Final = b"\x01"
_DIGITS_RE: Final = re.compile(r"[0-9]+")
# Python refuses int <-> str conversions beyond 4300 digits (CVE-2020-10735). Raising the limit
# with sys.set_int_max_str_digits is process-wide and races with other threads, so big numbers
# are converted in chunks that each stay under it.
_CHUNK_DIGITS: Final = 1000
_CHUNK: Final = 10**_CHUNK_DIGITS


@dataclass(frozen=True)
class SealKey:
    """The loaded P-256 seal key with its certificate; `kid` = SHA-256(cert DER)[:8]."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate
    kid: bytes

    @classmethod
    def load(cls, key_path: Path, cert_path: Path) -> SealKey:
        """Load the seal key and certificate once, checking that they match, that the key is
        P-256 and that the certificate has keyUsage digitalSignature and is valid now."""
        certificate = load_pem_certificate(cert_path, "seal certificate")
        key = load_pem_private_key(key_path, "seal key")
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise SigningError(f"seal key {key_path} is not EC P-256", code="unsupported_key")
        require_key_matches(key, certificate, "seal key")
        require_end_entity(certificate, SEAL_USAGE, "seal certificate")
        require_valid_now(certificate, "seal certificate")
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(private_key=key, certificate=certificate, kid=kid_for(der))

    def trust_entry(self, *, doc_types: tuple[str, ...] = ()) -> TrustEntry:
        """This key's entry for a trust list."""
        return TrustEntry.from_certificate(self.certificate, doc_types=doc_types)


@dataclass(frozen=True)
class DecodedSeal:
    """A parsed seal whose signature has NOT been verified yet (see `verify_seal`)."""

    compressed: bool
    cose: bytes
    message: Sign1
    claims: dict[int, Any]


@dataclass(frozen=True)
class SealReport:
    """The verdict on a seal: `reason` is None when `ok`, else one of `SEAL_REASONS`.

    `claims` (plain dicts and lists) and `signed_by` (certificate subject) are set only when ok.
    """

    ok: bool
    reason: str | None
    kid: str | None = None
    claims: dict[int, Any] | None = None
    signed_by: str | None = None


class Sealer:
    """Builds QR seal texts with one seal key; create once per process."""

    def __init__(self, key: SealKey, base_url: str) -> None:
        """Seal with `key`; texts start with `f"{base_url}/v#"`.

        `base_url` is an http(s) origin with an optional path, without query or fragment,
        e.g. "https://verify.pmc.example" or "http://127.0.0.1:8000".
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SigningError(f"invalid verify base URL {base_url!r}", code="invalid_base_url")
        if parts.query or parts.fragment or "#" in base_url:
            raise SigningError(
                f"the verify base URL {base_url!r} may not carry a query or fragment",
                code="invalid_base_url",
            )
        self._key = key
        self._prefix = f"{base_url.rstrip('/')}/v#"

    @property
    def prefix(self) -> str:
        """The text every seal starts with (the link a camera app opens)."""
        return self._prefix

    @property
    def kid(self) -> bytes:
        """The kid of the key this sealer signs with."""
        return self._key.kid

    def seal(self, claims: Mapping[int, Any]) -> str:
        """Sign `claims` and return the QR text, after checking that it decodes back to them.

        `claims` is a CWT-shaped map: 1 (iss), 6 (iat) and our fields under `PRIVATE_CLAIM`.
        It is encoded as canonical CBOR (cbor2 `canonical=True`, RFC 7049 length-first key
        order). Raises `SealError("payload_mismatch")` if the produced text does not decode,
        verify and compare equal to `claims`, `SealError("too_large")` if it cannot fit a QR,
        `SealError("outside_window")` if `iat` is missing or outside the key's certificate.
        """
        if not _issued_in_window(claims, self._key.trust_entry()):
            raise SealError("outside_window", "claims need an integer iat (6) in the key's window")
        payload = _encode_claims(claims)
        cose = sign1(payload, self._key.private_key, self._key.kid)
        text = self._prefix + _to_transport(cose)
        if len(text) - len(self._prefix) > MAX_DIGITS:
            raise SealError(
                "too_large", f"the seal needs {len(text)} characters, too many for a QR"
            )
        self._check(text, payload, claims)
        return text

    def _check(self, text: str, payload: bytes, claims: Mapping[int, Any]) -> None:
        # Check before handing out: what a verifier will read must be exactly what we signed.
        try:
            decoded = decode_seal(text)
        except SealError as exc:
            raise SealError("payload_mismatch", f"the seal does not decode: {exc}") from exc
        public_key = self._key.private_key.public_key()
        if (
            decoded.message.kid != self._key.kid
            or not verify1(decoded.message, public_key)
            or decoded.message.payload != payload
            or _plain(decoded.claims) != _plain(dict(claims))
        ):
            raise SealError("payload_mismatch", "the seal does not read back as the claims")


def decode_seal(text: str) -> DecodedSeal:
    """Parse a seal text without verifying it: the full URL or only the digits after "#".

    Surrounding whitespace (zbarimg prints a trailing newline) is ignored.
    Raises `SealError` with reason "too_large" (over `MAX_DIGITS` digits or
    `MAX_INFLATED_BYTES` inflated) or "malformed".
    """
    digits = text.strip()
    if "#" in digits:
        digits = digits.split("#", 1)[1]
    if len(digits) > MAX_DIGITS:
        raise SealError("too_large", f"{len(digits)} digits, at most {MAX_DIGITS} accepted")
    if not _DIGITS_RE.fullmatch(digits) or len(digits) < 2:
        raise SealError("malformed", "the seal must be a flag digit followed by digits")
    flag, number = digits[0], digits[1:]
    if flag not in (_FLAG_DEFLATED, _FLAG_PLAIN) or number[0] == "0":
        raise SealError("malformed", "unknown flag digit or non-canonical number")
    raw = _digits_to_bytes(number)
    if not raw.startswith(_SENTINEL):
        raise SealError("malformed", "the sentinel byte is missing")
    body = raw[len(_SENTINEL) :]
    cose = _inflate(body) if flag == _FLAG_DEFLATED else body
    if len(cose) > MAX_INFLATED_BYTES:
        raise SealError("too_large", "the COSE message is too large")
    if _to_transport(cose) != digits:
        # One message, one text: a plain copy, another DEFLATE level or stray bits would let
        # the same seal circulate as several texts.
        raise SealError("malformed", "the seal text is not in its canonical encoding")
    message = decode1(cose)
    return DecodedSeal(
        compressed=flag == _FLAG_DEFLATED,
        cose=cose,
        message=message,
        claims=_decode_claims(message.payload),
    )


def verify_seal(text: str, trust: TrustList) -> SealReport:
    """Decode `text` and verify it against every trusted key with its kid; never raises
    `SealError` (the reason is in the report)."""
    try:
        decoded = decode_seal(text)
    except SealError as exc:
        return SealReport(ok=False, reason=exc.reason)
    kid = decoded.message.kid
    candidates = trust.keys_for(kid)
    if not candidates:
        return SealReport(ok=False, reason="unknown_kid", kid=kid.hex())
    for entry in candidates:
        if verify1(decoded.message, entry.public_key):
            if not _issued_in_window(decoded.claims, entry):
                return SealReport(ok=False, reason="outside_window", kid=kid.hex())
            return SealReport(
                ok=True,
                reason=None,
                kid=kid.hex(),
                claims=_plain(decoded.claims),
                signed_by=entry.subject,
            )
    return SealReport(ok=False, reason="bad_signature", kid=kid.hex())


def _issued_in_window(claims: Mapping[int, Any], entry: TrustEntry) -> bool:
    """A seal must claim an issue time (`iat`, CWT key 6) inside its key's signing window, so a
    retired or compromised key cannot vouch for new seals."""
    iat = claims.get(6)
    if type(iat) is not int:
        return False
    return entry.not_before.timestamp() <= iat <= entry.not_after.timestamp()


def _encode_claims(claims: Mapping[int, Any]) -> bytes:
    if not isinstance(claims, Mapping) or not claims:
        raise SealError("malformed", "claims must be a non-empty map")
    if not all(type(key) is int for key in claims):
        raise SealError("malformed", "claim keys must be integers (CWT)")
    try:
        return cbor2.dumps(dict(claims), canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise SealError("malformed", f"claims cannot be encoded as CBOR: {exc}") from exc


def _decode_claims(payload: bytes) -> dict[int, Any]:
    claims = strict_loads(payload)
    if not isinstance(claims, Mapping) or not all(type(key) is int for key in claims):
        raise SealError("malformed", "the payload must be a CBOR map with integer keys")
    return dict(claims)


def _to_transport(cose: bytes) -> str:
    compressor = zlib.compressobj(level=9, wbits=-15)
    deflated = compressor.compress(cose) + compressor.flush()
    if len(deflated) < len(cose):
        return _FLAG_DEFLATED + _int_to_digits(int.from_bytes(_SENTINEL + deflated, "big"))
    return _FLAG_PLAIN + _int_to_digits(int.from_bytes(_SENTINEL + cose, "big"))


def _inflate(data: bytes) -> bytes:
    out = _raw_inflate(data)
    if not _padding_bits_are_zero(data, out):
        raise SealError("malformed", "non-zero padding bits after the DEFLATE data")
    return out


def _raw_inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=-15)
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise SealError("malformed", f"invalid DEFLATE data: {exc}") from exc
    if len(out) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise SealError("too_large", f"inflates beyond {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise SealError("malformed", "truncated DEFLATE data or bytes after it")
    return out


def _padding_bits_are_zero(data: bytes, inflated: bytes) -> bool:
    # DEFLATE ends mid-byte; inflaters ignore the unused high bits of the last byte. Changing
    # them (e.g. the last digit of the text) would give a different text that still verifies,
    # so the unused bits must be zero, as every compressor writes them. Find how many low bits
    # are used: the fewest that still inflate to the same output.
    if not data:
        return True
    last = data[-1]
    for used in range(1, 8):
        kept = last & ((1 << used) - 1)
        if kept == last:
            return True
        try:
            same = _raw_inflate(data[:-1] + bytes([kept])) == inflated
        except SealError:
            same = False
        if same:
            return False
    return True


def _int_to_digits(number: int) -> str:
    if number < _CHUNK:
        return str(number)
    high, low = divmod(number, _CHUNK)
    return _int_to_digits(high) + str(low).zfill(_CHUNK_DIGITS)


def _digits_to_bytes(digits: str) -> bytes:
    number = 0
    for start in range(0, len(digits), _CHUNK_DIGITS):
        chunk = digits[start : start + _CHUNK_DIGITS]
        number = number * 10 ** len(chunk) + int(chunk)
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _plain(value: Any) -> Any:
    """cbor2 6 returns frozendicts and tuples inside tags; give plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return [_plain(v) for v in value]
    return value
