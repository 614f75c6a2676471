"""PAdES signing refuses bad input with stable codes and messages that say why, writes the
location it is given, and keeps a document's own direct /Info entries beside ours."""

from __future__ import annotations

import datetime as dt
import re
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SigningError as PyHankoSigningError

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import RevocationUnavailable, SignatureTooLarge, SigningError
from signing.file_backend import (
    FileBackend,
    LoadedKeySigner,
    load_pem_certificate,
)
from signing.key_files import load_pem_private_key
from signing.pades import PadesSigner
from signing.revocation import DevRevocationAuthority, offline_context
from signing.timestamps import DevTimeStampAuthority, InProcessTimeStamper
from signing.validate import validate_pdf
from tests.fixture_scope import shared
from tests.test_signing_support import issue_end_entity, minimal_pdf


@pytest.fixture(scope=shared("module"))
def signer(pki: DevPki) -> PadesSigner:
    return PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)))


def refusal(signer: PadesSigner, pdf: bytes, **kwargs: object) -> SigningError:
    options: dict[str, object] = {"reason": "r", "location": "Pune", **kwargs}
    with pytest.raises(SigningError) as caught:
        signer.sign(pdf, **options)  # type: ignore[arg-type]
    return caught.value


def test_refusals_carry_stable_codes_and_say_why(signer: PadesSigner) -> None:
    naive = refusal(signer, minimal_pdf(), signing_time=dt.datetime(2026, 1, 1))
    assert (naive.code, str(naive)) == ("invalid_signing_time",
                                        "signing_time must be timezone-aware")
    for info in ({"Title": "x"}, {"bad key": "x"}, {"PramaanSeal": "x" * 8193}):
        assert refusal(signer, minimal_pdf(), info=info).code == "invalid_info"
    assert str(refusal(signer, minimal_pdf(), info={"bad key": "x"})) == (
        "info key 'bad key' must be a custom ASCII name (letters and digits)"
    )
    assert str(refusal(signer, minimal_pdf(), info={"PramaanSeal": "x" * 8193})) == (
        "info value for 'PramaanSeal' must be a string of at most 8192 chars"
    )
    unreadable = refusal(signer, b"%PDF-1.7\nnot a pdf at all\n")
    assert unreadable.code == "unreadable_pdf"
    assert str(unreadable).startswith("the PDF to sign cannot be read: ")
    signed = signer.sign(minimal_pdf(), reason="r", location="Pune")
    again = refusal(signer, signed)
    assert (again.code, str(again)) == ("already_signed", "the PDF to sign is already signed")


def test_a_signature_too_large_for_its_room_names_the_room(pki: DevPki) -> None:
    small = PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)),
                        bytes_reserved=256)
    with pytest.raises(SignatureTooLarge, match="bytes_reserved=256") as caught:
        small.sign(minimal_pdf(), reason="r", location="Pune")
    assert caught.value.code == "signature_too_large"


def test_reason_and_location_are_written_into_the_signature(signer: PadesSigner) -> None:
    pdf = signer.sign(minimal_pdf(), reason="Certificate PMC/B/2026/000001",
                      location="Pune, Maharashtra")
    embedded = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    assert embedded.field_name == "PramaanSignature"
    sig = embedded.sig_object
    assert (str(sig["/Reason"]), str(sig["/Location"])) == ("Certificate PMC/B/2026/000001",
                                                            "Pune, Maharashtra")


def direct_info_pdf() -> bytes:
    """`minimal_pdf` with a direct /Info dictionary in its trailer (allowed, if unusual)."""
    pdf = minimal_pdf()
    return pdf.replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Info << /PramaanOld (kept) >> >>")


def test_a_direct_info_dictionary_is_merged_into_the_signed_revision(
    signer: PadesSigner, pki: DevPki
) -> None:
    assert b"/Info << /PramaanOld (kept) >>" in direct_info_pdf()
    pdf = signer.sign(direct_info_pdf(), reason="r", location="Pune",
                      info={"PramaanSeal": "https://verify.pmc.example/v#1123"})
    report = validate_pdf(pdf, [pki.root_cert])
    assert report.ok, report
    assert report.info == {"PramaanOld": "kept",
                           "PramaanSeal": "https://verify.pmc.example/v#1123"}


def info_pdf(info_object: bytes) -> bytes:
    """`minimal_pdf` with a fourth object, `info_object`, named as /Info by the trailer."""
    pdf = minimal_pdf()
    head, _, tail = pdf.partition(b"xref\n")
    objects = head + b"4 0 obj\n%s\nendobj\n" % info_object
    _, _, entries = tail.partition(b"0000000000 65535 f \n")
    offsets, _, _ = entries.partition(b"trailer")
    return objects + b"xref\n0 5\n0000000000 65535 f \n" + offsets + b"%010d 00000 n \n" % len(
        head
    ) + b"trailer\n<< /Size 5 /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % len(objects)


@pytest.mark.parametrize("info_object", [b"42", b"(text)", b"[1 2]"])
def test_an_info_entry_that_is_not_a_dictionary_is_refused(
    signer: PadesSigner, info_object: bytes
) -> None:
    refused = refusal(signer, info_pdf(info_object), info={"PramaanSeal": "x"})
    assert (refused.code, str(refused)) == ("unreadable_pdf",
                                            "the PDF's /Info entry is not a dictionary")


def test_control_an_indirect_info_dictionary_is_updated(signer: PadesSigner, pki: DevPki) -> None:
    """The same hand-made file with a dictionary as /Info signs, keeping its entries."""
    pdf = signer.sign(info_pdf(b"<< /PramaanOld (kept) >>"), reason="r", location="Pune",
                      info={"PramaanSeal": "x"})
    report = validate_pdf(pdf, [pki.root_cert])
    assert report.ok, report
    assert report.info == {"PramaanOld": "kept", "PramaanSeal": "x"}


class _UnavailableDevice(LoadedKeySigner):
    """A signer whose device refuses to sign, the way pyHanko reports it."""

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        raise PyHankoSigningError("the signing device is unavailable")


def test_a_signer_failure_is_reported_as_pades_failed(pki: DevPki) -> None:
    backend = load_backend(SignerConfig.from_keys_dir(pki.keys_dir))
    assert isinstance(backend, FileBackend)
    key = load_pem_private_key(pki.signer_key)
    failing = _UnavailableDevice(key, backend.certificate)
    signer = PadesSigner(FileBackend(signer=failing, certificate=backend.certificate))
    refused = refusal(signer, minimal_pdf())
    assert (refused.code, str(refused)) == (
        "pades_failed", "PAdES signing failed: the signing device is unavailable"
    )


def test_the_digest_is_sha256_whatever_the_key(pki: DevPki, tmp_path: Path) -> None:
    """pyHanko's own choice for a P-384 key would be SHA-384; PAdES here is SHA-256 always."""
    key_path, cert_path = issue_end_entity(pki, tmp_path, name="p384-signer",
                                           key=ec.generate_private_key(ec.SECP384R1()))
    certificate = load_pem_certificate(cert_path)
    signer = LoadedKeySigner(load_pem_private_key(key_path), certificate,
                             [load_pem_certificate(pki.ca_cert)])
    pdf = PadesSigner(FileBackend(signer=signer, certificate=certificate)).sign(
        minimal_pdf(), reason="r", location="Pune"
    )
    embedded = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    assert embedded.md_algorithm == "sha256"
    assert embedded.signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    assert validate_pdf(pdf, [pki.root_cert]).ok


def test_a_pdf_that_needs_lenient_reading_is_refused_not_repaired(signer: PadesSigner) -> None:
    """Read strictly: an xref table larger than the trailer's /Size is refused, although a
    lenient reader would accept it (checked here, so the refusal is about strictness)."""
    pdf = minimal_pdf().replace(b"/Size 4 /Root", b"/Size 3 /Root")
    assert pdf != minimal_pdf()
    PdfFileReader(BytesIO(pdf), strict=False)
    refused = refusal(signer, pdf)
    assert refused.code == "unreadable_pdf"
    assert str(refused).startswith("the PDF to sign cannot be read: Xref table size mismatch")


def test_an_info_value_of_exactly_the_limit_is_written(signer: PadesSigner, pki: DevPki) -> None:
    pdf = signer.sign(minimal_pdf(), reason="r", location="Pune",
                      info={"PramaanSeal": "x" * 8192})
    assert validate_pdf(pdf, [pki.root_cert]).info == {"PramaanSeal": "x" * 8192}


def test_a_mechanism_that_does_not_fit_the_key_is_refused_by_name(pki: DevPki) -> None:
    from asn1crypto import algos

    certificate = load_pem_certificate(pki.signer_cert)  # an RSA certificate
    p256 = LoadedKeySigner(ec.generate_private_key(ec.SECP256R1()), certificate)
    unknown = LoadedKeySigner(load_pem_private_key(pki.signer_key), certificate)
    unknown._signature_mechanism = algos.SignedDigestAlgorithm({"algorithm": "1.2.3.4"})
    for signer, says in ((p256, "signature mechanism rsassa_pkcs1v15 does not fit a "
                                "ECPrivateKey"),
                         (unknown, "signature mechanism 1.2.3.4 does not fit a RSAPrivateKey")):
        with pytest.raises(SigningError) as refused:
            signer.sign_raw(b"data", "sha256")
        assert (refused.value.code, str(refused.value)) == ("unsupported_key", says)


def long_term_refusal(pki: DevPki, root: Path) -> SigningError:
    """The refusal of a B-LT signer of `pki`'s whose validation context trusts only `root` and
    holds no revocation information (nothing fetched)."""
    tsa = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])
    roots, others = [load_pem_certificate(root)], [load_pem_certificate(pki.ca_cert)]
    signer = PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)),
                         timestamper=InProcessTimeStamper(tsa),
                         revocation=lambda: offline_context(roots, others, [], [], None))
    return refusal(signer, minimal_pdf())


def _impostor_of(root: Path, where: Path) -> Path:
    """A self-signed certificate with `root`'s name and extensions (its key identifier among
    them) and a key of its own, written in `where`."""
    real = load_pem_certificate(root)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.subject)
               .public_key(key.public_key()).serial_number(real.serial_number)
               .not_valid_before(real.not_valid_before_utc)
               .not_valid_after(real.not_valid_after_utc))
    for extension in real.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    path = where / "impostor-root.crt"
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


def test_a_signer_the_validator_refuses_is_refused_with_the_validator_s_own_reason(
        pki: DevPki, stranger: DevPki) -> None:
    # pyHanko's "The signer's certificate could not be validated" says nothing: the message
    # ends with the reason certvalidator gave, the innermost cause.
    untrusted = long_term_refusal(pki, stranger.root_cert)
    assert untrusted.code == "signer_unvalidated"
    assert re.fullmatch(r"the signer's chain cannot be validated \(revoked, or not chaining to "
                        r"a trusted root\): Unable to build a validation path for the "
                        r'certificate "Common Name: Pramaan Dev Document Signer, .*" - no '
                        r'issuer matching "Common Name: Pramaan Dev Root CA, .*" was found',
                        str(untrusted)), str(untrusted)
    # A root with the real one's name and key identifier but another key: certvalidator's
    # reason is raised while handling cryptography's InvalidSignature, which says nothing.
    impostor = long_term_refusal(pki, _impostor_of(pki.root_cert, stranger.root_cert.parent))
    assert impostor.code == "signer_unvalidated"
    assert str(impostor).endswith("): The path could not be validated because the signature "
                                  "of intermediate certificate 1 could not be verified"), \
        str(impostor)
    unknown = long_term_refusal(pki, pki.root_cert)
    assert isinstance(unknown, RevocationUnavailable)
    assert unknown.code == "revocation_unavailable"
    assert str(unknown).startswith(
        "no current revocation information for the signer's chain (a responder or CRL server "
        "did not answer, or answered out of date): The path could not be validated because no "
        "revocation information could be found for intermediate certificate 1 Common Name: "
        "Pramaan Dev Sub CA for Document Signer, "), str(unknown)


def test_a_refusal_chained_three_deep_is_said_by_its_innermost_cause(pki: DevPki) -> None:
    # A signer certificate of the dev root naming 1,000 policies: certvalidator's policy graph
    # (1,000 nodes at most) overflows, and its PathValidationError ("... exceeds the size
    # limit on the policy graph") is raised from the overflow's own error, so pyHanko's
    # refusal chains three deep; the innermost says why.
    root, root_key = load_pem_certificate(pki.root_cert), load_pem_private_key(pki.root_key)
    assert isinstance(root_key, rsa.RSAPrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    policies = [x509.PolicyInformation(x509.ObjectIdentifier(f"1.3.6.1.4.1.99999.{n}"), None)
                for n in range(1000)]
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Policies")]))
            .issuer_name(root.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.CertificatePolicies(policies), critical=False)
            .sign(root_key, hashes.SHA256()))
    crls = DevRevocationAuthority([(root, root_key)]).crls()
    tsa = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])
    signer = PadesSigner(FileBackend(LoadedKeySigner(key, cert), cert),
                         timestamper=InProcessTimeStamper(tsa),
                         revocation=lambda: offline_context([root], [], crls, [], None))
    refused = refusal(signer, minimal_pdf())
    assert (refused.code, str(refused)) == (
        "signer_unvalidated", "the signer's chain cannot be validated (revoked, or not chaining "
        "to a trusted root): Policy graph is limited to 1000 nodes")


def test_a_refusal_while_the_caller_handles_another_is_judged_by_its_own_cause(
        pki: DevPki, stranger: DevPki) -> None:
    # Signing again inside an `except` (a retry after a revocation refusal): Python makes the
    # handled refusal the implicit context of certvalidator's new error, and that context is
    # not its cause: an untrusted root must not read as missing revocation information.
    try:
        raise long_term_refusal(pki, pki.root_cert)
    except RevocationUnavailable:
        untrusted = long_term_refusal(pki, stranger.root_cert)
    assert not isinstance(untrusted, RevocationUnavailable)
    assert untrusted.code == "signer_unvalidated"
    assert str(untrusted).endswith('" was found'), str(untrusted)
