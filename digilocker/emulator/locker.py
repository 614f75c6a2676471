"""The locker side of the emulator: fetching documents from issuers into lockers (on push, on a
citizen's search, lazily on open) and the bearer-token resource APIs of PROTOCOL.md §8.5 that
show them to a partner: user details, the issued list (v1 and v2), file and XML by URI."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, jsonify, request

from digilocker.emulator import pull_client
from digilocker.emulator.config import EmulatorConfig, Partner
from digilocker.emulator.state import Document, State, Token


class Puller:
    """Calls a partner's pull endpoints with the configured signing variant and files what comes
    back. HTTP happens outside the state lock; only the bookkeeping takes it."""

    def __init__(self, config: EmulatorConfig, state: State) -> None:
        self.config = config
        self.state = state

    def signing(self, partner: Partner) -> pull_client.Signing:
        return pull_client.Signing(partner.api_key or "", self.config.pull_hmac_encoding,
                                   self.config.pull_send_keyhash)

    def pull_doc(self, partner: Partner, document: Document) -> pull_client.PullResult:
        """Pull Doc for one URI in a locker; the document keeps the bytes or the failure."""
        if not partner.pull_doc_url or not partner.api_key:
            result = pull_client.PullResult("doc", None, error="partner has no pull_doc_url/key")
        else:
            result = pull_client.call(
                "doc", partner.pull_doc_url, "PullDocRequest", partner.org_id,
                self.config.pull_format,
                [("URI", document.uri), ("DigiLockerId", document.digilockerid)],
                self.signing(partner), self.config.pull_timeout)
        with self.state.lock:
            if result.ok:
                document.pdf, document.xml, document.pull_error = result.pdf, result.xml, None
            else:
                document.pull_error = result.error or f"Status {result.status}"
        self.log(result, document.uri)
        return result

    def pull_uri(self, partner: Partner, digilockerid: str, doctype: str,
                 params: list[tuple[str, str]], aadhaar: bool, fmt: str
                 ) -> pull_client.PullResult:
        """Pull URI as a citizen's search sends it; a found URI joins the citizen's locker."""
        user = self.config.user(digilockerid)
        details = [("DocType", doctype), ("DigiLockerId", digilockerid)]
        if aadhaar and user is not None:
            dob = datetime.strptime(user.dob, "%d%m%Y").strftime("%d-%m-%Y")
            if user.uid:
                details.append(("UID", user.uid))
            details += [("FullName", user.name), ("DOB", dob)]
        details += params
        if not partner.pull_uri_url or not partner.api_key:
            result = pull_client.PullResult("uri", None, error="partner has no pull_uri_url/key")
        else:
            result = pull_client.call("uri", partner.pull_uri_url, "PullURIRequest",
                                      partner.org_id, fmt, details, self.signing(partner),
                                      self.config.pull_timeout)
        if result.ok and result.uri:
            with self.state.lock:
                locker = self.state.lockers.setdefault(digilockerid, {})
                document = locker.get(result.uri) or Document(
                    result.uri, digilockerid, partner.org_id, doctype, doctype, source="search")
                document.pdf = result.pdf or document.pdf
                document.xml = result.xml or document.xml
                locker[result.uri] = document
        self.log(result, result.uri)
        return result

    def log(self, result: pull_client.PullResult, uri: str | None) -> None:
        self.state.log_pull({
            "kind": result.kind, "uri": uri, "http_status": result.http_status,
            "status": result.status, "ok": result.ok, "echo_ok": result.echo_ok,
            "error": result.error,
            "pdf_sha256": hashlib.sha256(result.pdf).hexdigest() if result.pdf else None,
        })


def _error(status: int, code: str, text: str) -> Response:
    response = jsonify(error=code, error_description=text)
    response.status_code = status
    return response


def install(app: Flask, config: EmulatorConfig, state: State, protector: ResourceProtector,
            puller: Puller) -> None:
    """The §8.5 resource routes, each behind a bearer token (authlib's ResourceProtector answers
    401 invalid_token for a missing, unknown, expired or revoked one)."""

    def bearer() -> Token:
        try:
            token: Token = protector.acquire_token()
        except OAuth2Error as error:
            protector.raise_error_response(error)  # raises an HTTPException with the JSON body
            raise
        return token

    @app.get("/public/oauth2/1/user")
    def user() -> Response:
        person = config.user(bearer().digilockerid)
        assert person is not None
        return jsonify(digilockerid=person.digilockerid, name=person.name, dob=person.dob,
                       gender=person.gender, eaadhaar=person.eaadhaar, mobile=person.mobile)

    @app.get("/public/oauth2/<int:version>/files/issued")
    def issued(version: int) -> Response:
        token = bearer()
        if version not in (1, 2):
            return _error(404, "not_found", "No such API version")
        items = [_item(d, config, version) for d in state.issued(token.digilockerid)]
        return jsonify(items=items, resource="issued")

    @app.get("/public/oauth2/1/file/<path:uri>")
    def file(uri: str) -> Response:
        return _serve(uri, "pdf")

    @app.get("/public/oauth2/1/xml/<path:uri>")
    def xml(uri: str) -> Response:
        return _serve(uri, "xml")

    def _serve(uri: str, kind: str) -> Response:
        token = bearer()
        # §8.2: the URI is a path segment or, on some hosts, ?uri= after a literal /uri.
        if uri == "uri" and request.args.get("uri"):
            uri = request.args["uri"]
        if not uri:
            return _error(400, "uri_missing", "URI is missing")
        with state.lock:
            document = state.lockers.get(token.digilockerid, {}).get(uri)
        if document is None:
            return _error(404, "invalid_uri", "No file found for given URI")
        if (document.pdf if kind == "pdf" else document.xml) is None:
            partner = config.partner_for_org(document.org_id)
            if partner is None:
                return _error(500, "repository_service_configerror", "Issuer not configured")
            result = puller.pull_doc(partner, document)
            if not result.ok:
                code = ("repository_service_unresponsive" if result.http_status is None
                        else "repository_service_resperror")
                return _error(500, code, "The issuer did not return the document")
        content = document.pdf if kind == "pdf" else document.xml
        if content is None:
            return _error(404, "invalid_uri", "No file found for given URI")
        partner = config.partner(token.client_id)
        secret = partner.client_secret.encode() if partner else b""
        mac = base64.b64encode(hmac.new(secret, content, hashlib.sha256).digest()).decode()
        mime = "application/pdf" if kind == "pdf" else "application/xml"
        return Response(content, mimetype=mime, headers={"hmac": mac})


def _item(document: Document, config: EmulatorConfig, version: int) -> dict[str, Any]:
    partner = config.partner_for_org(document.org_id)
    mimes = ["application/pdf"] + (["application/xml"] if document.xml is not None else [])
    added = datetime.fromtimestamp(document.added_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "name": document.description, "type": "file",
        "size": str(len(document.pdf)) if document.pdf is not None else "",
        "date": added, "parent": "",
        "mime": mimes if version == 2 else mimes[0],
        "uri": document.uri, "doctype": document.doctype, "description": document.description,
        "issuerid": document.org_id, "issuer": partner.client_id if partner else document.org_id,
    }
