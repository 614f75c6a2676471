"""What the issuer publishes for offline verifiers, signed by the seal key
(signing/signed_json.py): the seal trust list and the status list, at
/.well-known/pramaan/trust-list.json and /.well-known/pramaan/status-list.json.

Signed by a process that holds the keys (a worker's turn, `pramaan publish`, or the API itself
when jobs run in-process) and kept in the database, so every API server serves the same bytes
without opening a private key. A revocation or a correction marks the status list due at once.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, TypedDict

from cryptography import x509
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer.db import as_utc, utcnow
from issuer.errors import PramaanError
from issuer.models import Certificate, PublishedDocument, State
from issuer.typeddict_schema import Keywords

if TYPE_CHECKING:
    from redis import Redis

    from issuer.runtime import Runtime

TRUST_LIST: Final = "trust-list"
STATUS_LIST: Final = "status-list"
TRUST_LIST_TYPE: Final = "pramaan-trust-list+jws"
STATUS_LIST_TYPE: Final = "pramaan-status-list+jws"
WELL_KNOWN: Final = "/.well-known/pramaan"
# A verifier fetches the status list again after TTL; an offline one may rely on a copy until
# its exp. The trust list changes only with a key rotation.
STATUS_TTL: Final = dt.timedelta(minutes=5)
STATUS_VALIDITY: Final = dt.timedelta(days=1)
TRUST_REFRESH: Final = dt.timedelta(hours=6)
TRUST_VALIDITY: Final = dt.timedelta(days=30)
PUBLISH_LOCK: Final = "pramaan:publish"
PUBLISH_LOCK_SECONDS: Final = 60
_RELEASE: Final = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                   "return redis.call('del', KEYS[1]) end return 0")

_STATUS_OF_STATE: Final = {
    State.ISSUED.value: 0,  # current
    State.REVOKED.value: 1,
    State.SUPERSEDED.value: 3,
}
_NOT_ISSUED: Final = 2


class NotPublished(PramaanError):
    """No signed copy exists yet and this process holds no keys to sign one."""

    status = 503
    code = "not_published"
    title = "Not published yet"


@dataclass(frozen=True)
class Published:
    """A published document as served: the signed bytes and when they were signed."""

    body: bytes
    issued_at: dt.datetime


class VerifierAnchors(TypedDict):
    """The verify page's trust anchors (/v/roots.json)."""

    organisation: Annotated[str, Keywords(
        description="The O of the seal certificates (empty if they name none)")]
    roots: Annotated[list[str], Keywords(
        description="The PDF trust roots: DER certificates, base64")]


def verifier_anchors(runtime: Runtime) -> VerifierAnchors:
    """What the verify page trusts to check the published documents in the browser
    (templates/web/published.js): the trust roots (DER, base64) and the organisation that
    signs (the O of the seal certificates, as `pramaan verify --published` assumes)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    trust = runtime.trust
    roots = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
             for cert in trust.roots]
    current = x509.load_der_x509_certificate(trust.seal_trust.entries[0].certificate_der)
    names = current.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return {"organisation": str(names[0].value) if names else "", "roots": roots}


def url_of(runtime: Runtime, name: str) -> str:
    """The published address of document `name`."""
    return f"{runtime.settings.verify_base_url.rstrip('/')}{WELL_KNOWN}/{name}.json"


def document(runtime: Runtime, session: Session, name: str,
             now: dt.datetime | None = None) -> Published:
    """The signed document `name`, signed afresh first when it is due and this process may
    sign (jobs in-process); otherwise the last signed copy (its exp tells verifiers how long to
    trust it). Raises `NotPublished` when there is none."""
    moment = now or utcnow()
    row = session.get(PublishedDocument, name)
    if (row is None or _aware(row.refresh_after) <= moment) and runtime.settings.jobs_inline:
        try:
            publish(runtime, session, moment)
            session.commit()
        except IntegrityError:  # another request published the first copy at the same time
            session.rollback()
        row = session.get(PublishedDocument, name, populate_existing=True)
    if row is None:
        raise NotPublished(f"the {name} has not been signed yet: a worker publishes it within "
                           "a minute of starting, or run `pramaan publish`")
    return Published(body=row.body.encode("utf-8"), issued_at=_aware(row.issued_at))


def publish(runtime: Runtime, session: Session, now: dt.datetime | None = None) -> None:
    """Sign both documents as of `now` with the active seal key and store them (the caller
    commits)."""
    moment = (now or utcnow()).replace(microsecond=0)
    _store(session, TRUST_LIST, _signed(runtime, trust_list_payload(runtime, moment),
                                        TRUST_LIST_TYPE, moment), moment, moment + TRUST_REFRESH)
    _store(session, STATUS_LIST, _signed(runtime, status_list_payload(runtime, session, moment),
                                         STATUS_LIST_TYPE, moment), moment, moment + STATUS_TTL)


def due(session: Session, now: dt.datetime | None = None) -> bool:
    """Whether either document is missing or due to be signed afresh."""
    moment = now or utcnow()
    rows = session.scalars(select(PublishedDocument)).all()
    return len(rows) < 2 or any(_aware(row.refresh_after) <= moment for row in rows)


def publish_if_due(runtime: Runtime, redis: Redis, now: dt.datetime | None = None) -> bool:
    """A worker's turn: publish when a document is due and no other worker is at it (a Redis
    lock of PUBLISH_LOCK_SECONDS). Whether this call signed."""
    with runtime.sessions() as session:
        if not due(session, now):
            return False
        mine = f"{socket.gethostname()}:{uuid.uuid4().hex}"
        if not redis.set(PUBLISH_LOCK, mine, nx=True, ex=PUBLISH_LOCK_SECONDS):
            return False
        try:
            publish(runtime, session, now)
            session.commit()
        finally:
            # Only our own lock: after PUBLISH_LOCK_SECONDS it may be another worker's.
            redis.eval(_RELEASE, 1, PUBLISH_LOCK, mine)
    return True


def mark_status_changed(session: Session) -> None:
    """A certificate's status changed (revoked, superseded): the status list is due now."""
    session.execute(update(PublishedDocument).where(PublishedDocument.name == STATUS_LIST)
                    .values(refresh_after=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))


def trust_list_payload(runtime: Runtime, now: dt.datetime) -> dict[str, Any]:
    """Every seal key a verifier accepts (current, staged, retired), with its window."""
    return {
        "iss": runtime.settings.issuer_id,
        "iat": int(now.timestamp()),
        "exp": int((now + TRUST_VALIDITY).timestamp()),
        "status_list": url_of(runtime, STATUS_LIST),
        **runtime.trust.seal_trust.to_json(),
    }


def status_list_payload(runtime: Runtime, session: Session, now: dt.datetime) -> dict[str, Any]:
    """The status of every status index drawn so far (draft-ietf-oauth-status-list claims)."""
    from signing.status_list import Status, StatusList

    rows = [(index, state) for index, state in session.execute(
        select(Certificate.status_index, Certificate.state)
        .where(Certificate.status_index.is_not(None))).all() if index is not None]
    size = max((index for index, _ in rows), default=-1) + 1
    statuses = {index: Status(_STATUS_OF_STATE.get(state, _NOT_ISSUED)) for index, state in rows
                if _STATUS_OF_STATE.get(state, _NOT_ISSUED)}
    return {
        "sub": url_of(runtime, STATUS_LIST),
        "iss": runtime.settings.issuer_id,
        "iat": int(now.timestamp()),
        "exp": int((now + STATUS_VALIDITY).timestamp()),
        "ttl": int(STATUS_TTL.total_seconds()),
        "status_list": StatusList.build(statuses, size).to_json(),
    }


def _signed(runtime: Runtime, payload: dict[str, Any], typ: str, now: dt.datetime) -> str:
    import json

    from signing.signed_json import sign_document

    keys = runtime.keyring.active(now)
    chain = [keys.seal_key.certificate, *keys.backend.chain]
    return json.dumps(sign_document(payload, typ=typ, key=keys.seal_key.private_key, chain=chain))


def _store(session: Session, name: str, body: str, issued_at: dt.datetime,
           refresh_after: dt.datetime) -> None:
    row = session.get(PublishedDocument, name)
    if row is None:
        session.add(PublishedDocument(name=name, body=body, issued_at=issued_at,
                                      refresh_after=refresh_after))
        return
    row.body, row.issued_at, row.refresh_after = body, issued_at, refresh_after


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return as_utc(moment)
