"""PAdES signing and offline validation, checked with pyHanko's validator and poppler's pdfsig."""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import SignatureTooLarge, SigningError
from signing.file_backend import FileBackend, load_pem_certificate, to_asn1_certificate
from signing.pades import PadesSigner
from signing.validate import PDF_REASONS, validate_pdf
from tests.fixture_scope import shared
from tests.test_signing_support import minimal_pdf, pdfsig_report, typst_pdf

SEAL_TEXT = "https://verify.pmc.example/v#1123456789"


@pytest.fixture(scope=shared("module"))
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope=shared("module"))
def signer(pki: DevPki) -> PadesSigner:
    return PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)))


@pytest.fixture(scope=shared("module"))
def source_pdf() -> bytes:
    return typst_pdf()


@pytest.fixture(scope=shared("module"))
def signed_pdf(signer: PadesSigner, source_pdf: bytes) -> bytes:
    return signer.sign(
        source_pdf,
        reason="Birth certificate issued",
        location="Pune",
        info={"PramaanSeal": SEAL_TEXT, "PramaanId": "PMC-BIRTH-2025-000123"},
    )


def test_pyhanko_validator_says_intact_valid_trusted_entire_file(
    signed_pdf: bytes, pki: DevPki
) -> None:
    signature = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures[0]
    root = to_asn1_certificate(load_pem_certificate(pki.root_cert))
    context = ValidationContext(trust_roots=[root], allow_fetching=False)

    status = validate_pdf_signature(signature, signer_validation_context=context)

    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.bottom_line
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert signature.md_algorithm == "sha256"


def test_validate_pdf_accepts_and_reads_back_info(signed_pdf: bytes, pki: DevPki) -> None:
    report = validate_pdf(signed_pdf, [pki.root_cert])

    assert report.ok and report.reason is None
    assert report.info == {"PramaanSeal": SEAL_TEXT, "PramaanId": "PMC-BIRTH-2025-000123"}
    assert report.signer is not None and "CN=Pramaan Dev Document Signer" in report.signer
    assert report.signing_time is not None


def test_pdfsig_says_valid_and_trusted(signed_pdf: bytes, pki: DevPki, tmp_path: Path) -> None:
    pdf_path = tmp_path / "signed.pdf"
    pdf_path.write_bytes(signed_pdf)

    output = pdfsig_report(pdf_path, pki.root_cert, tmp_path / "nss")

    assert "Signature is Valid" in output, output
    assert "Certificate is Trusted" in output, output
    assert "Total document signed" in output, output


def test_pdf_without_info_dictionary_gets_one_in_the_signed_revision(
    signer: PadesSigner, pki: DevPki
) -> None:
    signed = signer.sign(minimal_pdf(), reason="r", location="Pune", info={"PramaanSeal": "x"})

    report = validate_pdf(signed, [pki.root_cert])

    assert report.ok
    assert report.info == {"PramaanSeal": "x"}


def test_signing_time_is_the_one_given(signer: PadesSigner, pki: DevPki) -> None:
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30)

    signed = signer.sign(minimal_pdf(), reason="r", location="Pune", signing_time=moment)

    report = validate_pdf(signed, [pki.root_cert])
    assert report.ok
    assert report.signing_time == moment


def test_same_input_and_time_give_same_signature(signer: PadesSigner) -> None:
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pdf = minimal_pdf()

    first = signer.sign(pdf, reason="r", location="Pune", signing_time=moment)
    second = signer.sign(pdf, reason="r", location="Pune", signing_time=moment)

    # RSA PKCS#1 v1.5 is deterministic: the CMS blob is identical whenever the signed bytes are.
    # pyHanko stamps /ModDate and a random second /ID half, so compare only when those agree.
    def strip(data: bytes) -> bytes:
        return re.sub(rb"/ModDate \([^)]*\)|/ID \[[^]]*\]|/Contents <[0-9A-F]+>", b"", data)

    assert strip(first) == strip(second)


def test_validation_as_of_another_moment_follows_the_signer_s_validity(
    signed_pdf: bytes, pki: DevPki
) -> None:
    """`pramaan verify --at`: a B-B signature holds while its signer's certificate is valid
    (5 years from issue) and not after, nor before it was valid."""
    signer = load_pem_certificate(pki.signer_cert)
    roots = [pki.root_cert]
    for moment, ok in ((signer.not_valid_before_utc + dt.timedelta(days=1), True),
                       (signer.not_valid_after_utc - dt.timedelta(days=1), True),
                       (signer.not_valid_after_utc + dt.timedelta(days=1), False),
                       (signer.not_valid_before_utc - dt.timedelta(days=1), False)):
        report = validate_pdf(signed_pdf, roots, at=moment)
        assert report.ok is ok, (moment, report)
        assert report.reason == (None if ok else "untrusted"), moment


def test_other_roots_do_not_trust_it(signed_pdf: bytes, tmp_path: Path) -> None:
    stranger = ensure_dev_pki(tmp_path / "other")

    report = validate_pdf(signed_pdf, [stranger.root_cert])

    assert (report.ok, report.reason) == (False, "untrusted")
    assert report.info == {}


def test_unsigned_pdf_has_no_signature(pki: DevPki) -> None:
    report = validate_pdf(minimal_pdf(), [pki.root_cert])

    assert (report.ok, report.reason) == (False, "no_signature")


def test_garbage_is_malformed(pki: DevPki) -> None:
    for garbage in (b"not a pdf", b""):
        report = validate_pdf(garbage, [pki.root_cert])
        assert (report.ok, report.reason) == (False, "malformed")


def test_appended_revision_is_modified(signed_pdf: bytes, pki: DevPki) -> None:
    tail = signed_pdf + b"\n% appended after signing\n"

    report = validate_pdf(tail, [pki.root_cert])

    assert (report.ok, report.reason) == (False, "modified")


def test_signing_a_signed_pdf_is_refused(signer: PadesSigner, signed_pdf: bytes) -> None:
    with pytest.raises(SigningError) as caught:
        signer.sign(signed_pdf, reason="r", location="Pune")
    assert caught.value.code == "already_signed"


def test_unreadable_input_is_refused(signer: PadesSigner) -> None:
    with pytest.raises(SigningError) as caught:
        signer.sign(b"%PDF-1.7 nonsense", reason="r", location="Pune")
    assert caught.value.code == "unreadable_pdf"


@pytest.mark.parametrize("key", ["Title", "ModDate", "Pramaan Seal", "/PramaanSeal", ""])
def test_info_keys_must_be_custom_names(signer: PadesSigner, key: str) -> None:
    with pytest.raises(SigningError) as caught:
        signer.sign(minimal_pdf(), reason="r", location="Pune", info={key: "x"})
    assert caught.value.code == "invalid_info"


def test_naive_signing_time_is_refused(signer: PadesSigner) -> None:
    with pytest.raises(SigningError):
        signer.sign(minimal_pdf(), reason="r", location="P", signing_time=dt.datetime(2026, 1, 1))


def test_oversized_signature_fails_loudly(pki: DevPki) -> None:
    tiny = PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)), bytes_reserved=1024)

    with pytest.raises(SignatureTooLarge) as caught:
        tiny.sign(minimal_pdf(), reason="r", location="Pune")
    assert caught.value.code == "signature_too_large"


@pytest.mark.parametrize("bytes_reserved", [0, -2, 1001])
def test_bytes_reserved_must_be_positive_and_even(pki: DevPki, bytes_reserved: int) -> None:
    backend = load_backend(SignerConfig.from_keys_dir(pki.keys_dir))
    with pytest.raises(SigningError):
        PadesSigner(backend, bytes_reserved=bytes_reserved)


def _flip(data: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


def _regions(pdf: bytes) -> dict[str, int]:
    contents = re.search(rb"/Contents <([0-9A-F]+)>", pdf)
    assert contents is not None
    hex_start, hex_end = contents.span(1)
    der_hex_len = 2 * (4 + int(pdf[hex_start + 4 : hex_start + 8], 16))  # 30 82 LL LL
    return {
        "header": 2,
        "first_revision_middle": len(pdf) // 4,
        "info_seal_text": pdf.index(b"/PramaanSeal (") + 16,
        "byte_range": pdf.index(b"/ByteRange") + 14,
        "cms_start": hex_start + 10,
        "cms_signer_cert": hex_start + der_hex_len // 4,
        "cms_signer_info": hex_start + der_hex_len - 700,
        "cms_signature_value": hex_start + der_hex_len - 20,
        "contents_padding": hex_start + der_hex_len + 50,
        "contents_padding_end": hex_end - 1,
        "trailer": pdf.rindex(b"trailer") if b"trailer" in pdf else len(pdf) - 40,
        "startxref": pdf.rindex(b"startxref") + 11,
        "eof": len(pdf) - 3,
    }


@pytest.mark.parametrize(
    "region",
    [
        "header",
        "first_revision_middle",
        "info_seal_text",
        "byte_range",
        "cms_start",
        "cms_signer_cert",
        "cms_signer_info",
        "cms_signature_value",
        "contents_padding",
        "contents_padding_end",
        "trailer",
        "startxref",
        "eof",
    ],
)
@pytest.mark.parametrize("bit", [0, 4, 5])
def test_flipped_byte_is_rejected_with_a_reason(
    signed_pdf: bytes, pki: DevPki, region: str, bit: int
) -> None:
    # bit 4 turns "0" into a space and bit 5 swaps hex letter case: both invisible to a lenient
    # hex-string reader, so they probe the /Contents strictness checks.
    position = _regions(signed_pdf)[region]

    report = validate_pdf(_flip(signed_pdf, position, bit), [pki.root_cert])

    assert not report.ok
    assert report.reason in PDF_REASONS
    assert report.info == {}


def test_random_flips_never_pass_and_never_raise(signed_pdf: bytes, pki: DevPki) -> None:
    rng = random.Random(20251128)
    for _ in range(150):
        position = rng.randrange(len(signed_pdf))
        report = validate_pdf(_flip(signed_pdf, position, rng.randrange(8)), [pki.root_cert])
        assert not report.ok, f"flip at {position} passed"
        assert report.reason in PDF_REASONS


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    real: Callable[..., object] = getattr(serialization, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(serialization, name, counted)
    return calls


def test_file_backend_parses_the_key_once(pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    pem_loads = _counting(monkeypatch, "load_pem_private_key")
    der_loads = _counting(monkeypatch, "load_der_private_key")
    signer = PadesSigner(FileBackend.load(SignerConfig.from_keys_dir(pki.keys_dir)))
    pdf = minimal_pdf()

    signed = [signer.sign(pdf, reason="r", location="Pune") for _ in range(5)]

    assert (pem_loads[0], der_loads[0]) == (1, 0)
    assert all(validate_pdf(s, [pki.root_cert]).ok for s in signed)


def test_stock_simple_signer_reparses_the_key_which_the_counter_sees(
    pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Control for the test above: the counter does catch pyHanko's per-signature re-parse.
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    der_loads = _counting(monkeypatch, "load_der_private_key")
    stock = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
        str(pki.signer_key), str(pki.signer_cert)
    )
    assert stock is not None
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=None, md_algorithm="sha256")
    writer = IncrementalPdfFileWriter(BytesIO(minimal_pdf()))

    signers.PdfSigner(meta, stock).sign_pdf(writer, bytes_reserved=16384)

    assert der_loads[0] >= 1


def test_signing_certificate_attribute_is_pyhankos_own(tmp_path: Path) -> None:
    """The once-encoded signing-certificate-v2 attribute equals what pyHanko builds itself."""
    from asn1crypto import cms
    from pyhanko.sign.general import as_signing_certificate_v2

    from signing.devpki import ensure_dev_pki
    from tests.test_signing_support import minimal_pdf

    pki = ensure_dev_pki(tmp_path)
    backend = load_backend(SignerConfig.from_keys_dir(pki.keys_dir))
    signer = PadesSigner(backend)
    for _ in range(2):  # the second signature uses the cached encoding
        signed = signer.sign(minimal_pdf(), reason="r", location="Pune")
        sig = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
        signer_info: cms.SignerInfo = sig.signer_info
        attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
        expected = as_signing_certificate_v2(backend.signer.signing_cert).dump()
        assert attrs["signing_certificate_v2"].dump() == expected


def stock_signed(pdf: bytes, key: Path, cert: Path, ca: Path, field: str = "Sig") -> bytes:
    """`pdf` with a PAdES signature added by pyHanko's stock signer (nothing of ours)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    stock = signers.SimpleSigner.load(str(key), str(cert), ca_chain_files=(str(ca),))
    assert stock is not None
    out = BytesIO()
    signers.PdfSigner(
        signers.PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES),
        signer=stock,
    ).sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), output=out)
    return out.getvalue()


def test_a_certificate_without_non_repudiation_is_not_a_document_signer(tmp_path: Path) -> None:
    """The seal certificate chains to the same root but may not sign certificates (PDFs)."""
    pki = ensure_dev_pki(tmp_path)
    signed = stock_signed(minimal_pdf(), pki.seal_key, pki.seal_cert, pki.ca_cert)
    report = validate_pdf(signed, [pki.root_cert])
    assert (report.ok, report.reason) == (False, "untrusted")


def test_non_repudiation_alone_is_not_a_document_signer(tmp_path: Path) -> None:
    """pyHanko's default policy asks for non-repudiation only; a document signer also needs
    digitalSignature (signing/validate.py checks both). Signed with pyHanko's stock signer so
    that nothing of ours refuses the certificate earlier."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.test_signing_support import issue_end_entity

    pki = ensure_dev_pki(tmp_path / "keys")
    key_path, cert_path = issue_end_entity(pki, tmp_path, name="nr-only",
                                           key=ec.generate_private_key(ec.SECP256R1()),
                                           digital_signature=False, non_repudiation=True)
    signed = stock_signed(minimal_pdf(), key_path, cert_path, pki.ca_cert)
    report = validate_pdf(signed, [pki.root_cert])
    assert (report.ok, report.reason) == (False, "untrusted")


def test_a_pdf_that_needs_repair_is_malformed_not_read_leniently(
    pki: DevPki, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong startxref offset is something a lenient reader repairs; we do not: what we
    validate is read strictly, as written. The log says what the parser found wrong."""
    pdf = minimal_pdf()
    at = pdf.rindex(b"startxref\n") + len(b"startxref\n")
    end = pdf.index(b"\n", at)
    broken = pdf[:at] + str(int(pdf[at:end]) + 1).encode() + pdf[end:]
    assert validate_pdf(pdf, [pki.root_cert]).reason == "no_signature"  # control
    with caplog.at_level(logging.INFO, logger="signing.validate"):
        report = validate_pdf(broken, [pki.root_cert])
    assert (report.ok, report.reason) == (False, "malformed")
    (logged,) = caplog.messages
    assert logged.startswith("malformed signed PDF: PdfStrictReadError: "), logged
    assert "xref" in logged, logged  # pyHanko's own words, not just the exception's type


def test_a_second_signature_is_refused(signed_pdf: bytes, pki: DevPki) -> None:

    twice = stock_signed(signed_pdf, pki.signer_key, pki.signer_cert, pki.ca_cert, "Second")
    report = validate_pdf(twice, [pki.root_cert])
    assert (report.ok, report.reason) == (False, "multiple_signatures")


def test_an_unreadable_trust_root_says_which(signed_pdf: bytes, tmp_path: Path) -> None:
    from signing.errors import KeyMaterialMissing

    junk = tmp_path / "root.crt"
    junk.write_text("not a certificate")
    with pytest.raises(KeyMaterialMissing) as refused:
        validate_pdf(signed_pdf, [junk])
    assert str(refused.value) == f"trust root {junk} holds no valid PEM certificate"
