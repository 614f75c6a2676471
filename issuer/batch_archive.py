"""A batch's result as one ZIP, streamed: each issued certificate's signed PDF (read from the
store and checked against its recorded hash, one at a time) and a CSV of every row's line,
registration, certificate number, state and PDF hash. Memory holds one PDF, never the archive.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.models import Batch, BatchRow, Certificate, State
from issuer.storage import StoreError

PAGE: Final = 200
"""Rows read from the database at a time."""
_STAMP: Final = (2026, 1, 1, 0, 0, 0)  # fixed entry times: the same batch, the same bytes


class _Sink(io.RawIOBase):
    """A write-only stream zipfile writes into and we drain between entries (not seekable, so
    zipfile writes each entry's sizes after its data)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def archive(sessions: Callable[[], Session], batch_id: str,
            read_pdf: Callable[[str, str], bytes],
            unreadable: Callable[[StoreError, str], None] | None = None) -> Iterator[bytes]:
    """The ZIP of the batch, in pieces: `read_pdf(path, sha256)` gives a stored PDF's bytes.
    It reads in a session of its own, closed when the last piece is taken (or the download is
    abandoned): a streamed response outlives the request's session. A stored PDF that cannot
    be read (missing, corrupt, the store out of reach) is left out, its row in the CSV says
    why, and `unreadable(error, certificate_id)` is told: the rest of the ZIP still comes."""
    with sessions() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            return
        yield from _pieces(session, batch, read_pdf, unreadable)


def _pieces(session: Session, batch: Batch, read_pdf: Callable[[str, str], bytes],
            unreadable: Callable[[StoreError, str], None] | None) -> Iterator[bytes]:
    errors = list(batch.row_errors)
    sink = _Sink()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["line", "registration_number", "certificate_id", "number", "state",
                     "pdf_file", "pdf_sha256", "error"])
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zipped:
        for row, record in _rows(session, batch):
            name, problem = "", ""
            if record is not None and record.state == State.ISSUED.value and record.pdf_path:
                try:
                    pdf = read_pdf(record.pdf_path, record.pdf_sha256 or "")
                except StoreError as exc:
                    problem = f"{exc.code}: {exc.detail}"
                    if unreadable is not None:
                        unreadable(exc, record.id)
                else:
                    name = f"{(record.number or record.id).replace('/', '-')}.pdf"
                    zipped.writestr(zipfile.ZipInfo(name, _STAMP), pdf)
                    yield sink.take()
            if record is None:
                writer.writerow([row.line, row.registration_number, "", "", "not made", "", "",
                                 row.error or ""])
            else:
                writer.writerow([row.line, row.registration_number, record.id,
                                 record.number or "", record.state, name,
                                 record.pdf_sha256 if name else "",
                                 problem or record.last_error or ""])
        for bad in errors:
            writer.writerow([bad["line"], "", "", "", "invalid", "", "",
                             "; ".join(f"{e['field']}: {e['message']} [{e['code']}]"
                                       for e in bad["errors"])])
        info = zipfile.ZipInfo("certificates.csv", _STAMP)
        info.compress_type = zipfile.ZIP_DEFLATED
        zipped.writestr(info, table.getvalue().encode())
    yield sink.take()


def _rows(session: Session, batch: Batch) -> Iterator[tuple[BatchRow, Certificate | None]]:
    after = 0
    while True:
        page = session.execute(
            select(BatchRow, Certificate).outerjoin(
                Certificate, Certificate.id == BatchRow.certificate_id).where(
                BatchRow.batch_id == batch.id, BatchRow.line > after)
            .order_by(BatchRow.line).limit(PAGE)).all()
        if not page:
            return
        yield from [(row, record) for row, record in page]
        after = page[-1][0].line
        session.expunge_all()  # what was read is not kept: memory stays flat
