"""Every request gets an id: a sane incoming X-Request-Id (from the proxy in front, so its logs
and ours meet), else a fresh one. Every log line of the request carries it (issuer/log_format.py)
and the response echoes it in X-Request-Id (gunicorn's access line reads it from there)."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from issuer.log_format import REQUEST_ID

HEADER = "X-Request-Id"
# Letters, digits and . _ : - only, 8-128 characters: what request-id middlewares send (UUIDs,
# hex, ULIDs). Anything else (spaces, quotes, a name, a log-line forgery) is replaced.
SANE = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def request_id_hooks(app: Flask) -> None:
    """Give each request of `app` its id, echo it, and forget it when the request ends."""
    # First of all: a request a rate limit or an error refuses early still has its id.
    app.before_request_funcs.setdefault(None, []).insert(0, _take_id)
    app.after_request(_echo_id)
    app.teardown_request(_forget_id)


def incoming_or_new(sent: str | None) -> str:
    """The id sent, if sane (and not a possible Aadhaar number), else a new one."""
    if sent and SANE.fullmatch(sent) and not sent.isdigit():
        return sent
    return uuid.uuid4().hex


def _take_id() -> None:
    g.request_id = incoming_or_new(request.headers.get(HEADER))
    g.request_id_token = REQUEST_ID.set(g.request_id)


def _echo_id(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[HEADER] = request_id
    return response


def _forget_id(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        REQUEST_ID.reset(token)
