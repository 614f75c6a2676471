"""The shape of a batch as its department sees it (api_batches.batch_view builds it; the OpenAPI
document publishes it from here: api_schemas.py)."""

from __future__ import annotations

from typing import Annotated, NotRequired, TypedDict

from issuer.batches import MODES, BatchState, Progress
from issuer.typeddict_schema import Keywords

STATES = tuple(value for name, value in vars(BatchState).items() if name.isupper())


class RowFieldError(TypedDict):
    field: str
    code: str
    message: str


class RowError(TypedDict):
    """A bad row: its line in the file, and every field error of it."""

    line: int
    errors: list[RowFieldError]


class Rows(TypedDict):
    total: int
    valid: int
    invalid: int


class Links(TypedDict):
    self: str
    report: str
    sample: str
    approve: str
    certificates: str


class BatchView(TypedDict):
    """A batch: what was sent, its state and progress, its first 100 bad rows."""

    id: Annotated[str, Keywords(format="uuid")]
    type: str
    state: Annotated[str, Keywords(enum=list(STATES))]
    mode: Annotated[str, Keywords(enum=list(MODES))]
    file_name: str
    sha256: str
    rows: Rows
    progress: Progress
    uploaded_by: str
    sample_seen_by: Annotated[list[str], Keywords(
        description="The officers who opened a specimen of its rows")]
    decided_by: str | None
    decision_reason: str | None
    row_errors: list[RowError]
    links: Links
    retried: NotRequired[Annotated[int, Keywords(
        description="Certificates issued again (POST .../retry only)")]]
