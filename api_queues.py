"""The operators' queue page: RQ's queues, their failed jobs with the error, the workers, and
"requeue" for a failed job. rq-dashboard 0.9.0 installs beside rq 3.0.0 and Flask 3.1.3, but
its "requeue all" answers a GET, no action of it carries a CSRF token, and its pages build rows
with inline script templates our Content-Security-Policy refuses; this page is the small
read-mostly equivalent, server-rendered.

For department admins (the `admin` role): an admin API token (`Authorization: Bearer`), or a
console session in a browser. It is mounted twice: /admin/rq, and /console/admin/rq, where the
console's cookie (Path=/console) reaches it. A form's POST carries the session's CSRF token; a
bearer token is not ambient, so a bearer POST needs none. Each requeue is audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from api import _committed, db, principal, runtime
from api_console import SESSION_COOKIE
from issuer import audit, web_sessions
from issuer.errors import Forbidden, NotFound, Unauthorized
from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE
from issuer.permissions import Action, require
from issuer.queue_status import NoSuchFailedJob, overview, requeue
from issuer.tokens import Principal

QUEUES = (SIGN_QUEUE, DELIVER_QUEUE)


def queue_pages(name: str) -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.get("/")
    def page() -> Response | str:
        _, csrf = _admin()
        return render_template("admin_queues.html", data=_overview(), csrf=csrf,
                               requeue_endpoint=f"{name}.requeue_failed")

    @bp.get("/queues.json")
    def as_json() -> Response:
        _admin()
        return jsonify(_overview())

    @bp.post("/failed/<queue_name>/<job_id>/requeue")
    def requeue_failed(queue_name: str, job_id: str) -> Response | WerkzeugResponse:
        who, csrf = _admin()
        if csrf is not None and not web_sessions.same_token(request.form.get("csrf", ""), csrf):
            raise Forbidden("the form has expired: reload the page and try again")
        redis_url = runtime().settings.redis_url
        if queue_name not in QUEUES or not redis_url:
            raise NotFound(f"no queue {queue_name!r}")
        from redis import Redis

        with Redis.from_url(redis_url) as connection:
            try:
                requeue(connection, queue_name, job_id)
            except NoSuchFailedJob:
                raise NotFound(f"no failed job {job_id!r} in {queue_name}") from None
        _committed(lambda s: audit.record(s, actor=who.actor, action="job_requeued",
                                          details={"queue": queue_name, "job": job_id}))
        if csrf is None:
            return jsonify({"queue": queue_name, "job": job_id, "requeued": True})
        return redirect(url_for(f"{name}.page"), code=303)

    return bp


def _admin() -> tuple[Principal, str | None]:
    """The admin asking, and the CSRF token their forms must carry (None for a bearer token).
    401 without credentials, 403 (audited) for any other role."""
    if request.headers.get("Authorization"):
        who, csrf = principal(), None
    else:
        signed = web_sessions.current(db(), request.cookies.get(SESSION_COOKIE, ""))
        if signed is None:
            raise Unauthorized("sign in to the console as an admin, or send an admin's "
                               "'Authorization: Bearer <token>'")
        db().commit()  # seen_at
        who, csrf = signed.principal, signed.csrf
    require(runtime().sessions, who, Action.MANAGE_USERS)
    return who, csrf


def _overview() -> dict[str, Any]:
    redis_url = runtime().settings.redis_url
    if not redis_url:
        return {"redis": False, "queues": [], "workers": []}
    from redis import Redis

    with Redis.from_url(redis_url) as connection:
        return {"redis": True, **overview(connection, QUEUES)}
