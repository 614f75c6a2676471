"""Validation of long-term signatures (PAdES B-LT, B-LTA): one signature, then only revisions
that add validation data and document timestamps, judged by pyHanko's ETSI AdES validation with
nothing fetched (`RevinfoOnlineFetchingRule.LOCAL_ONLY`), as of a moment.

What pyHanko's AdES result alone does not say, we check as well
(docs/long-term-signatures-spike.md, Q4): it reports PASSED for a file whose page content was
replaced in a later revision, so the later revisions must be validation data only
(`LTA_UPDATES`, DocMDP kept); the seal is read from the signed revision's own /Info; the /Contents
of every signature is checked byte for byte; the CMS envelope must be ours.

pyHanko's long-term validation reads the wall clock in places its timing argument does not
reach (proofs of existence are dated "now"). A validation as of another moment would be
optimistic, so those modules read a clock that gives the moment of the validation running in
the same context (a ContextVar), and the real time everywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Final

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
from pyhanko.sign.validation import ades
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import context as certvalidator_context
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv import ades_past, poe
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

import signing.validate as plain
from signing.revocation import issuer_of
from signing.validate import DOCUMENT_SIGNER_KEY_USAGE, FreshRevinfo, PdfReport

_CLOCK_READERS: Final[tuple[ModuleType, ...]] = (poe, ades_past, certvalidator_context, ades)
_CLOCK_LOCK: Final = threading.Lock()
_ACCEPTED_CHANGES: Final = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)


def validate_long_term(pdf: bytes, reader: PdfFileReader, roots: Sequence[asn1_x509.Certificate],
                       *, at: dt.datetime | None,
                       fresh_revinfo: FreshRevinfo | None) -> PdfReport:
    """The verdict on a file with one signature and later revisions (see the module)."""
    signature = reader.embedded_regular_signatures[0]
    stamps = reader.embedded_timestamp_signatures
    if len(reader.embedded_signatures) != 1 + len(stamps) or any(
            stamp.signed_revision <= signature.signed_revision for stamp in stamps):
        return PdfReport(ok=False, reason="multiple_signatures")
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    try:
        if not all(plain._contents_untouched(pdf, s) for s in reader.embedded_signatures):
            return PdfReport(ok=False, reason="modified")
        # Whatever the verifier knows to be revoked ends it, before any fallback below: a
        # revoked TSA (or CA) could have backdated its timestamps.
        known = [*_carried(signature, stamps),
                 *(x509.load_der_x509_certificate(root.dump()) for root in roots)]
        if fresh_revinfo is not None and _any_revoked(signature, stamps, moment, fresh_revinfo,
                                                      known):
            return PdfReport(ok=False, reason="revoked")
        result = None
        for knowledge in _knowledge_sets(signature, stamps, moment, fresh_revinfo, known):
            result = _ades(signature, roots, moment, knowledge)
            if result.ades_subindic.status.name == "PASSED" or result.api_status.revoked:
                break
        if result is None:  # unreachable: the first set is always tried (for mypy)
            return PdfReport(ok=False, reason="untrusted")
        status: PdfSignatureStatus = result.api_status
        reason = _failure(status, passed=result.ades_subindic.status.name == "PASSED")
        if reason is None and not plain._is_document_signer(status):
            reason = "untrusted"
        if reason is None and not plain._envelope_exact(signature, status):
            reason = "modified"
        if reason is not None:
            return PdfReport(ok=False, reason=reason)
        return PdfReport(
            ok=True, reason=None, signer=plain._subject(status),
            # AdES results leave signer_reported_dt empty: the claimed time is the signature
            # dictionary's /M (PAdES puts no signing-time attribute in the CMS).
            signing_time=signature.self_reported_timestamp,
            info=plain._custom_info(signature),
            timestamp=(status.timestamp_validity.timestamp
                       if status.timestamp_validity is not None else None),
            level="B-LTA" if stamps else "B-LT")
    except plain._PARSE_ERRORS as exc:
        return plain._malformed(exc)


def _failure(status: PdfSignatureStatus, *, passed: bool) -> str | None:
    if not status.intact:
        return "modified"
    if not status.valid:
        return "bad_signature"
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE and not (
            status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
            and status.modification_level in _ACCEPTED_CHANGES and status.docmdp_ok):
        return "modified"
    if status.revoked:
        return "revoked"
    if not passed:
        return "untrusted"
    if not plain._timestamp_sound(status):
        return "bad_timestamp"
    return None


def _knowledge_sets(signature: EmbeddedPdfSignature, stamps: Sequence[EmbeddedPdfSignature],
                    moment: dt.datetime, fresh_revinfo: FreshRevinfo | None,
                    known: Sequence[x509.Certificate]) -> Iterator[LocalKnowledge]:
    # The verifier's current CRLs of every CA first, so a revocation they know of is never
    # missed (a revoked certificate ends the search). Then current status only where it is
    # due: a current OCSP response on each TSA certificate still valid (ETSI: the newest
    # timestamp is checked against current status), and the current CRLs of the CAs above
    # the end entities' CAs. A current CRL of an end entity's CA no longer names a certificate
    # that has expired, and pyHanko's time slide would then move past that expiry (spike
    # Q4c), so those are left out. Last, what the file holds alone.
    if fresh_revinfo is None:
        yield LocalKnowledge()
        return
    crls = fresh_revinfo.crls(moment, known)
    yield _known(crls, [])
    tsas = [x509.load_der_x509_certificate(c.dump()) for c in _tsa_certs(signature, stamps)]
    live = [c for c in tsas if c.not_valid_before_utc <= moment <= c.not_valid_after_utc]
    issuing = {signature.signer_cert.issuer.dump(), *(c.issuer.public_bytes() for c in tsas)}
    answers = [fresh_revinfo.ocsp(c, moment, issuer_of(c, known)) for c in live]
    yield _known([c for c in crls if c.issuer.public_bytes() not in issuing],
                 [a for a in answers if a])
    yield LocalKnowledge()


def _known(crls: Sequence[x509.CertificateRevocationList],
           ocsps: Sequence[bytes]) -> LocalKnowledge:
    return LocalKnowledge(
        known_crls=[CRLContainer(asn1_crl.CertificateList.load(
            c.public_bytes(serialization.Encoding.DER))) for c in crls],
        known_ocsps=[OCSPContainer(asn1_ocsp.OCSPResponse.load(der)) for der in ocsps])


def _any_revoked(signature: EmbeddedPdfSignature, stamps: Sequence[EmbeddedPdfSignature],
                 moment: dt.datetime, fresh_revinfo: FreshRevinfo,
                 certs: Sequence[x509.Certificate]) -> bool:
    # Every certificate the file's signature and timestamps carry (signer, TSAs, their CAs),
    # and the trusted roots, against the verifier's current CRLs, and its current OCSP
    # answers on the TSAs.
    crls = fresh_revinfo.crls(moment, certs)
    for cert in certs:
        for crl in crls:
            if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(
                    cert.serial_number) is not None:
                return True
    for tsa in _tsa_certs(signature, stamps):
        tsa_cert = x509.load_der_x509_certificate(tsa.dump())
        answer = fresh_revinfo.ocsp(tsa_cert, moment, issuer_of(tsa_cert, certs))
        if answer and ocsp.load_der_ocsp_response(answer).certificate_status == (
                ocsp.OCSPCertStatus.REVOKED):
            return True
    return False


def _carried(signature: EmbeddedPdfSignature,
             stamps: Sequence[EmbeddedPdfSignature]) -> list[x509.Certificate]:
    """Every certificate the file carries: in its signature and timestamps (signer, TSAs,
    their CAs) and in its document security store (where a TSA's CA may be alone)."""
    carried: dict[bytes, None] = {}  # ordered, without repeats
    for container in (signature.signed_data, *(s.signed_data for s in stamps),
                      *_token_signed_data(signature)):
        for choice in container["certificates"] or ():
            if choice.name == "certificate":
                carried[choice.chosen.dump()] = None
    try:
        for cert in DocumentSecurityStore.read_dss(signature.reader).load_certs():
            carried[cert.dump()] = None
    except NoDSSFoundError:
        pass
    return [x509.load_der_x509_certificate(der) for der in carried]


def _token_signed_data(signature: EmbeddedPdfSignature) -> list[Any]:
    return [attribute["values"][0]["content"]
            for attribute in signature.signer_info["unsigned_attrs"] or ()
            if attribute["type"].native == "signature_time_stamp_token"]


def _tsa_certs(signature: EmbeddedPdfSignature,
               stamps: Sequence[EmbeddedPdfSignature]) -> list[asn1_x509.Certificate]:
    # The TSA certificate of every document timestamp and of the signature's own timestamp.
    found: list[asn1_x509.Certificate] = [stamp.signer_cert for stamp in stamps]
    for signed in _token_signed_data(signature):
        sid = signed["signer_infos"][0]["sid"].chosen
        found.extend(choice.chosen for choice in signed["certificates"]
                     if choice.chosen.issuer.dump() == sid["issuer"].dump()
                     and choice.chosen.serial_number == sid["serial_number"].native)
    return found


def _ades(signature: EmbeddedPdfSignature, roots: Sequence[asn1_x509.Certificate],
          moment: dt.datetime, knowledge: LocalKnowledge) -> Any:
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=plain_policy(roots),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY),
            key_usage_settings=KeyUsageConstraints(
                key_usage=set(DOCUMENT_SIGNER_KEY_USAGE), match_all_key_usages=True),
            local_knowledge=knowledge,
        ),
        diff_policy=DEFAULT_DIFF_POLICY,
    )
    timing = ValidationTimingInfo(validation_time=moment, best_signature_time=moment,
                                  point_in_time_validation=False)
    with _clock_at(moment):
        return asyncio.run(ades.ades_lta_validation(signature, spec, timing_info=timing))


def plain_policy(roots: Sequence[asn1_x509.Certificate]) -> Any:
    """Trust `roots`, and demand revocation information for every other certificate."""
    return CertValidationPolicySpec(trust_manager=SimpleTrustManager.build(trust_roots=roots),
                                    revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO))


_MOMENT: Final[contextvars.ContextVar[dt.datetime | None]] = contextvars.ContextVar(
    "pramaan_validation_moment", default=None)


class _Clock(dt.datetime):
    """`datetime` as pyHanko's long-term modules see it: the moment of the validation running
    in this context (thread, and the event loop asyncio.run starts from it), else the real
    clock. Other threads never see another's moment."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> Any:
        moment = _MOMENT.get()
        if moment is None:
            return dt.datetime.now(tz)
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


@contextlib.contextmanager
def _clock_at(moment: dt.datetime) -> Iterator[None]:
    with _CLOCK_LOCK:  # installed once, idempotent
        for module in _CLOCK_READERS:
            if module.datetime is not _Clock:
                module.datetime = _Clock  # type: ignore[attr-defined]
    token = _MOMENT.set(moment)
    try:
        yield
    finally:
        _MOMENT.reset(token)
