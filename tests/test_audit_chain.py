"""The audit hash chain: any edit of a stored event (its details, actor, action, certificate, time,
sequence number, link or hash), or a deleted event, is reported at the first event that no longer
holds, by `verify_chain` and by `pramaan audit-verify`. Real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from issuer import audit, migrate
from issuer.audit import GENESIS, verify_chain
from issuer.db import make_engine, make_session_factory
from issuer.models import AuditEvent, AuditHead
from tests.conftest import ROOT

CERT = "5b0c6f4e-8a8e-4a51-9a38-3f1f2f6f0c11"
OTHER_CERT = "0f5b4f38-0c6f-4d3a-8f59-1d3c0a9b7e22"
EVENTS = [
    ("token:pmc-births-deaths/clerk-1", "submit", {"type": "birth", "registration_number": "R-1"}),
    ("system:auto-approve", "approve", {"number": "PMC/B/2026/000001"}),
    ("system:signer@host:1", "seal", {"number": "PMC/B/2026/000001", "iat": 1767225600}),
    ("system:signer@host:1", "sign", {"number": "PMC/B/2026/000001", "pdf_sha256": "ab" * 32}),
]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    for actor, action, details in EVENTS:
        with factory() as session, session.begin():  # one transaction per event, as in use
            audit.record(session, actor=actor, action=action, certificate_id=CERT,
                         details=details)
    yield factory
    engine.dispose()


def chain(sessions: sessionmaker[Session]) -> audit.ChainReport:
    with sessions() as session:
        return verify_chain(session)


def edit(sessions: sessionmaker[Session], which: int, /, **values: Any) -> None:
    with sessions() as session, session.begin():
        session.execute(update(AuditEvent).where(AuditEvent.seq == which).values(**values))


def stored(sessions: sessionmaker[Session], seq: int) -> AuditEvent:
    with sessions() as session:
        event = session.get(AuditEvent, seq)
        assert event is not None
        return event


def test_an_untouched_chain_verifies_and_links_every_event(
    sessions: sessionmaker[Session],
) -> None:
    assert chain(sessions) == audit.ChainReport(True, len(EVENTS), None)
    with sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        head = session.get(AuditHead, 1)
        assert head is not None
        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert events[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
        assert len({e.hash for e in events}) == len(events)
        assert (head.seq, head.hash) == (4, events[-1].hash)
        assert [(e.actor, e.action, e.details) for e in events] == EVENTS


TAMPERING: dict[str, tuple[int, Any]] = {
    "details": (2, lambda e: {"details": {"number": "PMC/B/2026/999999"}}),
    "details_extra_key": (3, lambda e: {"details": {**e.details, "note": "x"}}),
    "actor": (2, lambda e: {"actor": "token:other-dept/intruder"}),
    "action": (3, lambda e: {"action": "approve"}),
    "certificate_id": (1, lambda e: {"certificate_id": OTHER_CERT}),
    "certificate_id_removed": (4, lambda e: {"certificate_id": None}),
    "at": (2, lambda e: {"at": e.at + dt.timedelta(seconds=1)}),
    "prev_hash": (3, lambda e: {"prev_hash": "f" * 64}),
    "prev_hash_of_the_first": (1, lambda e: {"prev_hash": "1" * 64}),
    "hash": (2, lambda e: {"hash": "e" * 64}),
    "seq": (4, lambda e: {"seq": 5}),
}


@pytest.mark.parametrize("field", sorted(TAMPERING))
def test_an_edited_event_breaks_the_chain_where_it_was_edited(
    sessions: sessionmaker[Session], field: str
) -> None:
    seq, change = TAMPERING[field]
    edit(sessions, seq, **change(stored(sessions, seq)))
    report = chain(sessions)
    broken_at = 5 if field == "seq" else seq
    assert (report.ok, report.broken_at, report.events) == (False, broken_at, seq - 1)


def test_a_renumbered_event_in_the_middle_breaks_the_chain_at_the_gap(
    sessions: sessionmaker[Session],
) -> None:
    edit(sessions, 2, seq=9)
    report = chain(sessions)
    assert (report.ok, report.broken_at) == (False, 3)


def test_a_deleted_event_breaks_the_chain_at_the_next_one(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    report = chain(sessions)
    assert (report.ok, report.broken_at, report.events) == (False, 3, 1)


def test_pramaan_audit_verify_reports_where_the_chain_breaks(
    sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    def audit_verify() -> tuple[int, dict[str, Any]]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
        env.update({"PRAMAAN_HOME": str(tmp_path), "DATABASE_URL": database_url})
        done = subprocess.run([sys.executable, "-m", "cli", "audit-verify"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    assert audit_verify() == (0, {"ok": True, "events": 4, "broken_at": None})
    edit(sessions, 3, details={"number": "PMC/B/2026/000002", "iat": 1767225600})
    assert audit_verify() == (1, {"ok": False, "events": 2, "broken_at": 3})


def test_a_gap_in_the_numbers_is_reported_even_when_every_hash_and_link_holds(
    database_url: str,
) -> None:
    # Whoever deletes an event and rewrites the ones after it with correct hashes (they are
    # unkeyed SHA-256) but keeps their numbers leaves a gap; here our own writer makes one.
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        audit.record(session, actor="a", action="submit", certificate_id=CERT)
    with sessions() as session, session.begin():
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=2))
    with sessions() as session, session.begin():
        audit.record(session, actor="a", action="approve", certificate_id=CERT)
    third = stored(sessions, 3)
    assert third.prev_hash == stored(sessions, 1).hash
    assert chain(sessions) == audit.ChainReport(False, 1, 3)
    engine.dispose()


@pytest.mark.parametrize("newest", [1, 2, len(EVENTS)])
def test_deleting_the_newest_events_is_reported_by_the_head(
    sessions: sessionmaker[Session], newest: int
) -> None:
    """Every remaining link holds after the last events are cut off; the head row, written in
    the same transaction as each event, still names the last one."""
    keep = len(EVENTS) - newest
    with sessions() as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
    assert chain(sessions) == audit.ChainReport(False, keep, keep + 1)


def test_a_head_moved_back_with_the_events_still_differs_in_its_hash(
    sessions: sessionmaker[Session],
) -> None:
    """Cutting the chain and moving the head's number back is not enough: its hash is the
    newest event's, which the cut chain no longer ends with."""
    with sessions() as session, session.begin():
        session.execute(delete(AuditEvent).where(AuditEvent.seq == len(EVENTS)))
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=len(EVENTS) - 1))
    assert chain(sessions) == audit.ChainReport(False, len(EVENTS) - 1, len(EVENTS))
