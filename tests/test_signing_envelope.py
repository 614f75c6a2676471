"""The parts of a PAdES signature that the signature does not cover. A copier can change them
without breaking the signature, and pyHanko reads some of them leniently, so `validate_pdf`
accepts only the exact shape our signer writes. Also: the signer's other signature mechanisms
(RSA-PSS), and the signing-certificate-v2 attribute encoded once per signer."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import attributes

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import SigningError
from signing.file_backend import FileBackend, LoadedKeySigner, load_pem_certificate
from signing.pades import PadesSigner
from signing.trust_list import TrustList
from signing.validate import validate_pdf
from tests.fixture_scope import shared
from tests.test_signing_support import minimal_pdf

SignedData = cms.SignedData


@pytest.fixture(scope=shared("module"))
def signed(pki: DevPki) -> bytes:
    signer = PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)))
    return signer.sign(minimal_pdf(), reason="r", location="Pune", info={"PramaanSeal": "x"})


def with_envelope(pdf: bytes, change: Callable[[SignedData], None]) -> bytes:
    """`pdf` with its CMS envelope re-encoded after `change`, in place of the original (the
    signed byte ranges stay exactly as they were)."""
    signature = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    # The envelope is one DER value padded with zero bytes: read it by its own length
    # (asn1crypto ignores trailing bytes). Stripping the zeros would also cut a DER value that
    # ends in a zero byte (an ECDSA signature does, one time in 256).
    info = cms.ContentInfo.load(bytes(signature.pkcs7_content))
    signed_data = info["content"]
    change(signed_data)
    return with_envelope_der(
        pdf, cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump(
            force=True))


def with_envelope_der(pdf: bytes, der: bytes) -> bytes:
    """`pdf` with `der` in place of its CMS envelope (the signed byte ranges unchanged)."""
    signature = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    start, length, gap_end = (int(signature.byte_range[i]) for i in range(3))
    room = gap_end - (start + length) - 2
    hex_digits = der.hex().upper().encode()
    assert len(hex_digits) <= room
    return (pdf[: start + length] + b"<" + hex_digits.ljust(room, b"0") + b">" + pdf[gap_end:])


def signer_info(signed_data: SignedData) -> cms.SignerInfo:
    return signed_data["signer_infos"][0]


def test_control_the_same_envelope_re_encoded_still_validates(signed: bytes, pki: DevPki) -> None:
    assert validate_pdf(with_envelope(signed, lambda sd: None), [pki.root_cert]).ok


def test_the_root_certificate_embedded_too_is_part_of_the_path(signed: bytes,
                                                               pki: DevPki) -> None:
    """Long-term signatures embed the whole chain; the root is in the validation path, not an
    unused certificate."""
    root = asn1_x509.Certificate.load(
        load_pem_certificate(pki.root_cert).public_bytes(serialization.Encoding.DER))

    def change(sd: SignedData) -> None:
        sd["certificates"] = [*sd["certificates"], cms.CertificateChoices({"certificate": root})]
    assert validate_pdf(with_envelope(signed, change), [pki.root_cert]).ok


def test_a_changed_signature_value_is_a_bad_signature(signed: bytes, pki: DevPki) -> None:
    def change(sd: SignedData) -> None:
        value = bytearray(signer_info(sd)["signature"].native)
        value[len(value) // 2] ^= 0x01
        signer_info(sd)["signature"] = bytes(value)
    report = validate_pdf(with_envelope(signed, change), [pki.root_cert])
    assert (report.ok, report.reason) == (False, "bad_signature")


def _extra_certificate(pki: DevPki) -> Callable[[SignedData], None]:
    other = asn1_x509.Certificate.load(
        load_pem_certificate(pki.seal_cert).public_bytes(serialization.Encoding.DER))

    def change(sd: SignedData) -> None:
        sd["certificates"] = [*sd["certificates"], cms.CertificateChoices({"certificate": other})]
    return change


def _unsigned_attribute(sd: SignedData) -> None:
    signed_attrs = signer_info(sd)["signed_attrs"]
    copied = next(a for a in signed_attrs if a["type"].native == "content_type")
    signer_info(sd)["unsigned_attrs"] = cms.CMSAttributes([copied])


def _set(path: str, value: object) -> Callable[[SignedData], None]:
    def change(sd: SignedData) -> None:
        target = signer_info(sd) if path.startswith("signer_info.") else sd
        target[path.split(".")[-1]] = value
    return change


def _extra_digest_algorithm(sd: SignedData) -> None:
    sd["digest_algorithms"] = [*sd["digest_algorithms"],
                               algos.DigestAlgorithm({"algorithm": "sha512"})]


def _sid_by_key_identifier(pki: DevPki) -> Callable[[SignedData], None]:
    """Legal CMS (RFC 5652 5.3), and pyHanko finds the signer by it; not what we sign."""
    signer = asn1_x509.Certificate.load(
        load_pem_certificate(pki.signer_cert).public_bytes(serialization.Encoding.DER))

    def change(sd: SignedData) -> None:
        signer_info(sd)["sid"] = cms.SignerIdentifier(
            {"subject_key_identifier": signer.key_identifier})
    return change


def _sid_issuer_in_other_case(sd: SignedData) -> None:
    """pyHanko matches the issuer name case-insensitively; the bytes are not what we sign."""
    sid = signer_info(sd)["sid"].chosen
    names = {k: (v.lower() if k == "common_name" else v) for k, v in sid["issuer"].native.items()}
    signer_info(sd)["sid"] = cms.SignerIdentifier({"issuer_and_serial_number": {
        "issuer": asn1_x509.Name.build(names), "serial_number": sid["serial_number"].native}})


ENVELOPE_CHANGES: dict[str, Callable[..., Callable[[SignedData], None]]] = {
    "sid_by_key_identifier": _sid_by_key_identifier,
    "sid_issuer_in_other_case": lambda pki: _sid_issuer_in_other_case,
    "signed_data_version": lambda pki: _set("version", "v3"),
    "signer_info_version": lambda pki: _set("signer_info.version", "v3"),
    "extra_digest_algorithm": lambda pki: _extra_digest_algorithm,
    "extra_certificate": _extra_certificate,
    "unsigned_attribute": lambda pki: _unsigned_attribute,
}


@pytest.mark.parametrize("name", sorted(ENVELOPE_CHANGES))
def test_a_changed_unsigned_part_of_the_envelope_is_modified(
    signed: bytes, pki: DevPki, name: str
) -> None:
    report = validate_pdf(with_envelope(signed, ENVELOPE_CHANGES[name](pki)), [pki.root_cert])
    assert (report.ok, report.reason) == (False, "modified")


@pytest.mark.parametrize("form", ["indefinite", "long"])
def test_the_envelope_in_a_ber_length_form_is_modified(signed: bytes, pki: DevPki,
                                                       form: str) -> None:
    # The same envelope, its outer length rewritten in a form DER does not allow (indefinite,
    # with end-of-contents octets; or in four octets where two do): pyHanko reads it alike.
    der = bytes(PdfFileReader(BytesIO(signed)).embedded_signatures[0].pkcs7_content)
    assert der[1] == 0x82  # a two-octet length: the envelope is 256 bytes to 64 KiB
    body = der[4:4 + int.from_bytes(der[2:4], "big")]
    assert validate_pdf(with_envelope_der(signed, der[:4] + body), [pki.root_cert]).ok
    header = b"\x30\x80" if form == "indefinite" else b"\x30\x84" + len(body).to_bytes(4, "big")
    trailer = b"\x00\x00" if form == "indefinite" else b""
    report = validate_pdf(with_envelope_der(signed, header + body + trailer), [pki.root_cert])
    assert (report.ok, report.reason) == (False, "modified")


# --- the signer's mechanisms ------------------------------------------------------------------


def _loaded_signer(pki: DevPki) -> tuple[LoadedKeySigner, FileBackend]:
    key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = load_pem_certificate(pki.signer_cert)
    signer = LoadedKeySigner(key, cert, [load_pem_certificate(pki.ca_cert)])
    return signer, FileBackend(signer=signer, certificate=cert)


def test_rsa_pss_signatures_validate(pki: DevPki) -> None:
    signer, backend = _loaded_signer(pki)
    signer.prefer_pss = True
    pdf = PadesSigner(backend).sign(minimal_pdf(), reason="r", location="Pune")
    report = validate_pdf(pdf, [pki.root_cert])
    assert report.ok, report
    used = PdfFileReader(BytesIO(pdf)).embedded_signatures[0].signer_info
    assert used["signature_algorithm"]["algorithm"].native == "rsassa_pss"


def test_a_key_that_does_not_fit_the_mechanism_is_refused(pki: DevPki) -> None:
    # An EC key behind the RSA certificate: the mechanism (from the certificate) is RSA.
    cert = load_pem_certificate(pki.signer_cert)
    signer = LoadedKeySigner(ec.generate_private_key(ec.SECP256R1()), cert)
    backend = FileBackend(signer=signer, certificate=cert)
    with pytest.raises(SigningError, match="rsassa_pkcs1v15 does not fit a ECPrivateKey"):
        PadesSigner(backend).sign(minimal_pdf(), reason="r", location="Pune")


def test_signing_certificate_v2_is_encoded_once_not_per_signature(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[bool] = []
    stock = attributes.SigningCertificateV2Provider.build_attr_value

    async def counting(self: attributes.SigningCertificateV2Provider,
                       dry_run: bool = False) -> object:
        built.append(dry_run)
        return await stock(self, dry_run)

    monkeypatch.setattr(attributes.SigningCertificateV2Provider, "build_attr_value", counting)
    _, backend = _loaded_signer(pki)
    signer = PadesSigner(backend)
    for _ in range(2):
        assert validate_pdf(signer.sign(minimal_pdf(), reason="r", location="Pune"),
                            [pki.root_cert]).ok
    assert built == [], "pyHanko's per-signature builder never runs; our encoded copy is used"


def test_trust_list_from_paths_keeps_the_document_types(pki: DevPki, tmp_path: Path) -> None:
    trust = TrustList.from_cert_paths([pki.seal_cert], doc_types=("birth", "death"))
    assert [e.doc_types for e in trust.entries] == [("birth", "death")]
    assert trust.to_json()["keys"][0]["doc_types"] == ["birth", "death"]


def test_a_mechanism_whose_algorithm_is_not_known_is_refused_naming_its_oid(
        pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    signer, _ = _loaded_signer(pki)
    unknown = algos.SignedDigestAlgorithm({"algorithm": "1.2.3.4.5"})
    monkeypatch.setattr(signer, "get_signature_mechanism_for_digest", lambda _digest: unknown)
    with pytest.raises(SigningError, match=r"^signature mechanism 1\.2\.3\.4\.5 does not fit a "
                                           r"RSAPrivateKey$") as refused:
        signer.sign_raw(b"data", "sha256")
    assert refused.value.code == "unsupported_key"
