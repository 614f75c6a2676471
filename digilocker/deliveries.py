"""Deliveries: each push a certificate's life calls for, kept in the database until DigiLocker
has it, so an outage of any length loses nothing and duplicates nothing.

- A Delivery row is written in the same transaction as the change that calls for it: issued (A,
  or U for a correction of something already in the locker), revoked (D), or linked after issue
  (A). The caller enqueues it after commit; the sweeper enqueues whatever is due.
- One attempt: a short transaction claims the row (state pending and due) and leases it for
  LEASE, the push is sent with no transaction open, a second transaction records the outcome and
  its audit event. A delivered row is never claimed again; a worker dying between DigiLocker's
  answer and our commit costs one repeat of the same push after the lease, which DigiLocker
  answers "URI already exists in this account" (for A: push.classify counts it delivered) or
  applies again unchanged (U, D).
- Backoff doubles from BACKOFF_FIRST up to BACKOFF_CAP; past HORIZON from the row's creation a
  failing delivery becomes `failed` (reason kept) and waits for `pramaan digilocker retry`.
- The locker holds one URI per chain of corrections: the first certificate's (see locker_root),
  so a correction updates (U) the entry the citizen already has, and a revocation deletes (D) it.
  The pushes of one chain go out in the order they were planned.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypedDict

import requests
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from digilocker.push import ACTIONS, Outcome, PushDocument, push_fields, send_push
from digilocker.uri import document_uri
from issuer import audit
from issuer.certtypes import cert_type, doc_type_code
from issuer.db import as_utc, utcnow
from issuer.fields import IST
from issuer.models import Certificate, Delivery, DigiLockerAccount, State
from issuer.runtime import Runtime
from issuer.settings import Settings
from issuer.typeddict_schema import DATE_TIME, Keywords

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
HORIZON = timedelta(days=7)
# How long a claimed attempt holds its row: far longer than push.TIMEOUT, so only a dead worker's
# attempt is ever taken over.
LEASE = timedelta(minutes=5)
_MAX_CHAIN = 1000  # corrections of corrections: a bound, not an expected length


# -- planning (inside the caller's transaction) -------------------------------------------------

def plan_issued(session: Session, certificate_id: str) -> Delivery | None:
    """A certificate just became issued: a correction inherits the account of the certificate it
    corrects; a linked, unrevoked account gets A (or U when the chain's entry is in the locker)."""
    record = session.get(Certificate, certificate_id)
    if record is None:
        return None
    if record.digilocker_account_id is None and record.corrects:
        corrected = session.get(Certificate, record.corrects)
        if corrected is not None:
            record.digilocker_account_id = corrected.digilocker_account_id
    return _plan_entry(session, record)


def plan_linked(session: Session, record: Certificate) -> Delivery | None:
    """The applicant linked an account after their certificate was issued: push it now."""
    if record.state != State.ISSUED.value:
        return None
    return _plan_entry(session, record)


def plan_revoked(session: Session, record: Certificate) -> Delivery | None:
    """A revoked certificate whose chain is (or is about to be) in a locker: D, to the account
    that entry went to. Nothing if nothing was ever pushed."""
    last = _last_live(session, record)
    if last is None or last.action == "D":
        return None
    return _add(session, record.id, last.account_id, "D")


def _plan_entry(session: Session, record: Certificate) -> Delivery | None:
    account = _linked_account(session, record.digilocker_account_id)
    if account is None:
        return None
    last = _last_live(session, record)
    action = "U" if last is not None and last.action in ("A", "U") else "A"
    return _add(session, record.id, account.id, action)


def _add(session: Session, certificate_id: str, account_id: int, action: str) -> Delivery | None:
    existing = session.scalar(select(Delivery).where(Delivery.certificate_id == certificate_id,
                                                     Delivery.action == action))
    if existing is not None:
        return existing  # planned already: one row per certificate and action
    now = utcnow()
    row = Delivery(certificate_id=certificate_id, account_id=account_id, action=action,
                   state=PENDING, attempts=0, next_try_at=now, created_at=now)
    session.add(row)
    session.flush()
    return row


def _linked_account(session: Session, account_id: int | None) -> DigiLockerAccount | None:
    if account_id is None:
        return None
    account = session.get(DigiLockerAccount, account_id)
    return account if account is not None and account.revoked_at is None else None


def _last_live(session: Session, record: Certificate) -> Delivery | None:
    """The newest delivery of the chain up to `record` that is not failed."""
    return session.scalar(
        select(Delivery).where(Delivery.certificate_id.in_(chain_back(session, record)),
                               Delivery.state != FAILED)
        .order_by(Delivery.id.desc()).limit(1))


def chain_back(session: Session, record: Certificate) -> list[str]:
    """`record` and the certificates it corrects, newest first."""
    ids = [record.id]
    current: Certificate | None = record
    while current is not None and current.corrects and len(ids) < _MAX_CHAIN:
        ids.append(current.corrects)
        current = session.get(Certificate, current.corrects)
    return ids


def locker_root(session: Session, record: Certificate) -> Certificate:
    """The first certificate of `record`'s chain of corrections: its URI is the locker entry."""
    root = session.get(Certificate, chain_back(session, record)[-1])
    assert root is not None
    return root


# -- enqueueing (after commit) ------------------------------------------------------------------

def enqueue_pending(runtime: Runtime, certificate_id: str) -> int:
    """Hand the certificate's pending deliveries to the `deliver` queue (inline: push now)."""
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Delivery.id).where(
            Delivery.certificate_id == certificate_id, Delivery.state == PENDING)
            .order_by(Delivery.id)))
    for delivery_id in ids:
        runtime.dispatcher.enqueue_delivery(delivery_id)
    return len(ids)


def sweep_due(runtime: Runtime, now: datetime | None = None) -> int:
    """Enqueue every pending delivery whose next try is due (oldest first)."""
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Delivery.id).where(
            Delivery.state == PENDING,
            or_(Delivery.next_try_at.is_(None), Delivery.next_try_at <= (now or utcnow())))
            .order_by(Delivery.id)))
    for delivery_id in ids:
        runtime.dispatcher.enqueue_delivery(delivery_id)
    return len(ids)


# -- one attempt --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    certificate_id: str
    attempt: int
    created_at: datetime
    doc: PushDocument


def deliver(runtime: Runtime, delivery_id: int, now: datetime | None = None,
            http: requests.Session | None = None) -> str | None:
    """One attempt at one delivery: its state afterwards, or None when it was not ours to try
    (delivered, failed, not due, leased by another worker, or waiting for an earlier push of its
    chain)."""
    claimed = claim(runtime, delivery_id, now or utcnow())
    if claimed is None:
        return None
    outcome = _send(runtime.settings, claimed, http)
    return record_outcome(runtime, claimed, outcome, utcnow() if now is None else now)


def claim(runtime: Runtime, delivery_id: int, now: datetime) -> Claimed | None:
    with runtime.sessions() as session, session.begin():
        row = session.get(Delivery, delivery_id)
        if row is None or row.state != PENDING or _waits_for_earlier(session, row):
            return None
        taken = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == PENDING,
                   or_(Delivery.next_try_at.is_(None), Delivery.next_try_at <= now))
            .values(attempts=Delivery.attempts + 1, next_try_at=now + LEASE)
            .execution_options(synchronize_session=False))
        if not int(getattr(taken, "rowcount", 0) or 0):
            return None
        session.refresh(row)
        doc = push_document(session, runtime.settings, row)
        return Claimed(row.id, row.certificate_id, row.attempts, as_utc(row.created_at), doc)


def _waits_for_earlier(session: Session, row: Delivery) -> bool:
    record = session.get(Certificate, row.certificate_id)
    assert record is not None
    earlier = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.certificate_id.in_(chain_back(session, record)),
        Delivery.state == PENDING, Delivery.id < row.id))
    return bool(earlier)


def push_document(session: Session, settings: Settings, row: Delivery) -> PushDocument:
    """What the push of `row` says: the chain's locker URI, the certificate's own type and date."""
    record = session.get(Certificate, row.certificate_id)
    account = session.get(DigiLockerAccount, row.account_id)
    assert record is not None and account is not None and record.issued_at is not None
    kind = cert_type(record.cert_type)
    assert kind is not None
    doctype = doc_type_code(settings, kind)
    docid = locker_root(session, record).id
    return PushDocument(
        digilockerid=account.digilockerid,
        uri=document_uri(settings.digilocker_issuer_id, doctype, docid),
        doctype=doctype,
        description=description(record),
        docid=docid,
        issued_on=as_utc(record.issued_at).astimezone(IST).date(),
        action=row.action,
    )


def description(record: Certificate) -> str:
    """The name the locker shows: the type in words and the certificate number."""
    words = record.cert_type.replace("_", " ").capitalize()
    return f"{words} certificate {record.number}"


def _send(settings: Settings, claimed: Claimed, http: requests.Session | None) -> Outcome:
    if not (settings.digilocker_base_url and settings.digilocker_client_id
            and settings.digilocker_client_secret):
        return Outcome(False, True, "not configured: DIGILOCKER_BASE_URL, DIGILOCKER_CLIENT_ID "
                       "and DIGILOCKER_CLIENT_SECRET are needed to push")
    fields = push_fields(claimed.doc, settings.digilocker_client_id,
                         settings.digilocker_client_secret, int(utcnow().timestamp()))
    session = http or requests.Session()
    try:
        return send_push(session, settings.digilocker_base_url, fields,
                         repeat=claimed.attempt > 1)
    finally:
        if http is None:
            session.close()


def record_outcome(runtime: Runtime, claimed: Claimed, outcome: Outcome, now: datetime) -> str:
    """Transaction 2: delivered, pending again after a backoff, or failed; one audit event."""
    with runtime.sessions() as session, session.begin():
        row = session.get(Delivery, claimed.delivery_id, with_for_update=True)
        assert row is not None
        if row.state != PENDING:
            return row.state  # an operator (unlink) settled it meanwhile
        row.last_error = outcome.error
        if outcome.delivered:
            row.state, row.delivered_at, row.next_try_at = DELIVERED, now, None
        elif outcome.retry and now < claimed.created_at + HORIZON:
            row.next_try_at = now + backoff(claimed.attempt)
        else:
            row.state, row.next_try_at = FAILED, None
        audit.record(session, actor=_actor(), action="digilocker_push",
                     certificate_id=claimed.certificate_id,
                     details={"delivery": row.id, "action": claimed.doc.action,
                              "uri": claimed.doc.uri, "attempt": claimed.attempt,
                              "outcome": row.state, "error": outcome.error,
                              "next_try_at": _iso(row.next_try_at)})
        state = row.state
    if state == DELIVERED:
        enqueue_pending_after(runtime, claimed.certificate_id)
    log.info("push %s of %s (attempt %d): %s %s", claimed.doc.action, claimed.certificate_id,
             claimed.attempt, state, outcome.error or "")
    return state


def enqueue_pending_after(runtime: Runtime, certificate_id: str) -> None:
    """After a push went through, the next ones of its chain may go (they waited for it)."""
    with runtime.sessions() as session:
        record = session.get(Certificate, certificate_id)
        if record is None:
            return
        forward = [record.id]
        while record is not None and record.superseded_by and len(forward) < _MAX_CHAIN:
            forward.append(record.superseded_by)
            record = session.get(Certificate, record.superseded_by)
        ids = list(session.scalars(select(Delivery.id).where(
            Delivery.certificate_id.in_(forward), Delivery.state == PENDING)
            .order_by(Delivery.id)))
    for delivery_id in ids:
        runtime.dispatcher.enqueue_delivery(delivery_id)


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): 1 min, 2, 4, ... up to 6 h."""
    return min(BACKOFF_FIRST * (1 << min(max(attempt - 1, 0), 30)), BACKOFF_CAP)


# -- operators ----------------------------------------------------------------------------------

def retry(session: Session, certificate_id: str | None, actor: str,
          now: datetime | None = None) -> list[int]:
    """Make pending and failed deliveries (of one certificate, or all) due now; audited. The
    caller commits and then enqueues the returned ids. The horizon still counts from the row's
    creation: past it, a retried delivery that fails again is failed again at once."""
    when = now or utcnow()
    query = select(Delivery).where(Delivery.state.in_((PENDING, FAILED)))
    if certificate_id is not None:
        query = query.where(Delivery.certificate_id == certificate_id)
    rows = list(session.scalars(query.order_by(Delivery.id)))
    for row in rows:
        was = row.state
        row.state, row.next_try_at = PENDING, when
        if was == FAILED:
            audit.record(session, actor=actor, action="digilocker_retry",
                         certificate_id=row.certificate_id,
                         details={"delivery": row.id, "action": row.action,
                                  "last_error": row.last_error})
    return [row.id for row in rows]


class PushView(TypedDict):
    """One push to the linked locker: action A (issued), U (corrected), D (revoked); the next
    try only while pending."""

    delivery: int
    certificate: str
    action: Annotated[str, Keywords(enum=list(ACTIONS))]
    state: Annotated[str, Keywords(enum=[PENDING, DELIVERED, FAILED])]
    attempts: int
    next_try_at: Annotated[str | None, DATE_TIME]
    last_error: str | None
    delivered_at: Annotated[str | None, DATE_TIME]
    created_at: Annotated[str | None, DATE_TIME]


class DeliveryView(PushView):
    """The newest push, and every push the certificate had."""

    pushes: list[PushView]


def delivery_view(session: Session, certificate_id: str) -> DeliveryView | None:
    """The certificate's newest delivery, with every push it had: None if it has none."""
    rows = list(session.scalars(select(Delivery).where(Delivery.certificate_id == certificate_id)
                                .order_by(Delivery.id)))
    if not rows:
        return None
    pushes = [row_view(row) for row in rows]
    return {**pushes[-1], "pushes": pushes}


def row_view(row: Delivery) -> PushView:
    """A push as the API shows it."""
    return {
        "delivery": row.id,
        "certificate": row.certificate_id,
        "action": row.action,
        "state": row.state,
        "attempts": row.attempts,
        "next_try_at": _iso(row.next_try_at) if row.state == PENDING else None,
        "last_error": row.last_error,
        "delivered_at": _iso(row.delivered_at),
        "created_at": _iso(row.created_at),
    }


def status(session: Session, certificate_id: str | None = None) -> dict[str, Any]:
    """For `pramaan digilocker status`: counts by state, and the rows not yet delivered (or the
    rows of one certificate)."""
    counts = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
                  .tuples().all())
    query = select(Delivery).order_by(Delivery.id)
    if certificate_id is not None:
        query = query.where(Delivery.certificate_id == certificate_id)
    else:
        query = query.where(Delivery.state != DELIVERED)
    return {"counts": {s: counts.get(s, 0) for s in (PENDING, DELIVERED, FAILED)},
            "deliveries": [row_view(row) for row in session.scalars(query)]}


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _actor() -> str:
    return f"system:deliver@{socket.gethostname()}:{os.getpid()}"
