"""Atomic named counters: certificate numbers (gapless per type, ward office and year) and
status-list indices."""

from __future__ import annotations

from sqlalchemy import Insert, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from issuer.models import Counter, ReleasedNumber

SERIAL_DIGITS = 6


def next_value(session: Session, name: str, by: int = 1) -> int:
    """Increment counter `name` by `by` (creating it at `by`) and return the new value, in one
    statement: the values drawn are the `by` ending there.

    One upsert with RETURNING is atomic on both SQLite and PostgreSQL, so two workers can never
    draw the same value, and the row lock is held only until the caller's transaction ends.
    """
    dialect = session.get_bind().dialect.name
    # equivalent: PostgreSQL's insert on SQLite too (its ON CONFLICT compiles the same there)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert  # equivalent
    stmt = insert(Counter).values(name=name, value=by)
    upsert: Insert = stmt.on_conflict_do_update(
        index_elements=[Counter.name], set_={"value": Counter.value + by}
    ).returning(Counter.value)
    return int(session.execute(upsert).scalar_one())


def series(prefix: str, year: int, ward: str, serial_prefix: str = "PMC") -> str:
    """The numbering series of a type, ward office and year, e.g. PMC/B/2026/KB."""
    return "/".join(part for part in (serial_prefix, prefix, str(year), ward) if part)


def certificate_number(session: Session, prefix: str, year: int, ward: str = "") -> str:
    """The next number of a series, e.g. PMC/B/2026/KB/000042 (`certificate_numbers`)."""
    return certificate_numbers(session, prefix, year, ward, 1)[0]


def certificate_numbers(session: Session, prefix: str, year: int, ward: str,
                        count: int) -> list[str]:
    """The next `count` numbers of a series: numbers released by cancelled requests first
    (lowest first), then the next serials. Gapless and unique under concurrency: released rows
    are taken with SKIP LOCKED, serials by one atomic upsert. At most three statements."""
    name = series(prefix, year, ward)
    released = list(session.scalars(
        select(ReleasedNumber.number).where(ReleasedNumber.series == name)
        .order_by(ReleasedNumber.serial).limit(count).with_for_update(skip_locked=True)))
    if released:
        session.execute(delete(ReleasedNumber).where(ReleasedNumber.series == name,
                                                     ReleasedNumber.number.in_(released)))
    fresh = count - len(released)
    if not fresh:
        return released
    last = next_value(session, f"number:{name}", by=fresh)
    return released + [f"{name}/{serial:0{SERIAL_DIGITS}d}"
                       for serial in range(last - fresh + 1, last + 1)]


def release(session: Session, number: str) -> None:
    """Give back the number of a request that will never be issued (cancelled): the next
    approval in its series takes it."""
    name, _, serial = number.rpartition("/")
    session.add(ReleasedNumber(series=name, number=number, serial=int(serial)))


def status_index(session: Session) -> int:
    """The next position in the published status list (revocation/supersession bits)."""
    return status_indices(session, 1)[0]


def status_indices(session: Session, count: int) -> list[int]:
    """The next `count` positions in the status list, in one statement."""
    last = next_value(session, "status_index", by=count)
    return list(range(last - count, last))
