"""The test-only admin API under /emulator/ (never faulted): read the state, change the faults at
run time, make the emulator search an issuer as a citizen would, forget everything.

Guarded by `admin_token` (Bearer) when one is configured; tests run without one on loopback."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Flask, Response, jsonify, request

from digilocker.emulator.config import PULL_FORMATS, ConfigError, EmulatorConfig
from digilocker.emulator.locker import Puller
from digilocker.emulator.state import State


def _bad(text: str, status: int = 400) -> Response:
    response = jsonify(error="invalid_request", error_description=text)
    response.status_code = status
    return response


def install(app: Flask, config: EmulatorConfig, state: State, puller: Puller) -> None:

    @app.before_request
    def guard() -> Response | None:
        if not request.path.startswith("/emulator/") or not config.admin_token:
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if hmac.compare_digest(given, config.admin_token.encode()):
            return None
        return _bad("admin token required", 401)

    @app.get("/emulator/state")
    def state_view() -> Response:
        return jsonify(state.snapshot())

    @app.get("/emulator/faults")
    def faults_view() -> Response:
        return jsonify(state.snapshot()["faults"])

    @app.route("/emulator/faults", methods=["PUT", "POST"])
    def faults_update() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad("a JSON object of fault settings is expected")
        try:
            faults = state.faults.updated(body)
        except (ConfigError, TypeError) as exc:
            return _bad(str(exc))
        state.set_faults(faults)
        return jsonify(state.snapshot()["faults"])

    @app.post("/emulator/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({})

    @app.post("/emulator/search")
    def search() -> Response:
        """Body: {"digilockerid", "doctype", "params": {name: value}, optional "orgid",
        "aadhaar": true (send the user's FullName/DOB/UID), "format"}."""
        body: Any = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad("a JSON object is expected")
        digilockerid, doctype = body.get("digilockerid"), body.get("doctype")
        params = body.get("params", {})
        if not isinstance(digilockerid, str) or config.user(digilockerid) is None:
            return _bad("digilockerid names no test user")
        if not isinstance(doctype, str) or not doctype:
            return _bad("doctype is required")
        if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
            return _bad("params must map names to strings")
        org = body.get("orgid")
        partner = (config.partner_for_org(org) if isinstance(org, str)
                   else (config.partners[0] if len(config.partners) == 1 else None))
        if partner is None:
            return _bad("orgid names no configured partner")
        fmt = body.get("format", config.pull_format)
        if fmt not in PULL_FORMATS:
            return _bad(f"format must be one of {PULL_FORMATS}")
        user = config.user(digilockerid)
        assert user is not None
        result = puller.pull_uri(partner, user.digilockerid, doctype, list(params.items()),
                                 bool(body.get("aadhaar")), fmt)
        return jsonify(ok=result.ok, http_status=result.http_status, status=result.status,
                       uri=result.uri, echo_ok=result.echo_ok, error=result.error,
                       pdf_sha256=hashlib.sha256(result.pdf).hexdigest() if result.pdf else None,
                       has_xml=result.xml is not None, details=result.details)
