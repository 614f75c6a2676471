"""POST /public/account/1/pushuri (PROTOCOL.md §6): an issuer adds (A), updates (U) or deletes (D)
one URI in a citizen's locker.

Checks, in this order: clientid known (401 invalid_client_id); every field present and well formed,
`ts` UNIX seconds no older than the window (400 invalid_parameter with §6's texts); `hmac` matches
one of the accepted variants (400, "HMAC ..."); the digilockerid is a known account that consented
to this client (404 invalid_digilocker_id); the URI is free for A (400 "URI already exists in this
account" / "... in another account"). On success A and U pull the document from the issuer
(synchronously, so when the push returns 200 the locker already holds it) and D removes the URI.

Choices where §6 is silent (DERIVED, documented in the README): U of a URI not in the locker adds
it; D of a URI not in the locker is 400 "URI parameter is missing or invalid"; the 200 body is `{}`
(DigiLocker's is unspecified, so a caller must rely on the status only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request

from digilocker.emulator.config import EmulatorConfig, Partner
from digilocker.emulator.state import Document, State

# Field order of the endpoint-specific digest (§6), after client_secret.
DIGEST_FIELDS = ("clientid", "digilockerid", "uri", "doctype", "description", "docid",
                 "issuedate", "validfrom", "validto", "action", "ts")
CONTENT_FIELDS = ("doccontent", "datacontent")
DOCTYPE = re.compile(r"^[A-Z0-9]{5,6}$")


@dataclass
class PushError(Exception):
    status: int
    code: str
    text: str

    def response(self) -> Response:
        body = jsonify(error=self.code, error_description=self.text)
        body.status_code = self.status
        return body


def invalid(what: str) -> PushError:
    return PushError(400, "invalid_parameter", f"{what} parameter is missing or invalid")


def digests(form: dict[str, str], secret: str, sequence: str) -> bytes:
    if sequence == "generic":
        parts = [secret, form["clientid"], form["ts"]]
    else:
        parts = [secret] + [form.get(name, "") for name in DIGEST_FIELDS]
        if sequence == "full":
            parts += [form.get(name, "") for name in CONTENT_FIELDS]
    return hashlib.sha256("".join(parts).encode()).digest()


def encode(digest: bytes, encoding: str) -> str:
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    return base64.b64encode(digest.hex().encode()).decode()


def push_hmac(form: dict[str, str], secret: str, sequence: str = "full",
              encoding: str = "hex") -> str:
    """The `hmac` field for a push, in one variant. (Public so tests and callers can build one.)"""
    return encode(digests(form, secret, sequence), encoding)


def match_hmac(form: dict[str, str], given: str, secret: str, config: EmulatorConfig
               ) -> str | None:
    """The accepted variant `given` matches ("sequence/encoding"), or None. Hex is compared
    case-insensitively; every comparison is constant-time."""
    found = None
    for sequence in config.push_hmac_sequences:
        digest = digests(form, secret, sequence)
        for encoding in config.push_hmac_encodings:
            expected = encode(digest, encoding)
            candidate = given.lower() if encoding == "hex" else given
            if hmac.compare_digest(candidate.encode(), expected.encode()):
                found = found or f"{sequence}/{encoding}"
    return found


def _date(value: str) -> bool:
    try:
        datetime.strptime(value, "%d%m%Y")
    except ValueError:
        return False
    return len(value) == 8


def validate(form: dict[str, str], partner: Partner, config: EmulatorConfig) -> None:
    """Field checks with §6's error texts; raises PushError."""
    uri = form.get("uri", "")
    doctype = form.get("doctype", "")
    docid = form.get("docid", "")
    if not DOCTYPE.match(doctype):
        raise invalid("Doctype")
    if not docid:
        raise invalid("Docid")
    # §5: IssuerId-DocType-DocId, the issuer id being this partner's.
    if uri != f"{partner.org_id}-{doctype}-{docid}":
        raise invalid("URI")
    if not form.get("description", "").strip():
        raise invalid("Description")
    if not _date(form.get("issuedate", "")):
        raise invalid("Issuedate")
    for name in ("validfrom", "validto"):
        if form.get(name) and not _date(form[name]):
            raise invalid(name.capitalize())
    if form.get("action", "") not in ("A", "U", "D"):
        raise invalid("Action")
    ts = form.get("ts", "")
    now = time.time()
    # "UNIX seconds in IST" (§6, §11.5): a sender that adds the +05:30 offset is accepted only
    # when push_ts_ist_shifted says so.
    offsets = (0, 19800) if config.push_ts_ist_shifted else (0,)
    if not ts.isdigit() or not any(
            now + shift - config.push_ts_window <= int(ts) <= now + shift + config.push_ts_future
            for shift in offsets):
        raise invalid("Timestamp")
    for name in CONTENT_FIELDS:
        if form.get(name):
            try:
                base64.b64decode(form[name], validate=True)
            except ValueError as exc:
                raise invalid(name.capitalize()) from exc


def receive(config: EmulatorConfig, state: State, pull: Any) -> Response:
    """The view. `pull(partner, document)` fetches the document from the issuer."""
    form = {k: v for k, v in request.form.items()}
    entry: dict[str, Any] = {"uri": form.get("uri"), "action": form.get("action"),
                             "digilockerid": form.get("digilockerid"),
                             "content_type": request.mimetype}
    try:
        document, partner = _accept(form, config, state, entry)
    except PushError as exc:
        entry.update(status=exc.status, error=exc.code, error_description=exc.text)
        state.log_push(entry)
        return exc.response()
    entry["status"] = 200
    state.log_push(entry)
    if document is not None and config.pull_on_push:
        pull(partner, document)
    return jsonify({})


def _accept(form: dict[str, str], config: EmulatorConfig, state: State,
            entry: dict[str, Any]) -> tuple[Document | None, Partner]:
    partner = config.partner(form.get("clientid", ""))
    if partner is None:
        raise PushError(401, "invalid_client_id", "Client ID is missing or invalid")
    validate(form, partner, config)
    given = form.get("hmac", "")
    variant = match_hmac(form, given, partner.client_secret, config) if given else None
    if variant is None:
        raise invalid("HMAC")
    entry["hmac_variant"] = variant
    digilockerid = form.get("digilockerid", "")
    with state.lock:
        consented = (partner.client_id, digilockerid) in state.consents
        if config.user(digilockerid) is None or (config.push_requires_consent and not consented):
            raise PushError(404, "invalid_digilocker_id", "DigiLocker ID is missing or invalid")
        return _apply(form, partner, state), partner


def _apply(form: dict[str, str], partner: Partner, state: State) -> Document | None:
    uri, action, digilockerid = form["uri"], form["action"], form["digilockerid"]
    locker = state.lockers.setdefault(digilockerid, {})
    owner = state.document(uri)
    if owner is not None and owner.digilockerid != digilockerid:
        raise PushError(400, "invalid_parameter", "URI already exists in another account")
    if action == "D":
        if uri not in locker:
            raise invalid("URI")
        del locker[uri]
        state.count_push(uri, action)
        return None
    if action == "A" and uri in locker:
        raise PushError(400, "invalid_parameter", "URI already exists in this account")
    document = locker.get(uri) or Document(uri, digilockerid, partner.org_id, form["doctype"],
                                           form["description"])
    if uri in locker:
        # The corrected document replaces the old one: never serve the stale bytes after a U.
        document.updates += 1
        document.pdf = document.xml = None
    for name in ("description", "docid", "issuedate", "validfrom", "validto"):
        setattr(document, name, form.get(name, ""))
    if form.get("doccontent"):
        document.pdf = base64.b64decode(form["doccontent"])
    if form.get("datacontent"):
        document.xml = base64.b64decode(form["datacontent"])
    locker[uri] = document
    state.count_push(uri, action)
    return document
