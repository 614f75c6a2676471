"""Signer certificates outside their validity: the service refuses to start with one (clear code
`certificate_not_valid`, for the app, the CLI and the seal key), and a PDF signed by a signer
whose certificate has expired does not validate. Real keys from the dev CA, real PDFs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from api import create_app
from issuer.verify import verify_pdf
from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import SigningError
from signing.file_backend import FileBackend, LoadedKeySigner, load_pem_certificate
from signing.pades import PadesSigner
from signing.seal import SealKey
from signing.validate import validate_pdf
from tests.conftest import ROOT, SAMPLES, make_settings, serve
from tests.fixture_scope import shared
from tests.test_signing_support import minimal_pdf

NOW = dt.datetime.now(dt.UTC)
EXPIRED = (NOW - dt.timedelta(days=3 * 365), NOW - dt.timedelta(days=365))
NOT_YET = (NOW + dt.timedelta(days=30), NOW + dt.timedelta(days=5 * 365))


def reissue(pki: DevPki, cert_path: Path, validity: tuple[dt.datetime, dt.datetime]) -> bytes:
    """The certificate at `cert_path` (same key, subject and extensions) issued again by the dev
    CA for another validity period, as PEM."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    ca = load_pem_certificate(pki.ca_cert)
    old = load_pem_certificate(cert_path)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(validity[0]).not_valid_after(validity[1]))
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    new = builder.sign(ca_key, hashes.SHA256())
    assert new.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return new.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope=shared("module"))
def expired_keys(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A complete dev PKI whose document-signer certificate expired a year ago."""
    pki = ensure_dev_pki(tmp_path_factory.mktemp("expired"))
    pki.signer_cert.write_bytes(reissue(pki, pki.signer_cert, EXPIRED))
    return pki


def test_backend_refuses_an_expired_or_not_yet_valid_signer(expired_keys: DevPki,
                                                           tmp_path: Path) -> None:
    config = SignerConfig.from_keys_dir(expired_keys.keys_dir)
    with pytest.raises(SigningError, match="valid only from") as caught:
        load_backend(config)
    assert caught.value.code == "certificate_not_valid"
    assert "Document Signer" in str(caught.value)

    early = tmp_path / "early.crt"
    early.write_bytes(reissue(expired_keys, expired_keys.signer_cert, NOT_YET))
    with pytest.raises(SigningError) as caught:
        load_backend(dataclasses.replace(config, cert_path=early))
    assert caught.value.code == "certificate_not_valid"


def test_control_the_same_key_with_a_current_certificate_loads(expired_keys: DevPki,
                                                               tmp_path: Path) -> None:
    current = tmp_path / "current.crt"
    current.write_bytes(reissue(expired_keys, expired_keys.signer_cert,
                                (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30))))
    config = dataclasses.replace(SignerConfig.from_keys_dir(expired_keys.keys_dir),
                                 cert_path=current)
    assert load_backend(config).certificate.not_valid_after_utc > NOW


def test_an_expired_seal_certificate_is_refused(expired_keys: DevPki, tmp_path: Path) -> None:
    seal = tmp_path / "seal.crt"
    seal.write_bytes(reissue(expired_keys, expired_keys.seal_cert, EXPIRED))
    with pytest.raises(SigningError) as caught:
        SealKey.load(expired_keys.seal_key, seal)
    assert caught.value.code == "certificate_not_valid"


def test_the_app_refuses_to_start_with_an_expired_signer(expired_keys: DevPki, tmp_path: Path,
                                                        sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, expired_keys.keys_dir)
    with pytest.raises(SigningError) as caught:
        create_app(settings)
    assert caught.value.code == "certificate_not_valid"


def test_pramaan_refuses_to_start_with_an_expired_signer(expired_keys: DevPki,
                                                        tmp_path: Path) -> None:
    shutil.copytree(expired_keys.keys_dir, tmp_path / "keys",
                    ignore=shutil.ignore_patterns(".devpki*"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "PRAMAAN_KEYS_DIR", "PRAMAAN_STORE_DIR")}
    env["PRAMAAN_HOME"] = str(tmp_path)

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)

    done = pramaan("issue", "--data", str(SAMPLES / "birth-1.json"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to start" in done.stderr and "certificate_not_valid" in done.stderr


def test_a_pdf_signed_by_an_expired_signer_does_not_validate(
    expired_keys: DevPki, tmp_path: Path, sqlite_url: str
) -> None:
    # What a signer that skipped the startup check would produce: signed while the certificate
    # was valid (by its claimed time), checked now that it has expired.
    key = serialization.load_pem_private_key(expired_keys.signer_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = load_pem_certificate(expired_keys.signer_cert)
    chain = [load_pem_certificate(expired_keys.ca_cert)]
    backend = FileBackend(signer=LoadedKeySigner(key, certificate, chain), certificate=certificate)
    signed = PadesSigner(backend).sign(minimal_pdf(), reason="r", location="Pune",
                                       signing_time=EXPIRED[0] + dt.timedelta(days=30))

    report = validate_pdf(signed, [expired_keys.root_cert])
    assert (report.ok, report.reason) == (False, "untrusted")

    # Control: the same signature with a current certificate for the same key validates.
    current = x509.load_pem_x509_certificate(reissue(
        expired_keys, expired_keys.signer_cert,
        (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30))))
    fresh = FileBackend(signer=LoadedKeySigner(key, current, chain), certificate=current)
    assert validate_pdf(PadesSigner(fresh).sign(minimal_pdf(), reason="r", location="Pune"),
                        [expired_keys.root_cert]).ok

    # And the issuer's own verification (trusting that root) says why it is not genuine.
    for live in serve(make_settings(tmp_path, sqlite_url, _trusting(expired_keys, tmp_path))):
        verdict = verify_pdf(live.runtime, signed).as_dict()
        assert verdict["genuine"] is False
        assert verdict["reason"] == "pdf_signature: untrusted"


def _trusting(expired: DevPki, tmp_path: Path) -> Path:
    """A keys folder whose signer is current but which trusts the same root as `expired`."""
    keys = tmp_path / "trusting-keys"
    shutil.copytree(expired.keys_dir, keys, ignore=shutil.ignore_patterns(".devpki*"))
    (keys / "signer.crt").write_bytes(reissue(
        expired, expired.signer_cert, (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30))))
    return keys
