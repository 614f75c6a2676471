"""Defence in depth: no log line carries an Aadhaar-looking number, whoever logs it.

The request's Aadhaar number is taken out right after validation and nothing logs request bodies,
so this should never fire. If some future line does log one (an exception message, a debug dump),
the record is rewritten as it is made, before any handler, file or log shipper sees it: every
twelve-digit number that could be an Aadhaar number (first digit 2-9, written together or 4-4-4
with spaces or hyphens) keeps only its last four digits. Hex digests and UUIDs are left alone.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Not inside a longer run of letters or digits (a hex digest), nor any digits-only stretch of a
# UUID: its first two groups (12345678-1234-…), three 4-digit groups, its 12-digit last group.
AADHAAR_LIKE = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9A-Fa-f]{4}-)"
    r"[2-9][0-9]{3}[ -]?[0-9]{4}[ -]?([0-9]{4})"
    r"(?![0-9A-Za-z]|-[0-9A-Fa-f])"
)
_FACTORY_MARK = "pramaan_redacts_aadhaar"


def redact(text: str) -> str:
    """`text` with every Aadhaar-looking number as XXXX XXXX and its last four digits."""
    return AADHAAR_LIKE.sub(r"XXXX XXXX \1", text)


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite one record in place: its message (arguments merged in), traceback and stack."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: still redact, let logging report it
        record.msg = redact(str(record.msg))
        record.args = _redacted_args(record.args)
    else:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redacted_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(redact(repr(a)) for a in args)
    if isinstance(args, dict):
        return {k: redact(repr(v)) for k, v in args.items()}
    return args


class AadhaarFilter(logging.Filter):
    """The same redaction as a handler filter, for a logging configuration of one's own
    (`filters: {aadhaar: {(): issuer.log_redaction.AadhaarFilter}}`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Redact every log record of this process as it is made (idempotent).

    A filter on our loggers would miss records of their child loggers and of libraries, and a
    handler filter misses handlers added later (gunicorn's); the record factory sees them all."""
    current = logging.getLogRecordFactory()
    if getattr(current, _FACTORY_MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    setattr(factory, _FACTORY_MARK, True)
    logging.setLogRecordFactory(factory)
