"""The audit head row must agree with the end of the chain in both its number and its hash: a
head whose number alone was moved is reported, as is a missing head row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from issuer import audit, migrate
from issuer.audit import ChainReport, verify_chain
from issuer.db import make_engine, make_session_factory
from issuer.models import AuditHead


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    for action in ("submit", "approve"):
        with factory() as session, session.begin():
            audit.record(session, actor="token:pmc-births-deaths/clerk-1", action=action)
    yield factory
    engine.dispose()


def chain(sessions: sessionmaker[Session]) -> ChainReport:
    with sessions() as session:
        return verify_chain(session)


@pytest.mark.parametrize("seq", [1, 3, 9])
def test_a_head_whose_number_alone_was_moved_is_reported(
    sessions: sessionmaker[Session], seq: int
) -> None:
    assert chain(sessions) == ChainReport(True, 2)
    with sessions() as session, session.begin():
        session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq))
    assert chain(sessions) == ChainReport(False, 2, 3)


def test_a_missing_head_row_is_reported(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(AuditHead))
    assert chain(sessions) == ChainReport(False, 2, 3)
