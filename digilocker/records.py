"""The database side of the pulls: finding certificates, their PDFs, the log line of each
disclosure and the replay guard on `txn`.

Search semantics (README "DigiLocker"): birth and death by registration number (case and
surrounding blanks ignored) and the date of birth / death; property no-dues by property id, the
most recently issued certificate when the property has several. Only issued certificates are
found; two of birth or death answering one search (two departments' registers) find none, since
either could be someone else's.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digilocker.holder_match import parse_day
from issuer.models import Certificate, DigiLockerReplay, State
from issuer.storage import PdfStore

log = logging.getLogger(__name__)
PRUNE_EVERY = 64
MAX_CHAIN = 50  # corrections of one certificate; a longer chain is a loop, not history
_DATE_OF = {"birth": ("child", "date_of_birth"), "death": ("deceased", "date_of_death")}


class DatabaseRecords:
    """`digilocker.pull.Records` over one session and the PDF store; the caller commits."""

    def __init__(self, session: Session, store: PdfStore) -> None:
        self.session = session
        self.store = store

    def search(self, kind: str, values: Sequence[str]) -> Certificate | None:
        """See `digilocker.pull.Records.search`."""
        issued = select(Certificate).where(Certificate.cert_type == kind,
                                           Certificate.state == State.ISSUED.value)
        if kind == "property_no_dues":
            wanted = values[0].strip().upper()
            query = issued.where(
                func.upper(Certificate.request["property_id"].as_string()) == wanted
            ).order_by(Certificate.issued_at.desc()).limit(1)
            return self.session.scalars(query).first()
        if kind not in _DATE_OF or len(values) < 2:
            return None
        day = parse_day(values[1])
        if day is None:
            return None
        found = self.session.scalars(issued.where(
            Certificate.registration_number == values[0].strip().upper())).all()
        person, field = _DATE_OF[kind]
        hits = [r for r in found if (r.request.get(person) or {}).get(field) == day.isoformat()]
        return hits[0] if len(hits) == 1 else None

    def by_id(self, doc_id: str) -> Certificate | None:
        """See `digilocker.pull.Records.by_id`; a doc id that is not a UUID names nothing."""
        try:
            key = str(uuid.UUID(doc_id))
        except ValueError:
            return None
        return self.session.get(Certificate, key) if key == doc_id.lower() else None

    def current(self, record: Certificate) -> Certificate | None:
        """See `digilocker.pull.Records.current`."""
        for _ in range(MAX_CHAIN):
            if record.state == State.ISSUED.value:
                return record
            if record.state != State.SUPERSEDED.value or record.superseded_by is None:
                return None
            following = self.session.get(Certificate, record.superseded_by)
            if following is None:
                return None
            record = following
        return None

    def previous_number(self, record: Certificate) -> str:
        """See `digilocker.pull.Records.previous_number`."""
        if record.corrects is None:
            return ""
        corrected = self.session.get(Certificate, record.corrects)
        return (corrected.number or "") if corrected is not None else ""

    def pdf(self, record: Certificate) -> bytes:
        """See `digilocker.pull.Records.pdf` (an issued record always has its PDF)."""
        if record.pdf_path is None or record.pdf_sha256 is None:
            raise OSError(f"certificate {record.id} is issued without a stored PDF")
        return self.store.get(record.pdf_path, record.pdf_sha256)

    def disclosed(self, record: Certificate, operation: str, txn: str) -> None:
        """One log line per document handed over: operation, certificate id and number,
        DigiLocker's txn; nothing of the person. Not an audit-chain event: the chain records
        changes, a pull changes nothing, and the chain's one head lock would put every pull in
        line with every issuance (measured: it halves Pull Doc throughput; README)."""
        log.info("digilocker %s handed over certificate %s (%s) txn=%.96r", operation,
                 record.id, record.number, txn)


def first_use(session: Session, operation: str, txn: str, now: datetime,
              window_seconds: int) -> bool:
    """Record `txn` for `operation` in the session's transaction (the caller commits it with
    the answer: one commit per pull); False when it was already recorded, a replay (then the
    transaction is rolled back). A concurrent request with the same txn waits on the unique key
    until this one commits, and then is the replay."""
    if prunes(txn):
        prune_replays(session, now, window_seconds)
    session.add(DigiLockerReplay(txn=f"{operation}:{txn}", seen_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def prunes(txn: str) -> bool:
    """Whether this request also prunes old txns: one in PRUNE_EVERY, chosen by a hash of the
    txn (reproducible, no state), so steady traffic prunes a few times a second, not on every
    request (concurrent requests would queue on the same old rows)."""
    return hashlib.sha256(txn.encode("utf-8")).digest()[0] % PRUNE_EVERY == 0


def prune_replays(session: Session, now: datetime, window_seconds: int) -> None:
    """Forget txns older than twice the window: a request is accepted only while its ts is
    within the window of our clock, so its txn cannot come back fresh later than that. Rows
    another pruner holds are skipped (PostgreSQL), never waited for."""
    old = (select(DigiLockerReplay.txn)
           .where(DigiLockerReplay.seen_at < now - timedelta(seconds=2 * window_seconds))
           .with_for_update(skip_locked=True))
    session.execute(delete(DigiLockerReplay).where(DigiLockerReplay.txn.in_(old)))
