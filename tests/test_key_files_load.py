"""signing/key_files.py called directly, in this process (mutmut traces these calls): PKCS#12
and PEM key files made here with real crypto, passwords from a real environment variable.

Pins what each refusal is (its class, code and whole message, which never holds the password)
and what a PKCS#12 file gives: its key, its certificate, and its chain without the root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from signing.errors import KeyMaterialMissing, KeyPasswordError, SigningError
from signing.key_files import KeyFile, is_pkcs12, load_key_file, load_pem_private_key, read_file
from tests.fixture_scope import shared

ENV = "PMC_TEST_KEY_PASSWORD"
PASSWORD = "Kolhapur-Seal-2026!"
WHAT = "signer key"

AnyKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: AnyKey, issuer: str, issuer_key: AnyKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(issuer_key, algorithm))


class Pki:
    """A root, an intermediate it issued, and a signer the intermediate issued (EC keys)."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate("Test Root", self.root_key, "Test Root", self.root_key)
        self.ca = _certificate("Test CA", self.ca_key, "Test Root", self.root_key)
        self.cert = _certificate("Test Signer", self.key, "Test CA", self.ca_key)


@pytest.fixture(scope=shared("module"))
def test_pki() -> Pki:
    return Pki()


def _p12(path: Path, key: AnyKey | None, cert: x509.Certificate | None,
         others: list[x509.Certificate] | None = None, password: str | None = PASSWORD) -> Path:
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"k", key, cert, others, encryption))
    return path


def _pem(path: Path, key: AnyKey, form: str = "pkcs8", password: str | None = PASSWORD) -> Path:
    formats = {"pkcs8": serialization.PrivateFormat.PKCS8,
               "traditional": serialization.PrivateFormat.TraditionalOpenSSL}
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, formats[form], encryption))
    return path


def _same_key(loaded: object, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bool:
    assert isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return loaded.private_numbers() == key.private_numbers()


def _refused(path: Path, kind: type[SigningError]) -> SigningError:
    """The error `load_key_file` raises for `path`, of exactly the class `kind`."""
    with pytest.raises(SigningError) as refused:
        load_key_file(path, WHAT, ENV)
    assert type(refused.value) is kind, refused.value
    assert PASSWORD not in str(refused.value) and PASSWORD not in repr(refused.value.__cause__)
    return refused.value


@pytest.mark.parametrize("name", ["signer.p12", "signer.pfx", "SIGNER.P12", "Signer.Pfx"])
def test_a_pkcs12_file_gives_its_key_certificate_and_chain_without_the_root(
        name: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    path = _p12(tmp_path / name, test_pki.key, test_pki.cert, [test_pki.ca, test_pki.root])

    loaded = load_key_file(path, WHAT, ENV)

    assert _same_key(loaded.key, test_pki.key)
    assert loaded.certificate == test_pki.cert
    assert loaded.chain == (test_pki.ca,)


def test_a_pkcs12_file_with_only_its_certificate_has_an_empty_chain(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    loaded = load_key_file(_p12(tmp_path / "s.p12", test_pki.key, test_pki.cert), WHAT, ENV)
    assert loaded == KeyFile(loaded.key, test_pki.cert, ())


@pytest.mark.parametrize("secret", [None, ""])
def test_a_pkcs12_file_without_a_password_opens_without_one(
        secret: str | None, test_pki: Pki, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if secret is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, secret)
    path = _p12(tmp_path / "open.p12", test_pki.key, test_pki.cert, [test_pki.ca], None)
    loaded = load_key_file(path, WHAT, ENV)
    assert _same_key(loaded.key, test_pki.key) and loaded.chain == (test_pki.ca,)


@pytest.mark.parametrize("secret", [None, ""])
def test_a_pkcs12_file_without_its_password_is_refused_as_missing(
        secret: str | None, test_pki: Pki, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if secret is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, secret)
    path = _p12(tmp_path / "signer.p12", test_pki.key, test_pki.cert)

    refused = _refused(path, KeyPasswordError)

    assert refused.code == "key_password_missing"
    assert str(refused) == (f"signer key {path} is a PKCS#12 file that needs a password: "
                            f"set ${ENV} (or it is not a PKCS#12 file)")
    assert isinstance(refused.__cause__, ValueError)


def test_a_pkcs12_file_with_a_wrong_password_is_refused_as_wrong(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _p12(tmp_path / "signer.pfx", test_pki.key, test_pki.cert)
    monkeypatch.setenv(ENV, PASSWORD + "x")

    refused = _refused(path, KeyPasswordError)

    assert refused.code == "key_password_wrong"
    assert str(refused) == (f"signer key {path} does not open with the password in ${ENV}: "
                            "wrong password, or not a PKCS#12 file")
    assert isinstance(refused.__cause__, ValueError)


def test_a_file_named_p12_that_is_not_pkcs12_is_refused_by_the_password_it_had(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "not.p12"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot a PKCS#12 file\n")
    monkeypatch.delenv(ENV, raising=False)
    assert _refused(path, KeyPasswordError).code == "key_password_missing"
    monkeypatch.setenv(ENV, PASSWORD)
    assert _refused(path, KeyPasswordError).code == "key_password_wrong"


def test_a_pkcs12_file_without_its_key_or_its_certificate_is_refused(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    key_only = _p12(tmp_path / "key-only.p12", test_pki.key, None, [test_pki.ca])
    cert_only = _p12(tmp_path / "cert-only.p12", None, test_pki.cert, [test_pki.ca])
    for path in (key_only, cert_only):
        refused = _refused(path, KeyMaterialMissing)
        assert refused.code == "key_material_missing"
        assert str(refused) == (f"signer key {path}: the PKCS#12 file must hold the private "
                                "key and its certificate")


def test_a_pkcs12_file_with_an_unsupported_key_is_refused_by_name(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    edwards = ed25519.Ed25519PrivateKey.generate()
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cases = {
        _p12(tmp_path / "ed.p12", edwards, _certificate("Ed", edwards, "Ed", edwards)):
            "only RSA and EC keys are supported",
        _p12(tmp_path / "short.p12", short, _certificate("Short", short, "Test CA",
                                                           test_pki.ca_key)):
            "RSA key of 1024 bits is too short",
    }
    for path, why in cases.items():
        refused = _refused(path, SigningError)
        assert refused.code == "unsupported_key"
        assert str(refused) == f"signer key {path}: {why}"


@pytest.mark.parametrize("name", ["absent.p12", "absent.key"])
def test_an_absent_key_file_is_refused_with_its_path(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    path = tmp_path / name
    refused = _refused(path, KeyMaterialMissing)
    assert refused.code == "key_material_missing"
    assert str(refused) == f"cannot read signer key {path}: No such file or directory"
    assert isinstance(refused.__cause__, FileNotFoundError)


def test_read_file_reads_the_bytes_or_names_what_it_could_not_read(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"certificate bytes")
    assert read_file(tmp_path / "ca.crt", "chain certificate") == b"certificate bytes"
    with pytest.raises(KeyMaterialMissing) as refused:
        read_file(tmp_path, "chain certificate")
    assert str(refused.value) == f"cannot read chain certificate {tmp_path}: Is a directory"


@pytest.mark.parametrize(("name", "pkcs12_file"), [
    ("a.p12", True), ("a.pfx", True), ("a.P12", True), ("a.PFX", True), ("a.key", False),
    ("a.pem", False), ("p12", False), ("a.p12.pem", False), ("a.pfx.bak", False)])
def test_a_key_file_is_pkcs12_by_its_ending(name: str, pkcs12_file: bool) -> None:
    assert is_pkcs12(Path("/keys") / name) is pkcs12_file


@pytest.mark.parametrize("form", ["pkcs8", "traditional"])
def test_an_encrypted_pem_key_opens_with_the_password_in_the_environment(
        form: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    path = _pem(tmp_path / "signer.key", test_pki.key, form)
    assert b"ENCRYPTED" in path.read_bytes()

    loaded = load_key_file(path, WHAT, ENV)

    assert _same_key(loaded.key, test_pki.key)
    assert (loaded.certificate, loaded.chain) == (None, ())
    assert _same_key(load_pem_private_key(path, password_env=ENV), test_pki.key)


@pytest.mark.parametrize("secret", [None, ""])
@pytest.mark.parametrize("form", ["pkcs8", "traditional"])
def test_an_encrypted_pem_key_without_its_password_is_refused_as_missing(
        form: str, secret: str | None, test_pki: Pki, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if secret is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, secret)
    path = _pem(tmp_path / "signer.key", test_pki.key, form)

    refused = _refused(path, KeyPasswordError)

    assert refused.code == "key_password_missing"
    assert str(refused) == f"signer key {path} is encrypted: set ${ENV}"


@pytest.mark.parametrize("form", ["pkcs8", "traditional"])
def test_an_encrypted_pem_key_with_a_wrong_password_is_refused_as_wrong(
        form: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "not-" + PASSWORD)
    path = _pem(tmp_path / "signer.key", test_pki.key, form)

    refused = _refused(path, KeyPasswordError)

    assert refused.code == "key_password_wrong"
    assert str(refused) == (f"signer key {path} does not open with the password in ${ENV}: "
                            "wrong password, or a damaged file")
    assert isinstance(refused.__cause__, ValueError)


def test_an_encrypted_pem_key_where_no_password_can_be_given_is_refused(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A caller that names no variable (a trust anchor's key, say) gets no password at all,
    # not even one that happens to be in the environment.
    monkeypatch.setenv(ENV, PASSWORD)
    path = _pem(tmp_path / "ca.key", test_pki.key)
    with pytest.raises(KeyPasswordError) as refused:
        load_pem_private_key(path)
    assert refused.value.code == "key_password_missing"
    assert str(refused.value) == f"private key {path} is encrypted: no password can be given here"


def test_a_plain_pem_key_loads_whatever_the_environment_holds(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pem(tmp_path / "signer.key", test_pki.key, password=None)
    monkeypatch.delenv(ENV, raising=False)
    loaded = load_key_file(path, WHAT, ENV)
    assert _same_key(loaded.key, test_pki.key) and (loaded.certificate, loaded.chain) == (None, ())
    assert _same_key(load_pem_private_key(path), test_pki.key)
    monkeypatch.setenv(ENV, PASSWORD)
    assert _same_key(load_key_file(path, WHAT, ENV).key, test_pki.key)
    assert _same_key(load_pem_private_key(path, password_env=ENV), test_pki.key)


def test_a_file_that_is_no_pem_key_is_refused_as_missing_material(
        test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    path = tmp_path / "signer.crt"  # the certificate given where the key belongs
    path.write_bytes(test_pki.cert.public_bytes(serialization.Encoding.PEM))
    refused = _refused(path, KeyMaterialMissing)
    assert refused.code == "key_material_missing"
    assert str(refused) == f"signer key {path} is not a PEM private key"


def test_a_pem_key_of_an_unsupported_kind_or_size_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    cases = {
        _pem(tmp_path / "ed.key", ed25519.Ed25519PrivateKey.generate()):
            "only RSA and EC keys are supported",
        _pem(tmp_path / "short.key", rsa.generate_private_key(65537, 2040)):
            "RSA key of 2040 bits is too short",
    }
    for path, why in cases.items():
        refused = _refused(path, SigningError)
        assert refused.code == "unsupported_key"
        assert str(refused) == f"signer key {path}: {why}"
    enough = rsa.generate_private_key(65537, 2048)
    loaded = load_key_file(_pem(tmp_path / "rsa.key", enough), WHAT, ENV).key
    assert _same_key(loaded, enough)
