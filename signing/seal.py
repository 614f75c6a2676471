"""The QR seal (QR.md): CWT-shaped claims -> COSE_Sign1 (ES256) -> optional DEFLATE -> digits.

The QR text is `f"{base_url}/v#"` followed by one flag digit ("1": the bytes are raw-DEFLATE
compressed, "0": they are not) and the decimal big integer of b"\\x01" + bytes. The 0x01 sentinel
byte keeps leading zero bytes, which a plain integer would drop, and makes the encoding
canonical: the digits never start with "0". Everything after "#" stays in the phone (a fragment
never reaches server logs), and digits let the QR use its compact numeric mode.

Verifying reads a scanned text in this order, so that nothing an attacker wrote is interpreted
before the signature is checked: digits -> bytes (bounded), inflate (capped), the COSE_Sign1
frame (hand-read, see `signing.cose.decode1`), one-text-per-seal check, kid lookup, the ES256
signature over the raw bytes, and only then the claims, with the plain CBOR decoder
(`signing.cbor_plain`), which refuses every tag, float and indefinite length.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.cbor_plain import loads_plain
from signing.cose import EcdsaKey, Sign1, decode1, sign1, verify1
from signing.errors import SealError, SigningError
from signing.file_backend import (
    load_pem_certificate,
    require_end_entity,
    require_key_matches,
    require_valid_now,
)
from signing.key_files import load_key_file
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
MAX_DIGITS: Final = 3000
"""Longest digit string accepted (flag included). Our longest seal (a birth certificate with
every sealed field at its length limit, incompressible) is about 1610 digits, and a QR much
denser than that no longer prints legibly at 38 mm; a version-40 QR could carry 7089. The cap
also bounds what an attacker's long text costs before its signature can be checked (turning
7000 digits into bytes costs about 160 us in CPython, 3000 about 36 us)."""

_FLAG_DEFLATED: Final = "1"
_FLAG_PLAIN: Final = "0"
_SENTINEL: Final = b"\x01"
_DIGITS_RE: Final = re.compile(r"[0-9]+")
# Python refuses int <-> str conversions beyond 4300 digits (CVE-2020-10735). Raising the limit
# with sys.set_int_max_str_digits is process-wide and races with other threads, so big numbers
# are converted in chunks that each stay under it.
_CHUNK_DIGITS: Final = 1000
_CHUNK: Final = 10**_CHUNK_DIGITS
_LEAF_DIGITS: Final = 600


@dataclass(frozen=True)
class SealKey:
    """The loaded P-256 seal key with its certificate; `kid` = SHA-256(cert DER)[:8]."""

    private_key: EcdsaKey = field(repr=False)
    certificate: x509.Certificate
    kid: bytes

    @classmethod
    def load(cls, key_path: Path, cert_path: Path, *,
             password_env: str = "PRAMAAN_KEY_PASSWORD") -> SealKey:  # noqa: S107 - a name
        """Load the seal key and certificate once, checking that they match, that the key is
        P-256 and that the certificate has keyUsage digitalSignature and is valid now.

        The key file is PEM, encrypted or not, or PKCS#12 (signing/key_files.py), its password
        in the environment variable `password_env`; the certificate stays `cert_path`, the one
        the trust list publishes."""
        certificate = load_pem_certificate(cert_path, "seal certificate")
        key = load_key_file(key_path, "seal key", password_env).key
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
    """A seal's transport and COSE frame, read without verifying the signature and without
    decoding the payload (`message.payload` is raw bytes; see `verify_seal` for the claims)."""

    compressed: bool
    cose: bytes
    message: Sign1


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
        # An empty query ("https://x/?") or fragment leaves urlsplit's parts empty: look at
        # the text too, or the seal link would become "https://x/?/v#..." (a query, not /v).
        if parts.query or parts.fragment or "#" in base_url or "?" in base_url:
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
        text = self._prefix + transport_text(cose)
        if len(text) - len(self._prefix) > MAX_DIGITS:
            raise SealError(
                "too_large", f"the seal needs {len(text)} characters, too many for a QR"
            )
        self._check(text, payload, claims)
        return text

    def _check(self, text: str, payload: bytes, claims: Mapping[int, Any]) -> None:
        # Check before handing out: what a verifier will read must be exactly what we signed,
        # read back the way `verify_seal` reads it (plain CBOR only).
        try:
            decoded = decode_seal(text)
            read_back = _decode_claims(decoded.message.payload)
        except SealError as exc:
            raise SealError("payload_mismatch", f"the seal does not read back: {exc}") from exc
        public_key = self._key.private_key.public_key()
        if (
            decoded.message.kid != self._key.kid
            or not verify1(decoded.message, public_key)
            or decoded.message.payload != payload
            or read_back != _plain(dict(claims))
        ):
            raise SealError("payload_mismatch", "the seal does not read back as the claims")


def decode_seal(text: str) -> DecodedSeal:
    """Read a seal text's transport and COSE frame without verifying it and without decoding
    its payload: the full URL or only the digits after "#".

    Surrounding whitespace (zbarimg prints a trailing newline) is ignored. The text must be the
    one canonical text of its COSE message (one seal, one text). Raises `SealError` with reason
    "too_large" (over `MAX_DIGITS` digits or `MAX_INFLATED_BYTES` inflated) or "malformed".
    """
    compressed, body = _read_transport(text)
    cose = _inflate(body) if compressed else body
    if len(cose) > MAX_INFLATED_BYTES:
        # Unreachable today (`_inflate` refuses more, and MAX_DIGITS bounds a plain body to
        # ~1250 bytes); kept so the bound holds whatever the transport becomes.
        raise SealError("too_large", "the COSE message is too large")  # equivalent: unreachable
    message = decode1(cose)
    if _transport_body(cose) != (compressed, body):
        # One message, one text: a plain copy, another DEFLATE level or stray padding bits
        # would let the same seal circulate as several texts.
        raise SealError("malformed", "the seal text is not in its canonical encoding")
    return DecodedSeal(compressed=compressed, cose=cose, message=message)


def verify_seal(text: str, trust: TrustList) -> SealReport:
    """Read `text`, check its ES256 signature against every trusted key with its kid, and only
    then decode its claims (plain CBOR: no tags, floats or indefinite lengths).

    Never raises `SealError`: the reason ("malformed", "too_large", "unknown_kid",
    "bad_signature", "outside_window") is in the report.
    """
    try:
        message = decode_seal(text).message
    except SealError as exc:
        return SealReport(ok=False, reason=exc.reason)
    kid = message.kid
    candidates = trust.keys_for(kid)
    if not candidates:
        return SealReport(ok=False, reason="unknown_kid", kid=kid.hex())
    signer = next((entry for entry in candidates if verify1(message, entry.public_key)), None)
    if signer is None:
        return SealReport(ok=False, reason="bad_signature", kid=kid.hex())
    try:
        claims = _decode_claims(message.payload)
    except SealError as exc:
        return SealReport(ok=False, reason=exc.reason, kid=kid.hex())
    if not _issued_in_window(claims, signer):
        return SealReport(ok=False, reason="outside_window", kid=kid.hex())
    return SealReport(ok=True, reason=None, kid=kid.hex(), claims=claims,
                      signed_by=signer.subject)


def transport_text(cose: bytes) -> str:
    """The digits a QR carries for the COSE_Sign1 `cose` (the part after "#"): the flag digit,
    then the decimal number of b"\\x01" + the bytes, raw-DEFLATE (level 9) when that is shorter.
    This is the one text `decode_seal` accepts for that message."""
    compressed, body = _transport_body(cose)
    flag = _FLAG_DEFLATED if compressed else _FLAG_PLAIN
    # equivalent, next line: "big" is int.from_bytes's default byte order (Python 3.11+)
    return flag + _int_to_digits(int.from_bytes(_SENTINEL + body, "big"))  # equivalent


def _issued_in_window(claims: Mapping[int, Any], entry: TrustEntry) -> bool:
    """A seal must claim an issue time (`iat`, CWT key 6) inside its key's signing window, so a
    retired or compromised key cannot vouch for new seals."""
    iat = claims.get(6)
    if type(iat) is not int:
        return False
    return entry.not_before.timestamp() <= iat <= entry.not_after.timestamp()


def _encode_claims(claims: Mapping[int, Any]) -> bytes:
    # `Sealer.seal` checks the iat first: empty claims have none and a non-mapping has no
    # .get, so this refusal is never reached through it.
    if not isinstance(claims, Mapping) or not claims:  # equivalent: `and` (see above)
        raise SealError("malformed", "claims must be a non-empty map")  # equivalent: unreachable
    if not all(type(key) is int for key in claims):
        raise SealError("malformed", "claim keys must be integers (CWT)")
    try:
        return cbor2.dumps(dict(claims), canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise SealError("malformed", f"claims cannot be encoded as CBOR: {exc}") from exc


def _decode_claims(payload: bytes) -> dict[int, Any]:
    """Claims of a payload whose signature has been checked, as plain dicts and lists."""
    # The messages below are never seen: `verify_seal` reports only the reason, and the claims
    # `Sealer.seal` reads back are always a map with integer keys (`_encode_claims`).
    value = loads_plain(payload)
    if not isinstance(value, dict):
        raise SealError("malformed", "the payload must be a CBOR map")  # equivalent: message
    claims: dict[int, Any] = {}
    for key, item in value.items():
        if not isinstance(key, int):
            raise SealError("malformed", "claim keys must be integers (CWT)")  # equivalent
        claims[key] = item
    return claims


def _transport_body(cose: bytes) -> tuple[bool, bytes]:
    """(compressed, bytes after the sentinel): DEFLATE at level 9 when it is shorter."""
    compressor = zlib.compressobj(level=9, wbits=-15)
    deflated = compressor.compress(cose) + compressor.flush()
    if len(deflated) < len(cose):  # equivalent: `<=` picks another of two texts at a tie
        return True, deflated
    return False, cose


def _read_transport(text: str) -> tuple[bool, bytes]:
    """(compressed, bytes after the sentinel) of a seal text; the bytes are not read yet."""
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
    # Digits without a leading zero <-> integer <-> shortest bytes is one-to-one, so only the
    # flag and the DEFLATE stream can vary for one message (checked in `decode_seal`).
    raw = _digits_to_bytes(number)
    if not raw.startswith(_SENTINEL):
        raise SealError("malformed", "the sentinel byte is missing")
    return flag == _FLAG_DEFLATED, raw[len(_SENTINEL) :]


def _inflate(data: bytes) -> bytes:
    """Raw DEFLATE, cut off after `MAX_INFLATED_BYTES`: one bounded pass. Stray padding bits
    in the last byte are caught by the canonical re-encoding check in `decode_seal`."""
    inflater = zlib.decompressobj(wbits=-15)
    try:
        # One byte past the cap tells "over" from "exactly at" it; `+ 2` would refuse the same.
        out = inflater.decompress(data, MAX_INFLATED_BYTES + 1)  # equivalent: `+ 2`
    except zlib.error as exc:
        raise SealError("malformed", f"invalid DEFLATE data: {exc}") from exc
    if len(out) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise SealError("too_large", f"inflates beyond {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise SealError("malformed", "truncated DEFLATE data or bytes after it")
    return out


def _int_to_digits(number: int) -> str:
    if number < _CHUNK:  # equivalent: `<=` (str() of 10**1000 is the same 1001 digits)
        return str(number)
    high, low = divmod(number, _CHUNK)
    return _int_to_digits(high) + str(low).zfill(_CHUNK_DIGITS)


def _digits_to_bytes(digits: str) -> bytes:
    number = _digits_to_int(digits)
    # `+ 8` adds a 0x00 byte only to a number whose first byte is >= 0x80, refused either way
    # as "the sentinel byte is missing" (ours start with 0x01).
    return number.to_bytes((number.bit_length() + 7) // 8, "big")  # equivalent: `+ 8`


def _digits_to_int(digits: str) -> int:
    # Halves joined by one multiplication each (Karatsuba in CPython) instead of one chunk at
    # a time: 7089 digits cost ~160 us instead of ~215 us, and no piece exceeds 4300 digits.
    # Any split point gives the same integer: only the cost depends on it.
    if len(digits) <= _LEAF_DIGITS:  # equivalent: `<`
        return int(digits)
    low = len(digits) // 2  # equivalent: `// 3`
    return _digits_to_int(digits[:-low]) * _power_of_ten(low) + _digits_to_int(digits[-low:])


@lru_cache(maxsize=64)
def _power_of_ten(exponent: int) -> int:
    power: int = 10**exponent
    return power


def _plain(value: Any) -> Any:
    """The claims a caller passed (maybe with tuples or frozendicts) as plain dicts and lists,
    the shapes `loads_plain` reads back."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return [_plain(v) for v in value]
    return value
