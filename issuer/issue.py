"""The issue job: approved -> (intent: seal) signing -> QR, render, PAdES sign, store -> issued.

Two short transactions around the slow part, as boulder does it: first the intent is recorded
(issue time, field digest, the seal text, an audit event), then the PDF is made and signed with
no transaction open, then a compare-and-set marks the record issued with a second audit event.
Running the job twice, on two workers at once, or again after a crash in the middle, gives one
issued record and one `sign` event: a record left in `signing` is finished from its intent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import cbor2
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from digilocker.deliveries import enqueue_pending, plan_issued
from issuer import audit, published, seal_fields
from issuer.canonical import canonical_request
from issuer.certtypes import cert_type
from issuer.db import as_utc, lost_connection, outlasting_outages, utcnow
from issuer.errors import IssuanceFailed
from issuer.fields import IST
from issuer.metrics import timed
from issuer.models import Certificate, State
from issuer.runtime import Runtime
from issuer.settings import Settings
from signing.errors import ServiceUnavailable
from signing.pades import PadesSigner
from signing.qr import qr_svg
from signing.seal import PRIVATE_CLAIM

log = logging.getLogger(__name__)

Timings = MutableMapping[str, float]

# A record in `signing` untouched this long is taken to be abandoned by a dead worker.
RESUME_AFTER = timedelta(seconds=120)
# Failed issue attempts before a record becomes `failed` (an operator then retries or cancels).
MAX_ATTEMPTS = 3
_MAX_ERROR_TEXT = 1000


@contextmanager
def stage(timings: Timings | None, name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def certified_fields(record: Certificate, issued_on: date) -> dict[str, Any]:
    """What the certificate certifies: the printed request fields plus number and issue date.

    Applicant contact details are not printed and not certified."""
    printed = {k: v for k, v in canonical_request(record.request).items() if k != "applicant"}
    return {"request": printed, "number": record.number, "issued_on": issued_on.isoformat()}


def fields_digest(fields: Mapping[str, Any]) -> bytes:
    """SHA-256 over cbor2's canonical encoding (RFC 7049 section 3.9: length-first key order)."""
    return hashlib.sha256(cbor2.dumps(fields, canonical=True)).digest()


def seal_claims(record: Certificate, issuer_id: str, issued_at: datetime,
                digest: bytes) -> dict[int, Any]:
    """CWT-shaped claims: registered iss (1) and iat (6), our fields under one private key."""
    kind = cert_type(record.cert_type)
    assert kind is not None
    facts = kind.seal_facts(canonical_request(record.request))
    # What a verifier needs and nothing more, so the QR stays small enough to print large
    # (issue 10: version 15-16 at ECC Q in 55 mm reads from a cheap phone's video frame). The
    # number finds the record (unique); the ward is in the number; the digest binds the seal to
    # the recorded fields at 128 bits. Seals made before this (with the record's 16-byte id, the
    # ward's name and the full digest) verify as before (issuer/verify.py). The Marathi name is
    # packed one byte per letter (issuer/seal_fields.py).
    ours = {
        "t": kind.number_prefix,
        "n": {"en": facts.holder["en"], "mr": seal_fields.pack(facts.holder["mr"])},
        "d": facts.dates[kind.seal_date],
        "r": record.registration_number,
        "no": record.number,
        "si": record.status_index,
        "h": digest[:seal_fields.SEAL_DIGEST_BYTES],
    }
    return {1: issuer_id, 6: int(issued_at.timestamp()), PRIVATE_CLAIM: ours}


def render_data(settings: Settings, intent: Intent) -> dict[str, Any]:
    """The template's input for a recorded intent.

    A function of the stored record (request, number, issue time, seal text, template
    version) and of settings (the issuer's names) only, besides what is versioned with the
    template (the type's authority wording, tests/test_templates_versions.py), so a certificate
    re-renders byte for byte, with its recorded template version, for as long as the issuer's
    names stay. The verify address printed beside the QR is the QR's own link, read from the
    seal text: moving the verify site later changes no old certificate."""
    kind = cert_type(intent.cert_type)
    if kind is None:
        raise IssuanceFailed(f"certificate {intent.id} has an unknown type {intent.cert_type!r}")
    link = intent.seal_text.partition("/v#")[0]  # equivalent: rpartition, one "/v#" (no "#" before)
    return {
        "issuer": {
            "name": {"en": settings.issuer_name_en, "mr": settings.issuer_name_mr},
            "department": dict(kind.authority),
        },
        "certificate": {
            "number": intent.number,
            "issued_at": intent.issued_at.astimezone(IST).date().isoformat(),
            "template_version": intent.template_version,
            "verify_host": link.split("://", 1)[1],
        },
        "request": intent.request,
    }


@dataclass(frozen=True)
class Intent:
    """What is about to be signed, as recorded in the `signing` state."""

    id: str
    cert_type: str
    number: str
    request: Mapping[str, Any]
    issued_at: datetime
    seal_text: str
    template_version: str  # as recorded: the version it was, or is being, rendered with

    @classmethod
    def of(cls, record: Certificate) -> Intent:
        assert record.number and record.issued_at and record.seal_text
        assert record.template_version
        return cls(record.id, record.cert_type, record.number,
                   canonical_request(record.request), as_utc(record.issued_at), record.seal_text,
                   record.template_version)


def issue_certificate(runtime: Runtime, certificate_id: str, *,
                      timings: Timings | None = None, db_patience: float = 0.0) -> bool:
    """Issue one approved (or interrupted `signing`) certificate. True if this call issued it,
    False if there was nothing to do (unknown id, already issued, failed, cancelled, ...).

    A failure is counted on the record with its error and re-raised; after `MAX_ATTEMPTS`
    failures the record becomes `failed` (audited), which the sweeper leaves alone until an
    operator retries or cancels it. A TSA that gives no timestamp (or an OCSP responder or CRL
    server no current answer: `ServiceUnavailable`) is not the record's fault:
    the error is kept but not counted, nothing was signed or stored, and the sweeper tries
    again (every `pramaan sweep`, once the record has waited its interval).

    Neither is a database out of reach: each of the two transactions is tried again for up to
    `db_patience` seconds (a worker's job waits out a restart; 0, the default, waits for
    nothing), and if the outage lasts longer the failure is not counted either."""
    try:
        intent = outlasting_outages(
            f"recording the intent to issue {certificate_id}",
            lambda: record_intent(runtime, certificate_id, timings), patience=db_patience)
        if intent is None:
            return False
        pdf = produce(runtime, intent, timings)
        with stage(timings, "store"):
            stored = runtime.store.put(pdf)
            done = outlasting_outages(
                f"marking {certificate_id} issued",
                lambda: mark_issued(runtime, intent, stored.sha256, stored.path),
                patience=db_patience)
    except Exception as exc:
        record_failure(runtime, certificate_id, exc, counted=counts_against_record(exc))
        raise
    if done:
        log.info("issued %s as %s", certificate_id, intent.number)
        enqueue_deliveries(runtime, certificate_id)
    return done


def enqueue_deliveries(runtime: Runtime, certificate_id: str) -> None:
    """The certificate's DigiLocker push, if linked (after the commit). The certificate is
    issued whatever happens here: a push not handed on now stays pending in the database, and
    the workers' delivery sweep hands it on."""
    try:
        enqueue_pending(runtime, certificate_id)
    except Exception as exc:
        if not lost_connection(exc):
            raise
        log.warning("the DigiLocker push of %s waits for the delivery sweep: the database is "
                    "out of reach (%s)", certificate_id, type(exc).__name__)


def counts_against_record(exc: BaseException) -> bool:
    """Whether a failed attempt is the record's own: not when a TSA, OCSP responder or CRL
    server (`ServiceUnavailable`) or the database was out of reach."""
    return not (isinstance(exc, ServiceUnavailable) or lost_connection(exc))


def record_failure(runtime: Runtime, certificate_id: str, exc: BaseException, *,
                   counted: bool = True) -> None:
    """Count one failed attempt on a record still waiting to be issued; the last one makes it
    `failed`. Not `counted` (an outage elsewhere), only the error is kept. Never raises: the
    original error is what the caller reports."""
    error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_TEXT]
    try:
        with runtime.sessions() as session, session.begin():
            # equivalent: without with_for_update on SQLite (no FOR UPDATE; mutation runs
            # use SQLite); on PostgreSQL it keeps two failing runs from losing a count.
            record = session.get(Certificate, certificate_id, with_for_update=True)  # equivalent
            if record is None or record.state not in _RETRYABLE:
                return
            record.last_error = error
            record.updated_at = utcnow()
            if not counted:
                log.warning("issue %s waits: %s", certificate_id, error)
                return
            record.attempts = (record.attempts or 0) + 1
            if record.attempts >= MAX_ATTEMPTS:
                record.state = State.FAILED.value
                audit.record(session, actor=worker_name(), action="fail",
                             certificate_id=record.id,
                             details={"attempts": record.attempts, "error": error})
                log.error("issue %s failed %d times, now failed: %s", certificate_id,
                          record.attempts, error)
            else:
                log.warning("issue %s failed (attempt %d of %d): %s", certificate_id,
                            record.attempts, MAX_ATTEMPTS, error)
    except Exception:
        log.exception("could not record the failure of %s", certificate_id)


_RETRYABLE = (State.APPROVED.value, State.SIGNING.value)


def record_intent(runtime: Runtime, certificate_id: str,
                  timings: Timings | None = None) -> Intent | None:
    """Transaction 1: approved -> signing with issue time, digest and seal recorded, or the
    recorded intent of a record left in `signing`. None when there is nothing to do."""
    with runtime.sessions() as session, session.begin():
        record = _claim(session, certificate_id)
        if record is None:
            return None
        if record.state == State.APPROVED.value:
            seal_record(runtime, session, record, timings)
        return Intent.of(record)


def workable() -> ColumnElement[bool]:
    """Records a run may take: approved ones, and `signing` ones abandoned (untouched for
    RESUME_AFTER)."""
    return or_(
        Certificate.state == State.APPROVED.value,
        and_(Certificate.state == State.SIGNING.value,
             # equivalent: `<=` (an updated_at equal to the cut-off, to the microsecond)
             Certificate.updated_at < utcnow() - RESUME_AFTER),  # equivalent
    )


def _claim(session: Session, certificate_id: str) -> Certificate | None:
    """The record, locked, if it is approved, or signing and abandoned; None otherwise.

    A no-op UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) before we read,
    so a concurrent run waits and then no longer matches. A `signing` record is resumed only
    once nobody has touched it for RESUME_AFTER, and resuming touches it, so one run at a time
    signs it."""
    claimed = session.execute(
        update(Certificate)
        .where(Certificate.id == certificate_id, workable())
        .values(updated_at=Certificate.updated_at)
        .execution_options(synchronize_session=False)
    )
    # equivalent: without populate_existing while record_intent's session is new (empty map)
    record = session.get(Certificate, certificate_id, populate_existing=True)  # equivalent
    if not rowcount(claimed) or record is None:
        log.info("issue %s: nothing to do (%s)", certificate_id,
                 record.state if record else "unknown id")
        return None
    if record.state == State.SIGNING.value:
        log.warning("issue %s: resuming an abandoned signing from its recorded intent",
                    certificate_id)
        record.updated_at = utcnow()
    if record.number is None or cert_type(record.cert_type) is None:
        raise IssuanceFailed(f"certificate {certificate_id} lacks a number or template")
    return record


def seal_record(runtime: Runtime, session: Session, record: Certificate,
          timings: Timings | None) -> None:
    issued_at = utcnow().replace(microsecond=0)
    digest = fields_digest(certified_fields(record, issued_at.astimezone(IST).date()))
    keyring = runtime.keyring.active(issued_at)  # after a rotation's moment, its new keys
    with stage(timings, "seal"):
        seal_text = keyring.sealer.seal(
            seal_claims(record, runtime.settings.issuer_id, issued_at, digest)
        )
    record.state = State.SIGNING.value
    record.issued_at = issued_at
    record.fields_sha256 = digest.hex()
    record.seal_text = seal_text
    record.seal_kid = keyring.seal_kid.hex()
    kind = cert_type(record.cert_type)
    assert kind is not None  # _claim checked
    record.template_version = kind.template_version
    record.updated_at = utcnow()
    audit.record(session, actor=worker_name(), action="seal", certificate_id=record.id,
                 details={"number": record.number, "seal_kid": record.seal_kid,
                          "iat": int(issued_at.timestamp()), "fields_sha256": digest.hex(),
                          "template_version": record.template_version})


def produce(runtime: Runtime, intent: Intent, timings: Timings | None = None) -> bytes:
    """QR, render and PAdES-sign the recorded intent: no database access, no transaction."""
    with stage(timings, "qr"):
        svg = qr_svg(intent.seal_text)
    with stage(timings, "render"), timed("render", intent.cert_type):
        pdf = runtime.renderer.render(intent.template_version,
                                      render_data(runtime.settings, intent), svg)
    with stage(timings, "sign"), timed("sign", intent.cert_type):
        return signer_for(runtime, intent).sign(
            pdf,
            reason=f"Certificate {intent.number} issued by {runtime.settings.issuer_name_en}",
            location=runtime.settings.signing_location,
            info={"PramaanSeal": intent.seal_text, "PramaanCertificateId": intent.id},
            # The recorded issue time (the seal's iat), so a resumed job makes the same claim.
            signing_time=intent.issued_at,
        )


def signer_for(runtime: Runtime, intent: Intent) -> PadesSigner:
    """The PAdES signer of the intent's type: its configured level, else the default one
    (see `Keyring.pades`)."""
    keys = runtime.keyring.active()
    settings = runtime.settings
    level = settings.signature_levels.get(intent.cert_type, settings.signature_level)
    return keys.pades if level is None else keys.pades_at(level)


def mark_issued(runtime: Runtime, intent: Intent, pdf_sha256: str, pdf_path: str) -> bool:
    """Transaction 2: signing -> issued, once. A run that loses the race leaves only an
    unreferenced file in the content-addressed store."""
    now = utcnow()
    try:
        with runtime.sessions() as session, session.begin():
            # A correction supersedes the certificate it corrects in the same transaction,
            # first: the registry's unique index never sees two issued certificates at once.
            corrected = _supersede(session, intent.id, now)
            result = session.execute(
                update(Certificate)
                .where(Certificate.id == intent.id, Certificate.state == State.SIGNING.value)
                .values(state=State.ISSUED.value, pdf_sha256=pdf_sha256, pdf_path=pdf_path,
                        updated_at=now)
                # None, like False, skips synchronising the session (nothing of it is loaded)
                .execution_options(synchronize_session=False)  # equivalent: None
            )
            if not rowcount(result):
                raise _LostRace  # rolls the supersession back too
            audit.record(session, actor=worker_name(), action="sign", certificate_id=intent.id,
                         details={"number": intent.number, "pdf_sha256": pdf_sha256,
                                  "level": f"PAdES-{signer_for(runtime, intent).level}"})
            plan_issued(session, intent.id)  # the push to a linked locker, in this transaction
            if corrected is not None:
                audit.record(session, actor=worker_name(), action="supersede",
                             certificate_id=corrected.id,
                             details={"number": corrected.number, "superseded_by": intent.id,
                                      "by_number": intent.number})
    except _LostRace:
        return False
    return True


class _LostRace(Exception):
    """Another run issued (or an operator cancelled) the record first."""


def _supersede(session: Session, certificate_id: str, now: datetime) -> Certificate | None:
    """issued -> superseded for the certificate that `certificate_id` corrects, if it still is
    issued (a revoked one stays revoked). Returns it, or None."""
    # Without the state condition the result is the same: a record no longer `signing` lost the
    # race, its rival already superseded the target (not `issued` now), and the caller's
    # compare-and-set fails and rolls back.
    corrects = session.scalar(select(Certificate.corrects).where(
        Certificate.id == certificate_id,
        Certificate.state == State.SIGNING.value))  # equivalent: see above
    if corrects is None:
        return None
    done = session.execute(
        update(Certificate)
        .where(Certificate.id == corrects, Certificate.state == State.ISSUED.value)
        .values(state=State.SUPERSEDED.value, superseded_by=certificate_id, updated_at=now)
        .execution_options(synchronize_session=False)  # equivalent: None (see mark_issued)
    )
    if not rowcount(done):
        return None
    published.mark_status_changed(session)  # offline verifiers learn it at the next turn
    return session.get(Certificate, corrects)


def rowcount(result: object) -> int:
    # An UPDATE's result always has a rowcount; the default only satisfies the type checker.
    return int(getattr(result, "rowcount", 0) or 0)  # equivalent: see above


def worker_name() -> str:
    return f"system:signer@{socket.gethostname()}:{os.getpid()}"
