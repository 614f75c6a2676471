"""The officers' console (/console): people sign in and work in a browser, not with curl.

Sessions live in the database (issuer/web_sessions.py: any API process serves any request),
their cookie `HttpOnly`, `SameSite=Strict`, `Secure` on https, scoped to /console. Every form
carries the session's CSRF token (the sign-in form a double-submit one). What each person may do
is the permission table of the API (issuer/permissions.py) applied to the same workflow
functions: officers see the queue of their department by ward office with RTS due dates, open
a request with a rendered preview and approve exactly what was shown (the digest of it), reject
or revoke with a reason; clerks see what they submitted; auditors see everything and change
nothing. Every page in English or Marathi.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, g, request
from flask_limiter import Limiter

from api import (
    _decide,
    _id_or_none,
    _owned,
    audit_store_failure,
    db,
    runtime,
    submit_request,
)
from api_pages import page, secure_cookies, words
from digilocker.deliveries import enqueue_pending
from issuer import console_lists, web_sessions
from issuer.canonical import canonical_request
from issuer.certtypes import cert_type
from issuer.db import utcnow
from issuer.errors import (
    Forbidden,
    NotFound,
    PramaanError,
    Unauthorized,
    ValidationFailed,
)
from issuer.fields import parse_json
from issuer.issue import Intent, render_data
from issuer.models import Certificate, State
from issuer.permissions import Action, allowed, require
from issuer.storage import StoreError
from issuer.tokens import Principal
from issuer.web_sessions import SignedIn
from issuer.workflow import StaleApproval, approve, reason_of, reject, request_digest, revoke

SESSION_COOKIE = "pramaan_console"
SIGN_IN_CSRF = "pramaan_console_csrf"
WORDS = "console_text.json"
PREVIEW_PPI = 110
SPECIMEN = "SPECIMEN · नमुना"


def console_pages(limiter: Limiter, sign_in_limit: str) -> Blueprint:
    bp = Blueprint("console", __name__, url_prefix="/console")
    bp.register_error_handler(PramaanError, _error_page)

    @bp.get("/sign-in")
    def sign_in_form() -> Response:
        return _sign_in_page()

    @bp.post("/sign-in")
    @limiter.limit(sign_in_limit, on_breach=lambda _limit: _sign_in_page(
        429, words(WORDS)["too_many"]))
    def sign_in() -> Response:
        sent, kept = request.form.get("csrf", ""), request.cookies.get(SIGN_IN_CSRF, "")
        if not web_sessions.same_token(sent, kept):
            return _sign_in_page(403, words(WORDS)["expired_form"])
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username or not password:
            return _sign_in_page(422, words(WORDS)["need_both"], username)
        session = db()
        try:
            signed = web_sessions.sign_in(session, username, password)
        except Unauthorized:
            session.commit()  # the failure is counted (and may lock the account)
            return _sign_in_page(401, words(WORDS)["wrong"], username)
        session.commit()
        answer = _see_other("/console")
        answer.set_cookie(SESSION_COOKIE, signed.cookie, httponly=True, samesite="Strict",
                          secure=secure_cookies(), path="/console")
        answer.delete_cookie(SIGN_IN_CSRF, path="/console")
        return answer

    @bp.post("/sign-out")
    def sign_out() -> Response:
        signed = _signed_in()
        _check_csrf(signed)
        web_sessions.sign_out(db(), request.cookies.get(SESSION_COOKIE, ""))
        db().commit()
        answer = _see_other("/console/sign-in")
        answer.delete_cookie(SESSION_COOKIE, path="/console")
        return answer

    @bp.get("")
    def home() -> Response:
        signed = _signed_in()
        who = signed.principal
        session = db()
        context: dict[str, Any] = {"groups": [], "rows": [], "heading": ""}
        if allowed(who.role, Action.APPROVE):
            context["groups"] = console_lists.awaiting(session, who.department.id)
            context["heading"] = "queue"
        elif allowed(who.role, Action.SUBMIT):
            context["rows"] = console_lists.submitted_by(session, who.department.id, who.actor)
            context["heading"] = "mine"
        else:
            context["rows"] = console_lists.everything(session, who.department.id)
            context["heading"] = "everything"
        return _page("console_home.html", signed, **context)

    @bp.get("/new")
    def new_form() -> Response:
        signed = _signed_in()
        require(runtime().sessions, signed.principal, Action.SUBMIT)
        return _page("console_new.html", signed, body="", errors=[])

    @bp.post("/new")
    def new_request() -> Response:
        who = _acting(Action.SUBMIT, "")
        text = request.form.get("body", "")
        try:
            data = parse_json(text.encode())
        except (ValueError, RecursionError) as exc:
            return _page("console_new.html", g.console_signed, status=400, body=text,
                         errors=[f"not valid JSON: {exc}"])
        try:
            made = submit_request(who, data)
        except ValidationFailed as exc:
            return _page("console_new.html", g.console_signed, status=422, body=text,
                         errors=[f"{e.field}: {e.message}" for e in exc.errors[:50]])
        return _see_other(f"/console/c/{made.id}?done=submitted")

    @bp.get("/search")
    def search() -> Response:
        signed = _signed_in()
        text = request.args.get("q", "")[:64]
        rows = console_lists.search(db(), signed.principal.department.id, text)
        return _page("console_home.html", signed, groups=[], rows=rows, heading="results",
                     query=text)

    @bp.get("/c/<cert_id>")
    def record(cert_id: str) -> Response:
        signed = _signed_in()
        found = _owned(cert_id, signed.principal, Action.READ)
        return _record_page(signed, found)

    @bp.get("/c/<cert_id>/preview.png")
    def preview(cert_id: str) -> Response:
        signed = _signed_in()
        found = _owned(cert_id, signed.principal, Action.READ)
        answer = Response(_specimen_png(found), mimetype="image/png")
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @bp.get("/c/<cert_id>/pdf")
    def pdf(cert_id: str) -> Response:
        signed = _signed_in()
        found = _owned(cert_id, signed.principal, Action.READ)
        if found.pdf_path is None or found.pdf_sha256 is None:
            raise NotFound(f"certificate {cert_id} has no PDF yet")
        answer = Response(runtime().store.get(found.pdf_path, found.pdf_sha256),
                          mimetype="application/pdf")
        name = (found.number or found.id).replace("/", "-")
        answer.headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @bp.post("/c/<cert_id>/approve")
    def approve_request(cert_id: str) -> Response:
        who = _acting(Action.APPROVE, cert_id)
        seen = request.form.get("fields_digest", "")
        done = _decide(cert_id, who, Action.APPROVE,
                       lambda s, r: approve(s, r, who.actor, seen_digest=seen))
        if done.state == State.APPROVED.value:
            runtime().dispatcher.enqueue_issue(done.id)
        return _see_other(f"/console/c/{done.id}?done=approved")

    @bp.post("/c/<cert_id>/reject")
    def reject_request(cert_id: str) -> Response:
        who = _acting(Action.REJECT, cert_id)
        reason = reason_of({"reason": request.form.get("reason", "")})
        done = _decide(cert_id, who, Action.REJECT, lambda s, r: reject(s, r, who.actor, reason))
        return _see_other(f"/console/c/{done.id}?done=rejected")

    @bp.post("/c/<cert_id>/revoke")
    def revoke_certificate(cert_id: str) -> Response:
        who = _acting(Action.REVOKE, cert_id)
        reason = reason_of({"reason": request.form.get("reason", "")})
        done = _decide(cert_id, who, Action.REVOKE, lambda s, r: revoke(s, r, who.actor, reason))
        enqueue_pending(runtime(), done.id)  # the D push to a linked locker (after commit)
        return _see_other(f"/console/c/{done.id}?done=revoked")

    return bp


class _SignInFirst(PramaanError):
    status = 401
    code = "sign_in_first"
    title = "Sign in first"


def _signed_in() -> SignedIn:
    """The live session of this request, or a redirect to the sign-in page."""
    signed: SignedIn | None = g.get("console_signed")
    if signed is None:
        signed = web_sessions.current(db(), request.cookies.get(SESSION_COOKIE, ""))
        if signed is None:
            raise _SignInFirst("your session has ended; sign in again")
        db().commit()  # seen_at
        g.console_signed = signed
    return signed


def _check_csrf(signed: SignedIn) -> None:
    if not web_sessions.same_token(request.form.get("csrf", ""), signed.csrf):
        raise Forbidden(words(WORDS)["expired_form"])


def _acting(action: Action, cert_id: str) -> Principal:
    """The signed-in person, after the form's CSRF token and their role's permission."""
    signed = _signed_in()
    _check_csrf(signed)
    who = signed.principal
    require(runtime().sessions, who, action, _id_or_none(cert_id))
    return who


def _record_page(signed: SignedIn, found: Certificate, status: int = 200,
                 problem: str = "") -> Response:
    who = signed.principal
    session = db()
    return _page(
        "console_record.html", signed, status=status, r=console_lists.row_of(found, utcnow()),
        record=found, particulars=console_lists.particulars(found),
        history=console_lists.history(session, found), digest=request_digest(found),
        can_decide=found.state == State.SUBMITTED.value and allowed(who.role, Action.APPROVE)
        and found.submitted_by != who.actor,
        can_revoke=found.state == State.ISSUED.value and allowed(who.role, Action.REVOKE),
        done=request.args.get("done", "") if request.args.get("done") in (
            "approved", "rejected", "revoked", "submitted") else "", problem=problem)


def _specimen_png(found: Certificate) -> bytes:
    """The record's request rendered with its type's current template, as a specimen (no
    number, no seal, SPECIMEN across it): what an approval will issue."""
    kind = cert_type(found.cert_type)
    if kind is None:
        raise NotFound(f"no template for type {found.cert_type}")
    settings = runtime().settings
    intent = Intent(id=f"specimen-{found.id}", cert_type=found.cert_type,
                    number=found.number or SPECIMEN,
                    request=canonical_request(found.request), issued_at=utcnow(),
                    seal_text=f"{settings.verify_base_url.rstrip('/')}/v#",
                    template_version=found.template_version or kind.template_version)
    return runtime().renderer.render_specimen(intent.template_version,
                                              render_data(settings, intent),
                                              png_ppi=PREVIEW_PPI)


def _page(template: str, signed: SignedIn, status: int = 200, **context: Any) -> Response:
    return page(template, WORDS, status, signed=signed, csrf=signed.csrf, **context)


def _sign_in_page(status: int = 200, problem: str = "", username: str = "") -> Response:
    token = request.cookies.get(SIGN_IN_CSRF, "")
    if len(token) != 43:
        token = secrets.token_urlsafe(32)
    g.page_path = "/console/sign-in"
    answer = page("console_sign_in.html", WORDS, status, csrf=token, problem=problem,
                  username=username, signed=None)
    answer.set_cookie(SIGN_IN_CSRF, token, httponly=True, samesite="Strict",
                      secure=secure_cookies(), path="/console")
    return answer


def _see_other(location: str) -> Response:
    answer = Response(status=303)
    answer.headers["Location"] = location
    return answer


def _error_page(exc: PramaanError) -> Response:
    """Console errors as pages: a session that ended goes to the sign-in page; a stale
    approval shows the record again with what changed; the rest say what went wrong."""
    if isinstance(exc, _SignInFirst):
        return _see_other("/console/sign-in")
    if isinstance(exc, StoreError):
        audit_store_failure(runtime(), exc, request.path)
    signed = g.get("console_signed")
    if signed is None:
        return _sign_in_page(exc.status, str(exc.detail))
    t = words(WORDS)
    if isinstance(exc, StaleApproval):
        found = _owned(str((request.view_args or {}).get("cert_id", "")), signed.principal)
        return _record_page(signed, found, 409, t["stale"])
    message = {403: t["not_allowed"], 404: t["not_found"]}.get(exc.status, str(exc.detail))
    details = [e.message for e in exc.errors] if isinstance(exc, ValidationFailed) else []
    return _page("console_error.html", signed, status=exc.status, message=message,
                 details=details)
