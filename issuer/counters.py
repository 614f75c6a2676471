"""Atomic named counters: certificate numbers (unique per type and year) and status indices."""

from __future__ import annotations

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from issuer.models import Counter


def next_value(session: Session, name: str) -> int:
    """Increment counter `name` (creating it at 1) and return the new value, in one statement.

    One upsert with RETURNING is atomic on both SQLite and PostgreSQL, so two workers can never
    draw the same value, and the row lock is held only until the caller's transaction ends.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Counter).values(name=name, value=1)
    upsert: Insert = stmt.on_conflict_do_update(
        index_elements=[Counter.name], set_={"value": Counter.value + 1}
    ).returning(Counter.value)
    return int(session.execute(upsert).scalar_one())


def certificate_number(session: Session, prefix: str, year: int, serial_prefix: str = "PMC") -> str:
    """The next certificate number for a type and year, e.g. PMC/B/2026/000042."""
    serial = next_value(session, f"number:{prefix}:{year}")
    return f"{serial_prefix}/{prefix}/{year}/{serial:06d}"


def status_index(session: Session) -> int:
    """The next position in the published status list (revocation/supersession bits)."""
    return next_value(session, "status_index") - 1
