"""Audit events join the chain as their transaction commits: the head row is locked for the
moment of the commit, not from the first event on, so a long audited transaction (a batch's chunk
of 200 certificates) no longer holds every other audited write in the corporation behind it.
A rolled-back transaction leaves no event; the chain still verifies, in commit order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from issuer import audit, migrate
from issuer.audit import ChainReport, verify_chain
from issuer.db import make_engine, make_session_factory
from issuer.models import AuditEvent, AuditHead
from tests.conftest import _postgres_schema


@pytest.fixture
def postgres_sessions() -> Iterator[sessionmaker[Session]]:
    for url in _postgres_schema():
        engine = make_engine(url)
        migrate.upgrade(engine)
        yield make_session_factory(engine)
        engine.dispose()


def actions(sessions: sessionmaker[Session]) -> list[tuple[int, str]]:
    with sessions() as session:
        return [(e.seq, e.action) for e in session.scalars(
            select(AuditEvent).order_by(AuditEvent.seq))]


def test_a_long_audited_transaction_does_not_hold_another_one_back(
        postgres_sessions: sessionmaker[Session]) -> None:
    sessions = postgres_sessions
    long = sessions()
    long.begin()
    audit.record(long, actor="batch-maker", action="submit", details={"line": 2})
    long.flush()
    try:
        with sessions() as other, other.begin():
            # Locked at the first event, the head would keep this waiting until `long` ends.
            other.execute(text("SET LOCAL lock_timeout = '3s'"))
            audit.record(other, actor="worker", action="sign")
        audit.record(long, actor="batch-maker", action="approve", details={"line": 2})
        long.commit()
    finally:
        long.close()
    assert actions(sessions) == [(1, "sign"), (2, "submit"), (3, "approve")]  # commit order
    with sessions() as session:
        assert verify_chain(session) == ChainReport(True, 3)


def test_a_rolled_back_transaction_leaves_no_event(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.begin()
        audit.record(session, actor="a", action="submit")
        session.rollback()
        with session.begin():
            audit.record(session, actor="a", action="approve")
    with sessions() as session, pytest.raises(RuntimeError), session.begin():
        audit.record(session, actor="a", action="revoke")
        raise RuntimeError("the change failed")
    assert actions(sessions) == [(1, "approve")]
    with sessions() as session:
        assert verify_chain(session) == ChainReport(True, 1)
        head = session.get(AuditHead, 1)
        assert head is not None and head.seq == 1
    # A session from a factory without the hook appends at once: nothing is dropped.
    with sessionmaker(engine)() as session, session.begin():
        audit.record(session, actor="a", action="revoke")
        assert session.scalar(select(AuditHead.seq)) == 2
    assert actions(sessions) == [(1, "approve"), (2, "revoke")]
    engine.dispose()
