"""Linked accounts' OAuth tokens sealed at rest (AES-256-GCM), and the applicant's link tokens.

One key, PRAMAAN_DIGILOCKER_TOKEN_KEY (hex or base64, at least 32 bytes), is stretched by HKDF
into two keys for two purposes, so a link token can never be mistaken for a sealed OAuth token or
the reverse. In development without it, a key is generated once into keys_dir (as the Aadhaar
HMAC key is); in production without it, linking and token use refuse with config_invalid.

A sealed token is bound to its account's digilockerid (GCM associated data): a sealed blob
copied onto another account's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from issuer.aadhaar import parse_key
from issuer.errors import ConfigError
from issuer.settings import Settings

log = logging.getLogger(__name__)
VARIABLE = "PRAMAAN_DIGILOCKER_TOKEN_KEY"
DEV_KEY_FILE = "digilocker-token.key"
_SEAL_INFO = b"pramaan digilocker oauth token seal v1"
_LINK_INFO = b"pramaan digilocker applicant link v1"
_VERSION = "v1"
_NONCE_BYTES = 12


class SealBroken(Exception):
    """A sealed token that does not open under our key for this account (tampered, moved to
    another account, or sealed under another key)."""


@dataclass(frozen=True)
class Vault:
    """The two derived keys: `seal_key` for OAuth tokens at rest, `link_key` for link tokens."""

    seal_key: bytes
    link_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        return cls.from_master(master_key(settings))

    @classmethod
    def from_master(cls, master: bytes) -> Vault:
        return cls(_derive(master, _SEAL_INFO), _derive(master, _LINK_INFO))

    def seal(self, token: dict[str, Any], digilockerid: str) -> str:
        """The authlib token dict encrypted and authenticated, bound to `digilockerid`."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(token, sort_keys=True, separators=(",", ":")).encode()
        sealed = AESGCM(self.seal_key).encrypt(nonce, plain, digilockerid.encode())
        return f"{_VERSION}.{_b64(nonce + sealed)}"

    def open(self, text: str, digilockerid: str) -> dict[str, Any]:
        """The token sealed by `seal` for this account; SealBroken otherwise."""
        version, _, body = text.partition(".")
        try:
            if version != _VERSION:
                raise SealBroken(f"unknown seal version {version!r}")
            raw = _unb64(body)
            plain = AESGCM(self.seal_key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                                  digilockerid.encode())
            token = json.loads(plain)
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise SealBroken("the sealed token does not open for this account") from exc
        if not isinstance(token, dict):
            raise SealBroken("the sealed token is not a token")
        return token

    def link_token(self, certificate_id: str, expires_at: int) -> str:
        """`<expiry, UNIX seconds, base64url>.<HMAC-SHA256 over id and expiry, base64url>`: only
        someone handed this link can start linking a locker to this certificate's request."""
        packed = struct.pack(">Q", expires_at)
        return f"{_b64(packed)}.{_b64(self._link_mac(certificate_id, packed))}"

    def check_link_token(self, certificate_id: str, token: str, now: int) -> bool:
        """True if `token` was made by link_token for this certificate and has not expired."""
        head, _, mac = token.partition(".")
        try:
            packed, given = _unb64(head), _unb64(mac)
        except (ValueError, binascii.Error):
            return False
        if len(packed) != 8:
            return False
        if not hmac.compare_digest(given, self._link_mac(certificate_id, packed)):
            return False
        return int(struct.unpack(">Q", packed)[0]) > now

    def _link_mac(self, certificate_id: str, packed: bytes) -> bytes:
        return hmac.new(self.link_key, certificate_id.encode() + b"\0" + packed,
                        hashlib.sha256).digest()


def master_key(settings: Settings) -> bytes:
    """PRAMAAN_DIGILOCKER_TOKEN_KEY; in development without it, keys_dir/digilocker-token.key
    (generated once); in production without it, ConfigError."""
    if settings.digilocker_token_key:
        return parse_key(settings.digilocker_token_key, VARIABLE)
    if not settings.development:
        raise ConfigError(f"{VARIABLE} is not set: in production linking DigiLocker accounts "
                          "needs the key that seals their tokens (`openssl rand -hex 32`)")
    return _dev_key(settings.keys_dir)


def _dev_key(keys_dir: Path) -> bytes:
    """Created once (0600, hex), linked into place so two processes agree on one key."""
    path = keys_dir / DEV_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        tmp = keys_dir / f".{DEV_KEY_FILE}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)
                log.info("generated the development DigiLocker token key %s", path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    return parse_key(path.read_text(encoding="ascii"), str(path))


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_at_startup(settings: Settings) -> None:
    """Refuse a malformed PRAMAAN_DIGILOCKER_TOKEN_KEY before anything is served or run; warn
    when production links accounts (DIGILOCKER_BASE_URL set) without one: linking, and pushes
    to linked accounts, are refused (config_invalid) until it is set."""
    if settings.digilocker_token_key:
        parse_key(settings.digilocker_token_key, VARIABLE)
    elif not settings.development and settings.digilocker_base_url:
        log.warning("%s is not set: DigiLocker accounts cannot be linked or pushed to until it "
                    "is (`openssl rand -hex 32`)", VARIABLE)
