"""Structured logs: one JSON object a line (time, level, logger, message, request_id, job_id,
certificate_id and the event's own fields), or the same as readable text.

Which request or job a line belongs to travels in context variables: the API sets the request
id for each request (api_request_ids.py), a worker's job entry sets its job and certificate
(worker.py, `job_context`), and RQ's own current job fills the job id in where nothing set one.
Every value goes through the Aadhaar redaction (issuer/log_redaction.py) on its way out, the
event fields too: the record factory rewrites only the message and the traceback.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from issuer.log_redaction import redact

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pramaan_request_id", default=None)
JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pramaan_job_id", default=None)
CERTIFICATE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pramaan_certificate_id", default=None)
# Attributes every LogRecord has: anything else on a record is an event field (`extra=`).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}
_MARK = "pramaan_log_handler"


@contextmanager
def job_context(job_id: str | None, certificate_id: str | None = None) -> Iterator[None]:
    """Every line logged inside carries this job id and certificate id."""
    job_token = JOB_ID.set(job_id)
    cert_token = CERTIFICATE_ID.set(certificate_id)
    try:
        yield
    finally:
        CERTIFICATE_ID.reset(cert_token)
        JOB_ID.reset(job_token)


def certificate_of(job: Any) -> str | None:
    """The certificate an RQ job is about: an issue job's argument (others carry other ids)."""
    from issuer.jobs import ISSUE_JOB

    args = getattr(job, "args", None) or ()
    if getattr(job, "func_name", None) == ISSUE_JOB and args and isinstance(args[0], str):
        return args[0]
    return None


def context_fields() -> dict[str, str | None]:
    """The request id, job id and certificate id of the current context (None: unknown)."""
    job_id = JOB_ID.get()
    if job_id is None and "rq.job" in sys.modules:
        from rq.job import get_current_job

        job = get_current_job()
        job_id = job.id if job is not None else None
    return {"request_id": REQUEST_ID.get(), "job_id": job_id,
            "certificate_id": CERTIFICATE_ID.get()}


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields (given as `extra=`), redacted."""
    return {key: _clean(value) for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")}


def _clean(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context_fields(),
            **event_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, with the same ids and fields at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = {**{k: v for k, v in context_fields().items() if v}, **event_fields(record)}
        if tags:
            first, newline, rest = text.partition("\n")
            text = first + " " + " ".join(f"{k}={v}" for k, v in tags.items()) + newline + rest
        return redact(text)


def formatter(as_json: bool) -> logging.Formatter:
    return JsonFormatter() if as_json else TextFormatter()


def configure(as_json: bool, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in the chosen format (once: a second call
    swaps the formatter), with the Aadhaar redaction in force. Other handlers stay."""
    from issuer.log_redaction import install

    install()
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    handler = ours[0] if ours else logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(as_json))
    if not ours:
        setattr(handler, _MARK, True)
        for plain in [h for h in root.handlers if type(h) is logging.StreamHandler]:
            root.removeHandler(plain)  # basicConfig's, which would print every line twice
        root.addHandler(handler)
    root.setLevel(level)
