"""Verification as a verifier without our database does it: a QR seal checked against the
published, signed trust list and its status read from the published status list
(`pramaan verify --qr TEXT --published SOURCE`), from copies fetched once and kept.

The trust list must be signed by one of the keys it lists, and the status list by a key of the
trust list, both chaining to the verifier's root and naming the issuer's organisation
(signing/signed_json.py). A status list made before the certificate was sealed cannot speak for
it: the status is then "unknown", never "current".
"""

from __future__ import annotations

import datetime as dt
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from issuer.published import (
    STATUS_LIST,
    STATUS_LIST_TYPE,
    STATUS_VALIDITY,
    TRUST_LIST,
    TRUST_LIST_TYPE,
    TRUST_VALIDITY,
    WELL_KNOWN,
)
from issuer.seal_fields import holder_of, type_and_dates
from signing.errors import SigningError
from signing.seal import PRIVATE_CLAIM, verify_seal
from signing.signed_json import MAX_DOCUMENT_BYTES, OpenedDocument, open_document
from signing.status_list import Status, StatusList
from signing.trust_list import TrustList, kid_for

_STATUS_NAMES: Final = {
    Status.CURRENT: "current",
    Status.REVOKED: "revoked",
    Status.SUPERSEDED: "superseded",
}
_FETCH_SECONDS: Final = 10
_SKEW: Final = dt.timedelta(minutes=5)


class PublishedUnavailable(SigningError):
    """The published documents could not be fetched or read from where they were asked for."""

    code = "published_unavailable"


@dataclass(frozen=True)
class Published:
    """The two published documents, as fetched (not yet checked)."""

    trust_list: bytes
    status_list: bytes


def fetch_published(source: str) -> Published:
    """The documents at `source`: the issuer's base URL (http or https; the well-known paths
    are added) or a directory holding trust-list.json and status-list.json (a kept copy)."""
    def read(name: str) -> bytes:
        if source.startswith(("https://", "http://")):
            url = f"{source.rstrip('/')}{WELL_KNOWN}/{name}.json"
            try:
                with urllib.request.urlopen(url, timeout=_FETCH_SECONDS) as answer:  # noqa: S310
                    body: bytes = answer.read(MAX_DOCUMENT_BYTES + 1)
                    return body
            except OSError as exc:
                raise PublishedUnavailable(f"cannot fetch {url}: {exc}") from exc
        path = Path(source) / f"{name}.json"
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PublishedUnavailable(f"cannot read {path}: {exc.strerror}") from exc

    return Published(trust_list=read(TRUST_LIST), status_list=read(STATUS_LIST))


def verify_with_published(text: str, published: Published, *, roots: list[x509.Certificate],
                          organisation: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The verdict on seal `text` from `published` alone, as of `now` (default now):
    {"genuine", "status", "current", "reason", "certificate", "trust_list", "status_list"}."""
    moment = now or dt.datetime.now(dt.UTC)
    try:
        trust_doc = open_document(published.trust_list, typ=TRUST_LIST_TYPE, roots=roots,
                                  organisation=organisation, at=moment)
        trust = TrustList.from_json(trust_doc.payload)
        _require_current(trust_doc, TRUST_VALIDITY, moment, "trust list", expired_ok=False)
        _require_listed(trust_doc, trust, "trust list", moment)
        status_doc = open_document(published.status_list, typ=STATUS_LIST_TYPE, roots=roots,
                                   organisation=organisation, at=moment)
        _require_current(status_doc, STATUS_VALIDITY, moment, "status list", expired_ok=True)
        _require_listed(status_doc, trust, "status list", moment)
        statuses = StatusList.from_json(status_doc.payload.get("status_list"))
    except SigningError as exc:
        return _verdict(False, "invalid", f"published documents: {exc.message}")
    lists = {"trust_list": _times(trust_doc), "status_list": _times(status_doc)}
    report = verify_seal(text, trust)
    if not report.ok or report.claims is None:
        return {**_verdict(False, "invalid", f"seal: {report.reason}"), **lists}
    ours = report.claims.get(PRIVATE_CLAIM) or {}
    sealed_at, index = report.claims.get(6), ours.get("si")
    kind, dates = type_and_dates(ours)
    summary = {"number": ours.get("no"), "type": kind, "registration": ours.get("r"),
               "holder": holder_of(ours.get("n")), "dates": dates, "ward": ours.get("w"),
               "issued_at": dt.datetime.fromtimestamp(sealed_at, dt.UTC).isoformat()
               if type(sealed_at) is int else None}
    status, reason = _status(statuses, status_doc, index, sealed_at, moment)
    return {"genuine": True, "status": status, "current": status == "current",
            "reason": reason, "certificate": summary, **lists}


def _status(statuses: StatusList, document: OpenedDocument, index: object, sealed_at: object,
            now: dt.datetime) -> tuple[str, str | None]:
    made, expires = document.payload.get("iat"), document.payload.get("exp")
    if type(made) is not int or type(expires) is not int:
        return "unknown", "the status list carries no iat and exp"
    if expires <= now.timestamp():
        return "unknown", "the status list has expired: fetch a new one"
    if type(index) is not int or type(sealed_at) is not int:
        return "unknown", "the seal carries no status index"
    # A list made before the seal shows its index as not issued or not at all (the index is
    # drawn at approval, the seal made at issue), both "unknown" below; this says why plainly.
    if made < sealed_at:
        return "unknown", "the status list is older than this certificate: fetch a new one"
    found = statuses.status(index)
    if found is None:
        return "unknown", "the status list does not cover this certificate"
    if found is Status.NOT_ISSUED:
        # Its seal was made, but the record was not issued yet when the list was signed (it
        # was being signed then); a newer list tells.
        return "unknown", "not yet issued when the status list was made: fetch a new one"
    return _STATUS_NAMES[found], None


def _require_current(document: OpenedDocument, longest: dt.timedelta, now: dt.datetime,
                     what: str, *, expired_ok: bool) -> None:
    # The times a document claims are the signer's word: made no later than now (a few
    # minutes of clock skew), valid no longer than the issuer ever makes them, and, for the
    # trust list, not expired (an expired status list only leaves the status unknown).
    made, expires = document.payload.get("iat"), document.payload.get("exp")
    if type(made) is not int or type(expires) is not int or not (
            made <= now.timestamp() + _SKEW.total_seconds()
            and 0 < expires - made <= longest.total_seconds()):
        raise SigningError(f"the {what} claims impossible times (iat {made}, exp {expires})",
                           code="document_refused")
    if not expired_ok and expires <= now.timestamp():
        raise SigningError(f"the {what} has expired: fetch a new one", code="document_refused")


def _require_listed(document: OpenedDocument, trust: TrustList, what: str,
                    now: dt.datetime) -> None:
    # The signer must be one of the issuer's own seal keys, inside its window both when the
    # document says it was made and now: a retired key (whose window has ended) signs no list
    # a verifier takes, whatever time it claims.
    der = document.signer.public_bytes(serialization.Encoding.DER)
    made = document.payload.get("iat")
    if type(made) is not int or not any(
            entry.certificate_der == der
            and entry.not_before.timestamp() <= made <= entry.not_after.timestamp()
            and entry.not_before <= now <= entry.not_after
            for entry in trust.keys_for(kid_for(der))):
        raise SigningError(f"the {what} is not signed by a listed seal key in its window",
                           code="document_refused")


def _times(document: OpenedDocument) -> dict[str, Any]:
    def when(value: object) -> str | None:
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat() if type(value) is int else None

    return {"issued_at": when(document.payload.get("iat")),
            "expires_at": when(document.payload.get("exp"))}


def _verdict(genuine: bool, status: str, reason: str) -> dict[str, Any]:
    return {"genuine": genuine, "status": status, "current": False, "reason": reason,
            "certificate": None}
