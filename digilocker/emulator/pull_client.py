"""The emulator calling an issuer's Pull URI and Pull Doc APIs (PROTOCOL.md §2-4), as DigiLocker
does when a citizen searches or a URI is pushed: XML body, `x-digilocker-hmac` over the exact bytes
sent (Base64 of the hex HMAC by default, Base64 of the raw digest on request), optional legacy
`keyhash`, a fresh `ts` and `txn`, and the response parsed with defusedxml.

Uses only the standard library's urllib so the emulator needs nothing beyond the app's own
dependencies."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

IST = timezone(timedelta(hours=5, minutes=30))
MAX_RESPONSE = 32 * 1024 * 1024


def sign_body(body: bytes, api_key: str, encoding: str) -> str:
    """The x-digilocker-hmac header value for `body` (§4.1)."""
    mac = hmac.new(api_key.encode(), body, hashlib.sha256)
    raw = mac.hexdigest().encode() if encoding == "hex-base64" else mac.digest()
    return base64.b64encode(raw).decode()


def keyhash(api_key: str, ts: str) -> str:
    """The v1.0 keyhash attribute: plain SHA-256 of key then ts, lowercase hex (§4.2)."""
    return hashlib.sha256((api_key + ts).encode()).hexdigest()


@dataclass
class PullResult:
    """What one pull call came back with. `ok` means HTTP 200, parseable XML, Status 1."""

    kind: str
    http_status: int | None
    status: str | None = None  # ResponseStatus@Status: "1", "0", "9"
    uri: str | None = None
    pdf: bytes | None = None
    xml: bytes | None = None
    echo_ok: bool = False  # ts and txn echoed verbatim
    error: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and self.status == "1" and self.error is None


@dataclass(frozen=True)
class Signing:
    api_key: str
    encoding: str = "hex-base64"
    send_keyhash: bool = False


def request_body(root: str, org_id: str, fmt: str, details: list[tuple[str, str]],
                 ts: str, txn: str, signing: Signing) -> bytes:
    """A PullURIRequest or PullDocRequest in the spec's shape (§2.2, §3): unqualified elements,
    the unused ns2 declaration of the samples, `format` left out when fmt is "absent"."""
    attrs = {"xmlns:ns2": "http://tempuri.org/", "ver": "1.0", "ts": ts, "txn": txn,
             "orgId": org_id}
    if fmt != "absent":
        attrs["format"] = fmt
    if signing.send_keyhash:
        attrs["keyhash"] = keyhash(signing.api_key, ts)
    element = Element(root, attrs)
    doc = SubElement(element, "DocDetails")
    for name, value in details:
        SubElement(doc, name).text = value
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + tostring(
        element, encoding="unicode").encode()


def call(kind: str, url: str, root: str, org_id: str, fmt: str, details: list[tuple[str, str]],
         signing: Signing, timeout: float) -> PullResult:
    """POST one pull request and parse the answer; never raises for the issuer's failures."""
    ts = datetime.now(IST).replace(microsecond=0).isoformat()
    txn = str(secrets.randbelow(10**12))
    body = request_body(root, org_id, fmt, details, ts, txn, signing)
    headers = {"Content-Type": "application/xml",
               "x-digilocker-hmac": sign_body(body, signing.api_key, signing.encoding)}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
            status, payload = resp.status, resp.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        return PullResult(kind, exc.code, error=f"http {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return PullResult(kind, None, error=f"unreachable: {exc}")
    return parse(kind, status, payload, ts, txn)


def parse(kind: str, http_status: int, payload: bytes, ts: str, txn: str) -> PullResult:
    result = PullResult(kind, http_status)
    try:
        root = SafeET.fromstring(payload)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        result.error = f"unparseable response: {exc}"
        return result
    children = {_local(c.tag): c for c in root}
    status = children.get("ResponseStatus")
    if status is None:
        result.error = "no ResponseStatus"
        return result
    # Status per [S1]; lower-case status per [S5] (§3).
    result.status = status.get("Status") or status.get("status")
    result.echo_ok = status.get("ts") == ts and status.get("txn") == txn
    docs = children.get("DocDetails")
    if docs is not None:
        for child in docs:
            name = _local(child.tag)
            text = (child.text or "").strip()
            if name in ("DocContent", "DataContent"):
                if text:
                    try:
                        decoded = base64.b64decode(text, validate=True)
                    except (binascii.Error, ValueError):
                        result.error = f"{name} is not base64"
                        return result
                    if name == "DocContent":
                        result.pdf = decoded
                    else:
                        result.xml = decoded
            elif name == "URI":
                result.uri = text or None
            elif len(child) == 0:
                result.details[name] = text
    return result


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
