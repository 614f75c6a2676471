"""The emulator's OAuth 2.0 authorization server (PROTOCOL.md §8.3-8.4), built from authlib's
server components: authorization code with PKCE S256 required, refresh tokens that rotate (v2.4
returns a new refresh token), revocation, and a bearer-token protector for the resource APIs.

Everything lives in the emulator's in-memory State; nothing here is a module global."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from digilocker.emulator.config import EmulatorConfig, Partner, TestUser
from digilocker.emulator.state import Code, State, Token

AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # §8.4: form post or HTTP Basic
ACCESS, REFRESH = "access_token", "refresh_token"
CODE_LIFETIME = 600  # UNCONFIRMED by any source (§8.7); ten minutes, as authlib suggests


class Client(ClientMixin):  # type: ignore[misc]
    """A configured Partner seen through authlib's client interface: confidential, secret by
    form post or HTTP Basic (§8.4), exact redirect_uri match (§11.14)."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner

    def get_client_id(self) -> str:
        return self.partner.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.partner.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.partner.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.partner.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


def s256_raw(verifier: str) -> str:
    """RFC 7636: Base64URL, unpadded, of the raw SHA-256 digest."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def s256_hex(verifier: str) -> str:
    """The TS-sdk form (§8.3): Base64URL, unpadded, of the hex digest."""
    digest = hashlib.sha256(verifier.encode("ascii")).hexdigest().encode()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class RequiredS256(CodeChallenge):  # type: ignore[misc]
    """PKCE as DigiLocker's current host enforces it: code_challenge with method S256 on every
    authorize request, even from confidential clients ([S17]: "The code_challenge and
    code_challenge_method parameter is required"); plain is not offered."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def __init__(self, accept_hex: bool) -> None:
        super().__init__(required=True)
        compare = ((lambda v, c: c in (s256_raw(v), s256_hex(v))) if accept_hex
                   else (lambda v, c: s256_raw(v) == c))
        self.CODE_CHALLENGE_METHODS = {"S256": compare}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "The code_challenge and code_challenge_method parameter is required")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


def build_oauth(config: EmulatorConfig, state: State) -> tuple[AuthorizationServer,
                                                               ResourceProtector]:
    """The authorization server and resource protector for one emulator instance."""

    def query_client(client_id: str) -> Client | None:
        partner = config.partner(client_id)
        return Client(partner) if partner else None

    def save_token(token: dict[str, Any], request: Any) -> None:
        user: TestUser = request.user
        row = Token(token["access_token"], token.get("refresh_token"),
                    request.client.get_client_id(), user.digilockerid, token.get("scope", ""),
                    time.time(), int(token["expires_in"]))
        with state.lock:
            state.tokens[row.access_token] = row
            if row.refresh_token:
                state.refresh[row.refresh_token] = row
            state.consents.add((row.client_id, row.digilockerid))
        # The user fields DigiLocker returns beside the token (§8.4 AccessResponse).
        token.update(digilockerid=user.digilockerid, name=user.name, dob=user.dob,
                     gender=user.gender, eaadhaar=user.eaadhaar, mobile=user.mobile,
                     reference_key=secrets.token_hex(16))

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            row = Code(code, request.client.get_client_id(), request.payload.redirect_uri,
                       request.payload.scope or "", request.user.digilockerid,
                       data.get("code_challenge"), data.get("code_challenge_method"),
                       time.time() + CODE_LIFETIME)
            with state.lock:
                state.codes[code] = row

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            with state.lock:
                row = state.codes.get(code)
            if row and row.client_id == client.get_client_id() and time.time() < row.expires_at:
                return row
            return None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            with state.lock:
                state.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> TestUser | None:
            return config.user(authorization_code.digilockerid)

    class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
            with state.lock:
                row = state.refresh.get(refresh_token)
            return row if row and not row.revoked else None

        def authenticate_user(self, credential: Token) -> TestUser | None:
            return config.user(credential.digilockerid)

        def revoke_old_credential(self, credential: Token) -> None:
            with state.lock:
                credential.revoked = True

    class Revocation(RevocationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

        def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
            with state.lock:
                if token_type_hint != REFRESH and token_string in state.tokens:
                    return state.tokens[token_string]
                if token_type_hint != ACCESS:
                    return state.refresh.get(token_string)
            return None

        def revoke_token(self, token: Token, request: Any) -> None:
            with state.lock:
                token.revoked = True

    class Validator(BearerTokenValidator):  # type: ignore[misc]
        def authenticate_token(self, token_string: str) -> Token | None:
            with state.lock:
                return state.tokens.get(token_string)

    server = AuthorizationServer(query_client=query_client, save_token=save_token)
    server.register_grant(CodeGrant, [RequiredS256(config.pkce_accept_hex)])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Revocation)
    protector = ResourceProtector()
    protector.register_token_validator(Validator())
    return server, protector
