"""The document signer's key in an HSM: PKCS#11 against SoftHSM2, for RSA-2048 and P-256, the
signatures checked by pyHanko's validator and poppler's pdfsig, the refusals at load, and
`pramaan issue` in a process of its own opening the token (after the fork, never before)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from issuer.errors import ConfigError
from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import KeyCertMismatch, KeyMaterialMissing, SigningError
from signing.keyring import load_seal_key
from signing.pades import PadesSigner
from signing.pkcs11_backend import Pkcs11Backend
from signing.seal import Sealer, SealKey, verify_seal
from signing.timestamps import InProcessTimeStamper
from signing.trust_list import TrustList
from signing.validate import validate_pdf
from tests.conftest import SAMPLES
from tests.test_signing_support import issue_end_entity, minimal_pdf, pdfsig_report
from tests.test_signing_timestamps import authority_of
from tests.tools import need

ROOT = Path(__file__).resolve().parents[1]
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "2468"


@dataclasses.dataclass(frozen=True)
class Token:
    conf: Path
    keys: DevPki
    ec_key: Path  # an EC P-256 document signer (its key also in the token, label "ec-signer")
    ec_cert: Path


def softhsm(*args: str) -> None:
    done = subprocess.run([need("softhsm2-util"), *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")  # not shared(): one token per process (below)
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    """A SoftHSM2 token "pramaan" holding the dev signer's RSA key ("signer"), an EC P-256
    document signer's key ("ec-signer"), another certificate's key ("other"), the dev QR seal
    key ("seal") and another seal certificate's key ("other-seal").

    One per test session, with PKI sets of its own: SoftHSM reads SOFTHSM2_CONF once, when
    the library is first loaded into the process, so a second token made later in the same
    process (a module fixture made again when the tests of this file do not run in one block,
    as under mutmut) would never be seen; the library would still show the first one."""
    assert Path(MODULE).exists(), f"{MODULE} is missing: apt-get install softhsm2"
    pki = ensure_dev_pki(tmp_path_factory.mktemp("token-pki"))
    stranger = ensure_dev_pki(tmp_path_factory.mktemp("token-stranger"))
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the library when it is first loaded
    softhsm("--init-token", "--free", "--label", "pramaan", "--pin", PIN, "--so-pin", "13579")
    ec_key, ec_cert = issue_end_entity(pki, home, name="Pramaan EC Document Signer",
                                       key=ec.generate_private_key(ec.SECP256R1()))
    for label, key_id, path in (("signer", "01", pki.signer_key), ("ec-signer", "02", ec_key),
                                ("other", "03", stranger.signer_key), ("seal", "04", pki.seal_key),
                                ("other-seal", "05", stranger.seal_key)):
        softhsm("--import", str(path), "--token", "pramaan", "--label", label, "--id", key_id,
                "--pin", PIN)
    yield Token(conf, pki, ec_key, ec_cert)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


@pytest.fixture
def pin(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PRAMAAN_PKCS11_PIN", PIN)
    return PIN


def hsm_config(token: Token, **changes: object) -> SignerConfig:
    config = SignerConfig.from_keys_dir(token.keys.keys_dir)
    return dataclasses.replace(config, **{"backend": "pkcs11", "pkcs11_module": MODULE,
                                          **changes})  # type: ignore[arg-type]


def sign(backend: object, **kwargs: object) -> bytes:
    signer = PadesSigner(backend, **kwargs)  # type: ignore[arg-type]
    try:
        return signer.sign(minimal_pdf(), reason="Birth certificate issued", location="Pune",
                           info={"PramaanSeal": "https://verify.pmc.example/v#1123"})
    finally:
        assert isinstance(backend, Pkcs11Backend)
        backend.close()  # one logged-in session at a time: PKCS#11 logins are per process


def test_an_rsa_key_in_the_token_signs_what_pdfsig_and_pyhanko_accept(
    token: Token, pin: str, tmp_path: Path
) -> None:
    backend = load_backend(hsm_config(token))
    assert isinstance(backend, Pkcs11Backend)
    pdf = sign(backend)
    report = validate_pdf(pdf, [token.keys.root_cert])
    assert report.ok, report
    assert report.signer is not None and "Pramaan Dev Document Signer" in report.signer
    path = tmp_path / "hsm.pdf"
    path.write_bytes(pdf)
    output = pdfsig_report(path, token.keys.root_cert, tmp_path / "nss")
    assert "Signature is Valid" in output and "Certificate is Trusted" in output, output


def test_a_p256_key_in_the_token_signs_too(token: Token, pin: str) -> None:
    backend = load_backend(hsm_config(token, pkcs11_key_label="ec-signer",
                                      cert_path=token.ec_cert))
    report = validate_pdf(sign(backend), [token.keys.root_cert])
    assert report.ok and report.signer is not None and "EC Document Signer" in report.signer


def test_a_token_signature_can_carry_a_timestamp(token: Token, pin: str) -> None:
    backend = load_backend(hsm_config(token))
    pdf = sign(backend, timestamper=InProcessTimeStamper(authority_of(token.keys)))
    report = validate_pdf(pdf, [token.keys.root_cert])
    assert report.ok and report.timestamp is not None


def test_what_the_token_cannot_give_is_refused_at_load_by_name(
    token: Token, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRAMAAN_PKCS11_PIN", raising=False)
    with pytest.raises(KeyMaterialMissing, match=r"PIN is not set \(\$PRAMAAN_PKCS11_PIN\)"):
        load_backend(hsm_config(token))
    monkeypatch.setenv("PRAMAAN_PKCS11_PIN", "0000")
    with pytest.raises(KeyMaterialMissing, match=f"cannot open PKCS#11 token 'pramaan' with "
                       f"{MODULE}: PinIncorrect"):
        load_backend(hsm_config(token))
    monkeypatch.setenv("PRAMAAN_PKCS11_PIN", PIN)
    with pytest.raises(KeyMaterialMissing, match="cannot open PKCS#11 token 'elsewhere'"):
        load_backend(hsm_config(token, pkcs11_token_label="elsewhere"))
    with pytest.raises(KeyMaterialMissing,
                       match="no usable signing key labelled 'nothing': PKCS11Error: Could not"):
        load_backend(hsm_config(token, pkcs11_key_label="nothing"))
    with pytest.raises(KeyMaterialMissing, match=r"PKCS#11 module '/nowhere\.so' not found"):
        load_backend(hsm_config(token, pkcs11_module="/nowhere.so"))
    with pytest.raises(KeyCertMismatch, match="the token's key 'other' does not match"):
        load_backend(hsm_config(token, pkcs11_key_label="other"))


def test_pramaan_issue_opens_the_token_in_its_own_process(token: Token, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(token.keys.keys_dir, home / "keys")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(PRAMAAN_HOME=str(home), PRAMAAN_SIGNER_BACKEND="pkcs11",
               PRAMAAN_PKCS11_MODULE=MODULE, PRAMAAN_PKCS11_PIN=PIN,
               PRAMAAN_PKCS11_SEAL_KEY_LABEL="seal", SOFTHSM2_CONF=str(token.conf))
    (home / "keys" / "seal.key").unlink()  # both keys from the token: the files are not read
    (home / "keys" / "signer.key").unlink()

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    assert pramaan("init").returncode == 0
    out = tmp_path / "cert.pdf"
    issued = pramaan("issue", "--data", str(SAMPLES / "birth-1.json"), "--out", str(out))
    assert issued.returncode == 0, issued.stderr
    assert json.loads(issued.stdout)["state"] == "issued"
    assert validate_pdf(out.read_bytes(), [home / "keys" / "root.crt"]).ok
    verified = pramaan("verify", str(out))  # the seal the token signed checks out too
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["current"] is True
    checked = pramaan("keys", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Without the PIN the service refuses to start, and says which variable is missing.
    env.pop("PRAMAAN_PKCS11_PIN")
    refused = pramaan("issue", "--data", str(SAMPLES / "birth-2.json"))
    assert refused.returncode == 2
    assert "PRAMAAN_PKCS11_PIN" in refused.stderr


@pytest.mark.parametrize("backend, module, message", [
    ("hsm", None, "PRAMAAN_SIGNER_BACKEND='hsm': 'file' or 'pkcs11'"),
    ("pkcs11", None, "PRAMAAN_SIGNER_BACKEND=pkcs11 needs PRAMAAN_PKCS11_MODULE"),
])
def test_the_backend_settings_are_checked(tmp_path: Path, keys_dir: Path, backend: str,
                                          module: str | None, message: str) -> None:
    from issuer.errors import ConfigError
    from tests.conftest import make_settings

    with pytest.raises(ConfigError) as refused:
        make_settings(tmp_path, "sqlite://", keys_dir, signer_backend=backend,
                      pkcs11_module=module)
    assert str(refused.value).startswith(message)


def test_the_seal_key_in_the_token_seals_what_verifiers_accept(token: Token, pin: str) -> None:
    backend = load_backend(hsm_config(token))
    try:
        seal_key = load_seal_key(hsm_config(token, pkcs11_seal_key_label="seal"), backend)
        file_key = SealKey.load(token.keys.seal_key, token.keys.seal_cert)
        assert seal_key.kid == file_key.kid  # the same certificate, so the same kid
        sealer = Sealer(seal_key, "https://verify.pmc.example")
        claims = {1: "in.gov.pmc", 6: int(time.time()), -70000: {"no": "PMC/B/2026/1"}}
        first, second = sealer.seal(claims), sealer.seal(claims)
        trust = TrustList([file_key.trust_entry()])
        for text in (first, second):
            report = verify_seal(text, trust)
            assert report.ok and report.claims == claims
        assert first != second  # a token's ECDSA is not deterministic; both verify
    finally:
        backend.close()


def test_a_seal_key_the_token_cannot_give_is_refused_by_name(token: Token, pin: str) -> None:
    backend = load_backend(hsm_config(token))
    try:
        with pytest.raises(KeyCertMismatch, match="seal key: the token's key 'other-seal'"):
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="other-seal"), backend)
        with pytest.raises(KeyMaterialMissing, match="no usable EC seal key labelled 'signer'"):
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="signer"), backend)
    finally:
        backend.close()
    # The document signer in a file, the seal key alone in the token: a session of its own.
    alone = load_seal_key(dataclasses.replace(SignerConfig.from_keys_dir(token.keys.keys_dir),
                                              pkcs11_module=MODULE,
                                              pkcs11_seal_key_label="seal"))
    assert alone.kid == SealKey.load(token.keys.seal_key, token.keys.seal_cert).kid
    alone.private_key.close()  # type: ignore[attr-defined]  # its own session
    alone.private_key.close()  # type: ignore[attr-defined]  # again: nothing left to close
    backend = load_backend(hsm_config(token))  # logs in again: the session was closed
    assert isinstance(backend, Pkcs11Backend)
    backend.close()


def test_seal_and_signer_certificates_that_cannot_serve_are_refused_by_name(
        token: Token, pin: str, tmp_path: Path) -> None:
    keys = token.keys
    backend = load_backend(hsm_config(token))
    try:
        # An RSA certificate, or an EC one on another curve, is no seal certificate.
        for certificate in (keys.signer_cert, _p384_certificate(keys, tmp_path)):
            with pytest.raises(SigningError) as refused:
                load_seal_key(hsm_config(token, pkcs11_seal_key_label="seal",
                                         seal_cert_path=certificate), backend)
            assert refused.value.code == "unsupported_key"
            assert str(refused.value) == f"seal certificate {certificate} is not EC P-256"
        with pytest.raises(SigningError, match="cannot read seal certificate"):
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="seal",
                                     seal_cert_path=tmp_path / "absent.crt"), backend)
        # Which key the token lacks, and why, in its own words.
        with pytest.raises(KeyMaterialMissing, match="labelled 'signer': NoSuchKey"):
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="signer"), backend)
    finally:
        backend.close()
    with pytest.raises(SigningError, match="cannot read signer certificate"):
        load_backend(hsm_config(token, cert_path=tmp_path / "absent.crt"))


def _p384_certificate(keys: DevPki, folder: Path) -> Path:
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate(keys.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(keys.ca_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP384R1())
    seal = x509.load_pem_x509_certificate(keys.seal_cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(seal.subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(
                days=30)).sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    path = folder / "p384.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_serve_checks_token_keys_in_a_fresh_process_not_in_the_forking_master(
    token: Token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import api
    from tests.conftest import make_settings
    from web_server import _check_in_fresh_process

    def never_here(*_: object) -> None:
        raise AssertionError("the app (and its keys) was built in the serving process")

    monkeypatch.setattr(api, "create_app", never_here)  # this process only: the child is new
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}",
                             token.keys.keys_dir, signer_backend="pkcs11",
                             pkcs11_module=MODULE)
    monkeypatch.delenv("PRAMAAN_PKCS11_PIN", raising=False)
    with pytest.raises(SigningError, match=r"PIN is not set") as refused:
        _check_in_fresh_process(settings)  # the child's refusal, raised here
    assert refused.value.code == "key_material_missing"
    monkeypatch.setenv("PRAMAAN_PKCS11_PIN", PIN)
    _check_in_fresh_process(settings)  # the keys are fine: nothing raised
    wrong = dataclasses.replace(settings, signature_levels={"brith": "B-B"})
    with pytest.raises(ConfigError, match="PRAMAAN_SIGNATURE_LEVELS: no certificate type brith"):
        _check_in_fresh_process(wrong)


def test_a_failed_load_leaves_no_token_session_behind(token: Token, pin: str) -> None:
    # PKCS#11 logins are per process: a session left open by a failed load would make the next
    # login fail (UserAlreadyLoggedIn), so a load after a failed one shows the leak.
    from signing.keyring import Keyring

    for broken in ({"pkcs11_seal_key_label": "nothing"},  # the seal key fails after the signer
                   {"pkcs11_seal_key_label": "seal", "trust_root_paths": (
                       token.keys.tsa_ca_cert,)}):  # the chain fails after both keys
        with pytest.raises(SigningError):
            Keyring.from_config(hsm_config(token, **broken), verify_base_url="http://x.example")
        backend = load_backend(hsm_config(token))  # logs in again: nothing was left open
        assert isinstance(backend, Pkcs11Backend)
        backend.close()


def test_token_certificates_refused_before_the_token_is_opened_say_which(
        token: Token, pin: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys = token.keys
    p256 = ec.generate_private_key(ec.SECP256R1())
    _, expired_seal = issue_end_entity(keys, tmp_path, name="old-seal", key=p256, expired=True)
    _, unusable_seal = issue_end_entity(keys, tmp_path, name="no-usage-seal", key=p256,
                                        digital_signature=False)
    _, expired_signer = issue_end_entity(keys, tmp_path, name="old-signer",
                                         key=rsa.generate_private_key(65537, 2048), expired=True)
    backend = load_backend(hsm_config(token))
    try:
        with pytest.raises(SigningError) as refused:
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="seal",
                                     seal_cert_path=expired_seal), backend)
        assert refused.value.code == "certificate_not_valid"
        assert str(refused.value).startswith(
            "seal certificate: CN=old-seal,C=IN is valid only from")
        with pytest.raises(SigningError) as refused:
            load_seal_key(hsm_config(token, pkcs11_seal_key_label="seal",
                                     seal_cert_path=unusable_seal), backend)
        assert str(refused.value) == ("seal certificate: CN=no-usage-seal,C=IN lacks keyUsage "
                                      "digitalSignature")
    finally:
        backend.close()
    with pytest.raises(SigningError) as refused:
        load_backend(hsm_config(token, cert_path=expired_signer))
    assert refused.value.code == "certificate_not_valid"
    assert str(refused.value).startswith(
        "signer certificate: CN=old-signer,C=IN is valid only from")


def test_certificates_stored_in_the_token_stay_out_of_the_signature(
        token: Token, pin: str, tmp_path: Path) -> None:
    # An HSM often holds other certificates (other departments', old ones): the signature
    # carries the signer's and its chain only, never whatever else the token holds.
    import pkcs11
    from cryptography.hazmat.primitives import serialization
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from pyhanko.pdf_utils.reader import PdfFileReader

    def open_session() -> Any:
        return pkcs11.lib(MODULE).get_token(token_label="pramaan").open(rw=True, user_pin=pin)

    _, made = issue_end_entity(token.keys, tmp_path, name="stray",
                               key=ec.generate_private_key(ec.SECP256R1()))
    stray = x509.load_pem_x509_certificate(made.read_bytes())
    session = open_session()
    try:
        stored = session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509, Attribute.TOKEN: True,
            Attribute.LABEL: "stray", Attribute.ID: b"\x09",
            Attribute.SUBJECT: stray.subject.public_bytes(),
            Attribute.VALUE: stray.public_bytes(serialization.Encoding.DER)})
    finally:
        session.close()
    try:
        pdf = sign(load_backend(hsm_config(token)))
    finally:
        session = open_session()
        try:
            for found in session.get_objects({Attribute.LABEL: "stray"}):
                found.destroy()
        finally:
            session.close()
    assert stored is not None
    signed = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].signed_data
    names = {c.chosen.subject.native["common_name"] for c in signed["certificates"]}
    assert names == {"Pramaan Dev Document Signer", "Pramaan Dev Sub CA for Document Signer"}


def test_keys_check_closes_the_token_sessions_it_opened(token: Token, pin: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from signing.key_check import check_keys
    from signing.pkcs11_backend import TokenEcKey

    closed: list[str] = []
    for kind in (Pkcs11Backend, TokenEcKey):
        real = kind.close

        def watched(self: Any, real: Any = real, name: str = kind.__name__) -> None:
            closed.append(name)
            real(self)

        monkeypatch.setattr(kind, "close", watched)
    checks = check_keys(hsm_config(token, pkcs11_seal_key_label="seal"))
    assert [c.name for c in checks if not c.ok] == []
    assert sorted(closed) == ["Pkcs11Backend", "TokenEcKey"]


def test_a_token_signer_neither_rsa_nor_ec_is_refused_by_its_type(
        token: Token, pin: str, tmp_path: Path) -> None:
    # The token signs with an Ed25519 key (SoftHSM can): no signer of ours, and said so.
    import pkcs11
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from pkcs11 import Attribute, KeyType, ObjectClass

    def open_session() -> Any:
        return pkcs11.lib(MODULE).get_token(token_label="pramaan").open(rw=True, user_pin=pin)

    key = ed25519.Ed25519PrivateKey.generate()
    _, cert = issue_end_entity(token.keys, tmp_path, name="Edwards Signer", key=key)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    session = open_session()
    try:
        session.create_object({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SIGN: True,
            Attribute.LABEL: "ed-signer", Attribute.ID: b"\x0a",
            Attribute.EC_PARAMS: bytes.fromhex("06032b6570"), Attribute.VALUE: raw})
    finally:
        session.close()
    try:
        with pytest.raises(SigningError) as refused:
            loaded = load_backend(hsm_config(token, pkcs11_key_label="ed-signer", cert_path=cert))
            assert isinstance(loaded, Pkcs11Backend)
            loaded.close()  # wrongly accepted: its session closed, so the cleanup can log in
    finally:
        session = open_session()
        try:
            for found in session.get_objects({Attribute.LABEL: "ed-signer"}):
                found.destroy()
        finally:
            session.close()
    assert str(refused.value) == "unsupported signer key Ed25519PublicKey"
    assert refused.value.code == "unsupported_key"


def test_the_token_seal_key_refuses_a_hash_other_than_sha256_by_name(
        token: Token, pin: str) -> None:
    # The seal is ES256: the raw mechanism signs a SHA-256 digest we compute, nothing else.
    from cryptography.hazmat.primitives import hashes

    seal_key = load_seal_key(dataclasses.replace(SignerConfig.from_keys_dir(token.keys.keys_dir),
                                                 pkcs11_module=MODULE,
                                                 pkcs11_seal_key_label="seal"))
    key: Any = seal_key.private_key
    try:
        with pytest.raises(SigningError) as refused:
            key.sign(b"PMC/B/2026/1", ec.ECDSA(hashes.SHA384()))
        assert str(refused.value) == "the token's seal key signs ECDSA with SHA-256 only"
        assert refused.value.message == str(refused.value)
        assert refused.value.code == "unsupported_key"
    finally:
        key.close()
