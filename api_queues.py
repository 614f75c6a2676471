"""The operators' queue page: RQ's queues, their failed jobs with the error, the workers, and
"requeue" for a failed job. rq-dashboard 0.9.0 installs beside rq 3.0.0 and Flask 3.1.3, but
its "requeue all" answers a GET, no action of it carries a CSRF token, and its pages build rows
with inline script templates our Content-Security-Policy refuses; this page is the small
read-mostly equivalent, server-rendered, in English or Marathi like the console.

For department admins (the `admin` role): an admin API token (`Authorization: Bearer`), or a
console session in a browser. It is mounted twice: /admin/rq, and /console/admin/rq, where the
console's cookie (Path=/console) reaches it. An admin sees and requeues the failed jobs of their
own department only (issuer/queue_status.py); another department's job answers as an unknown
one would, and the attempt is audited. A form's POST carries the session's CSRF token; a bearer
token is not ambient, so a bearer POST needs none. Each requeue is audited. A browser with no
session is sent to the console's sign-in page (which has no return-to: it lands on /console)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from api import _bearer_challenge, _committed, db, principal, runtime
from api_console import SESSION_COOKIE
from api_pages import page
from issuer import audit, web_sessions
from issuer.errors import Forbidden, NotFound, Unauthorized
from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE
from issuer.permissions import Action, deny, require
from issuer.queue_status import NoSuchFailedJob, NotYours, overview, requeue
from issuer.queue_views import QueuePage, Requeued
from issuer.tokens import Principal
from issuer.web_sessions import SignedIn

QUEUES = (SIGN_QUEUE, DELIVER_QUEUE)
WORDS = ("console_text.json", "queues_text.json")  # the console's frame, then the page's own


class _SignInFirst(Unauthorized):
    """A browser without a session asked for the page: it goes to the console's sign-in."""


def queue_pages(name: str) -> Blueprint:
    bp = Blueprint(name, __name__)
    bp.register_error_handler(_SignInFirst, _to_sign_in)
    bp.after_request(_challenge)

    @bp.get("/")
    def queues_page() -> Response:
        who, signed = _admin(browser=True)
        return page("admin_queues.html", WORDS, data=_overview(who), signed=signed,
                    csrf=signed.csrf if signed else None,
                    requeue_endpoint=f"{name}.requeue_failed")

    @bp.get("/queues.json")
    def as_json() -> Response:
        who, _ = _admin()
        return jsonify(_overview(who))

    @bp.post("/failed/<queue_name>/<job_id>/requeue")
    def requeue_failed(queue_name: str, job_id: str) -> Response | WerkzeugResponse:
        who, signed = _admin()
        if signed is not None and not web_sessions.same_token(request.form.get("csrf", ""),
                                                              signed.csrf):
            raise Forbidden("the form has expired: reload the page and try again")
        redis_url = runtime().settings.redis_url
        if queue_name not in QUEUES or not redis_url:
            raise NotFound(f"no queue {queue_name!r}")
        from redis import Redis

        unknown = NotFound(f"no failed job {job_id!r} in {queue_name}")
        with Redis.from_url(redis_url) as connection:
            try:
                requeue(connection, queue_name, job_id, db(), who.department.id)
            except NotYours:
                # Audited as permissions.deny audits another department's record.
                deny(runtime().sessions, who, Action.MANAGE_USERS, "other_department",
                     attempted="requeue", queue=queue_name, job=job_id)
                raise unknown from None
            except NoSuchFailedJob:
                raise unknown from None
        _committed(lambda s: audit.record(s, actor=who.actor, action="job_requeued",
                                          details={"queue": queue_name, "job": job_id}))
        if signed is None:
            done: Requeued = {"queue": queue_name, "job": job_id, "requeued": True}
            return jsonify(done)
        return redirect(url_for(f"{name}.queues_page"), code=303)

    return bp


def _admin(browser: bool = False) -> tuple[Principal, SignedIn | None]:
    """The admin asking, and their console session (None for a bearer token). 401 without
    credentials (for the page in a browser: to the sign-in page), 403 (audited) for any other
    role."""
    if request.headers.get("Authorization"):
        return _admin_only(principal()), None
    signed = web_sessions.current(db(), request.cookies.get(SESSION_COOKIE, ""))
    if signed is None:
        if browser and request.accept_mimetypes.best == "text/html":
            raise _SignInFirst("sign in to the console as an admin")
        raise Unauthorized("sign in to the console as an admin, or send an admin's "
                           "'Authorization: Bearer <token>'")
    db().commit()  # seen_at
    return _admin_only(signed.principal), signed


def _admin_only(who: Principal) -> Principal:
    require(runtime().sessions, who, Action.MANAGE_USERS)
    return who


def _to_sign_in(_exc: _SignInFirst) -> WerkzeugResponse:
    return redirect(url_for("console.sign_in_form"), code=303)


def _challenge(response: Response) -> Response:
    """A bearer client refused for want of credentials is told how to authenticate."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = _bearer_challenge()
    return response


def _overview(who: Principal) -> QueuePage:
    redis_url = runtime().settings.redis_url
    if not redis_url:
        return {"redis": False, "queues": [], "workers": []}
    from redis import Redis

    with Redis.from_url(redis_url) as connection:
        return {"redis": True, **overview(connection, QUEUES, db(), who.department.id)}
