"""Aadhaar numbers are never kept in clear: the last four digits (for display) and an HMAC-SHA256
under a key from the environment (for matching a person across records, later DigiLocker).

The number is taken out of the request right after validation, so it never reaches the stored
request, the seal, the PDF, the audit chain or a job. The key is read only when a request carries
an Aadhaar number: a production service without the key still issues everything else, and refuses
(config_invalid) only those requests, as its startup log warned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from issuer.errors import ConfigError, FieldError, ValidationFailed
from issuer.models import Certificate
from issuer.settings import Settings
from issuer.verhoeff import is_valid

log = logging.getLogger(__name__)
VARIABLE = "PRAMAAN_AADHAAR_HMAC_KEY"
DEV_KEY_FILE = "aadhaar-hmac.key"
MIN_KEY_BYTES = 32
FIELD = "aadhaar"
# Twelve ASCII digits, together or written 4-4-4 with single spaces.
WRITTEN = re.compile(r"[0-9]{4}( ?)[0-9]{4}\1[0-9]{4}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")

# The key itself, or a function that reads it when (and only when) it is needed.
KeySource = bytes | Callable[[], bytes]


def normalise(number: str) -> str:
    """The 12 digits of an Aadhaar number as written (4-4-4 with spaces, or not)."""
    return number.replace(" ", "")


def number_problem(value: str) -> tuple[str, str] | None:
    """(code, message) for what is wrong with an Aadhaar number as written, or None. The message
    never repeats the value."""
    if not WRITTEN.fullmatch(value):
        return "format", "must be 12 digits, together or written 4-4-4 with spaces"
    if value[0] in "01":
        return "format", "an Aadhaar number never starts with 0 or 1"
    if not is_valid(normalise(value)):
        return "checksum", ("is not a valid Aadhaar number (its check digit does not match; "
                            "look for a mistyped or swapped digit)")
    return None


def match_aadhaar(number: str, key: bytes) -> str:
    """The hex HMAC-SHA256 of the normalised 12 digits: what is stored, and what a lookup
    (DigiLocker matching, a duplicate search) compares against."""
    digits = normalise(number)
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        raise ValueError("an Aadhaar number is 12 digits")
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()


def take_aadhaar(request: Mapping[str, Any],
                 key: KeySource) -> tuple[dict[str, Any], str | None, str | None]:
    """(the request without `applicant.aadhaar`, the last four digits, the hex HMAC).

    Call it on a validated request. Without an Aadhaar number the key is never read and the last
    two are None; an empty value is dropped as if absent. A number the type's validator let
    through unchecked is still refused (ValidationFailed), never hashed or kept."""
    applicant = request.get("applicant")
    if not isinstance(applicant, Mapping) or FIELD not in applicant:
        return dict(request), None, None
    number = applicant[FIELD]
    rest = {k: v for k, v in applicant.items() if k != FIELD}
    clean = {**request, "applicant": rest}
    if number is None or (isinstance(number, str) and not number.strip()):
        return clean, None, None
    problem = number_problem(number) if isinstance(number, str) else ("type", "must be a string")
    if problem is not None:
        raise ValidationFailed([FieldError(f"applicant.{FIELD}", *problem)])
    digest = match_aadhaar(number, key() if callable(key) else key)
    return clean, normalise(number)[-4:], digest


def keep_aadhaar(record: Certificate, request: Mapping[str, Any],
                 settings: Settings | None) -> dict[str, Any]:
    """`request` without its Aadhaar number, whose last four digits and HMAC go to `record`.

    For a request that replaces another's fields (an amendment): one without an Aadhaar number
    keeps the record's earlier one, since the number was never shown back to be resent."""
    clean, last4, digest = take_aadhaar(request, key_source(settings))
    if last4 is not None:
        record.aadhaar_last4, record.aadhaar_hmac = last4, digest
    return clean


def key_source(settings: Settings | None) -> Callable[[], bytes]:
    """The key of `settings`, read on first call; without settings, a ConfigError (a caller that
    cannot say where the key is must not accept an Aadhaar number)."""
    def read() -> bytes:
        if settings is None:
            raise ConfigError(f"no settings to read {VARIABLE} from: this caller cannot accept "
                              "an Aadhaar number")
        return aadhaar_key(settings)
    return read


def aadhaar_key(settings: Settings) -> bytes:
    """PRAMAAN_AADHAAR_HMAC_KEY (hex or base64, at least 32 bytes). In development without it, a
    key generated once into keys_dir/aadhaar-hmac.key; in production without it, ConfigError."""
    if settings.aadhaar_hmac_key:
        return parse_key(settings.aadhaar_hmac_key, VARIABLE)
    if not settings.development:
        raise ConfigError(
            f"{VARIABLE} is not set: in production (PRAMAAN_ENV=production) a request carrying "
            "an Aadhaar number needs the HMAC key (32 random bytes, hex or base64; "
            "`openssl rand -hex 32`)"
        )
    return dev_key(settings.keys_dir)


def parse_key(text: str, source: str) -> bytes:
    """Hex (an even number of hex digits) or else base64 (standard or URL-safe, padded or not),
    at least 32 bytes. Hex is tried first: write base64 keys with their padding to be sure."""
    value = text.strip()
    try:
        if _HEX.fullmatch(value):
            key = bytes.fromhex(value)
        else:
            padded = value + "=" * (-len(value) % 4)
            key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} must be hex or base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{source} must hold at least {MIN_KEY_BYTES} bytes, it holds "
                          f"{len(key)} (`openssl rand -hex 32`)")
    return key


def dev_key(keys_dir: Path) -> bytes:
    """keys_dir/aadhaar-hmac.key, created once (0600, hex) by whichever process needs it first.

    The file is written under a private name and linked into place, so two processes starting
    together agree on one key and neither reads a half-written file."""
    path = keys_dir / DEV_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        tmp = keys_dir / f".{DEV_KEY_FILE}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
            try:
                os.link(tmp, path)
                log.info("generated the development Aadhaar HMAC key %s", path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    return parse_key(path.read_text(encoding="ascii"), str(path))


def check_at_startup(settings: Settings) -> None:
    """Refuse a malformed key before anything is served; warn when production has none (the
    service runs, and refuses only requests that carry an Aadhaar number)."""
    if settings.aadhaar_hmac_key:
        parse_key(settings.aadhaar_hmac_key, VARIABLE)
    elif not settings.development:
        log.warning("%s is not set: requests carrying an Aadhaar number will be refused "
                    "(config_invalid) until it is", VARIABLE)
