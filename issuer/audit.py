"""The audit log: an append-only hash chain, written in the same transaction as each change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.db import as_utc, utcnow
from issuer.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _digest(seq: int, at: datetime, actor: str, action: str, certificate_id: str | None,
            details: Mapping[str, Any], prev_hash: str) -> str:
    body = json.dumps(
        [seq, as_utc(at).isoformat(), actor, action, certificate_id, details, prev_hash],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(session: Session, *, actor: str, action: str, certificate_id: str | None = None,
           details: Mapping[str, Any] | None = None) -> AuditEvent:
    """Append one event. The head row (seeded by migration 0002) is locked so concurrent writers
    never fork the chain."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    at = utcnow()
    seq = head.seq + 1
    payload = dict(details or {})
    digest = _digest(seq, at, actor, action, certificate_id, payload, head.hash)
    event = AuditEvent(seq=seq, at=at, actor=actor, action=action, certificate_id=certificate_id,
                       details=payload, prev_hash=head.hash, hash=digest)
    head.seq, head.hash = seq, digest
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    broken_at: int | None = None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every link; report the first event whose hash or link does not hold.

    The chain must also end where the head row says it does: deleting the newest events leaves
    a chain whose every link holds, and only the head (written with each event) shows the cut.
    Then `broken_at` is the first missing sequence number."""
    prev = GENESIS
    count = 0
    # Dropping the order_by (a mutant) is equivalent on SQLite only, where seq is the rowid and
    # scans follow it; on PostgreSQL an edited row moves and the tamper tests catch it.
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):  # equivalent
        expected = _digest(event.seq, event.at, event.actor, event.action, event.certificate_id,
                           event.details, prev)
        if event.prev_hash != prev or event.hash != expected or event.seq != count + 1:
            return ChainReport(False, count, event.seq)
        prev = event.hash
        count += 1
    head = session.get(AuditHead, 1)
    if head is None or head.seq != count or head.hash != prev:
        return ChainReport(False, count, count + 1)
    return ChainReport(True, count)
