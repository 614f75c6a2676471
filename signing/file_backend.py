"""File backend: key material in files, loaded once at startup and kept as key objects.

The signer key is a PEM file (encrypted or not) beside the PEM certificate and chain, or a
PKCS#12 file holding key, certificate and chain (signing/key_files.py). Also holds the PEM
loading and certificate checks shared by the seal key and the trust list, so
every key and certificate in `signing/` is read and checked the same way.

pyHanko's stock `SimpleSigner.sign_raw` re-parses the DER private key (with OpenSSL's RSA key
check) for every signature, 75-90 % of RSA signing time (SIGNING.md, trap 1). `LoadedKeySigner`
signs with the key object parsed once instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from signing.cms_attributes import EncodedSigningCertificateMixin
from signing.config import SignerConfig
from signing.errors import BadKeyUsage, KeyCertMismatch, KeyMaterialMissing, SigningError
from signing.key_files import PrivateKey, load_key_file, read_file

DOCUMENT_SIGNER_USAGE: Final = ("digital_signature", "content_commitment")
"""keyUsage bits a PDF signer certificate needs (content_commitment is nonRepudiation)."""

_USAGE_NAMES: Final = {
    "digital_signature": "digitalSignature",
    "content_commitment": "nonRepudiation",
}


def load_pem_certificate(path: Path, what: str = "certificate") -> x509.Certificate:
    """Load one PEM certificate (the first one if the file holds several)."""
    return load_pem_certificates(path, what)[0]


def load_pem_certificates(path: Path, what: str = "certificate") -> list[x509.Certificate]:
    """Load every PEM certificate in a file; at least one must be present."""
    data = read_file(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyMaterialMissing(f"{what} {path} holds no valid PEM certificate") from exc
    return certs


def require_key_matches(key: PrivateKey, cert: x509.Certificate, what: str) -> None:
    """Raise `KeyCertMismatch` unless `key` is the private half of `cert`'s public key."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise KeyCertMismatch(
            f"{what}: the private key does not match the certificate "
            f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"
        )


def require_end_entity(cert: x509.Certificate, usages: Iterable[str], what: str) -> None:
    """Raise `BadKeyUsage` unless `cert` is an end entity (not a CA) with every keyUsage bit
    in `usages` (`cryptography` KeyUsage attribute names, e.g. "content_commitment")."""
    subject = cert.subject.rfc4514_string()
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise BadKeyUsage(f"{what}: {subject} is a CA certificate, not an end entity")
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise BadKeyUsage(f"{what}: {subject} has no keyUsage extension") from exc
    missing = [_USAGE_NAMES.get(u, u) for u in usages if not getattr(key_usage, u)]
    if missing:
        raise BadKeyUsage(f"{what}: {subject} lacks keyUsage {', '.join(missing)}")


def require_valid_now(cert: x509.Certificate, what: str) -> None:
    """Raise `SigningError` (code "certificate_not_valid") unless `cert` is within its
    validity period now: we must never sign with an expired or not yet valid certificate."""
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SigningError(
            f"{what}: {cert.subject.rfc4514_string()} is valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            code="certificate_not_valid",
        )


def to_asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    """Convert a `cryptography` certificate to the asn1crypto form pyHanko works with, parsed
    through. asn1crypto parses a loaded value lazily, on first access, and two threads doing
    so at once can see a half-built part (worker threads sharing the signer's certificate
    failed a signature with "No field numbered 1 is present in this NameTypeAndValue"); once
    parsed, a value is only read (0.4 ms a certificate, once)."""
    loaded = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    loaded.native  # noqa: B018 - parses every part now
    return loaded


class LoadedKeySigner(EncodedSigningCertificateMixin, SimpleSigner):
    """A pyHanko `SimpleSigner` that signs with a key object parsed once, never per signature.

    pyHanko 0.38 calls `async_sign_raw` (which in `SimpleSigner` delegates to `sign_raw`); both
    are overridden so no code path re-parses the key. The signing-certificate-v2 attribute is
    encoded once (see `cms_attributes`).
    """

    def __init__(
        self,
        private_key: PrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        """Wrap a loaded key, its certificate and the intermediates to embed in signatures."""
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple([to_asn1_certificate(c) for c in chain])
        der_key = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # SimpleSigner's constructor wants the asn1crypto form; only its own sign_raw (which we
        # replace) would ever read it.
        super().__init__(
            signing_cert=to_asn1_certificate(certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
            cert_registry=registry,
        )
        self._private_key = private_key

    async def async_sign_raw(
        # equivalent, next line: dry_run is never read (always a real signature): its default
        self, data: bytes, digest_algorithm: str, dry_run: bool = False  # equivalent
    ) -> bytes:
        """Sign `data` (hashing it with `digest_algorithm`) with the loaded key."""
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """Sign `data` (hashing it with `digest_algorithm`) with the loaded key."""
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            algorithm = mechanism.signature_algo
        except ValueError:
            algorithm = mechanism["algorithm"].native
        key = self._private_key
        if isinstance(key, rsa.RSAPrivateKey):
            if algorithm == "rsassa_pkcs1v15":
                return key.sign(
                    data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm)
                )
            if algorithm == "rsassa_pss":
                pss, pss_hash = process_pss_params(mechanism["parameters"])
                return key.sign(data, pss, pss_hash)
        elif algorithm == "ecdsa":
            return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        raise SigningError(
            f"signature mechanism {algorithm} does not fit a {type(key).__name__}",
            code="unsupported_key",
        )


@dataclass(frozen=True)
class FileBackend:
    """The document signer backed by key files (`SignerConfig.backend == "file"`)."""

    signer: LoadedKeySigner = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def load(cls, config: SignerConfig) -> FileBackend:
        """Load and check the signer key, certificate and chain named by `config`, once: from
        the PKCS#12 file `config.key_path` when it is one, else the key from that PEM file
        (its password, if encrypted, from `config.key_password_env`) and the certificate and
        chain from `config.cert_path` and `config.chain_paths`.

        Raises `KeyMaterialMissing` (`KeyPasswordError` for a missing or wrong password),
        `KeyCertMismatch` or `BadKeyUsage` with a clear message.
        """
        key_file = load_key_file(config.key_path, "signer key", config.key_password_env)
        if key_file.certificate is not None:  # a PKCS#12 file: its certificate and chain
            certificate, chain = key_file.certificate, key_file.chain
        else:
            certificate = load_pem_certificate(config.cert_path, "signer certificate")
            chain = tuple(load_chain(config))
        require_key_matches(key_file.key, certificate, "signer key")
        require_end_entity(certificate, DOCUMENT_SIGNER_USAGE, "signer certificate")
        require_valid_now(certificate, "signer certificate")
        return cls(signer=LoadedKeySigner(key_file.key, certificate, list(chain)),
                   certificate=certificate, chain=chain)


def load_chain(config: SignerConfig) -> list[x509.Certificate]:
    """The intermediate certificates `config` names, to embed in each signature."""
    return [cert for path in config.chain_paths
            for cert in load_pem_certificates(path, "chain certificate")]  # equivalent: label
