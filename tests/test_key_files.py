"""Key files beyond plain PEM: a PKCS#12 signer (key, certificate and chain in one file) and
password-protected PEM keys, the password from PRAMAAN_KEY_PASSWORD only.

Each signs a real PDF that pdfsig (poppler, NSS) and pyHanko accept; a missing or wrong
password is refused by name at load, by `pramaan keys check`, and never shown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from issuer.errors import ConfigError
from issuer.runtime import signer_config
from issuer.settings import Settings
from signing import rotation
from signing.config import SignerConfig
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import KeyMaterialMissing, KeyPasswordError, SigningError
from signing.file_backend import FileBackend
from signing.key_check import KeyCheck, check_keys
from signing.key_files import load_pem_private_key
from signing.keyring import Keyring
from signing.seal import verify_seal
from signing.validate import validate_pdf
from tests.test_signing_seal import realistic_claims
from tests.test_signing_support import pdfsig_report, typst_pdf

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Sh0nitPune-2026!"
ENV = "PRAMAAN_KEY_PASSWORD"
BASE_URL = "https://verify.example.test"


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def write_pkcs12(pki: DevPki, path: Path, password: str | None = PASSWORD, *,
                 with_cert: bool = True) -> Path:
    """The dev signer's key, certificate and chain (intermediate and root) in one file."""
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", load_pem_private_key(pki.signer_key),
        _cert(pki.signer_cert) if with_cert else None,
        [_cert(pki.ca_cert), _cert(pki.root_cert)], encryption))
    return path


def write_encrypted_pem(source: Path, path: Path, form: str, password: str = PASSWORD) -> Path:
    """`source`'s key as an encrypted PEM: PKCS#8, or OpenSSL's traditional form."""
    formats = {"pkcs8": serialization.PrivateFormat.PKCS8,
               "traditional": serialization.PrivateFormat.TraditionalOpenSSL}
    path.write_bytes(load_pem_private_key(source).private_bytes(
        serialization.Encoding.PEM, formats[form],
        serialization.BestAvailableEncryption(password.encode())))
    return path


def _signs_and_validates(config: SignerConfig, pki: DevPki, tmp_path: Path) -> None:
    keyring = Keyring.from_config(config, verify_base_url=BASE_URL)
    try:
        signed = keyring.pades.sign(typst_pdf(), reason="key file test", location="Pune")
    finally:
        keyring.close()
    report = validate_pdf(signed, [pki.root_cert])
    assert report.ok, report.reason
    assert report.signer is not None and "CN=Pramaan Dev Document Signer" in report.signer
    pdf_path = tmp_path / "signed.pdf"
    pdf_path.write_bytes(signed)
    output = pdfsig_report(pdf_path, pki.root_cert, tmp_path / "nss")
    assert "Signature is Valid" in output, output
    assert "Certificate is Trusted" in output, output


def test_a_pkcs12_signer_brings_its_certificate_and_chain(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    p12 = write_pkcs12(pki, tmp_path / "signer.p12")
    absent = tmp_path / "absent"
    # Nothing but the .p12 names the signer: its certificate and chain files are never read.
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), key_path=p12,
                                 cert_path=absent / "signer.crt",
                                 chain_paths=(absent / "ca.crt",))

    backend = FileBackend.load(config)

    assert backend.certificate == _cert(pki.signer_cert)
    assert backend.chain == (_cert(pki.ca_cert),)  # the root stays out of the signature
    _signs_and_validates(config, pki, tmp_path)


def test_the_pkcs12_chain_is_what_makes_the_signer_trusted(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the intermediate in the file (and no chain file read), the signer is refused.
    monkeypatch.setenv(ENV, PASSWORD)
    bare = tmp_path / "bare.p12"
    bare.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", load_pem_private_key(pki.signer_key), _cert(pki.signer_cert), None,
        serialization.BestAvailableEncryption(PASSWORD.encode())))
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), key_path=bare)

    with pytest.raises(SigningError) as refused:
        Keyring.from_config(config, verify_base_url=BASE_URL)

    assert refused.value.code == "signer_untrusted"


@pytest.mark.parametrize("form", ["pkcs8", "traditional"])
def test_an_encrypted_pem_signer_key_signs_with_the_password_from_the_environment(
        form: str, pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    key = write_encrypted_pem(pki.signer_key, tmp_path / "signer.key", form)
    assert b"ENCRYPTED" in key.read_bytes()
    _signs_and_validates(dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                             key_path=key), pki, tmp_path)


def test_an_encrypted_or_pkcs12_seal_key_seals(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The variable the configuration names (not the default one) holds the password.
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("PMC_SEAL_PASS", PASSWORD)
    encrypted = write_encrypted_pem(pki.seal_key, tmp_path / "seal.key", "pkcs8")
    p12 = tmp_path / "seal.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"seal", load_pem_private_key(pki.seal_key), _cert(pki.seal_cert), None,
        serialization.BestAvailableEncryption(PASSWORD.encode())))
    for path in (encrypted, p12):
        config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                     seal_key_path=path, key_password_env="PMC_SEAL_PASS")
        keyring = Keyring.from_config(config, verify_base_url=BASE_URL)
        keyring.close()
        report = verify_seal(keyring.sealer.seal(realistic_claims()), keyring.seal_trust)
        assert report.ok, report.reason


PasswordCase = Callable[[DevPki, Path, str | None], Path]
FORMS: dict[str, PasswordCase] = {
    "pkcs12": lambda pki, tmp, pw: write_pkcs12(pki, tmp / "signer.p12", pw),
    "pem-pkcs8": lambda pki, tmp, pw: write_encrypted_pem(pki.signer_key, tmp / "s.key",
                                                          "pkcs8", pw or ""),
    "pem-traditional": lambda pki, tmp, pw: write_encrypted_pem(pki.signer_key, tmp / "t.key",
                                                                "traditional", pw or ""),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_missing_or_wrong_password_is_refused_by_name_and_never_shown(
        form: str, pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                 key_path=FORMS[form](pki, tmp_path, PASSWORD))
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(KeyPasswordError) as missing:
        FileBackend.load(config)
    assert missing.value.code == "key_password_missing"
    assert f"${ENV}" in str(missing.value) and str(config.key_path) in str(missing.value)

    monkeypatch.setenv(ENV, "not-" + PASSWORD)
    with pytest.raises(KeyPasswordError) as wrong:
        FileBackend.load(config)
    assert wrong.value.code == "key_password_wrong"
    assert f"${ENV}" in str(wrong.value)
    assert PASSWORD not in str(wrong.value) and PASSWORD not in repr(wrong.value.__cause__)

    # Another variable, named in the configuration, holds it instead.
    monkeypatch.setenv("PMC_SIGNER_PASS", PASSWORD)
    named = FileBackend.load(dataclasses.replace(config, key_password_env="PMC_SIGNER_PASS"))
    assert named.certificate == _cert(pki.signer_cert)


def test_a_plain_pem_key_loads_whether_or_not_a_password_is_set(
        pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SignerConfig.from_keys_dir(pki.keys_dir)
    monkeypatch.delenv(ENV, raising=False)
    FileBackend.load(config)
    monkeypatch.setenv(ENV, PASSWORD)  # for another file (the seal's, say): harmless here
    FileBackend.load(config)


def test_a_pkcs12_file_without_a_certificate_is_refused(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), key_path=write_pkcs12(
        pki, tmp_path / "key-only.pfx", with_cert=False))
    with pytest.raises(KeyMaterialMissing) as refused:
        FileBackend.load(config)
    assert refused.value.code == "key_material_missing"
    assert "must hold the private key and its certificate" in str(refused.value)


def _named(checks: list[KeyCheck]) -> dict[str, KeyCheck]:
    return {check.name: check for check in checks}


def test_keys_check_reports_the_password_and_the_pkcs12_chain(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                 key_path=write_pkcs12(pki, tmp_path / "signer.p12"),
                                 chain_paths=(tmp_path / "absent.crt",))
    monkeypatch.setenv(ENV, "wrong")
    bad = _named(check_keys(config))["document signer"]
    assert not bad.ok and bad.detail.endswith("[key_password_wrong]")
    assert f"${ENV}" in bad.detail

    monkeypatch.setenv(ENV, PASSWORD)
    named = _named(check_keys(config))
    assert all(check.ok for check in named.values()), [c for c in named.values() if not c.ok]
    ca = _cert(pki.ca_cert).subject.rfc4514_string()
    assert named[f"chain certificate {ca} validity"].detail.startswith("valid until")
    assert not any(name.startswith("chain certificate absent") for name in named)
    assert named["test signature"].ok


def _pramaan(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PRAMAAN_", "DATABASE"))}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**clean, "PRAMAAN_HOME": str(home), **env})


def test_the_service_takes_its_key_files_from_the_environment(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path / "keys")
    (tmp_path / "vault").mkdir()
    p12 = write_pkcs12(pki, tmp_path / "vault" / "signer.p12")
    seal = write_encrypted_pem(pki.seal_key, tmp_path / "vault" / "seal.key", "pkcs8")
    files = {"PRAMAAN_SIGNER_KEY_FILE": str(p12), "PRAMAAN_SEAL_KEY_FILE": str(seal)}

    config = signer_config(Settings.from_env({"PRAMAAN_HOME": str(tmp_path), **files}))
    assert (config.key_path, config.seal_key_path) == (p12, seal)

    good = _pramaan(tmp_path, "keys", "check", **files, PRAMAAN_KEY_PASSWORD=PASSWORD)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok   document signer: CN=Pramaan Dev Document Signer" in good.stdout
    without = _pramaan(tmp_path, "keys", "check", **files)
    assert without.returncode == 1
    lines = without.stdout.splitlines()
    assert any(line.startswith("BAD  document signer: ") and
               line.endswith("[key_password_missing]") for line in lines), without.stdout
    assert any(line.startswith("BAD  seal key: ") and line.endswith("[key_password_missing]")
               for line in lines), without.stdout


def test_a_key_file_elsewhere_is_not_rotated_and_not_with_a_token(
        pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                 key_path=write_pkcs12(pki, tmp_path / "signer.p12"))
    with pytest.raises(SigningError) as refused:
        rotation.stage(pki.keys_dir, dt.datetime.now(dt.UTC), config=config,
                       verify_base_url=BASE_URL)
    assert refused.value.code == "invalid_rotation"
    assert "install the new key file in its place" in str(refused.value)
    assert not (pki.keys_dir / "next").exists()
    with pytest.raises(ConfigError, match="PRAMAAN_SIGNER_KEY_FILE"):
        Settings.from_env({"PRAMAAN_HOME": str(tmp_path), "PRAMAAN_SIGNER_BACKEND": "pkcs11",
                           "PRAMAAN_PKCS11_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
                           "PRAMAAN_SIGNER_KEY_FILE": str(tmp_path / "signer.p12")}).check()
