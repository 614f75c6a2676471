"""Private keys in files: PEM, password-protected PEM, and PKCS#12 (.p12/.pfx).

A key file's password is read from the environment variable `SignerConfig.key_password_env`
(PRAMAAN_KEY_PASSWORD) when the key is loaded, never from a file or the command line, and never
appears in a message. A PKCS#12 file holds the certificate (and often its chain) with the key:
the document signer then takes both from it (signing/file_backend.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from signing.errors import KeyMaterialMissing, KeyPasswordError, SigningError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

PKCS12_SUFFIXES: Final = (".p12", ".pfx")
"""File name endings read as PKCS#12; any other key file is read as PEM."""

_MIN_RSA_BITS: Final = 2048


@dataclass(frozen=True)
class KeyFile:
    """A private key read from a file, with the certificate and chain a PKCS#12 file holds
    (None and () for a PEM key, whose certificate is a file of its own)."""

    key: PrivateKey
    certificate: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()


def read_file(path: Path, what: str) -> bytes:
    """Read a key or certificate file, raising `KeyMaterialMissing` with the path if it fails."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyMaterialMissing(f"cannot read {what} {path}: {exc.strerror}") from exc


def is_pkcs12(path: Path) -> bool:
    """Whether `path` is read as a PKCS#12 file (by its name's ending)."""
    return path.suffix.lower() in PKCS12_SUFFIXES


def load_key_file(path: Path, what: str, password_env: str) -> KeyFile:
    """Load the private key in `path`: PKCS#12 by its ending, else PEM, encrypted or not.

    An encrypted PEM or a PKCS#12 file is opened with the password in the environment variable
    `password_env`. Raises `KeyMaterialMissing` (unreadable, or no key in it), `KeyPasswordError`
    (code "key_password_missing" or "key_password_wrong") or `SigningError` ("unsupported_key").
    """
    if is_pkcs12(path):
        return _load_pkcs12(path, what, password_env)
    return KeyFile(load_pem_private_key(path, what, password_env=password_env))


def load_pem_private_key(path: Path, what: str = "private key", *,
                         password_env: str | None = None) -> PrivateKey:
    """Load a PEM private key (RSA or EC) into a `cryptography` key object; an encrypted one
    only with `password_env` naming the environment variable that holds its password."""
    data = read_file(path, what)
    try:
        # cryptography says which keys are encrypted (both PEM forms, PKCS#8 and OpenSSL's
        # traditional one): a TypeError when one comes without a password.
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        password = _password(path, what, password_env)
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except ValueError as exc:
            raise KeyPasswordError(
                f"{what} {path} does not open with the password in ${password_env}: wrong "
                "password, or a damaged file", code="key_password_wrong") from exc
    except ValueError as exc:
        raise KeyMaterialMissing(f"{what} {path} is not a PEM private key") from exc
    return _supported(key, path, what)


def _load_pkcs12(path: Path, what: str, password_env: str) -> KeyFile:
    data = read_file(path, what)
    secret = os.environ.get(password_env)
    try:
        key, certificate, others = pkcs12.load_key_and_certificates(
            data, secret.encode() if secret else None)
    except ValueError as exc:
        if not secret:
            raise KeyPasswordError(
                f"{what} {path} is a PKCS#12 file that needs a password: set ${password_env} "
                "(or it is not a PKCS#12 file)",
                code="key_password_missing") from exc  # equivalent: None is the class default
        raise KeyPasswordError(
            f"{what} {path} does not open with the password in ${password_env}: wrong "
            "password, or not a PKCS#12 file", code="key_password_wrong") from exc
    if key is None or certificate is None:
        raise KeyMaterialMissing(
            f"{what} {path}: the PKCS#12 file must hold the private key and its certificate")
    # The roots stay out of the chain a signature carries: a verifier must hold its own.
    chain = tuple(cert for cert in others if cert.issuer != cert.subject)
    return KeyFile(_supported(key, path, what), certificate, chain)


def _password(path: Path, what: str, password_env: str | None) -> bytes:
    secret = os.environ.get(password_env) if password_env else None
    if not secret:
        where = f"set ${password_env}" if password_env else "no password can be given here"
        raise KeyPasswordError(f"{what} {path} is encrypted: {where}",
                               code="key_password_missing")  # equivalent: class default
    return secret.encode()


def _supported(key: object, path: Path, what: str) -> PrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningError(
            f"{what} {path}: only RSA and EC keys are supported", code="unsupported_key"
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < _MIN_RSA_BITS:
        raise SigningError(
            f"{what} {path}: RSA key of {key.key_size} bits is too short", code="unsupported_key"
        )
    return key
