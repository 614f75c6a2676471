"""Development PKI shaped like India's CCA hierarchy: root -> intermediate -> end entities.

The document signer (RSA-2048, keyUsage digitalSignature + nonRepudiation) signs the PDFs; the
seal signer (EC P-256) signs the QR seal. Both are issued by the intermediate. The development
time-stamping authority (RSA-2048, extendedKeyUsage timeStamping) has a CA of its own under the
root, as a licensed TSA would: re-timestamping for long-term validation then never depends on
the document signer's CA (docs/long-term-signatures-spike.md, finding 3). Never use this in
production: in production the signer key lives in an HSM and chains to the CCA root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import KeyMaterialMissing

DEV_TSA_FILES: Final = ("tsa-ca.crt", "tsa-ca.key", "tsa.crt", "tsa.key")
"""The development time-stamping authority's files (added to sets made before it existed)."""

DEV_PKI_FILES: Final = (
    "root.crt",
    "root.key",
    "ca.crt",
    "ca.key",
    "signer.crt",
    "signer.key",
    "seal.crt",
    "seal.key",
    *DEV_TSA_FILES,
)
"""Every file of a complete dev PKI set, in `keys_dir`."""

# Present only while a freshly generated set is being moved into place: if it survives a crash,
# the partial set is ours and is regenerated; a partial set without it is someone's and is refused.
DEV_OCSP_URL: Final = "http://127.0.0.1:8000/pki/ocsp"
"""The OCSP address the development TSA's certificate names when no responder's is given
(`ensure_dev_pki`'s `ocsp_url`): no fetch is made from it in development."""
_INCOMPLETE_MARKER: Final = ".devpki-incomplete"
# The same, while only the TSA's files are added to an older set: the rest is never remade.
_TSA_INCOMPLETE_MARKER: Final = ".devpki-tsa-incomplete"
_LOCK_FILE: Final = ".devpki.lock"
_YEAR: Final = dt.timedelta(days=365)
_CLOCK_SKEW: Final = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class DevPki:
    """Paths of a complete development PKI set (PEM certificates, unencrypted PKCS#8 keys)."""

    keys_dir: Path
    root_cert: Path
    root_key: Path
    ca_cert: Path
    ca_key: Path
    signer_cert: Path
    signer_key: Path
    seal_cert: Path
    seal_key: Path
    tsa_ca_cert: Path
    tsa_ca_key: Path
    tsa_cert: Path
    tsa_key: Path

    @classmethod
    def at(cls, keys_dir: Path) -> DevPki:
        """Return the dev PKI paths inside `keys_dir` (does not check that they exist)."""
        return cls(
            keys_dir=keys_dir,
            root_cert=keys_dir / "root.crt",
            root_key=keys_dir / "root.key",
            ca_cert=keys_dir / "ca.crt",
            ca_key=keys_dir / "ca.key",
            signer_cert=keys_dir / "signer.crt",
            signer_key=keys_dir / "signer.key",
            seal_cert=keys_dir / "seal.crt",
            seal_key=keys_dir / "seal.key",
            tsa_ca_cert=keys_dir / "tsa-ca.crt",
            tsa_ca_key=keys_dir / "tsa-ca.key",
            tsa_cert=keys_dir / "tsa.crt",
            tsa_key=keys_dir / "tsa.key",
        )


def ensure_dev_pki(
    keys_dir: Path, *, organisation: str = "Pune Municipal Corporation (DEVELOPMENT)",
    ocsp_url: str | None = None,
) -> DevPki:
    """Return the dev PKI in `keys_dir`, generating the whole set first if it is absent.

    Idempotent and safe to call from several processes at once (a file lock serialises them).
    A crash while generating never leaves a half set that looks complete: files are written to
    a temporary directory and moved into place while a marker file says "incomplete".
    A partial set not left by us raises `KeyMaterialMissing` rather than being overwritten.
    With `ocsp_url` (PRAMAAN_DEV_OCSP_URL), the end entities name it as their OCSP responder
    and the CAs the root's CRL beside it (`dev_crl_url`; docker/dev_ocsp.py serves both), so
    the status a long-term signature embeds is fetched as in production; a set already made is
    left as it is.
    """
    keys_dir.mkdir(parents=True, exist_ok=True)
    with _locked(keys_dir / _LOCK_FILE):
        pki = DevPki.at(keys_dir)
        interrupted = (keys_dir / _INCOMPLETE_MARKER).exists()
        present = [name for name in DEV_PKI_FILES if (keys_dir / name).exists()]
        if not interrupted and len(present) == len(DEV_PKI_FILES) and not (
                keys_dir / _TSA_INCOMPLETE_MARKER).exists():
            return pki
        missing = sorted(set(DEV_PKI_FILES) - set(present))
        adding_tsa = (keys_dir / _TSA_INCOMPLETE_MARKER).exists()
        if not interrupted and set(missing) <= set(DEV_TSA_FILES) and (
                adding_tsa or set(missing) == set(DEV_TSA_FILES)):
            # A set made before the dev TSA existed (or whose TSA was being added when the
            # process died): its root issues the TSA's CA now; the rest is left as it is.
            _generate_into(keys_dir, _tsa_files(organisation, _now(), *_root_of(pki),
                                                ocsp_url=ocsp_url), _TSA_INCOMPLETE_MARKER)
            return pki
        if not interrupted and present:
            raise KeyMaterialMissing(
                f"incomplete dev PKI in {keys_dir}: missing {', '.join(missing)}; "
                "remove the remaining key files to regenerate the whole set"
            )
        _generate_into(keys_dir, _build_files(organisation, _now(), ocsp_url),
                       _INCOMPLETE_MARKER)
        return pki


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _root_of(pki: DevPki) -> tuple[x509.Name, rsa.RSAPrivateKey]:
    root = x509.load_pem_x509_certificate(pki.root_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.root_key.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialMissing(f"the dev root key {pki.root_key} is not an RSA key")
    return root.subject, key


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _generate_into(keys_dir: Path, files: dict[str, bytes], marker: str) -> None:
    # Staged beside the keys: the renames below stay on one filesystem, so each is atomic (a
    # tmpfs /tmp would fail them with EXDEV). The prefix only names the staging folder, which
    # the `finally` removes; only a SIGKILL would leave it behind, hidden and recognisably ours.
    staging = Path(tempfile.mkdtemp(prefix=".devpki-", dir=keys_dir))  # equivalent: prefix
    try:
        for name, data in files.items():
            _write_durably(staging / name, data, 0o600 if name.endswith(".key") else 0o644)
        # Only the marker's existence is ever read; its content and mode are not.
        _write_durably(keys_dir / marker, b"", 0o600)  # equivalent: content, mode
        _fsync_dir(keys_dir)
        for name in files:
            os.replace(staging / name, keys_dir / name)
        _fsync_dir(keys_dir)
        (keys_dir / marker).unlink()
        _fsync_dir(keys_dir)
    finally:
        # After the renames the folder is empty and goes either way; ignoring errors only
        # keeps a failed clean-up from masking the error that brought us here.
        shutil.rmtree(staging, ignore_errors=True)  # equivalent: see above


def _write_durably(path: Path, data: bytes, mode: int) -> None:
    # The mode at creation is set again by fchmod before a byte is written, so no key is ever
    # readable under a wider mode; it is kept as the first line of defence.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # equivalent: see above
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or widened what O_CREAT set
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _build_files(organisation: str, now: dt.datetime,
                 ocsp_url: str | None = None) -> dict[str, bytes]:
    # Sizes are tested (test_signing_keys); OpenSSL makes a 3072-bit key when asked for 3073
    # (and 2048 for 2049), so the n+1 mutants of these lines cannot be told apart.
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)  # equivalent
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)  # equivalent
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # equivalent
    seal_key = ec.generate_private_key(ec.SECP256R1())

    root_name = _name(organisation, "Certifying Authority", "Pramaan Dev Root CA")
    ca_name = _name(organisation, "Sub-CA", "Pramaan Dev Sub CA for Document Signer")
    signer_name = _name(
        organisation, "Birth and Death Registration", "Pramaan Dev Document Signer", pune=True
    )
    seal_name = _name(organisation, "Certificate Verification", "Pramaan Dev QR Seal", pune=True)

    # The root names no responder: it is trusted, never asked about.
    served = [_ocsp_address(ocsp_url)] if ocsp_url else []
    root = _issue(root_name, root_key.public_key(), root_name, root_key, now, 25, _ca(1))
    ca = _issue(ca_name, ca_key.public_key(), root_name, root_key, now, 20,
                _ca(0) + _root_crl_address(ocsp_url))
    signer_usage = _key_usage(digital_signature=True, content_commitment=True)
    seal_usage = _key_usage(digital_signature=True)
    signer = _issue(signer_name, signer_key.public_key(), ca_name, ca_key, now, 5,
                    _end_entity(signer_usage) + served)
    seal = _issue(seal_name, seal_key.public_key(), ca_name, ca_key, now, 5,
                  _end_entity(seal_usage) + served)
    return {
        **_tsa_files(organisation, now, root_name, root_key, ocsp_url=ocsp_url),
        "root.crt": _cert_pem(root),
        "root.key": _key_pem(root_key),
        "ca.crt": _cert_pem(ca),
        "ca.key": _key_pem(ca_key),
        "signer.crt": _cert_pem(signer),
        "signer.key": _key_pem(signer_key),
        "seal.crt": _cert_pem(seal),
        "seal.key": _key_pem(seal_key),
    }


def _tsa_files(organisation: str, now: dt.datetime, root_name: x509.Name,
               root_key: rsa.RSAPrivateKey, *, ocsp_url: str | None = None) -> dict[str, bytes]:
    tsa_ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)  # equivalent
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # equivalent
    tsa_ca_name = _name(organisation, "Sub-CA", "Pramaan Dev CA for Time Stamping")
    tsa_name = _name(organisation, "Time Stamping", "Pramaan Dev Time Stamping Authority",
                     pune=True)
    tsa_ca = _issue(tsa_ca_name, tsa_ca_key.public_key(), root_name, root_key, now, 20,
                    _ca(0) + _root_crl_address(ocsp_url))
    # RFC 3161 section 2.3: the TSA's certificate has exactly one extended key usage,
    # timeStamping, and the extension is critical.
    tsa_usage: list[_Extension] = [
        *_end_entity(_key_usage(digital_signature=True)),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
        # Where its status is asked: pyHanko's validator consults an OCSP response only for a
        # certificate that names a responder, and the newest timestamp's TSA needs current
        # status by OCSP once its CA's CRL would also speak for older, expired TSA
        # certificates (signing/long_term.py). The development deployment makes the answers
        # in process (signing/revocation.py); this is the address it would serve them at,
        # unless a responder's is given (docker/dev_ocsp.py).
        _ocsp_address(ocsp_url or DEV_OCSP_URL),
    ]
    tsa = _issue(tsa_name, tsa_key.public_key(), tsa_ca_name, tsa_ca_key, now, 10, tsa_usage)
    return {
        "tsa-ca.crt": _cert_pem(tsa_ca),
        "tsa-ca.key": _key_pem(tsa_ca_key),
        "tsa.crt": _cert_pem(tsa),
        "tsa.key": _key_pem(tsa_key),
    }


def _name(organisation: str, unit: str, common_name: str, *, pune: bool = False) -> x509.Name:
    # CCA-style subject: C=IN first, then (for end entities) state and locality, O, OU, CN.
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "IN")]
    if pune:
        attributes += [
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Maharashtra"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Pune"),
        ]
    attributes += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    return x509.Name(attributes)


_Extension = tuple[x509.ExtensionType, bool]


def _ca(path_length: int) -> list[_Extension]:
    usage = _key_usage(key_cert_sign=True, crl_sign=True)
    return [(x509.BasicConstraints(ca=True, path_length=path_length), True), (usage, True)]


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        # None and False encode the same unset bit (tested on the certificates themselves).
        key_encipherment=False,  # equivalent: see above
        data_encipherment=False,  # equivalent: see above
        key_agreement=False,  # equivalent: see above
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,  # equivalent: see above
        decipher_only=False,  # equivalent: see above
    )


def _ocsp_address(url: str) -> _Extension:
    return (x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.oid.AuthorityInformationAccessOID.OCSP,
        x509.UniformResourceIdentifier(url))]), False)


def _root_crl_address(ocsp_url: str | None) -> list[_Extension]:
    # The CAs' status by the root's CRL, served beside the responder: pyHanko's past
    # validation finds no path for an OCSP answer the root signed on its own CA's certificate.
    if not ocsp_url:
        return []
    return [(x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(dev_crl_url(ocsp_url, "root"))],
        relative_name=None, reasons=None, crl_issuer=None)]), False)]


def dev_crl_url(ocsp_url: str, ca: str) -> str:
    """Where the development OCSP responder at `ocsp_url` serves the CRL of CA `ca` (the stem
    of its files in keys/: root, ca, tsa-ca): crl/{ca}.crl beside it."""
    return urllib.parse.urljoin(ocsp_url, f"crl/{ca}.crl")


def _end_entity(usage: x509.KeyUsage) -> list[_Extension]:
    return [(x509.BasicConstraints(ca=False, path_length=None), True), (usage, True)]


def _issue(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    years: int,
    extensions: list[_Extension],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + years * _YEAR)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
