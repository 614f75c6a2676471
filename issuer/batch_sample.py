"""A sample of a batch's rows rendered as they would print, for the officer who approves it.

A specimen is the certificate's own template with SPECIMEN · नमुना across the page, no number,
an empty box where the seal goes and no signature: what is seen before approval can never pass
for a certificate. The rows shown are spread through the file (the first, the last, and evenly
between), so a column shifted halfway down a file shows up. Opening one is recorded on the batch:
an officer approves a batch only after seeing a specimen of it (issuer/batches.py).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from issuer.canonical import canonical_request
from issuer.certtypes import cert_type
from issuer.db import utcnow
from issuer.errors import NotFound
from issuer.issue import Intent, render_data
from issuer.models import Batch, BatchRow
from issuer.render import Renderer
from issuer.settings import Settings

SAMPLE_SIZE: Final = 5
SPECIMEN_NUMBER: Final = "SPECIMEN · नमुना"


def sample_lines(session: Session, batch: Batch, size: int = SAMPLE_SIZE) -> list[int]:
    """The file lines of up to `size` (at least 2) of the batch's valid rows, spread evenly:
    the first, the last and between, in file order."""
    count = batch.valid_rows
    if count <= size:
        offsets = list(range(count))
    else:
        offsets = sorted({round(i * (count - 1) / (size - 1)) for i in range(size)})
    lines = []
    for offset in offsets:
        line = session.scalar(select(BatchRow.line).where(BatchRow.batch_id == batch.id)
                              .order_by(BatchRow.line).offset(offset).limit(1))
        if line is not None:
            lines.append(line)
    return lines


def specimen(session: Session, renderer: Renderer, settings: Settings, batch: Batch, line: int,
             viewer: str) -> bytes:
    """The specimen PDF of the batch's row on file line `line`, noting that `viewer` saw one.
    The caller commits. NotFound for a line that is not one of the batch's valid rows."""
    row = session.scalars(select(BatchRow).where(BatchRow.batch_id == batch.id,
                                                 BatchRow.line == line)).first()
    kind = cert_type(batch.cert_type)
    if row is None or kind is None:
        raise NotFound(f"batch {batch.id} has no valid row on line {line}")
    intent = Intent(id=f"specimen-{batch.id}-{line}", cert_type=batch.cert_type,
                    number=SPECIMEN_NUMBER, request=canonical_request(row.request),
                    issued_at=utcnow(), seal_text=f"{settings.verify_base_url.rstrip('/')}/v#",
                    template_version=kind.template_version)
    pdf = renderer.render_specimen(intent.template_version, render_data(settings, intent))
    if viewer not in batch.sample_seen_by:
        batch.sample_seen_by = [*batch.sample_seen_by, viewer]  # a new list: JSON is not tracked
    return pdf
