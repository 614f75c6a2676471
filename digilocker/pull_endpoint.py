"""One pull request from the raw bytes to the answer: authenticate, parse, check freshness and
replay, then run the operation (digilocker/pull.py). The Flask route only reads the body.

HTTP status: 401 when the request is not authenticated (missing or wrong `x-digilocker-hmac`;
without the header, a missing or wrong `keyhash`; no API key configured), as DIVOC does (§2.4);
everything else is HTTP 200 with `Status` 0/1/9 in the XML, as issuers answer (§2.1). A body over
the size cap is answered Status 0 unread. Nothing of the body is logged but the operation, the
outcome, the doc type and `txn`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from digilocker import pull
from digilocker.pdf_cache import PdfCache
from digilocker.records import DatabaseRecords, first_use
from digilocker.request_auth import header_ok, keyhash_ok, ts_fresh
from digilocker.xml_body import BadBody, PullRequest, parse_request
from issuer.settings import Settings
from issuer.storage import Store, StoreError

log = logging.getLogger(__name__)
MAX_TXN = 96  # the replay table holds "<op>:<txn>" in 100 characters
Operation = Callable[[PullRequest, pull.PullConfig, pull.Records], bytes]
OPERATIONS: dict[str, tuple[str, Operation]] = {
    "pulluri": (pull.URI_ROOT, pull.pull_uri),
    "pulldoc": (pull.DOC_ROOT, pull.pull_doc),
}


@dataclass(frozen=True)
class Answer:
    """What to send back: HTTP status and body (XML, or a word for a 401)."""

    http_status: int
    body: bytes

    @property
    def xml(self) -> bool:
        """Whether the body is our XML answer (HTTP 200), not the word of a 401."""
        return self.http_status == 200


UNAUTHORIZED = Answer(401, b"Unauthorized")


def answer(operation: str, raw: bytes | None, header: str | None, settings: Settings,
           engine: Engine, store: Store, now: datetime,
           cache: PdfCache | None = None) -> Answer:
    """The answer to `operation` ("pulluri" or "pulldoc") for body `raw` (None: over the size
    cap) and the `x-digilocker-hmac` header as received (None: absent); `cache` holds the
    Base64 of PDFs pulled lately (none: every PDF is read from the store)."""
    root, run = OPERATIONS[operation]
    if raw is None:
        _log(operation, "refused: body over the size cap", None)
        return Answer(200, pull.error(root, None))
    key = settings.digilocker_api_key
    if not key:
        log.warning("digilocker %s refused: DIGILOCKER_API_KEY is not configured", operation)
        return UNAUTHORIZED
    authentic, request = _authenticated(raw, header, key)
    if not authentic:
        _log(operation, "refused: not authenticated", None)
        return UNAUTHORIZED
    if request is None or request.root != root:
        _log(operation, "status 0: unreadable body or wrong root", None)
        return Answer(200, pull.error(root, request))
    if not ts_fresh(request.ts, now, settings.digilocker_ts_window):
        _log(operation, "status 0: ts outside the window", request)
        return Answer(200, pull.error(root, request))
    if not 0 < len(request.txn) <= MAX_TXN:
        _log(operation, "status 0: txn missing or too long", request)
        return Answer(200, pull.error(root, request))
    # Autocommit: a pull only reads, but for its txn; the txn is spent the moment it is recorded
    # (one statement, no BEGIN/COMMIT round trips), whatever the answer then is.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if not first_use(connection, operation, request.txn, now, settings.digilocker_ts_window):
            _log(operation, "status 0: replayed txn", request)
            return Answer(200, pull.error(root, request))
        try:
            body = run(request, pull.PullConfig.from_settings(settings),
                       DatabaseRecords(connection, store, cache))
        except (OSError, StoreError) as exc:  # a stored PDF missing or unusable: ours to fix
            log.error("digilocker %s txn=%.96r: the stored PDF is unusable: %s", operation,
                      request.txn, exc)
            if isinstance(exc, StoreError):
                _audit_unreadable(engine, exc, operation)
            return Answer(200, pull.error(root, request))
    status = _status_of(body)
    if status != pull.SUCCESS:  # a document handed over has its own line (records.disclosed)
        _log(operation, f"status {status}", request)
    return Answer(200, body)


def _authenticated(raw: bytes, header: str | None,
                   key: str) -> tuple[bool, PullRequest | None]:
    """(authentic, the parsed request or None when unreadable). The header is primary: when
    present it alone decides. Without it, the v1.0 keyhash over the body's ts (§4.2)."""
    if header is not None:
        if not header_ok(raw, header, key):
            return False, None
        try:
            return True, parse_request(raw)
        except BadBody:
            return True, None
    try:
        request = parse_request(raw)
    except BadBody:
        return False, None
    return keyhash_ok(key, request.ts, request.attribute("keyhash")), request


def _status_of(body: bytes) -> str:
    marker = b'Status="'
    at = body.find(marker)
    return body[at + len(marker):at + len(marker) + 1].decode("ascii") if at >= 0 else "?"


def _log(operation: str, outcome: str, request: PullRequest | None) -> None:
    if request is None:
        log.info("digilocker %s %s", operation, outcome)
        return
    log.info("digilocker %s %s txn=%.96r", operation, outcome, request.txn)


def _audit_unreadable(engine: Engine, exc: StoreError, operation: str) -> None:
    """A stored PDF DigiLocker asked for and could not have: an audit event, as for the API."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from issuer import audit
    from issuer.models import Certificate

    try:
        with Session(engine) as session, session.begin():
            owner = session.scalar(select(Certificate.id).where(
                Certificate.pdf_path == exc.relative).limit(1))
            audit.record(session, actor="system:store", action="store_read_failed",
                         certificate_id=owner, details={"code": exc.code, "object": exc.where,
                                                        "request": f"digilocker {operation}"})
    except Exception:  # DigiLocker still gets its answer; the log has it
        log.exception("could not audit the store failure of %s", exc.where)
