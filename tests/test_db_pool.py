"""The server database's connection pool keeps one connection per request thread (at least
five), so no thread opens and closes a connection of its own per request; it pings a connection
only when it has been idle a while (tested against real PostgreSQL backends terminated under it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from issuer.db import make_engine
from issuer.runtime import Runtime
from tests.conftest import POSTGRES_URL, make_settings


@pytest.mark.parametrize(("threads", "kept"), [(1, 5), (4, 5), (8, 8), (32, 32)])
def test_the_pool_keeps_a_connection_per_thread(tmp_path: Path, keys_dir: Path, threads: int,
                                                kept: int) -> None:
    runtime = Runtime(make_settings(tmp_path, POSTGRES_URL, keys_dir, web_threads=threads))
    try:
        assert runtime.engine.pool.size() == kept  # type: ignore[attr-defined]
    finally:
        runtime.close()


def _kill_backend_of(engine: Engine) -> None:
    """Terminate the PostgreSQL backend of the (one) pooled connection, as a server restart
    would, from another connection."""
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    killer = create_engine(POSTGRES_URL, poolclass=NullPool)
    try:
        with killer.connect() as connection:
            assert connection.exec_driver_sql(
                f"SELECT pg_terminate_backend({int(pid)})").scalar() is True  # type: ignore[arg-type]
    finally:
        killer.dispose()


def test_a_connection_idle_past_the_ping_time_is_pinged_and_replaced_when_dead() -> None:
    engine = make_engine(POSTGRES_URL, pool_size=1, idle_ping=0.2)
    try:
        _kill_backend_of(engine)
        time.sleep(0.3)
        with engine.connect() as connection:  # the ping finds it dead: a new one is handed out
            assert connection.exec_driver_sql("SELECT 41 + 1").scalar() == 42
    finally:
        engine.dispose()


def test_a_ping_leaves_no_transaction_open_behind_it() -> None:
    """The next user of a pinged connection may still switch it to autocommit (the pull path
    does), which psycopg refuses inside a transaction."""
    engine = make_engine(POSTGRES_URL, pool_size=1, idle_ping=0.05)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        time.sleep(0.1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            assert connection.exec_driver_sql("SELECT 41 + 1").scalar() == 42
    finally:
        engine.dispose()


def test_a_connection_busy_a_moment_ago_is_not_pinged() -> None:
    """No round trip per request: a connection returned just now goes out unpinged (so a dead
    one fails its statement), and the pool then replaces it."""
    engine = make_engine(POSTGRES_URL, pool_size=1, idle_ping=60)
    try:
        _kill_backend_of(engine)
        with pytest.raises(DBAPIError) as failed, engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        assert failed.value.connection_invalidated
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 41 + 1").scalar() == 42
    finally:
        engine.dispose()
