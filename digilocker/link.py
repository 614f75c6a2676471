"""Linking an applicant's DigiLocker account (PROTOCOL.md §8.3-8.5), as an authlib OAuth 2.0
client: authorization code with PKCE S256, a one-time `state`, the exact registered redirect_uri.

The flow: a clerk asks for the applicant's link (POST /api/v1/certificates/<id>/digilocker-link)
and hands it over; the link (GET /digilocker/link/<id>?t=...) carries an HMAC-signed expiry, so
only the link made for this request starts a linking to it. We record state + verifier and send
the browser to DigiLocker; DigiLocker sends it back to GET /digilocker/callback, where the state
is spent (once, before the exchange), the code exchanged with the verifier, /oauth2/1/user read,
and the account stored with its token sealed (token_vault). The certificate then points at the
account, and its corrections inherit it (deliveries.plan_issued).

Tokens are refreshed through authlib's update_token hook, which re-seals the new token on the
account's row. `pramaan digilocker unlink` forgets them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digilocker import deliveries
from digilocker.token_vault import SealBroken, Vault
from issuer import audit
from issuer.db import as_utc, utcnow
from issuer.errors import ConfigError, PramaanError
from issuer.models import Certificate, Delivery, DigiLockerAccount, DigiLockerLinkRequest, State
from issuer.runtime import Runtime
from issuer.settings import Settings

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/oauth2/1/authorize"
TOKEN_PATH = "/oauth2/1/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/oauth2/1/revoke"
USER_PATH = "/oauth2/1/user"
ISSUED_PATH = "/oauth2/2/files/issued"
LINK_TTL = timedelta(days=14)  # how long a link handed to an applicant works
STATE_TTL = timedelta(minutes=15)  # how long an authorization round trip may take
TIMEOUT = (5.0, 20.0)
# A request whose applicant may still link a locker: anything that is or may become a document.
LINKABLE = (State.SUBMITTED.value, State.APPROVED.value, State.SIGNING.value,
            State.ISSUED.value, State.FAILED.value)
ACTOR = "citizen:digilocker"


class LinkInvalid(PramaanError):
    code = "digilocker_link_invalid"
    status = 403
    title = "This link does not work (wrong, expired, or for a closed request)"


class LinkStateInvalid(PramaanError):
    code = "digilocker_state_invalid"
    status = 400
    title = "This DigiLocker answer is unknown, already used or too old; start from your link"


class LinkRefused(PramaanError):
    code = "digilocker_denied"
    status = 400
    title = "DigiLocker did not grant access"


class DigiLockerUnavailable(PramaanError):
    code = "digilocker_unavailable"
    status = 502
    title = "DigiLocker did not answer as expected; try your link again later"


@dataclass(frozen=True)
class Linked:
    certificate_id: str
    account_id: int
    digilockerid: str
    delivery_id: int | None  # the push planned because the certificate is already issued


class LinkedAnswer(TypedDict):
    """The callback's answer to a client (a browser gets a page): the account is linked, and
    the certificate's pushes to it so far."""

    linked: Literal[True]
    certificate: str
    digilockerid: str
    delivery: deliveries.DeliveryView | None


class LinkingOff(ConfigError):
    """Linking asked for where DigiLocker is not set up: the feature is not there (404), not a
    fault of the service (a 500, and an error logged, for any anonymous caller)."""

    code = "digilocker_not_enabled"
    status = 404
    title = "DigiLocker linking is not enabled here"


def _need(settings: Settings) -> tuple[str, str, str]:
    base, client_id, secret = (settings.digilocker_base_url, settings.digilocker_client_id,
                               settings.digilocker_client_secret)
    if not (base and client_id and secret):
        raise LinkingOff("DigiLocker linking needs DIGILOCKER_BASE_URL, DIGILOCKER_CLIENT_ID "
                          "and DIGILOCKER_CLIENT_SECRET")
    return base, client_id, secret


def redirect_uri(settings: Settings) -> str:
    """DIGILOCKER_REDIRECT_URI, else the verify site's /digilocker/callback. DigiLocker compares
    it exactly with the registered one (§11.14), so it is configured, never derived per request."""
    return settings.digilocker_redirect_uri or f"{settings.verify_base_url}/digilocker/callback"


def oauth_client(settings: Settings, token: Mapping[str, Any] | None = None,
                 update_token: Any = None) -> OAuth2Session:
    """authlib's requests client for our partner app: PKCE S256, client secret posted in the
    form (§8.4), the token endpoint known so an expired token refreshes itself."""
    base, client_id, secret = _need(settings)
    return OAuth2Session(client_id, secret, redirect_uri=redirect_uri(settings),
                         code_challenge_method="S256", token=dict(token) if token else None,
                         token_endpoint=base + TOKEN_PATH,
                         token_endpoint_auth_method="client_secret_post",  # noqa: S106
                         update_token=update_token)


def link_url(settings: Settings, certificate_id: str, now: datetime | None = None) -> tuple[
        str, datetime]:
    """The applicant's link for `certificate_id` and when it stops working."""
    expires = (now or utcnow()) + LINK_TTL
    token = Vault.from_settings(settings).link_token(certificate_id, int(expires.timestamp()))
    return f"{settings.verify_base_url}/digilocker/link/{certificate_id}?t={token}", expires


def start(session: Session, settings: Settings, certificate_id: str, token: str) -> str:
    """Check the applicant's link, record a fresh state and PKCE verifier, and return the
    DigiLocker authorization URL to send the browser to. The caller commits."""
    base, _, _ = _need(settings)
    now = utcnow()
    vault = Vault.from_settings(settings)
    record = session.get(Certificate, certificate_id)
    if (not vault.check_link_token(certificate_id, token, int(now.timestamp()))
            or record is None or record.state not in LINKABLE):
        raise LinkInvalid("ask the office for a new link")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters of the PKCE alphabet (RFC 7636 4.1)
    session.add(DigiLockerLinkRequest(state=state, code_verifier=verifier,
                                      certificate_id=certificate_id, created_at=now))
    url, _ = oauth_client(settings).create_authorization_url(base + AUTHORIZE_PATH, state=state,
                                                             code_verifier=verifier)
    return str(url)


def finish(runtime: Runtime, args: Mapping[str, str]) -> Linked:
    """The callback: spend the state, exchange the code, read the user, store the account."""
    settings = runtime.settings
    base, _, _ = _need(settings)
    request = _spend_state(runtime, args.get("state", ""))
    if args.get("error") or not args.get("code"):
        raise LinkRefused(f"DigiLocker answered {args.get('error') or 'without a code'}",
                          error=args.get("error") or "no_code")
    client = oauth_client(settings)
    try:
        token = dict(client.fetch_token(base + TOKEN_PATH, grant_type="authorization_code",
                                        code=args["code"], code_verifier=request.code_verifier,
                                        timeout=TIMEOUT))
        user = client.get(base + USER_PATH, timeout=TIMEOUT)
        user.raise_for_status()
        details = user.json()
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        log.warning("DigiLocker link of %s failed: %s", request.certificate_id, exc)
        raise DigiLockerUnavailable(f"{type(exc).__name__}") from None
    digilockerid = _digilockerid(details, token)
    linked = _store(runtime, request.certificate_id, digilockerid, details, token)
    if linked.delivery_id is not None:
        runtime.dispatcher.enqueue_delivery(linked.delivery_id)
    return linked


def _spend_state(runtime: Runtime, state: str) -> DigiLockerLinkRequest:
    """Mark the state used (committed before the code is exchanged, so a replayed callback
    never exchanges twice); refuse an unknown, used or stale one."""
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        spent = session.execute(
            update(DigiLockerLinkRequest)
            .where(DigiLockerLinkRequest.state == state, DigiLockerLinkRequest.used_at.is_(None),
                   DigiLockerLinkRequest.created_at > now - STATE_TTL)
            .values(used_at=now).execution_options(synchronize_session=False))
        request = session.get(DigiLockerLinkRequest, state)
        if not state or not int(getattr(spent, "rowcount", 0) or 0) or request is None:
            raise LinkStateInvalid("start again from your link")
        return request


def _digilockerid(details: Mapping[str, Any], token: Mapping[str, Any]) -> str:
    """/oauth2/1/user's `digilockerid`; the token response's (either spelling, §11.9) if the
    user answer lacks it."""
    for source, name in ((details, "digilockerid"), (token, "digilockerid"),
                         (token, "digilocker_id")):
        value = source.get(name)
        if isinstance(value, str) and 0 < len(value) <= 64:
            return value
    raise DigiLockerUnavailable("DigiLocker's answer names no digilockerid")


def _store(runtime: Runtime, certificate_id: str, digilockerid: str,
           details: Mapping[str, Any], token: dict[str, Any]) -> Linked:
    vault = Vault.from_settings(runtime.settings)
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        account = session.scalar(select(DigiLockerAccount).where(
            DigiLockerAccount.digilockerid == digilockerid).with_for_update())
        if account is None:
            account = DigiLockerAccount(digilockerid=digilockerid, linked_at=now)
            session.add(account)
        name = details.get("name")
        account.name = name[:200] if isinstance(name, str) else None
        account.token_encrypted = vault.seal(token, digilockerid)
        account.expires_at = _expiry(token)
        account.linked_at, account.revoked_at = now, None
        session.flush()
        record = session.get(Certificate, certificate_id, with_for_update=True)
        assert record is not None  # the link request references it
        record.digilocker_account_id = account.id
        planned = deliveries.plan_linked(session, record)
        audit.record(session, actor=ACTOR, action="digilocker_link",
                     certificate_id=certificate_id,
                     details={"account": account.id, "digilockerid": digilockerid})
        return Linked(certificate_id, account.id, digilockerid,
                      planned.id if planned is not None else None)


def _expiry(token: Mapping[str, Any]) -> datetime | None:
    expires_at = token.get("expires_at")
    if isinstance(expires_at, int | float):
        return datetime.fromtimestamp(expires_at, tz=utcnow().tzinfo)
    return None


# -- using and forgetting a linked account's token ----------------------------------------------

def account_client(runtime: Runtime, account_id: int) -> OAuth2Session:
    """A client holding the account's token; when authlib refreshes it, the update_token hook
    seals the new one onto the account's row (in its own transaction)."""
    vault = Vault.from_settings(runtime.settings)
    with runtime.sessions() as session:
        account = session.get(DigiLockerAccount, account_id)
        if account is None or account.token_encrypted is None or account.revoked_at:
            raise LinkInvalid(f"account {account_id} is not linked")
        digilockerid = account.digilockerid
        try:
            token = vault.open(account.token_encrypted, digilockerid)
        except SealBroken as exc:
            raise ConfigError(f"the token of account {account_id} does not open: {exc}") from None

    def keep(new_token: dict[str, Any], refresh_token: str | None = None,
             access_token: str | None = None) -> None:
        with runtime.sessions() as session, session.begin():
            row = session.get(DigiLockerAccount, account_id, with_for_update=True)
            if row is None or row.revoked_at is not None:
                return  # unlinked meanwhile: do not bring the token back
            row.token_encrypted = vault.seal(dict(new_token), digilockerid)
            row.expires_at = _expiry(new_token)
        log.info("refreshed the DigiLocker token of account %s", account_id)

    return oauth_client(runtime.settings, token=token, update_token=keep)


def user_details(runtime: Runtime, account_id: int) -> dict[str, Any]:
    """/oauth2/1/user for a linked account (refreshing its token first if it has expired)."""
    base, _, _ = _need(runtime.settings)
    response = account_client(runtime, account_id).get(base + USER_PATH, timeout=TIMEOUT)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def issued_documents(runtime: Runtime, account_id: int) -> list[dict[str, Any]]:
    """The account's issued documents list (v2), as DigiLocker shows it to the citizen."""
    base, _, _ = _need(runtime.settings)
    response = account_client(runtime, account_id).get(base + ISSUED_PATH, timeout=TIMEOUT)
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json().get("items", [])
    return items


def unlink(runtime: Runtime, digilockerid: str, actor: str) -> dict[str, Any]:
    """Forget the account's tokens (revoking them at DigiLocker first, best effort), stop its
    pending additions and updates (failed: unlinked); deletions still go, so a revoked
    certificate leaves the locker. Audited. Returns what was done."""
    with runtime.sessions() as session:
        account = session.scalar(select(DigiLockerAccount).where(
            DigiLockerAccount.digilockerid == digilockerid))
        if account is None:
            raise LinkInvalid(f"no linked account {digilockerid}")
        account_id, sealed = account.id, account.token_encrypted
    revoked_remotely = _revoke_remote(runtime, digilockerid, sealed)
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        account = session.get(DigiLockerAccount, account_id, with_for_update=True)
        assert account is not None
        account.token_encrypted, account.expires_at = None, None
        account.revoked_at = account.revoked_at or now
        stopped = session.execute(
            update(Delivery)
            .where(Delivery.account_id == account_id, Delivery.state == deliveries.PENDING,
                   Delivery.action.in_(("A", "U")))
            .values(state=deliveries.FAILED, next_try_at=None, last_error="account unlinked")
            .execution_options(synchronize_session=False))
        stopped_count = int(getattr(stopped, "rowcount", 0) or 0)
        audit.record(session, actor=actor, action="digilocker_unlink",
                     details={"account": account_id, "digilockerid": digilockerid,
                              "revoked_at_digilocker": revoked_remotely,
                              "pushes_stopped": stopped_count})
    return {"digilockerid": digilockerid, "account": account_id,
            "revoked_at": as_utc(now).isoformat(), "revoked_at_digilocker": revoked_remotely,
            "pushes_stopped": stopped_count}


def _revoke_remote(runtime: Runtime, digilockerid: str, sealed: str | None) -> bool:
    """POST /oauth2/1/revoke with the refresh token (no hint: both kinds are searched, §8.4)."""
    if sealed is None:
        return False
    try:
        base, _, _ = _need(runtime.settings)
        token = Vault.from_settings(runtime.settings).open(sealed, digilockerid)
        client = oauth_client(runtime.settings, token=token)
        response = client.revoke_token(base + REVOKE_PATH,
                                       token=token.get("refresh_token") or token.get(
                                           "access_token"), timeout=TIMEOUT)
        return bool(response.ok)
    except (ConfigError, SealBroken, AuthlibBaseError, requests.RequestException) as exc:
        log.warning("could not revoke the DigiLocker token of %s: %s (forgotten here anyway)",
                    digilockerid, exc)
        return False
