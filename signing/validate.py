"""Offline validation of a signed certificate PDF against configured trust roots."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Final, Protocol

from asn1crypto import cms
from asn1crypto import parser as asn1_parser
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import IndirectObjectExpected, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing.file_backend import load_pem_certificates, to_asn1_certificate
from signing.pades import STANDARD_INFO_KEYS

logger = logging.getLogger(__name__)

class FreshRevinfo(Protocol):
    """Current revocation information a verifier keeps or fetches (signing/revocation.py)."""

    def crls(self, now: dt.datetime | None = None,
             certs: Sequence[x509.Certificate] = ()) -> list[x509.CertificateRevocationList]:
        """The current CRLs, as of `now`, of the CAs that issued `certs` (the development
        authority gives every one of its CAs')."""
        ...

    def ocsp(self, cert: x509.Certificate, now: dt.datetime | None = None,
             issuer: x509.Certificate | None = None) -> bytes | None:
        """A current OCSP response (DER) on `cert` (issued by `issuer`), or None."""
        ...


PDF_REASONS: Final = frozenset(
    {"no_signature", "multiple_signatures", "modified", "untrusted", "bad_signature", "malformed",
     "bad_timestamp", "revoked"}
)
"""Stable reasons a signed PDF is rejected (`PdfReport.reason`)."""

# What pyHanko's PDF, CMS and ASN.1 parsers raise on damaged input (found by flipping bytes of
# signed files); for untrusted input each of them means "malformed", never a crash.
_PARSE_ERRORS: Final = (
    PdfError,
    ValueError,  # asn1crypto, pyHanko's CMSExtractionError and SignatureValidationError
    KeyError,
    TypeError,
    IndexError,
    AttributeError,  # pyHanko dereferencing a damaged object of the wrong type
    RecursionError,
)

_HEX_CONTENTS: Final = re.compile(rb"<(?:[0-9A-F]*|[0-9a-f]*)>")


@dataclass(frozen=True)
class PdfReport:
    """The verdict on a signed PDF.

    `ok` means: exactly one signature, intact, cryptographically valid, chaining to a trust
    root, and covering the entire file; if it carries a signature timestamp (PAdES B-T), that
    too is intact, valid and from a TSA chaining to a trust root, and `timestamp` is its time.
    Otherwise `reason` is one of `PDF_REASONS`.
    `info` holds the custom document information entries of the signed revision (e.g.
    "PramaanSeal") and is filled only when `ok`, so nobody reads them from a bad file.
    """

    ok: bool
    reason: str | None
    signer: str | None = None
    signing_time: dt.datetime | None = None
    info: dict[str, str] = field(default_factory=dict)
    timestamp: dt.datetime | None = None
    level: str | None = None


DOCUMENT_SIGNER_KEY_USAGE: Final = frozenset({"digital_signature", "non_repudiation"})


def validate_pdf(pdf: bytes, trust_root_paths: Sequence[Path], *,
                 at: dt.datetime | None = None,
                 fresh_revinfo: FreshRevinfo | None = None) -> PdfReport:
    """Validate the one PAdES signature of `pdf` offline against `trust_root_paths`, as of
    now or of the moment `at` (timezone-aware).

    B-B and B-T: the signature must cover the whole file; a signer certificate expired by `at`
    makes it "untrusted" (a signature timestamp is no proof of existence here). B-LT and B-LTA
    (signing/long_term.py): ETSI AdES validation with nothing fetched, which keeps a signature
    valid past its signer's expiry while its timestamps' chains hold; `fresh_revinfo` gives
    current revocation information a verifier keeps (CRLs as of a moment), which the newest
    timestamp needs once the embedded information has gone stale.

    Never raises for a bad document: input pyHanko cannot parse gives reason "malformed".
    Unreadable trust roots are a configuration error and raise `KeyMaterialMissing`.
    """
    roots = [
        to_asn1_certificate(cert)
        for path in trust_root_paths
        for cert in load_pem_certificates(path, "trust root")
    ]
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=True)
        signatures = reader.embedded_signatures
        regular = reader.embedded_regular_signatures
        later_revisions = bool(regular) and (
            reader.xrefs.total_revisions - 1 != regular[0].signed_revision)
    except _PARSE_ERRORS as exc:
        return _malformed(exc)  # equivalent: the exception only names the log line
    if len(regular) == 1 and later_revisions:
        from signing.long_term import validate_long_term

        return validate_long_term(pdf, reader, roots, at=at, fresh_revinfo=fresh_revinfo)
    if len(signatures) != 1:
        return PdfReport(ok=False, reason="multiple_signatures" if signatures else "no_signature")
    signature = signatures[0]
    try:
        untouched = _contents_untouched(pdf, signature)
        # Offline. Our certificates name no OCSP or CRL address, so nothing would be fetched
        # today either way (an equivalent mutant); issue 7's long-term signatures bring
        # certificates that do, tested against responders served on 127.0.0.1.
        context = ValidationContext(trust_roots=roots, allow_fetching=False,  # equivalent
                                    moment=at)
        # The diff analysis judges only revisions added after signing; we refuse those
        # outright (coverage must be the entire file), so it is skipped.
        status = validate_pdf_signature(
            signature,
            signer_validation_context=context,
            skip_diff=True,  # equivalent: one revision, nothing to diff (skipping saves time)
        )
        reason = _failure(status)
        if reason is None and not _is_document_signer(status):
            # Any certificate under the root is not enough (the seal certificate, or in
            # production any CCA-chained holder): a document signer has digitalSignature and
            # non-repudiation. pyHanko's default policy asks for non-repudiation only (and so
            # refuses the seal certificate itself: trusted is False); we ask for both.
            reason = "untrusted"
        if reason is None and not (untouched and _envelope_exact(signature, status)):
            reason = "modified"
        if reason is not None:
            return PdfReport(ok=False, reason=reason)
        return PdfReport(
            ok=True,
            reason=None,
            signer=_subject(status),
            signing_time=status.signer_reported_dt,
            info=_custom_info(signature),
            timestamp=(status.timestamp_validity.timestamp
                       if status.timestamp_validity is not None else None),
            level="B-B" if status.timestamp_validity is None else "B-T",
        )
    except _PARSE_ERRORS as exc:
        return _malformed(exc)  # equivalent: the exception only names the log line


def _malformed(exc: Exception) -> PdfReport:
    logger.info("malformed signed PDF: %s: %s", type(exc).__name__, exc)
    return PdfReport(ok=False, reason="malformed")


def _failure(status: PdfSignatureStatus) -> str | None:
    if not status.intact:
        return "modified"
    if not status.valid:
        return "bad_signature"
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return "modified"
    if not status.trusted:
        return "untrusted"
    if not _timestamp_sound(status):
        return "bad_timestamp"
    if not status.bottom_line:
        return "bad_signature"
    return None


def _is_document_signer(status: PdfSignatureStatus) -> bool:
    usage = status.signing_cert.key_usage_value
    return usage is not None and DOCUMENT_SIGNER_KEY_USAGE <= set(usage.native)


def _subject(status: PdfSignatureStatus) -> str:
    der = status.signing_cert.dump()
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _contents_untouched(pdf: bytes, signature: EmbeddedPdfSignature) -> bool:
    # The /Contents hex string is the one part of the file the signature cannot cover, and
    # pyHanko reads it leniently: it ignores whitespace and letter case in the hex digits and
    # parses only the DER prefix, not the zero padding after it. So a flipped byte there could
    # pass unnoticed; we require one-case hex digits only and an all-zero padding.
    start, length, gap_end = (int(signature.byte_range[i]) for i in range(3))
    if not _HEX_CONTENTS.fullmatch(pdf[start + length : gap_end]):
        return False
    contents = signature.pkcs7_content
    class_, method, tag, _, body, _ = asn1_parser.parse(contents)
    # pyHanko also takes the envelope's outer length in BER forms (indefinite, or longer than
    # needed); PDF signatures are DER (ISO 32000-1, 12.8.3.3.1), as our signer writes them.
    der = asn1_parser.emit(class_, method, tag, body)
    return contents.startswith(der) and not any(contents[len(der):])


def _envelope_exact(signature: EmbeddedPdfSignature, status: PdfSignatureStatus) -> bool:
    # Parts of the CMS container are not signed and pyHanko reads some of them leniently (the
    # signer's issuer name is matched case-insensitively, unused certificates and the outer
    # digest algorithm set are ignored). We accept only the exact shape our signer writes.
    signed_data = signature.signed_data
    signer_info = signature.signer_info
    signer = signature.signer_cert
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        return False
    if sid.chosen["issuer"].dump() != signer.issuer.dump():
        return False
    # pyHanko finds the signer by issuer and serial: another serial finds none and is refused as
    # malformed before this check (tests/test_signing_envelope.py), which stays as a backstop.
    if sid.chosen["serial_number"].dump() != signer["tbs_certificate"]["serial_number"].dump():
        return False  # equivalent: see above
    if [a.dump() for a in signed_data["digest_algorithms"]] != [
        signer_info["digest_algorithm"].dump()
    ]:
        return False
    if signed_data["version"].native != "v1" or signer_info["version"].native != "v1":
        return False
    # No validation path means not trusted, refused by _failure before this is called.
    if status.validation_path is None:
        return False  # equivalent: see above
    in_path = {cert.dump() for cert in status.validation_path.iter_certs(include_root=True)}
    embedded = signed_data["certificates"]
    return all(choice.chosen.dump() in in_path for choice in embedded) and not (
        signed_data["crls"]) and _only_a_signature_timestamp(signer_info["unsigned_attrs"])


def _only_a_signature_timestamp(unsigned: cms.CMSAttributes) -> bool:
    # Nothing unsigned but, at most, the one attribute PAdES B-T adds: a signature timestamp
    # token (a TSA's signature over ours), holding exactly one token.
    if not unsigned:
        return True
    return len(unsigned) == 1 and (
        unsigned[0]["type"].native == "signature_time_stamp_token"
        and len(unsigned[0]["values"]) == 1)


def _timestamp_sound(status: PdfSignatureStatus) -> bool:
    # pyHanko checks a signature timestamp's imprint (intact), the TSA's signature (valid) and
    # its chain and timeStamping usage (trusted) against the same roots as the signer.
    stamp = status.timestamp_validity
    return stamp is None or (stamp.intact and stamp.valid and stamp.trusted)


def _custom_info(signature: EmbeddedPdfSignature) -> dict[str, str]:
    # The document information of the signed revision itself: a later revision (B-LT and
    # B-LTA add some) could otherwise bring an /Info of its own. The historical resolver's
    # trailer_view reads the newest trailer, so the reference is resolved in the old revision.
    revision = signature.reader.get_historical_resolver(signature.signed_revision)
    try:
        info = revision.get_object(revision.trailer_view.get_value_as_reference("/Info"))
    except (KeyError, IndirectObjectExpected):
        return {}
    if not isinstance(info, generic.DictionaryObject):
        return {}
    entries: dict[str, str] = {}
    for key, value in info.items():
        name = str(key)[1:]
        if name not in STANDARD_INFO_KEYS and isinstance(value, generic.TextStringObject):
            entries[name] = str(value)
    return entries
