"""`pramaan doctor`, the database: can we connect, and is the schema the one this version of
the code needs (Alembic's revision in the database against the newest migration shipped)?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from issuer.doctor import Check, safe_url
from issuer.settings import Settings

AREA = "database"
CONNECT_TIMEOUT = 5  # seconds: a database that takes longer to accept is a problem to report
MIGRATE = "run `pramaan migrate` (it is safe to run again)"


def database_checks(settings: Settings) -> list[Check]:
    """Connect (without creating anything: a missing SQLite file is reported, not made), then
    compare the schema's revision with the code's."""
    shown = safe_url(settings.database_url)
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return [Check(AREA, "connection", False, f"DATABASE_URL={shown} is not a database URL",
                      "write it like postgresql+psycopg://user@host:5432/name")]
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(str(url.database)).is_file():
            return [Check(AREA, "connection", False, f"no database file at {url.database}",
                          "run `pramaan init` (development) or `pramaan migrate`, or correct "
                          "DATABASE_URL")]
    try:
        engine = _engine(settings.database_url, url.get_backend_name())
    except (SQLAlchemyError, ImportError) as exc:
        return [Check(AREA, "connection", False, f"cannot use DATABASE_URL={shown}: {exc}",
                      "write it like postgresql+psycopg://user@host:5432/name")]
    try:
        return _connected(engine, shown)
    finally:
        engine.dispose()


def _engine(url: str, backend: str) -> Engine:
    connect: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT} if backend == "postgresql" \
        else {}
    return create_engine(url, poolclass=NullPool, connect_args=connect)


def _connected(engine: Engine, shown: str) -> list[Check]:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        return [Check(AREA, "connection", False, f"cannot connect to {shown}: {_reason(exc)}",
                      "check DATABASE_URL (host, port, name, user) and that the database "
                      "server is running and lets this machine in")]
    return [Check(AREA, "connection", True, f"connected to {shown}"), _schema(current)]


def _schema(current: set[str]) -> Check:
    from alembic.script import ScriptDirectory

    from issuer.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    if current == heads:
        return Check(AREA, "schema", True, f"at revision {_names(heads)}, the newest this "
                     "version has")
    if not current:
        return Check(AREA, "schema", False, "the database has no schema yet (never migrated)",
                     MIGRATE)
    if current - known:
        return Check(AREA, "schema", False, f"at revision {_names(current)}, which this version "
                     "does not know: a newer version of Pramaan migrated it",
                     "upgrade this installation to the version the database is at")
    return Check(AREA, "schema", False, f"at revision {_names(current)}; this version needs "
                 f"{_names(heads)}", MIGRATE)


def _names(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions))


def _reason(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__
