"""Verification of a scanned QR text or a PDF file: the seal, the signature and the status."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, Literal, NotRequired, TypedDict
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.canonical import canonical_request
from issuer.certtypes import cert_type
from issuer.db import as_utc
from issuer.models import Certificate, PdfRevision, State
from issuer.runtime import Runtime
from issuer.seal_fields import SEAL_DIGEST_BYTES, Holder, holder_of, type_and_dates
from issuer.settings import Settings
from issuer.typeddict_schema import DATE_TIME, Keywords
from signing.errors import SEAL_REASONS
from signing.seal import PRIVATE_CLAIM, SealReport, verify_seal
from signing.validate import PDF_REASONS, validate_pdf

STATUS_BY_STATE = {
    State.ISSUED.value: "current",
    State.SUPERSEDED.value: "superseded",
    State.REVOKED.value: "revoked",
}
# The answer's `status`: a genuine certificate's, else invalid. A superseded one's
# `current_status` is its successor's (any state's name, should the chain end unissued).
STATUSES: Final = (*STATUS_BY_STATE.values(), "invalid")
CURRENT_STATUSES: Final = tuple(sorted({STATUS_BY_STATE.get(s.value, s.value) for s in State}))
CheckName = Literal["link", "seal", "pdf_signature", "issuer", "claims", "record", "issued",
                    "issued_file"]
# A failed check's stable reason: the seal's and the PDF's (signing/), or one of these.
OWN_REASONS: Final = frozenset({"foreign_link", "missing", "foreign_issuer", "no_certificate_id",
                                "unknown_certificate", "fields_mismatch", "not_issued",
                                "not_the_issued_file"})
REASONS: Final = SEAL_REASONS | PDF_REASONS | OWN_REASONS


class CheckView(TypedDict):
    name: CheckName
    ok: bool
    reason: Annotated[str, Keywords(enum=sorted(REASONS))] | None


class VerifiedCertificate(TypedDict):
    """What the seal says (and, once its record is found, the record), the particulars when
    it is genuine and issued, and what replaced or revoked it."""

    id: str | None
    type: str | None
    number: str | None
    holder: Holder | None
    # Each type names its one date (seals before the compact seal carried several).
    dates: dict[str, str] | None
    registration_number: str | None
    ward: str | None
    issuer: str
    issued_at: Annotated[int, Keywords(description="The seal's iat: seconds since the epoch")]
    seal_kid: str | None
    particulars: NotRequired[Annotated[dict[str, Any], Keywords(
        description="The request's fields as printed (all but the applicant's contact)",
        required=["type"], properties={"type": {"type": "string"}},
        additionalProperties=True)]]
    superseded_by: NotRequired[str]
    current_number: NotRequired[str | None]
    current_status: NotRequired[Annotated[str, Keywords(enum=list(CURRENT_STATUSES))]]
    revoked_reason: NotRequired[str | None]
    revoked_at: NotRequired[Annotated[str | None, DATE_TIME]]


class VerdictView(TypedDict):
    """The answer to POST /api/v1/verify and /api/v1/verify/pdf."""

    genuine: bool
    status: Annotated[str, Keywords(enum=list(STATUSES))]
    current: bool
    reason: Annotated[str | None, Keywords(description="The first failed check: name: reason")]
    checks: list[CheckView]
    certificate: VerifiedCertificate | None


@dataclass
class Check:
    name: CheckName
    ok: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None and self.reason not in REASONS:  # stable codes only
            raise ValueError(f"unknown check reason {self.reason!r}")

    def as_dict(self) -> CheckView:
        return {"name": self.name, "ok": self.ok, "reason": self.reason}


@dataclass
class Verdict:
    """Genuine means every check passed; `current` additionally needs the issued state."""

    checks: list[Check] = field(default_factory=list)
    status: str = "unknown"
    certificate: VerifiedCertificate | None = None

    @property
    def genuine(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def current(self) -> bool:
        return self.genuine and self.status == "current"

    def as_dict(self) -> VerdictView:
        failed = next((c for c in self.checks if not c.ok), None)
        return {
            "genuine": self.genuine,
            "status": self.status if self.genuine else "invalid",
            "current": self.current,
            "reason": f"{failed.name}: {failed.reason}" if failed else None,
            "checks": [c.as_dict() for c in self.checks],
            "certificate": self.certificate,
        }


def verify_qr(runtime: Runtime, text: str) -> Verdict:
    """Check a scanned QR text: seal signature against the trust list, then the record's status."""
    verdict = Verdict()
    verdict.checks.append(_link_check(runtime.settings, text))
    report = verify_seal(text, runtime.trust.seal_trust)
    verdict.checks.append(Check("seal", report.ok, report.reason))
    if report.ok:
        _status_from_seal(runtime, report, verdict)
    return verdict


def _link_check(settings: Settings, text: str) -> Check:
    """The link in front of '#' is not signed: a genuine seal behind someone else's address would
    send phone users to a look-alike site. Only our verify addresses (or bare digits) pass."""
    # equivalent: rpartition (the text before the last '#' adds only a fragment, dropped below)
    link, hash_sign, _digits = text.strip().partition("#")  # equivalent
    if not hash_sign or is_our_verify_link(settings, link):
        return Check("link", True)
    return Check("link", False, "foreign_link")


def is_our_verify_link(settings: Settings, link: str) -> bool:
    """True if `link` (the part before '#') opens one of our verify pages.

    Ours are configuration, not where this process listens: `PRAMAAN_VERIFY_BASE_URL` and the
    earlier bases kept for certificates already printed. A query is ignored, because messengers
    append one (`/v?fbclid=...`); scheme and host compare case-insensitively, default ports
    match an absent one. In development without a configured base, any loopback http(s)
    origin counts too (dev seals carry whatever port the laptop served on)."""
    target = _origin_and_path(link)
    if target is None:
        return False
    ours = {_origin_and_path(f"{base}/v") for base in settings.verify_base_urls}
    if target in ours:
        return True
    scheme, host, _port, path = target
    return (settings.development and not settings.verify_base_url_configured
            and path == "/v" and scheme in ("http", "https") and _loopback(host))


def _origin_and_path(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, parts.hostname.lower(), port, parts.path


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def verify_pdf(runtime: Runtime, pdf: bytes, *, at: datetime | None = None) -> Verdict:
    """Check a PDF: PAdES signature and chain (as of `at`, default now), the seal it carries,
    the record and its status (as it is now)."""
    verdict = Verdict()
    pdf_report = validate_pdf(pdf, runtime.trust.trust_root_paths, at=at,
                              fresh_revinfo=runtime.fresh_revinfo)
    verdict.checks.append(Check("pdf_signature", pdf_report.ok, pdf_report.reason))
    if not pdf_report.ok:
        return verdict
    seal_text = pdf_report.info.get("PramaanSeal")
    if not seal_text:
        verdict.checks.append(Check("seal", False, "missing"))
        return verdict
    report = verify_seal(seal_text, runtime.trust.seal_trust)
    verdict.checks.append(Check("seal", report.ok, report.reason))
    if not report.ok:
        return verdict
    record = _status_from_seal(runtime, report, verdict)
    if record is not None:
        digest = hashlib.sha256(pdf).hexdigest()
        same = record.pdf_sha256 == digest or _an_earlier_revision(runtime, record.id, digest)
        verdict.checks.append(Check("issued_file", same, None if same else "not_the_issued_file"))
    return verdict


def _an_earlier_revision(runtime: Runtime, cert_id: str, digest: str) -> bool:
    # A file the certificate had before an archival timestamp replaced it (issuer/ltv.py).
    # The digest alone names that file (SHA-256), and a file recorded as a revision carries its
    # own certificate's seal, the one that gave `cert_id`: the certificate test restates it.
    with runtime.sessions() as session:
        return session.scalar(select(PdfRevision.id).where(
            # equivalent, next line: dropped, the digest still matches only cert_id's files
            PdfRevision.certificate_id == cert_id,  # equivalent
            PdfRevision.sha256 == digest)) is not None


def _status_from_seal(runtime: Runtime, report: SealReport, verdict: Verdict) -> Certificate | None:
    claims = report.claims or {}
    if claims.get(1) != runtime.settings.issuer_id:
        verdict.checks.append(Check("issuer", False, "foreign_issuer"))
        return None
    ours = claims.get(PRIVATE_CLAIM) or {}
    # Seals name their record by number; those made before the compact seal (issue 10) by the
    # record's id as well.
    cert_id: str | None = None
    number = ours.get("no")
    try:
        if "id" in ours:
            cert_id = str(uuid.UUID(bytes=bytes(ours["id"])))
        elif not isinstance(number, str) or not number:
            # equivalent: the message is never read (caught just below, said as no_certificate_id)
            raise ValueError("no number")
    except (TypeError, ValueError):
        verdict.checks.append(Check("claims", False, "no_certificate_id"))
        return None
    kind, dates = type_and_dates(ours)
    certificate: VerifiedCertificate = {
        "id": cert_id,
        "type": kind,
        "number": ours.get("no"),
        "holder": holder_of(ours.get("n")),
        "dates": dates,
        "registration_number": ours.get("r"),
        "ward": ours.get("w"),
        "issuer": claims[1],  # ours (checked above)
        "issued_at": claims[6],  # an int: verify_seal refuses a seal without one
        "seal_kid": report.kid,
    }
    verdict.certificate = certificate
    with runtime.sessions() as session:
        record = _record(session, cert_id, number)
    if record is None:
        verdict.checks.append(Check("record", False, "unknown_certificate"))
        return None
    certificate["id"] = record.id
    if certificate["ward"] is None:
        certificate["ward"] = _ward_of(record)
    # The full digest (old seals) or its first SEAL_DIGEST_BYTES (compact seals), never less.
    digest = bytes(ours.get("h") or b"").hex()  # equivalent: any filler; no 64-digit hash is it
    matches = (len(digest) in (2 * SEAL_DIGEST_BYTES, 64) and record.fields_sha256 is not None
               and record.fields_sha256.startswith(digest) and record.seal_text is not None)
    verdict.checks.append(Check("record", matches, None if matches else "fields_mismatch"))
    # A seal exists from the moment the intent is recorded, before the PDF is signed: until
    # the record is issued (and after it failed or was cancelled) nobody holds a genuine
    # certificate, whatever the seal says.
    was_issued = record.state in STATUS_BY_STATE
    verdict.checks.append(Check("issued", was_issued, None if was_issued else "not_issued"))
    verdict.status = STATUS_BY_STATE.get(record.state, record.state)
    if matches and was_issued:
        # Online, everything the paper prints, from the record the seal matched: a paper with
        # a parent's name or the address changed no longer reads as genuine at a glance.
        certificate["particulars"] = printed_particulars(record)
    # The state and superseded_by change together (issue._mark_issued, one transaction), so
    # either alone decides; the end of a chain is issued or revoked, both in STATUS_BY_STATE;
    # a revoked record always has revoked_at (workflow.revoke). The fallbacks are defensive.
    if record.state == State.SUPERSEDED.value and record.superseded_by:  # equivalent
        with runtime.sessions() as session:
            current = _current(session, record)
        certificate["superseded_by"] = current.id
        certificate["current_number"] = current.number
        status = STATUS_BY_STATE.get(current.state, current.state)  # equivalent: default
        certificate["current_status"] = status
    if record.state == State.REVOKED.value:
        certificate["revoked_reason"] = record.decision_reason
        certificate["revoked_at"] = (as_utc(record.revoked_at).isoformat()
                                     if record.revoked_at else None)  # equivalent
    return record


def printed_particulars(record: Certificate) -> dict[str, Any]:
    """The request's fields as printed on the certificate: all but the applicant's contact."""
    return {k: v for k, v in canonical_request(record.request).items() if k != "applicant"}


def _record(session: Session, cert_id: str | None, number: object) -> Certificate | None:
    if cert_id is not None:
        return session.get(Certificate, cert_id)
    return session.scalar(select(Certificate).where(Certificate.number == number))


def _ward_of(record: Certificate) -> str | None:
    kind = cert_type(record.cert_type)
    return kind.ward_office(canonical_request(record.request))["en"] if kind else None


MAX_CORRECTIONS = 100  # a chain of corrections longer than this is followed no further


def _current(session: Session, record: Certificate) -> Certificate:
    """The certificate that replaces `record` now: the end of its chain of corrections."""
    current = record
    for _ in range(MAX_CORRECTIONS):
        if current.superseded_by is None:
            break
        following = session.get(Certificate, current.superseded_by)
        if following is None:  # unreachable: superseded_by is a foreign key (for mypy)
            break  # equivalent: `return` here (None) is never reached either
        current = following
    return current
