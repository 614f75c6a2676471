"""Engine and session factories. Built by the app factory or the worker, never at import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole microseconds (PostgreSQL's)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Everything we store is UTC. SQLite hands back naive datetimes; PostgreSQL hands back
    aware ones in the session's time zone, which need converting, not relabelling."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout. A server database
    keeps `pool_size` connections open: at least one per thread that serves requests, or the
    connections over it are opened and closed per request, a new PostgreSQL backend each
    (at 8 threads, Pull Doc's throughput was the same either way; the churn is what goes)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that do not expire objects on commit (records are read after commit)."""
    return sessionmaker(engine, expire_on_commit=False)
