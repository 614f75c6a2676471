"""The database side of the pulls: finding certificates, their PDFs, the log line of each
disclosure and the replay guard on `txn`.

Search semantics (README "DigiLocker"): birth and death by registration number (case and
surrounding blanks ignored) and the date of birth / death; property no-dues by property id, the
most recently issued certificate when the property has several. Only issued certificates are
found; two of birth or death answering one search (two departments' registers) find none, since
either could be someone else's.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, bindparam, delete, func, insert, select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from digilocker.holder_match import parse_day
from digilocker.pdf_cache import PdfCache
from issuer.models import Certificate, DigiLockerReplay, State
from issuer.storage import Store

log = logging.getLogger(__name__)
PRUNE_EVERY = 64
MAX_CHAIN = 50  # corrections of one certificate; a longer chain is a loop, not history
_DATE_OF = {"birth": ("child", "date_of_birth"), "death": ("deceased", "date_of_death")}


@dataclass(frozen=True)
class Pulled:
    """What a pull reads of a certificate: the columns it needs, read with SQLAlchemy Core (no
    ORM identity map or unit of work on the hottest path DigiLocker calls)."""

    id: str
    cert_type: str
    state: str
    request: dict[str, Any]
    number: str | None
    issued_at: datetime | None
    superseded_by: str | None
    corrects: str | None
    aadhaar_hmac: str | None
    pdf_path: str | None
    pdf_sha256: str | None


class DriverStatement:
    """A Core statement compiled once per dialect and run on the DBAPI cursor itself, with the
    column types' own conversions (a DateTime bound for SQLite, a JSON column read back). On the
    two statements of every pull this skips SQLAlchemy's execution context per call (cursor
    wrapper, parameter and result metadata), which cost Pull Doc more CPU than PostgreSQL spent
    answering them (py-spy; README "DigiLocker")."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any],
                                        list[Any]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any],
                                               list[Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            binds = {name: processor for name, bind in compiled.binds.items()
                     if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))}
            columns = getattr(self.statement, "selected_columns", ())
            results = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                       for column in columns]
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            found = (str(compiled), order, binds, results)
            self._compiled[dialect.name] = found
        return found

    def run(self, connection: Connection, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Execute with `params`; the first row, converted, or None (none, or not a SELECT).
        The driver's IntegrityError is raised as `connection.dialect.dbapi.IntegrityError`."""
        sql, order, binds, results = self._for(connection.dialect)
        values = {name: binds[name](value) if name in binds else value
                  for name, value in params.items()}
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.execute(sql, values if order is None else tuple(values[n] for n in order))
            row = cursor.fetchone() if results else None
        finally:
            cursor.close()
        if row is None:
            return None
        return tuple(convert(value) if convert else value
                     for convert, value in zip(results, row, strict=True))


# Core statements on the tables, built once: an ORM-enabled statement, or one built per
# request, costs more CPU than the database does to answer it (measured: bench/digilocker_pull.py).
_CERTIFICATES: Table = Certificate.__table__  # type: ignore[assignment]
_COLUMNS = tuple(_CERTIFICATES.c[name] for name in (
    "id", "cert_type", "state", "request", "number", "issued_at", "superseded_by", "corrects",
    "aadhaar_hmac", "pdf_path", "pdf_sha256"))
_BY_ID = DriverStatement(select(*_COLUMNS).where(_CERTIFICATES.c.id == bindparam("id")))
_NUMBER_OF = select(_CERTIFICATES.c.number).where(_CERTIFICATES.c.id == bindparam("id"))
_ISSUED = select(*_COLUMNS).where(_CERTIFICATES.c.cert_type == bindparam("kind"),
                                  _CERTIFICATES.c.state == State.ISSUED.value)
_REPLAYS: Table = DigiLockerReplay.__table__  # type: ignore[assignment]
_REPLAY = DriverStatement(insert(_REPLAYS))  # both columns bound, with their types


class DatabaseRecords:
    """`digilocker.pull.Records` over one database connection and the PDF store (reads only).
    The Base64 of PDFs already read comes from `cache` (digilocker/pdf_cache.py)."""

    def __init__(self, connection: Connection, store: Store,
                 cache: PdfCache | None = None) -> None:
        self.connection = connection
        self.store = store
        self.cache = cache if cache is not None else PdfCache(0)

    def _one(self, certificate_id: str) -> Pulled | None:
        row = _BY_ID.run(self.connection, {"id": certificate_id})
        return Pulled(*row) if row is not None else None

    def search(self, kind: str, values: Sequence[str]) -> Pulled | None:
        """See `digilocker.pull.Records.search`."""
        issued = _ISSUED.params(kind=kind)
        if kind == "property_no_dues":
            wanted = values[0].strip().upper()
            query = issued.where(
                func.upper(_CERTIFICATES.c.request["property_id"].as_string()) == wanted
            ).order_by(_CERTIFICATES.c.issued_at.desc()).limit(1)
            row = self.connection.execute(query).first()
            return Pulled(*row) if row is not None else None
        if kind not in _DATE_OF or len(values) < 2:
            return None
        day = parse_day(values[1])
        if day is None:
            return None
        found = [Pulled(*row) for row in self.connection.execute(issued.where(
            _CERTIFICATES.c.registration_number == values[0].strip().upper()))]
        person, field = _DATE_OF[kind]
        hits = [r for r in found if (r.request.get(person) or {}).get(field) == day.isoformat()]
        return hits[0] if len(hits) == 1 else None

    def by_id(self, doc_id: str) -> Pulled | None:
        """See `digilocker.pull.Records.by_id`; a doc id that is not a UUID names nothing."""
        try:
            key = str(uuid.UUID(doc_id))
        except ValueError:
            return None
        return self._one(key) if key == doc_id.lower() else None

    def current(self, record: Pulled) -> Pulled | None:
        """See `digilocker.pull.Records.current`."""
        for _ in range(MAX_CHAIN):
            if record.state == State.ISSUED.value:
                return record
            if record.state != State.SUPERSEDED.value or record.superseded_by is None:
                return None
            following = self._one(record.superseded_by)
            if following is None:
                return None
            record = following
        return None

    def previous_number(self, record: Pulled) -> str:
        """See `digilocker.pull.Records.previous_number`."""
        if record.corrects is None:
            return ""
        number = self.connection.execute(_NUMBER_OF, {"id": record.corrects}).scalar()
        return number or ""

    def pdf_base64(self, record: Pulled) -> str:
        """See `digilocker.pull.Records.pdf_base64` (an issued record always has its PDF)."""
        if record.pdf_path is None or record.pdf_sha256 is None:
            raise OSError(f"certificate {record.id} is issued without a stored PDF")
        path = record.pdf_path
        return self.cache.base64(record.pdf_sha256,
                                 lambda sha256: self.store.get(path, sha256))

    def disclosed(self, record: Pulled, operation: str, txn: str) -> None:
        """One log line per document handed over: operation, certificate id and number,
        DigiLocker's txn; nothing of the person. Not an audit-chain event: the chain records
        changes, a pull changes nothing, and the chain's one head lock would put every pull in
        line with every issuance (measured: it halves Pull Doc throughput; README)."""
        log.info("digilocker %s handed over certificate %s (%s) txn=%.96r", operation,
                 record.id, record.number, txn)


def first_use(connection: Connection, operation: str, txn: str, now: datetime,
              window_seconds: int) -> bool:
    """Record `txn` for `operation`; False when it was already recorded, a replay. Meant for an
    autocommit session (digilocker/pull_endpoint.py): the row is committed by its INSERT, so a
    concurrent request with the same txn fails on the unique key at once and is the replay."""
    if prunes(txn):
        prune_replays(connection, now, window_seconds)
    try:
        _REPLAY.run(connection, {"txn": f"{operation}:{txn}", "seen_at": now})
    except connection.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
        return False
    return True


def prunes(txn: str) -> bool:
    """Whether this request also prunes old txns: one in PRUNE_EVERY, chosen by a hash of the
    txn (reproducible, no state), so steady traffic prunes a few times a second, not on every
    request (concurrent requests would queue on the same old rows)."""
    return hashlib.sha256(txn.encode("utf-8")).digest()[0] % PRUNE_EVERY == 0


def prune_replays(connection: Connection, now: datetime, window_seconds: int) -> None:
    """Forget txns older than twice the window: a request is accepted only while its ts is
    within the window of our clock, so its txn cannot come back fresh later than that. Rows
    another pruner holds are skipped (PostgreSQL), never waited for."""
    old = (select(DigiLockerReplay.txn)
           .where(DigiLockerReplay.seen_at < now - timedelta(seconds=2 * window_seconds))
           .with_for_update(skip_locked=True))
    connection.execute(delete(_REPLAYS).where(_REPLAYS.c.txn.in_(old)))
