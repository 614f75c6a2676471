"""The audit log: an append-only hash chain, written in the same transaction as each change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import event as orm_events
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

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


PENDING: Final = "audit_pending"
AT_COMMIT: Final = "audit_at_commit"
"""session.info keys: the events a transaction recorded; that its factory chains them at commit."""


@dataclass(frozen=True)
class _Pending:
    at: datetime
    actor: str
    action: str
    certificate_id: str | None
    details: dict[str, Any]


def record(session: Session, *, actor: str, action: str, certificate_id: str | None = None,
           details: Mapping[str, Any] | None = None) -> None:
    """Record one event of the session's transaction: it joins the chain as the transaction
    commits (`append_at_commit`), in the order recorded, or not at all if it rolls back.

    The head row (seeded by migration 0002) is locked so concurrent writers never fork the
    chain, and only for the moment of the commit: locked at the first event, every audited
    write in the corporation queued behind a long transaction (a batch's chunk of 200
    certificates held it for seconds while workers waited to mark certificates issued).
    A session from a factory without the hook appends at once."""
    item = _Pending(utcnow(), actor, action, certificate_id, dict(details or {}))
    if session.info.get(AT_COMMIT):
        session.info.setdefault(PENDING, []).append(item)
    else:
        _append(session, [item])


def append_at_commit(factory: sessionmaker[Session]) -> None:
    """Have the factory's sessions chain their recorded events as they commit."""
    factory.kw.setdefault("info", {})[AT_COMMIT] = True
    orm_events.listen(factory, "before_commit", _chain_pending)
    orm_events.listen(factory, "after_soft_rollback", _forget_pending)


def _chain_pending(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:
        _append(session, pending)


def _forget_pending(session: Session, _previous: object) -> None:
    session.info.pop(PENDING, None)


def _append(session: Session, pending: list[_Pending]) -> None:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    rows = []
    for item in pending:
        seq = head.seq + 1
        digest = _digest(seq, item.at, item.actor, item.action, item.certificate_id,
                         item.details, head.hash)
        rows.append({"seq": seq, "at": item.at, "actor": item.actor, "action": item.action,
                     "certificate_id": item.certificate_id, "details": item.details,
                     "prev_hash": head.hash, "hash": digest})
        head.seq, head.hash = seq, digest
    # One INSERT for them all (a chunk of a batch records 400): the ORM's unit of work cost
    # a millisecond an event.
    session.execute(insert(AuditEvent), rows)
    session.flush()


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
