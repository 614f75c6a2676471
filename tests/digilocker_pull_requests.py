"""Pull URI / Pull Doc requests as DigiLocker sends them (PROTOCOL.md §2-4), signed with the
test API key, and the parts of our answers the tests read. Built here by hand, independently of
digilocker/ (string templates and hashlib, not our request_auth or xml_body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
import requests

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.models import Department
from issuer.tokens import create_token
from tests.conftest import Live

KEY = "test-api-key"
IST = timezone(timedelta(hours=5, minutes=30))
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_serial = itertools.count(1)


def now_ts(shift_seconds: int = 0) -> str:
    """`ts` as DigiLocker writes it: ISO 8601 with the +05:30 offset."""
    return (datetime.now(IST) + timedelta(seconds=shift_seconds)).isoformat(timespec="seconds")


def new_txn() -> str:
    return f"{next(_serial)}{uuid.uuid4().int % 10**9}"


def body(root: str, details: dict[str, str], *, ts: str | None = None, txn: str | None = None,
         fmt: str | None = "pdf", keyhash: str | None = None) -> bytes:
    """A request document; `fmt` None leaves `format` out."""
    attrs = {"ver": "1.0", "ts": ts if ts is not None else now_ts(),
             "txn": txn if txn is not None else new_txn(), "orgId": "in.gov.pmc"}
    if fmt is not None:
        attrs["format"] = fmt
    if keyhash is not None:
        attrs["keyhash"] = keyhash
    attributes = " ".join(f"{name}={quoteattr(value)}" for name, value in attrs.items())
    children = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in details.items())
    return (f'{DECLARATION}<{root} xmlns:ns2="http://tempuri.org/" {attributes}>'
            f"<DocDetails>{children}</DocDetails></{root}>").encode()


def uri_request(doc_type: str, params: dict[str, str], **kwargs: Any) -> bytes:
    details = {"DocType": doc_type, "DigiLockerId": str(uuid.uuid4()), **params}
    return body("PullURIRequest", details, **kwargs)


def doc_request(uri: str, extra: dict[str, str] | None = None, **kwargs: Any) -> bytes:
    details = {"URI": uri, "DigiLockerId": str(uuid.uuid4()), **(extra or {})}
    return body("PullDocRequest", details, **kwargs)


def sign(raw: bytes, encoding: str = "hex", key: str = KEY) -> str:
    """x-digilocker-hmac: Base64 of the lowercase hex HMAC (hex) or of the raw digest (raw)."""
    digest = hmac.new(key.encode(), raw, hashlib.sha256)
    data = digest.hexdigest().encode() if encoding == "hex" else digest.digest()
    return base64.b64encode(data).decode()


def post(live: Live, operation: str, raw: bytes, *, encoding: str | None = "hex",
         header: str | None = None) -> requests.Response:
    """POST `raw` to /digilocker/<operation>, signed (encoding None: no header)."""
    headers = {"Content-Type": "application/xml"}
    if header is not None:
        headers["x-digilocker-hmac"] = header
    elif encoding is not None:
        headers["x-digilocker-hmac"] = sign(raw, encoding)
    return requests.post(live.url(f"/digilocker/{operation}"), data=raw, headers=headers,
                         timeout=60)


@dataclass
class Reply:
    """An answer: HTTP status, Status, echoed ts/txn, DocDetails children (text by name)."""

    http: int
    status: str
    ts: str
    txn: str
    details: dict[str, str]
    root: str

    def content(self, name: str) -> bytes:
        return base64.b64decode(self.details[name], validate=True)


def reply(response: requests.Response) -> Reply:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/xml")
    root = SafeET.fromstring(response.content)
    status = root.find("ResponseStatus")
    assert status is not None
    block = root.find("DocDetails")
    details = {child.tag: child.text or "" for child in block} if block is not None else {}
    return Reply(200, status.get("Status", ""), status.get("ts", ""), status.get("txn", ""),
                 details, root.tag)


def officer_token(live: Live) -> str:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return create_token(session, department, f"officer-{uuid.uuid4().hex[:6]}", "officer")


def issue(live: Live, request: dict[str, Any]) -> dict[str, Any]:
    """Submit in the dev department (approved automatically) and return the issued record."""
    created = live.post_json("/api/v1/certificates", request)
    assert created.status_code == 202, created.text
    record: dict[str, Any] = live.get(created.json()["status_url"]).json()
    assert record["state"] == "issued", record
    return record


def our_pdf(live: Live, record: dict[str, Any]) -> bytes:
    response = live.get(f"/api/v1/certificates/{record['id']}/pdf")
    assert response.status_code == 200, response.text
    return response.content


def keyhash_of(ts: str, key: str = KEY) -> str:
    """The v1.0 keyhash: hex SHA-256 of the key followed by ts (§4.2)."""
    return hashlib.sha256((key + ts).encode()).hexdigest()
