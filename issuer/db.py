"""Engine and session factories. Built by the app factory or the worker, never at import."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole microseconds (PostgreSQL's)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Everything we store is UTC. SQLite hands back naive datetimes; PostgreSQL hands back
    aware ones in the session's time zone, which need converting, not relabelling."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


IDLE_PING_SECONDS = 1.0


def make_engine(url: str, pool_size: int = 5, idle_ping: float = IDLE_PING_SECONDS) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout. A server database
    keeps `pool_size` connections open: at least one per thread that serves requests, or the
    connections over it are opened and closed per request, a new PostgreSQL backend each
    (at 8 threads, Pull Doc's throughput was the same either way; the churn is what goes).

    A pooled connection that has been idle for `idle_ping` seconds or more is pinged before it is
    handed out (a PostgreSQL restart since is noticed there and the connection replaced); one
    that was in use a moment ago is not: SQLAlchemy's `pool_pre_ping` pings on every checkout,
    a round trip per request that cost Pull Doc 40 us of CPU and a wait (README "DigiLocker").
    A connection that breaks while busy fails its statement, and SQLAlchemy then drops every
    connection the pool held before it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=pool_size)
    ping_after_idle(engine, idle_ping)
    return engine


def ping_after_idle(engine: Engine, seconds: float) -> None:
    """Ping a connection on checkout when it was checked in `seconds` ago or more; a failed ping
    makes the pool replace it (raising DisconnectionError on checkout is SQLAlchemy's contract
    for that: the pool retries with a new connection)."""
    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("returned", None)
        if since is None or time.monotonic() - since < seconds:
            return  # just opened, or busy a moment ago
        try:
            # The dialect's own ping, as pool_pre_ping's: it leaves no transaction open behind it
            # (a bare SELECT would, and the next user could not switch to autocommit).
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises for a dead connection
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("idle connection failed its ping")

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checkout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that do not expire objects on commit (records are read after commit) and
    chain the audit events they record as they commit (issuer/audit.py)."""
    from issuer.audit import append_at_commit

    factory = sessionmaker(engine, expire_on_commit=False)
    append_at_commit(factory)
    return factory


# How long a job waits for a database that went away (a restart, a failover) before it fails and
# leaves its record to the sweeper. Well inside RQ's job timeout (180 s), twice over.
OUTAGE_PATIENCE_SECONDS = 60.0
_FIRST_PAUSE_SECONDS = 0.25
_LONGEST_PAUSE_SECONDS = 5.0


def lost_connection(exc: BaseException) -> bool:
    """Whether `exc` says the database server is out of reach (stopped, restarting, failing
    over, the network), not that anything is wrong with the statement: worth waiting for.
    PostgreSQL's connection errors (SQLSTATE class 08, or none: the client could not connect)
    and its shutdown ones (57P01-57P03); never SQLite's (a file does not go away for a while)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.orig, "sqlstate", "")  # psycopg's errors have it; sqlite3's do not
    return state is None or str(state).startswith(("08", "57P"))


def outlasting_outages(what: str, transaction: Callable[[], T], *,
                       patience: float = OUTAGE_PATIENCE_SECONDS) -> T:
    """`transaction()` (a whole transaction: it must be safe to run again after a rollback),
    run again with backoff while the database is out of reach (`lost_connection`), for up to
    `patience` seconds: a database restarted for a few seconds costs a job a wait, not a
    failure. Any other error, or one after `patience`, is raised."""
    started = time.monotonic()
    pause, tries = _FIRST_PAUSE_SECONDS, 0
    while True:
        try:
            result = transaction()
        except DBAPIError as exc:
            left = patience - (time.monotonic() - started)
            if not lost_connection(exc) or left <= 0:
                raise
            if not tries:
                log.warning("the database is out of reach while %s (%s); trying again for up "
                            "to %d s", what, _first_line(exc.orig or exc), patience)
            tries += 1
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)
            continue
        if tries:
            log.info("the database answers again after %.1f s; %s done",
                     time.monotonic() - started, what)
        return result


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
