"""The issue job: approved record -> seal -> QR -> render -> PAdES sign -> store -> issued.

Runs in a worker (RQ) or in-process. It re-reads and locks the record and acts only on an
approved one, so running it twice, or on two workers at once, signs and records once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import cbor2
from sqlalchemy import update
from sqlalchemy.orm import Session

from issuer import audit
from issuer.certtypes import cert_type
from issuer.db import utcnow
from issuer.errors import IssuanceFailed
from issuer.fields import IST
from issuer.models import Certificate, State
from issuer.render import TEMPLATE_VERSIONS
from issuer.runtime import Runtime
from signing.qr import qr_svg
from signing.seal import PRIVATE_CLAIM

log = logging.getLogger(__name__)

Timings = MutableMapping[str, float]


@contextmanager
def _stage(timings: Timings | None, name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def certified_fields(record: Certificate, issued_on: date) -> dict[str, Any]:
    """What the certificate certifies: the printed request fields plus number and issue date.

    Applicant contact details are not printed and not certified."""
    printed = {k: v for k, v in record.request.items() if k != "applicant"}
    return {"request": printed, "number": record.number, "issued_on": issued_on.isoformat()}


def fields_digest(fields: Mapping[str, Any]) -> bytes:
    """SHA-256 over cbor2's canonical encoding (RFC 7049 section 3.9: length-first key order)."""
    return hashlib.sha256(cbor2.dumps(fields, canonical=True)).digest()


def seal_claims(record: Certificate, issuer_id: str, issued_at: datetime,
                digest: bytes) -> dict[int, Any]:
    """CWT-shaped claims: registered iss (1) and iat (6), our fields under one private key."""
    kind = cert_type(record.cert_type)
    assert kind is not None
    facts = kind.seal_facts(record.request)
    ours = {
        "id": uuid.UUID(record.id).bytes,
        "t": record.cert_type,
        "n": dict(facts.holder),
        "d": dict(facts.dates),
        "r": record.registration_number,
        "no": record.number,
        "w": facts.ward,
        "si": record.status_index,
        "h": digest,
    }
    return {1: issuer_id, 6: int(issued_at.timestamp()), PRIVATE_CLAIM: ours}


def render_data(runtime: Runtime, record: Certificate, issued_on: date) -> dict[str, Any]:
    settings = runtime.settings
    return {
        "issuer": {
            "name": {"en": settings.issuer_name_en, "mr": settings.issuer_name_mr},
            "department": {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"},
        },
        "certificate": {
            "number": record.number,
            "issued_at": issued_on.isoformat(),
            "template_version": TEMPLATE_VERSIONS[record.cert_type],
            "verify_host": settings.verify_base_url.split("://", 1)[1],
        },
        "request": record.request,
    }


@dataclass(frozen=True)
class Produced:
    """What the pipeline made for one record, before it is recorded."""

    issued_at: datetime
    digest: bytes
    seal_text: str
    pdf: bytes


def issue_certificate(runtime: Runtime, certificate_id: str, *,
                      timings: Timings | None = None) -> bool:
    """Issue one approved certificate. True if this call issued it, False if there was nothing
    to do (unknown id, or already issued/rejected/...)."""
    keyring = runtime.keyring
    with runtime.sessions() as session, session.begin():
        record = _claim(session, certificate_id)
        if record is None:
            return False
        produced = produce(runtime, record, timings)
        with _stage(timings, "store"):
            stored = runtime.store.put(produced.pdf)
            _mark_issued(session, record, produced, stored.sha256, stored.path,
                         keyring.seal_kid.hex())
    log.info("issued %s as %s", certificate_id, record.number)
    return True


def _claim(session: Session, certificate_id: str) -> Certificate | None:
    """The approved record, locked; None when there is nothing to do.

    A no-op UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite) before we read,
    so a concurrent run waits and then finds the record issued."""
    claimed = session.execute(
        update(Certificate)
        .where(Certificate.id == certificate_id, Certificate.state == State.APPROVED.value)
        .values(updated_at=Certificate.updated_at)
    )
    record = session.get(Certificate, certificate_id, populate_existing=True)
    if not _rowcount(claimed) or record is None or record.state != State.APPROVED.value:
        log.info("issue %s: nothing to do (%s)", certificate_id,
                 record.state if record else "unknown id")
        return None
    if record.number is None or record.cert_type not in TEMPLATE_VERSIONS:
        raise IssuanceFailed(f"certificate {certificate_id} lacks a number or template")
    return record


def produce(runtime: Runtime, record: Certificate, timings: Timings | None = None) -> Produced:
    """Seal, draw the QR, render and sign: the pure part of issuing, no database writes."""
    keyring = runtime.keyring
    issued_at = utcnow().replace(microsecond=0)
    issued_on = issued_at.astimezone(IST).date()
    digest = fields_digest(certified_fields(record, issued_on))
    with _stage(timings, "seal"):
        claims = seal_claims(record, runtime.settings.issuer_id, issued_at, digest)
        seal_text = keyring.sealer.seal(claims)
    with _stage(timings, "qr"):
        svg = qr_svg(seal_text)
    with _stage(timings, "render"):
        pdf = runtime.renderer.render(record.cert_type, render_data(runtime, record, issued_on),
                                      svg)
    with _stage(timings, "sign"):
        signed = keyring.pades.sign(
            pdf,
            reason=f"Certificate {record.number} issued by {runtime.settings.issuer_name_en}",
            location=runtime.settings.signing_location,
            info={"PramaanSeal": seal_text, "PramaanCertificateId": record.id},
        )
    return Produced(issued_at, digest, seal_text, signed)


def _mark_issued(session: Session, record: Certificate, produced: Produced, pdf_sha256: str,
                 pdf_path: str, seal_kid: str) -> None:
    record.state = State.ISSUED.value
    record.template_version = TEMPLATE_VERSIONS[record.cert_type]
    record.seal_kid = seal_kid
    record.seal_text = produced.seal_text
    record.fields_sha256 = produced.digest.hex()
    record.pdf_sha256 = pdf_sha256
    record.pdf_path = pdf_path
    record.issued_at = produced.issued_at
    record.updated_at = produced.issued_at
    audit.record(session, actor=_worker_name(), action="sign", certificate_id=record.id,
                 details={"number": record.number, "pdf_sha256": pdf_sha256,
                          "seal_kid": seal_kid, "template_version": record.template_version,
                          "level": "PAdES-B-B"})


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _worker_name() -> str:
    return f"system:signer@{socket.gethostname()}:{os.getpid()}"
