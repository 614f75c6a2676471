"""create_emulator(config): a Flask app that behaves like DigiLocker toward an issuer (PROTOCOL.md
§6, §8): OAuth authorize/token/revoke, user details, issued documents, file and XML by URI, Push
URI; it calls the issuer's Pull URI / Pull Doc; fault injection and a test admin API.

Paths are PROTOCOL.md's, under /public like the real hosts: a partner configured with base URL
http://host:port/public reaches /public/oauth2/1/token, /public/account/1/pushuri and so on."""

from __future__ import annotations

from html import escape

from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, jsonify, request

from digilocker.emulator import admin, faults, locker, pushuri
from digilocker.emulator.config import EmulatorConfig
from digilocker.emulator.oauth import build_oauth
from digilocker.emulator.state import State


def create_emulator(config: EmulatorConfig | None = None) -> Flask:
    """One emulator instance with its own in-memory state, app.extensions["digilocker_emulator"]."""
    config = config or EmulatorConfig()
    app = Flask("digilocker_emulator")
    app.config.update(
        OAUTH2_REFRESH_TOKEN_GENERATOR=True,
        OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": config.token_expires_in,
                                 "refresh_token": config.token_expires_in},
    )
    state = State(config.faults)
    server, protector = build_oauth(config, state)
    server.init_app(app)
    puller = locker.Puller(config, state)
    app.extensions["digilocker_emulator"] = state
    faults.install(app, state)
    admin.install(app, config, state, puller)
    locker.install(app, config, state, protector, puller)

    @app.route("/public/oauth2/1/authorize", methods=["GET", "POST"])
    def authorize() -> Response:
        """Auto-consent: ?dl_test_user=<username|digilockerid> (or the configured default user)
        approves at once; ?dl_test_deny=1 refuses (access_denied). With neither, a page lists the
        test users for a person at a browser."""
        if not request.values.get("state"):
            return _error(400, "invalid_request", "state is required")
        deny = request.values.get("dl_test_deny") == "1"
        handle = None if deny else (request.values.get("dl_test_user") or config.default_user)
        user = config.user(handle) if handle else None
        if handle and user is None:
            return _error(400, "invalid_request", "dl_test_user names no test user")
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as exc:
            # Redirected back to the client once its redirect_uri is known to be registered,
            # otherwise a JSON 400 (a bad redirect_uri never receives anything).
            refused: Response = server.handle_error_response(request, exc)
            return refused
        if not deny and user is None:
            return _consent_page(config)
        answer: Response = server.create_authorization_response(grant=grant, grant_user=user)
        return answer

    @app.post("/public/oauth2/1/token")
    def token() -> Response:
        issued: Response = server.create_token_response()
        return issued

    @app.post("/public/oauth2/1/revoke")
    def revoke() -> Response:
        revoked: Response = server.create_endpoint_response("revocation")
        return revoked

    @app.post("/public/account/1/pushuri")
    def push() -> Response:
        return pushuri.receive(config, state, puller.pull_doc)

    return app


def _error(status: int, code: str, text: str) -> Response:
    response = jsonify(error=code, error_description=text)
    response.status_code = status
    return response


def _consent_page(config: EmulatorConfig) -> Response:
    buttons = "".join(
        f'<form method="get"><input type="hidden" name="dl_test_user" '
        f'value="{escape(u.username or u.digilockerid)}">{_hidden()}'
        f'<button>Allow as {escape(u.name)}</button></form>' for u in config.users)
    deny = f'<form method="get"><input type="hidden" name="dl_test_deny" value="1">{_hidden()}' \
           '<button>Deny</button></form>'
    html = ("<!doctype html><title>DigiLocker emulator: consent</title>"
            f"<h1>DigiLocker emulator</h1><p>Share your documents with "
            f"{escape(request.args.get('client_id', ''))}?</p>{buttons}{deny}")
    return Response(html, mimetype="text/html")


def _hidden() -> str:
    query = {k: v for k, v in request.args.items() if not k.startswith("dl_test_")}
    return "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                   for k, v in query.items())
