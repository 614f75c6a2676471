"""Dev PKI generation and the startup checks on key material (backend, seal key, keyring)."""

from __future__ import annotations

import dataclasses
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DEV_PKI_FILES, DEV_TSA_FILES, DevPki, ensure_dev_pki
from signing.errors import (
    BadKeyUsage,
    KeyCertMismatch,
    KeyMaterialMissing,
    SignatureTooLarge,
    SigningError,
)
from signing.keyring import Keyring
from signing.seal import SealKey
from signing.trust_list import kid_for
from signing.trust_store import TrustStore
from signing.validate import validate_pdf
from tests.fixture_scope import shared
from tests.test_signing_support import issue_end_entity, minimal_pdf


@pytest.fixture(scope=shared("module"))
def config(pki: DevPki) -> SignerConfig:
    return SignerConfig.from_keys_dir(pki.keys_dir)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --- dev PKI ---------------------------------------------------------------------------------


def test_dev_pki_writes_the_whole_set_with_private_keys_0600(pki: DevPki) -> None:
    for name in DEV_PKI_FILES:
        path = pki.keys_dir / name
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), name
        assert path.read_bytes().startswith(b"-----BEGIN ")
    assert not list(pki.keys_dir.glob(".devpki-*/"))
    assert not (pki.keys_dir / ".devpki-incomplete").exists()


def test_dev_pki_is_idempotent(pki: DevPki) -> None:
    before = {name: (pki.keys_dir / name).read_bytes() for name in DEV_PKI_FILES}

    again = ensure_dev_pki(pki.keys_dir)

    assert again == pki
    assert {name: (pki.keys_dir / name).read_bytes() for name in DEV_PKI_FILES} == before


def test_dev_pki_has_the_cca_shape(pki: DevPki) -> None:
    root, ca = _cert(pki.root_cert), _cert(pki.ca_cert)
    signer, seal = _cert(pki.signer_cert), _cert(pki.seal_cert)

    assert root.subject == root.issuer and ca.issuer == root.subject
    assert signer.issuer == ca.subject and seal.issuer == ca.subject
    assert "C=IN" in signer.subject.rfc4514_string()
    assert "O=Pune Municipal Corporation (DEVELOPMENT)" in signer.subject.rfc4514_string()
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert seal.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    signer_key, seal_key = signer.public_key(), seal.public_key()
    assert isinstance(signer_key, rsa.RSAPublicKey) and signer_key.key_size == 2048
    assert isinstance(root.public_key(), rsa.RSAPublicKey)
    assert isinstance(seal_key, ec.EllipticCurvePublicKey)
    assert isinstance(seal_key.curve, ec.SECP256R1)
    lifetime = signer.not_valid_after_utc - signer.not_valid_before_utc
    assert 5 * 365 <= lifetime.days <= 5 * 366


def test_dev_pki_extensions_and_names_are_exactly_these(pki: DevPki) -> None:
    # What RFC 5280 (and the CCA's profile) asks of each certificate, exactly: a CA's basic
    # constraints and key usage critical, keyCertSign and cRLSign only; an end entity's
    # critical, not a CA; key identifiers non-critical; the end entities named in Pune.
    def exts(cert: x509.Certificate) -> dict[str, tuple[bool, object]]:
        return {e.oid._name: (e.critical, e.value) for e in cert.extensions}

    def key_usage(cert: x509.Certificate) -> set[str]:
        value = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        bits = ("digital_signature", "content_commitment", "key_encipherment",
                "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
        return {b for b in bits if getattr(value, b)}

    root, ca, tsa_ca = _cert(pki.root_cert), _cert(pki.ca_cert), _cert(pki.tsa_ca_cert)
    signer, seal, tsa = _cert(pki.signer_cert), _cert(pki.seal_cert), _cert(pki.tsa_cert)
    for authority, depth in ((root, 1), (ca, 0), (tsa_ca, 0)):
        found = exts(authority)
        assert found["basicConstraints"][0] and found["keyUsage"][0]
        assert found["basicConstraints"][1] == x509.BasicConstraints(ca=True, path_length=depth)
        assert key_usage(authority) == {"key_cert_sign", "crl_sign"}
        assert not found["subjectKeyIdentifier"][0]
        assert not found["authorityKeyIdentifier"][0]
    for entity, usage in ((signer, {"digital_signature", "content_commitment"}),
                          (seal, {"digital_signature"}), (tsa, {"digital_signature"})):
        found = exts(entity)
        assert found["basicConstraints"] == (True, x509.BasicConstraints(ca=False,
                                                                         path_length=None))
        assert found["keyUsage"][0] and key_usage(entity) == usage
        assert not found["subjectKeyIdentifier"][0]
        assert entity.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "Pune"
        assert entity.subject.get_attributes_for_oid(
            NameOID.STATE_OR_PROVINCE_NAME)[0].value == "Maharashtra"
        assert entity.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "IN"
        assert entity.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    for authority in (root, ca, tsa_ca):  # the CAs are not named in a city
        assert not authority.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)
        assert authority.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "IN"
        assert authority.subject.get_attributes_for_oid(NameOID.COMMON_NAME)


def test_partial_set_is_refused_not_overwritten(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    pki.ca_key.unlink()
    pki.seal_cert.unlink()
    signer_key = pki.signer_key.read_bytes()

    with pytest.raises(KeyMaterialMissing) as refused:
        ensure_dev_pki(tmp_path)
    assert str(refused.value) == (f"incomplete dev PKI in {tmp_path}: missing ca.key, seal.crt; "
                                  "remove the remaining key files to regenerate the whole set")
    assert pki.signer_key.read_bytes() == signer_key


def test_a_set_made_before_the_dev_tsa_gets_one_from_its_own_root(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    for name in DEV_TSA_FILES:
        (tmp_path / name).unlink()
    before = {name: (tmp_path / name).read_bytes() for name in DEV_PKI_FILES
              if name not in DEV_TSA_FILES}

    assert ensure_dev_pki(tmp_path) == pki

    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    root, tsa_ca, tsa = _cert(pki.root_cert), _cert(pki.tsa_ca_cert), _cert(pki.tsa_cert)
    tsa_ca.verify_directly_issued_by(root)  # signed by the existing root's key
    tsa.verify_directly_issued_by(tsa_ca)
    assert (tmp_path / "tsa.key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / ".devpki-incomplete").exists()
    # Only a whole missing TSA set is made this way; a part of one is someone's, and refused.
    (tmp_path / "tsa.key").unlink()
    with pytest.raises(KeyMaterialMissing, match=r"missing tsa\.key;"):
        ensure_dev_pki(tmp_path)


def test_a_tsa_addition_cut_short_is_finished_and_the_rest_kept(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    root = pki.root_cert.read_bytes()
    for name in ("tsa.key", "tsa.crt"):  # the process died while moving the TSA files in
        (tmp_path / name).unlink()
    (tmp_path / ".devpki-tsa-incomplete").write_bytes(b"")

    ensure_dev_pki(tmp_path)

    assert pki.root_cert.read_bytes() == root  # certificates issued so far still verify
    assert all((tmp_path / name).exists() for name in DEV_TSA_FILES)
    _cert(pki.tsa_cert).verify_directly_issued_by(_cert(pki.tsa_ca_cert))
    assert not (tmp_path / ".devpki-tsa-incomplete").exists()


def test_a_set_whose_root_key_is_not_rsa_gets_no_tsa_and_is_refused_by_name(
    pki: DevPki, tmp_path: Path,
) -> None:
    for name in DEV_PKI_FILES:  # a set made before the dev TSA, its root key since replaced
        if name not in DEV_TSA_FILES:
            (tmp_path / name).write_bytes((pki.keys_dir / name).read_bytes())
    (tmp_path / "root.key").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))

    with pytest.raises(KeyMaterialMissing) as refused:
        ensure_dev_pki(tmp_path)

    assert str(refused.value) == f"the dev root key {tmp_path / 'root.key'} is not an RSA key"
    assert not any((tmp_path / name).exists() for name in DEV_TSA_FILES)
    assert not (tmp_path / ".devpki-tsa-incomplete").exists()


def test_dev_keys_go_into_a_new_nested_folder_each_beside_its_certificate(
    tmp_path: Path,
) -> None:
    made = ensure_dev_pki(tmp_path / "home" / "pramaan" / "keys")
    pairs = ((made.root_cert, made.root_key), (made.ca_cert, made.ca_key),
             (made.signer_cert, made.signer_key), (made.seal_cert, made.seal_key),
             (made.tsa_ca_cert, made.tsa_ca_key), (made.tsa_cert, made.tsa_key))
    for cert, key in pairs:
        public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
        private = serialization.load_pem_private_key(key.read_bytes(), None)
        assert private.public_key() == public, key.name
    assert made == DevPki.at(made.keys_dir)
    assert {p.name for pair in pairs for p in pair} == set(DEV_PKI_FILES)


def test_set_interrupted_while_moving_into_place_is_regenerated(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    pki.seal_key.unlink()
    (tmp_path / ".devpki-incomplete").write_bytes(b"")

    ensure_dev_pki(tmp_path)

    assert all((tmp_path / name).exists() for name in DEV_PKI_FILES)
    assert not (tmp_path / ".devpki-incomplete").exists()
    SealKey.load(pki.seal_key, pki.seal_cert)  # the regenerated pair matches


# --- file backend ----------------------------------------------------------------------------


def test_key_that_does_not_match_its_certificate_is_refused(
    config: SignerConfig, stranger: DevPki
) -> None:
    with pytest.raises(KeyCertMismatch) as caught:
        load_backend(dataclasses.replace(config, key_path=stranger.signer_key))
    assert caught.value.code == "key_cert_mismatch"
    assert "does not match" in str(caught.value)


def test_signer_without_non_repudiation_is_refused(
    pki: DevPki, config: SignerConfig, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path, cert_path = issue_end_entity(
        pki, tmp_path, name="no-nr", key=key, non_repudiation=False
    )

    with pytest.raises(BadKeyUsage, match="nonRepudiation") as caught:
        load_backend(dataclasses.replace(config, key_path=key_path, cert_path=cert_path))
    assert caught.value.code == "bad_key_usage"


def test_ca_certificate_as_signer_is_refused(pki: DevPki, config: SignerConfig) -> None:
    with pytest.raises(BadKeyUsage, match="CA certificate"):
        load_backend(dataclasses.replace(config, key_path=pki.ca_key, cert_path=pki.ca_cert))


def test_missing_key_file_is_reported_with_its_path(config: SignerConfig, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"

    with pytest.raises(KeyMaterialMissing, match=r"nowhere\.key") as caught:
        load_backend(dataclasses.replace(config, key_path=missing))
    assert caught.value.code == "key_material_missing"


def test_garbage_certificate_is_reported(config: SignerConfig, tmp_path: Path) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")

    with pytest.raises(KeyMaterialMissing, match=r"junk\.crt"):
        load_backend(dataclasses.replace(config, cert_path=junk))


def test_unknown_backend_is_refused(config: SignerConfig) -> None:
    with pytest.raises(SigningError) as caught:
        load_backend(dataclasses.replace(config, backend="hsm"))
    assert caught.value.code == "unknown_backend"
    assert str(caught.value) == "unknown signer backend 'hsm'; known backends: file, pkcs11"


def test_config_rejects_odd_reservation(config: SignerConfig) -> None:
    with pytest.raises(SigningError):
        dataclasses.replace(config, bytes_reserved=16383)


# --- seal key --------------------------------------------------------------------------------


def test_seal_key_kid_is_sha256_prefix_of_cert_der(pki: DevPki) -> None:
    der = _cert(pki.seal_cert).public_bytes(serialization.Encoding.DER)

    seal_key = SealKey.load(pki.seal_key, pki.seal_cert)

    assert seal_key.kid == hashlib.sha256(der).digest()[:8] == kid_for(der)


def test_seal_key_mismatch_is_refused(pki: DevPki, stranger: DevPki) -> None:
    with pytest.raises(KeyCertMismatch):
        SealKey.load(stranger.seal_key, pki.seal_cert)


def test_rsa_key_as_seal_key_is_refused(pki: DevPki) -> None:
    with pytest.raises(SigningError) as caught:
        SealKey.load(pki.signer_key, pki.signer_cert)
    assert caught.value.code == "unsupported_key"


def test_seal_cert_without_digital_signature_is_refused(pki: DevPki, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path, cert_path = issue_end_entity(
        pki, tmp_path, name="no-ds", key=key, digital_signature=False
    )

    with pytest.raises(BadKeyUsage, match="digitalSignature"):
        SealKey.load(key_path, cert_path)


# --- keyring ---------------------------------------------------------------------------------


def test_keyring_loads_everything_once_and_works(pki: DevPki, config: SignerConfig) -> None:
    keyring = Keyring.from_config(config, verify_base_url="http://127.0.0.1:8000")

    signed = keyring.pades.sign(minimal_pdf(), reason="r", location="Pune")

    assert validate_pdf(signed, keyring.trust_root_paths).ok
    assert keyring.seal_kid == SealKey.load(pki.seal_key, pki.seal_cert).kid
    assert [e.kid for e in keyring.seal_trust.entries] == [keyring.seal_kid]
    assert keyring.sealer.prefix == "http://127.0.0.1:8000/v#"


def test_keyring_refuses_a_chain_that_does_not_reach_the_roots(
    config: SignerConfig, stranger: DevPki
) -> None:
    with pytest.raises(SigningError) as caught:
        Keyring.from_config(
            dataclasses.replace(config, trust_root_paths=(stranger.root_cert,)),
            verify_base_url="https://verify.pmc.example",
        )
    assert caught.value.code == "signer_untrusted"


@pytest.mark.parametrize(
    "url", ["ftp://x", "verify.pmc.example", "https://x/?q=1", "https://x/#f", "https://"]
)
def test_keyring_refuses_bad_verify_urls(config: SignerConfig, url: str) -> None:
    with pytest.raises(SigningError) as caught:
        Keyring.from_config(config, verify_base_url=url)
    assert caught.value.code == "invalid_base_url"


# --- configuration, trust store and keyring: what each refusal says --------------------------


@pytest.mark.parametrize("bytes_reserved", [0, -2, 16383])
def test_config_refuses_a_reservation_that_is_not_positive_and_even(
    config: SignerConfig, bytes_reserved: int
) -> None:
    with pytest.raises(SigningError) as caught:
        dataclasses.replace(config, bytes_reserved=bytes_reserved)
    assert caught.value.code == "invalid_signing_config"
    assert str(caught.value) == (
        f"bytes_reserved must be a positive even number, got {bytes_reserved}"
    )
    assert dataclasses.replace(config, bytes_reserved=2).bytes_reserved == 2


def test_config_needs_a_trust_root(config: SignerConfig) -> None:
    with pytest.raises(SigningError) as caught:
        dataclasses.replace(config, trust_root_paths=())
    assert (caught.value.code, str(caught.value)) == (
        "invalid_signing_config", "at least one trust root is required"
    )


def test_config_from_keys_dir_finds_retired_seal_certificates_in_order(tmp_path: Path) -> None:
    assert SignerConfig.from_keys_dir(tmp_path).retired_seal_cert_paths == ()
    retired = tmp_path / "seal-retired"
    retired.mkdir()
    for name in ("seal-2.crt", "seal-1.crt", "notes.txt", "seal-3.CRT.bak"):
        (retired / name).write_text("")
    config = SignerConfig.from_keys_dir(tmp_path)
    assert config.retired_seal_cert_paths == (retired / "seal-1.crt", retired / "seal-2.crt")
    assert (config.key_path, config.cert_path, config.chain_paths) == (
        tmp_path / "signer.key", tmp_path / "signer.crt", (tmp_path / "ca.crt",)
    )
    assert (config.seal_key_path, config.seal_cert_path, config.trust_root_paths) == (
        tmp_path / "seal.key", tmp_path / "seal.crt", (tmp_path / "root.crt",)
    )


def test_trust_store_refusals_name_the_file_they_are_about(
    config: SignerConfig, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.crt"
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    cases = {
        "seal certificate": dataclasses.replace(config, seal_cert_path=missing),
        "retired seal certificate": dataclasses.replace(config,
                                                        retired_seal_cert_paths=(missing,)),
        "trust root": dataclasses.replace(config, trust_root_paths=(missing,)),
    }
    for what, broken in cases.items():
        with pytest.raises(KeyMaterialMissing) as caught:
            TrustStore.from_config(broken)
        assert str(caught.value).startswith(f"cannot read {what} {missing}: "), what
    with pytest.raises(KeyMaterialMissing) as caught:
        TrustStore.from_config(dataclasses.replace(config, trust_root_paths=(junk,)))
    assert str(caught.value) == f"trust root {junk} holds no valid PEM certificate"


def test_trust_store_holds_the_current_and_retired_seal_keys(pki: DevPki,
                                                             stranger: DevPki) -> None:
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir),
                                 retired_seal_cert_paths=(stranger.seal_cert,))
    store = TrustStore.from_config(config)
    kids = [SealKey.load(pki.seal_key, pki.seal_cert).kid,
            SealKey.load(stranger.seal_key, stranger.seal_cert).kid]
    assert [entry.kid for entry in store.seal_trust.entries] == kids
    assert store.trust_root_paths == config.trust_root_paths


def test_keyring_uses_the_configured_reservation_and_backend(config: SignerConfig) -> None:
    keyring = Keyring.from_config(dataclasses.replace(config, bytes_reserved=256),
                                  verify_base_url="http://127.0.0.1:8000")
    assert keyring.backend.certificate == load_backend(config).certificate
    with pytest.raises(SignatureTooLarge, match="bytes_reserved=256"):
        keyring.pades.sign(minimal_pdf(), reason="r", location="Pune")


def test_keyring_refusals_say_why(config: SignerConfig, stranger: DevPki,
                                  tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with pytest.raises(KeyMaterialMissing, match=r"^cannot read trust root "):
        Keyring.from_config(dataclasses.replace(config, trust_root_paths=(missing,)),
                            verify_base_url="https://verify.pmc.example")
    with pytest.raises(SigningError) as caught:
        Keyring.from_config(dataclasses.replace(config, trust_root_paths=(stranger.root_cert,)),
                            verify_base_url="https://verify.pmc.example")
    subject = load_backend(config).certificate.subject.rfc4514_string()
    assert str(caught.value).startswith(
        f"the signer certificate {subject} does not chain to a configured trust root through "
        "the configured chain: "
    )


def test_keyring_never_fetches_a_missing_intermediate(
    pki: DevPki, config: SignerConfig, tmp_path: Path
) -> None:
    """The chain must be configured: a signer certificate whose AIA names a reachable issuer
    certificate is still refused when the chain is not configured, and nothing is fetched."""
    import datetime as dt
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

    ca_der = _cert(pki.ca_cert).public_bytes(serialization.Encoding.DER)
    requests: list[str] = []

    class Issuer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-cert")
            self.send_header("Content-Length", str(len(ca_der)))
            self.end_headers()
            self.wfile.write(ca_der)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        signer = _cert(pki.signer_cert)
        now = dt.datetime.now(dt.UTC)
        aia = x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(f"http://127.0.0.1:{server.server_port}/ca.crt"),
        )])
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AIA signer")]))
            .issuer_name(_cert(pki.ca_cert).subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(aia, critical=False)
        )
        for extension in signer.extensions:
            if extension.oid != x509.AuthorityInformationAccess.oid:
                builder = builder.add_extension(extension.value, critical=extension.critical)
        cert_path = tmp_path / "aia-signer.crt"
        cert_path.write_bytes(
            builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        with_aia = dataclasses.replace(config, cert_path=cert_path)
        assert Keyring.from_config(with_aia, verify_base_url="https://verify.pmc.example")
        with pytest.raises(SigningError) as caught:
            Keyring.from_config(dataclasses.replace(with_aia, chain_paths=()),
                                verify_base_url="https://verify.pmc.example")
        assert caught.value.code == "signer_untrusted"
        assert requests == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_dev_certificates_are_valid_from_now_whatever_the_machine_s_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine set to IST a naive local time would start every certificate 5.5 hours in
    the future (the builder reads naive times as UTC): validity is taken in UTC."""
    import datetime as dt
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        made = ensure_dev_pki(tmp_path / "keys")
        now = dt.datetime.now(dt.UTC)
        for path in (made.root_cert, made.ca_cert, made.signer_cert, made.seal_cert):
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            assert now - dt.timedelta(minutes=10) <= cert.not_valid_before_utc <= now
    finally:
        monkeypatch.undo()
        time.tzset()


def test_dev_keys_are_staged_beside_the_keys_not_in_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final renames must not cross filesystems: with no usable temp folder at all, the
    dev PKI is still made, and nothing of the staging is left."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    made = ensure_dev_pki(tmp_path / "keys")
    assert made.seal_key.exists()
    assert not list(made.keys_dir.glob(".devpki-*"))  # the staging folder is gone
    assert all((made.keys_dir / name).exists() for name in DEV_PKI_FILES)


def test_dev_certificates_carry_cca_style_names_and_the_key_sizes_of_the_design(
    pki: DevPki,
) -> None:
    """C=IN first, state and locality for the end entities, then O, OU, CN (the CCA's layout,
    which `pdfsig` and Acrobat show to a verifier); RSA-3072 for the CAs, RSA-2048 for the
    document signer, P-256 for the QR seal."""
    org = "O=Pune Municipal Corporation (DEVELOPMENT)"
    expected = {
        "root_cert": (f"CN=Pramaan Dev Root CA,OU=Certifying Authority,{org},C=IN", 3072),
        "ca_cert": (f"CN=Pramaan Dev Sub CA for Document Signer,OU=Sub-CA,{org},C=IN", 3072),
        "signer_cert": ("CN=Pramaan Dev Document Signer,OU=Birth and Death Registration,"
                        f"{org},L=Pune,ST=Maharashtra,C=IN", 2048),
        "seal_cert": ("CN=Pramaan Dev QR Seal,OU=Certificate Verification,"
                      f"{org},L=Pune,ST=Maharashtra,C=IN", 256),
        "tsa_ca_cert": (f"CN=Pramaan Dev CA for Time Stamping,OU=Sub-CA,{org},C=IN", 3072),
        "tsa_cert": ("CN=Pramaan Dev Time Stamping Authority,OU=Time Stamping,"
                     f"{org},L=Pune,ST=Maharashtra,C=IN", 2048),
    }
    certs = {field: x509.load_pem_x509_certificate(getattr(pki, field).read_bytes())
             for field in expected}
    for field, (subject, size) in expected.items():
        cert = certs[field]
        assert cert.subject.rfc4514_string() == subject, field
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        assert key.key_size == size, field
    assert certs["ca_cert"].issuer == certs["root_cert"].subject == certs["root_cert"].issuer
    assert certs["signer_cert"].issuer == certs["seal_cert"].issuer == certs["ca_cert"].subject
    # The TSA has a CA of its own under the root, as a licensed TSA would.
    assert certs["tsa_ca_cert"].issuer == certs["root_cert"].subject
    assert certs["tsa_cert"].issuer == certs["tsa_ca_cert"].subject
    # Validity (years of 365 days, from five minutes before now for clock skew) and how many
    # CAs may sit below each CA.
    import datetime as dt

    for field, years, path_length in (("root_cert", 25, 1), ("ca_cert", 20, 0),
                                      ("signer_cert", 5, None), ("seal_cert", 5, None),
                                      ("tsa_ca_cert", 20, 0), ("tsa_cert", 10, None)):
        cert = certs[field]
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == (
            dt.timedelta(days=365 * years, minutes=5)), field
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert (constraints.ca, constraints.path_length) == (path_length is not None,
                                                             path_length), field
    # Key identifiers are present and not critical (RFC 5280 4.2.1.1-2).
    for field, cert in certs.items():
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert not ski.critical, field
        if field != "root_cert":
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
            assert not aki.critical, field
    # Key usage, exactly, and both extensions critical (RFC 5280 for CAs; the CCA's profile).
    def usage(**on: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                 "encipher_only", "decipher_only")
        return x509.KeyUsage(**{name: on.get(name, False) for name in names})

    wanted = {"root_cert": usage(key_cert_sign=True, crl_sign=True),
              "ca_cert": usage(key_cert_sign=True, crl_sign=True),
              "signer_cert": usage(digital_signature=True, content_commitment=True),
              "seal_cert": usage(digital_signature=True),
              "tsa_ca_cert": usage(key_cert_sign=True, crl_sign=True),
              "tsa_cert": usage(digital_signature=True)}
    for field, key_usage in wanted.items():
        extensions = certs[field].extensions
        assert extensions.get_extension_for_class(x509.KeyUsage).value == key_usage, field
        assert extensions.get_extension_for_class(x509.KeyUsage).critical, field
        assert extensions.get_extension_for_class(x509.BasicConstraints).critical, field
    # RFC 3161 2.3: the TSA's one extended key usage is timeStamping, marked critical; no other
    # certificate of the set carries an extended key usage.
    eku = certs["tsa_cert"].extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    for field, cert in certs.items():
        if field != "tsa_cert":
            with pytest.raises(x509.ExtensionNotFound):
                cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    for field in ("root_key", "ca_key", "signer_key", "tsa_ca_key", "tsa_key"):
        private = serialization.load_pem_private_key(getattr(pki, field).read_bytes(), None)
        assert isinstance(private, rsa.RSAPrivateKey)
        assert private.key_size == expected[field.replace("_key", "_cert")][1]
