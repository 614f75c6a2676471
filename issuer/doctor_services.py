"""`pramaan doctor`, the services beside the database: Redis and the RQ workers that take the
jobs queued there, and DigiLocker (its partner API reached, our client id and secret accepted)."""

from __future__ import annotations

import secrets
from typing import Any

import requests

from issuer.doctor import Check, safe_url
from issuer.settings import Settings

REDIS_TIMEOUT = 3  # seconds for Redis to accept and answer
HTTP_TIMEOUT = (3.0, 10.0)  # connect, read: DigiLocker's endpoints
START_WORKERS = ("start `pramaan worker` (systemd, docker compose) against this REDIS_URL; "
                 "until one runs, approved certificates wait and nothing is delivered")


def redis_checks(settings: Settings) -> list[Check]:
    """Redis answers a PING; each queue has a worker listening; how many jobs wait."""
    if not settings.redis_url:
        return [Check("Redis", "Redis", True, "REDIS_URL is not set: jobs run inside the API "
                      "process (one machine; set REDIS_URL to run workers beside it)")]
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue, Worker
    from rq.registry import FailedJobRegistry

    from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE

    shown = safe_url(settings.redis_url)
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT,
                            socket_timeout=REDIS_TIMEOUT)
    try:
        client.ping()
        checks = [Check("Redis", "Redis", True, f"{shown} answers")]
        depths = []
        for name in (SIGN_QUEUE, DELIVER_QUEUE):
            queue = Queue(name, connection=client)
            workers = Worker.all(connection=client, queue=queue)
            checks.append(Check("Redis", f"workers on `{name}`", bool(workers),
                                f"{len(workers)} worker(s) listening" if workers
                                else f"no RQ worker listens on the `{name}` queue",
                                START_WORKERS))
            failed = FailedJobRegistry(queue=queue).count
            depths.append(f"{name}: {len(queue)} waiting, {failed} failed")
        checks.append(Check("Redis", "queues", True, "; ".join(depths)))
        return checks
    except RedisError as exc:
        return [Check("Redis", "Redis", False, f"{shown} does not answer: {exc}",
                      "start Redis, or correct REDIS_URL; until it answers no certificate is "
                      "queued for signing")]
    finally:
        client.close()


def digilocker_checks(settings: Settings) -> list[Check]:
    """What DigiLocker needs of us: the API key its pull requests are signed with, and for
    linking accounts and pushing documents the partner API's base URL and our OAuth client,
    tried for real with requests that change nothing."""
    base, client_id, secret = (settings.digilocker_base_url, settings.digilocker_client_id,
                               settings.digilocker_client_secret)
    if not (base or client_id or secret or settings.digilocker_api_key):
        return [Check("DigiLocker", "DigiLocker", True, "not configured (DIGILOCKER_BASE_URL "
                      "and DIGILOCKER_API_KEY unset): no DigiLocker")]
    checks = [_api_key(settings)]
    missing = [name for name, value in (("DIGILOCKER_BASE_URL", base),
                                        ("DIGILOCKER_CLIENT_ID", client_id),
                                        ("DIGILOCKER_CLIENT_SECRET", secret)) if not value]
    if missing:
        ready = len(missing) == 3
        checks.append(Check("DigiLocker", "partner API", ready,
                            "not configured: pulls only (no linking, no pushes)" if ready
                            else f"{', '.join(missing)} not set: linking accounts and pushing "
                            "documents are off", f"set {', '.join(missing)} (from DigiLocker's "
                            "partner portal)"))
        return checks
    assert base and client_id and secret  # for mypy: checked just above
    if not settings.development and not settings.digilocker_token_key:
        checks.append(Check("DigiLocker", "token key", False, "PRAMAAN_DIGILOCKER_TOKEN_KEY is "
                            "not set: accounts cannot be linked, nor documents pushed to them",
                            "set it to a random key kept for good: `openssl rand -hex 32`"))
    with requests.Session() as http:
        checks.append(_client(http, settings, base, client_id, secret))
        checks.append(_push_endpoint(http, base, client_id))
    return checks


def _api_key(settings: Settings) -> Check:
    if settings.digilocker_api_key:
        return Check("DigiLocker", "pull requests", True,
                     "DIGILOCKER_API_KEY is set: Pull URI and Pull Doc requests are checked")
    return Check("DigiLocker", "pull requests", False, "DIGILOCKER_API_KEY is not set: every "
                 "Pull URI and Pull Doc request from DigiLocker is refused (401)",
                 "set DIGILOCKER_API_KEY to the API key given in DigiLocker's partner portal")


def _client(http: requests.Session, settings: Settings, base: str, client_id: str,
            secret: str) -> Check:
    """Our client id and secret tried at the token endpoint with a made-up authorization code:
    an authorization server authenticates the client first (RFC 6749 section 5.2), so a wrong
    id or secret is `invalid_client` (401), and right ones get `invalid_grant` for the code.
    Nothing is granted or changed."""
    from digilocker.link import TOKEN_PATH, redirect_uri

    form = {"grant_type": "authorization_code", "code": secrets.token_urlsafe(24),
            "redirect_uri": redirect_uri(settings), "code_verifier": secrets.token_urlsafe(48),
            "client_id": client_id, "client_secret": secret}
    answer = _post(http, base + TOKEN_PATH, data=form)
    if isinstance(answer, str):
        return Check("DigiLocker", "client id and secret", False,
                     f"cannot reach the token endpoint {base + TOKEN_PATH}: {answer}",
                     _REACH)
    error = _oauth_error(answer)
    if answer.status_code == 401 or error == "invalid_client":
        return Check("DigiLocker", "client id and secret", False,
                     f"DigiLocker refused DIGILOCKER_CLIENT_ID {client_id} with this "
                     f"DIGILOCKER_CLIENT_SECRET (HTTP {answer.status_code} {error})",
                     "copy the client id and secret again from DigiLocker's partner portal")
    if answer.status_code == 400 and error in ("invalid_grant", "invalid_request"):
        return Check("DigiLocker", "client id and secret", True,
                     f"accepted by {base + TOKEN_PATH} (a made-up code was refused, as it "
                     "should be)")
    return Check("DigiLocker", "client id and secret", False,
                 f"the token endpoint {base + TOKEN_PATH} answered HTTP {answer.status_code} "
                 f"{error or ''}".rstrip() + ", not an OAuth answer",
                 "check DIGILOCKER_BASE_URL (the partner API base, e.g. "
                 "https://api.digitallocker.gov.in/public)")


def _push_endpoint(http: requests.Session, base: str, client_id: str) -> Check:
    """The Push URI endpoint, sent our client id and nothing else: a known client gets 400 for
    the missing fields, an unknown one 401. No document is named, so nothing changes."""
    from digilocker.push import PUSH_PATH

    answer = _post(http, base + PUSH_PATH, files={"clientid": (None, client_id)})
    if isinstance(answer, str):
        return Check("DigiLocker", "push endpoint", False,
                     f"cannot reach {base + PUSH_PATH}: {answer}", _REACH)
    if answer.status_code == 400:
        return Check("DigiLocker", "push endpoint", True, f"{base + PUSH_PATH} answers and "
                     "knows our client id")
    if answer.status_code == 401:
        return Check("DigiLocker", "push endpoint", False, f"{base + PUSH_PATH} does not know "
                     f"DIGILOCKER_CLIENT_ID {client_id}", "check DIGILOCKER_CLIENT_ID, and that "
                     "the partner is enabled for Push URI")
    return Check("DigiLocker", "push endpoint", False, f"{base + PUSH_PATH} answered HTTP "
                 f"{answer.status_code}", "check DIGILOCKER_BASE_URL; if it is right, "
                 "DigiLocker may be down: try again later")


_REACH = ("check DIGILOCKER_BASE_URL and that this machine reaches it (proxy, firewall, DNS); "
          "pushes wait and are retried meanwhile")


def _post(http: requests.Session, url: str, **body: Any) -> requests.Response | str:
    try:
        return http.post(url, timeout=HTTP_TIMEOUT, allow_redirects=False, **body)
    except requests.RequestException as exc:
        return _in_words(exc)


def _in_words(exc: requests.RequestException) -> str:
    """What went wrong reaching a server, without requests' nested exception reprs."""
    said = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {HTTP_TIMEOUT[1]:.0f} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (certificate or protocol)"
    if "Connection refused" in said:
        return "connection refused (nothing listens there)"
    if any(words in said for words in ("Name or service not known", "name resolution",
                                       "nodename nor servname")):
        return "the host name does not resolve"
    return f"cannot connect ({type(exc).__name__}: {_first_line(exc)})"


def _oauth_error(answer: requests.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]
