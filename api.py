"""The front door: app factory, blueprints, bearer-token auth and problem+json errors."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    render_template,
    request,
    send_from_directory,
)
from flask_limiter import Limiter
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response as WerkzeugResponse

from api_limits import make_limiter
from digilocker.deliveries import delivery_view, enqueue_pending
from digilocker.token_vault import check_at_startup as check_token_key
from issuer import audit, department_audit, permissions, tokens, users
from issuer.aadhaar import check_at_startup, keep_aadhaar
from issuer.certtypes import cert_type
from issuer.db import as_utc
from issuer.errors import (
    FieldError,
    InvalidJson,
    NotFound,
    NotReady,
    PramaanError,
    Unauthorized,
    UnsupportedMedia,
    ValidationFailed,
)
from issuer.fields import DuplicateKey, parse_json
from issuer.listing import certificate_page, list_view
from issuer.log_redaction import install as redact_logs
from issuer.log_redaction import redact
from issuer.masking import applicant_view
from issuer.models import Certificate, State
from issuer.permissions import Action, other_department, require
from issuer.plain_fields import Fields
from issuer.runtime import Runtime
from issuer.settings import Settings
from issuer.storage import StoreError
from issuer.submit import CORRECTS, submit, validate
from issuer.tokens import Principal, authenticate
from issuer.verify import verify_pdf, verify_qr
from issuer.verify_request import VERIFY_BODY
from issuer.workflow import (
    APPROVAL_BODY,
    amend,
    approve,
    reason_of,
    reject,
    request_digest,
    revoke,
)
from templates import fonts_dir, web_dir

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
MAX_REPORTED_ERRORS = 50  # field errors listed in a 422; `error_count` has the total
# Pages may load only our own files: no inline script or style, no plugins, no framing.
PAGE_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
            "connect-src 'self'; media-src 'self' blob:; "
            "img-src 'self' data:; font-src 'self'; manifest-src 'self'; worker-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Served from templates/web/: the verify page's style, its scripts (ES modules: the page, the
# seal, DER and published-document checks) and its app icon.
WEB_ASSETS = frozenset({"verify.js", "verify.css", "seal.js", "der.js", "published.js",
                        "camera.js", "icon.svg", "portal.css", "console.css"})
# The QR decoder for cameras without BarcodeDetector (zxing-wasm from the npm registry, fetched by
# `make` into templates/web/vendor/, not in git), with its licence.
VENDOR_FILES = {"zxing-reader.js": "text/javascript", "zxing_reader.wasm": "application/wasm",
                "zxing-wasm-LICENSE.txt": "text/plain"}
# The shipped fonts (templates/fonts/, SIL OFL) as web fonts: a phone without a Devanagari font
# still shows the Marathi, in the letterforms printed on the paper.
WEB_FONTS = frozenset({"NotoSans-Regular.ttf", "NotoSans-Bold.ttf",
                       "NotoSansDevanagari-Regular.ttf", "NotoSansDevanagari-Bold.ttf"})
FONT_MAX_AGE = 30 * 24 * 3600
# The largest PDF the verify page may upload: ours are about 50-150 KB with their long-term
# validation data; the cap bounds what an anonymous upload makes the server parse.
MAX_VERIFY_PDF_BYTES = 2 * 1024 * 1024
T = TypeVar("T")


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the app. `config` is a Settings, or overrides (by field name) of the environment."""
    settings = config if isinstance(config, Settings) else Settings.from_env(overrides=config)
    redact_logs()  # no log line of this process carries an Aadhaar-looking number
    check_at_startup(settings)  # a malformed Aadhaar HMAC key refuses; a missing one warns
    check_token_key(settings)  # the same for the key sealing linked DigiLocker accounts' tokens
    app = Flask(__name__, template_folder=str(web_dir()))
    # One byte of slack: a chunked body (no Content-Length) is cut at this limit by Werkzeug
    # without an error, so json_body() reads limit + 1 bytes and refuses the body itself.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.config["JSON_SORT_KEYS"] = False
    runtime = Runtime(settings)
    # Startup checks, for any WSGI server. Verification needs only certificates. Where this
    # process also issues (no Redis: jobs run in-process), refuse a key that does not match its
    # certificate, a certificate without the right key usage, or a signer that does not chain
    # to the root. With Redis, only the workers open private keys.
    runtime.trust  # noqa: B018
    if settings.jobs_inline:
        runtime.keyring  # noqa: B018
    app.extensions["pramaan"] = runtime
    limiter = make_limiter(app, settings)
    app.register_blueprint(certificates_api(limiter, settings))
    app.register_blueprint(public_pages())
    app.register_blueprint(rts_api())
    app.register_blueprint(admin_api())
    app.register_blueprint(digilocker_link_pages())
    app.register_blueprint(digilocker_api())
    from api_batches import batches_api  # it builds on this module's request helpers

    app.register_blueprint(batches_api())
    from api_portal import portal_pages  # the same

    app.register_blueprint(portal_pages(limiter, settings))
    from api_console import console_pages  # the same

    app.register_blueprint(console_pages(limiter, settings.sign_in_limit))
    from api_openapi import openapi_api  # the OpenAPI document of all of the above

    app.register_blueprint(openapi_api())
    from api_operations import operations  # /metrics, request ids, the queue page

    operations(app)
    app.register_error_handler(PramaanError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.teardown_appcontext(_close_session)
    app.after_request(_response_headers)
    return app


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["pramaan"]
    return rt


def db() -> Session:
    if "session" not in g:
        g.session = runtime().sessions()
    session: Session = g.session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("session", None)
    if session is not None:
        session.close()


def principal() -> Principal:
    # equivalent: any case of the name (Werkzeug's lookup ignores it); default "XXXX" (also 401)
    header = request.headers.get("Authorization", "")  # equivalent
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    return authenticate(db(), token.strip())


def json_body() -> Any:
    if not request.is_json:
        raise UnsupportedMedia("send the body as Content-Type: application/json")
    limit = runtime().settings.max_body_bytes
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    try:
        return parse_json(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {_json_reason(exc)}") from None


def _json_reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, DuplicateKey):
        return str(exc)
    return str(exc).split(":")[0]


def submit_request(who: Principal, data: Any) -> Certificate:
    """A new request or correction from `who` (the API's and the console's): the permission,
    the audit of a foreign reference, the record in one transaction, its issue queued."""
    corrects = isinstance(data, dict) and data.get(CORRECTS) is not None
    require(runtime().sessions, who, Action.CORRECT if corrects else Action.SUBMIT)
    if corrects:
        _audit_foreign_reference(data[CORRECTS], who)
    session = db()
    try:
        record = submit(session, who.department, who.actor, data, runtime().settings)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if record.state == State.APPROVED.value:
        runtime().dispatcher.enqueue_issue(record.id)
    return record


def certificate_view(record: Certificate, session: Session | None = None) -> dict[str, Any]:
    """The API's view of a record; with a session, also its DigiLocker deliveries."""
    base = f"/api/v1/certificates/{record.id}"
    view: dict[str, Any] = {
        "id": record.id,
        "type": record.cert_type,
        "state": record.state,
        "registration_number": record.registration_number,
        "number": record.number,
        "department": record.department_id,
        "submitted_by": record.submitted_by,
        "approved_by": record.approved_by,
        "due_at": as_utc(record.due_at).isoformat(),
        "issued_at": as_utc(record.issued_at).isoformat() if record.issued_at else None,
        "template_version": record.template_version,
        "seal_kid": record.seal_kid,
        "pdf_sha256": record.pdf_sha256,
        # Failed issue attempts so far and the last error: a `failed` record waits for an
        # operator (`pramaan retry ID` or `pramaan cancel ID --reason ...`).
        "attempts": record.attempts or 0,
        "last_error": record.last_error,
        "ward_code": record.ward_code,
        "corrects": record.corrects,
        "superseded_by": record.superseded_by,
        "decided_by": record.decided_by,
        "decision_reason": record.decision_reason,
        "revoked_at": as_utc(record.revoked_at).isoformat() if record.revoked_at else None,
        "escalation_level": record.escalation_level or 0,
        # Contact details masked; of an Aadhaar number only the last four digits exist.
        "applicant": applicant_view(record.request, record.aadhaar_last4),
        "links": {"self": base},
    }
    if record.state in (State.ISSUED.value, State.SUPERSEDED.value, State.REVOKED.value):
        view["links"]["pdf"] = f"{base}/pdf"
    if record.superseded_by:
        view["links"]["superseded_by"] = f"/api/v1/certificates/{record.superseded_by}"
    # Its DigiLocker pushes: the newest one's state (pending with attempts and next try,
    # delivered, failed with the reason), and every push; null when it has none.
    if session is not None:
        view["delivery"] = delivery_view(session, record.id)
    return view


def certificates_api(limiter: Limiter, settings: Settings) -> Blueprint:
    bp = Blueprint("certificates", __name__, url_prefix="/api/v1")

    @bp.post("/certificates")
    def create() -> tuple[Response, int, dict[str, str]]:
        record = submit_request(principal(), json_body())
        session = db()
        session.refresh(record)
        body = certificate_view(record, db())
        body["status_url"] = body["links"]["self"]
        return jsonify(body), 202, {"Location": body["status_url"]}

    @bp.get("/certificates")
    def listing() -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ)
        page = certificate_page(db(), who.department.id, request.args)
        return jsonify({"certificates": [list_view(r) for r in page.records],
                        "next_after": page.next_after})

    @bp.get("/certificates/<cert_id>")
    def show(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ, _id_or_none(cert_id))
        return jsonify(_detail_view(_owned(cert_id, who, Action.READ)))

    @bp.put("/certificates/<cert_id>")
    def amend_request(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.CORRECT, _id_or_none(cert_id))
        data = json_body()

        def replace_request(session: Session, record: Certificate) -> None:
            code, clean = validate(data)
            clean = keep_aadhaar(record, clean, runtime().settings)  # never stored in clear
            _same_registration(record, code, clean)
            amend(session, record, who.actor, clean)

        return jsonify(_detail_view(_decide(cert_id, who, Action.CORRECT, replace_request)))

    @bp.post("/certificates/<cert_id>/approve")
    def approve_request(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.APPROVE, _id_or_none(cert_id))
        body = _optional_body()
        _checked(APPROVAL_BODY, body)
        seen = body.get("fields_digest")
        record = _decide(cert_id, who, Action.APPROVE,
                         lambda s, r: approve(s, r, who.actor, seen_digest=seen))
        if record.state == State.APPROVED.value:
            runtime().dispatcher.enqueue_issue(record.id)
        return jsonify(certificate_view(record, db()))

    @bp.post("/certificates/<cert_id>/reject")
    def reject_request(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.REJECT, _id_or_none(cert_id))
        reason = reason_of(json_body())
        record = _decide(cert_id, who, Action.REJECT,
                         lambda s, r: reject(s, r, who.actor, reason))
        return jsonify(certificate_view(record, db()))

    @bp.post("/certificates/<cert_id>/revoke")
    def revoke_certificate(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.REVOKE, _id_or_none(cert_id))
        reason = reason_of(json_body())
        record = _decide(cert_id, who, Action.REVOKE,
                         lambda s, r: revoke(s, r, who.actor, reason))
        enqueue_pending(runtime(), record.id)  # the D push to a linked locker (after commit)
        return jsonify(certificate_view(record, db()))

    @bp.get("/certificates/<cert_id>/pdf")
    def pdf(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.READ, _id_or_none(cert_id))
        record = _owned(cert_id, who, Action.READ)
        if record.pdf_path is None or record.pdf_sha256 is None:
            raise NotReady(f"certificate {cert_id} is {record.state}; the PDF exists once issued",
                           state=record.state)
        data = runtime().store.get(record.pdf_path, record.pdf_sha256)
        response = Response(data, mimetype="application/pdf")
        name = (record.number or record.id).replace("/", "-")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        response.set_etag(record.pdf_sha256)
        response.headers["Cache-Control"] = "private, max-age=0, must-revalidate"
        response.make_conditional(request)
        return response

    # Anyone may ask: a bound per client address keeps one from starving the rest.
    public_limit = limiter.shared_limit(settings.verify_client_limit, scope="public-verify")

    @bp.post("/verify")
    @public_limit
    def verify() -> Response:
        data = _checked(VERIFY_BODY, json_body())
        return jsonify(verify_qr(runtime(), data["qr"]).as_dict())

    @bp.post("/verify/pdf")
    @public_limit
    def verify_uploaded_pdf() -> Response:
        # A certificate's PDF as the citizen holds it (the verify page's upload): its PAdES
        # signature and chain, the seal it carries, that it is the file issued, and the status.
        if request.mimetype != "application/pdf":
            raise UnsupportedMedia("send the file as Content-Type: application/pdf")
        request.max_content_length = MAX_VERIFY_PDF_BYTES + 1
        data = request.stream.read(MAX_VERIFY_PDF_BYTES + 1)
        if len(data) > MAX_VERIFY_PDF_BYTES:
            raise RequestEntityTooLarge()
        if not data.startswith(b"%PDF-"):
            raise ValidationFailed([FieldError("body", "not_a_pdf",
                                               "the file is not a PDF (it must start with %PDF-)")])
        return jsonify(verify_pdf(runtime(), data).as_dict())

    return bp


def _detail_view(record: Certificate) -> dict[str, Any]:
    """A record with its particulars as an officer sees them, and the digest an approval may
    name."""
    view = certificate_view(record, db())
    view["request"] = record.request
    view["fields_digest"] = request_digest(record)
    return view


def _id_or_none(cert_id: str) -> str | None:
    try:
        return str(uuid.UUID(cert_id))
    except ValueError:
        return None


def _owned(cert_id: str, who: Principal, action: Action = Action.READ,
           lock: bool = False) -> Certificate:
    """The caller's department's record. Another department's is not found (and the attempt
    is audited): its existence does not leak."""
    try:
        uuid.UUID(cert_id)
    except ValueError:
        raise NotFound(f"no certificate {cert_id}") from None
    # equivalent, next line: on SQLite (mutation runs) without the lock; on PostgreSQL tests/
    # test_workflow.py's two_officers_deciding_one_request_at_once kills it
    record = db().get(Certificate, cert_id, with_for_update=lock)  # equivalent
    if record is None:
        raise NotFound(f"no certificate {cert_id}")
    if record.department_id != who.department.id:
        raise other_department(runtime().sessions, who, action, cert_id)
    return record


def _audit_foreign_reference(cert_id: Any, who: Principal) -> None:
    """A correction naming another department's certificate gets the answer an unknown id gets
    (submit's field error), and the attempt is audited as a refusal."""
    target = _id_or_none(cert_id) if isinstance(cert_id, str) else None
    record = db().get(Certificate, target) if target is not None else None
    if record is not None and record.department_id != who.department.id:
        permissions.deny(runtime().sessions, who, Action.CORRECT, "other_department", target)


def _decide(cert_id: str, who: Principal, action: Action,
            change: Callable[[Session, Certificate], None]) -> Certificate:
    """Apply one transition to the caller's record, locked, in one transaction."""
    session = db()
    try:
        record = _owned(cert_id, who, action, lock=True)
        change(session, record)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(record)
    return record


def _optional_body() -> dict[str, Any]:
    """A JSON object body, or {} when none was sent."""
    if not request.content_length and not request.is_json:
        return {}
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "type", "the body must be a JSON object")])
    return body


def _same_registration(record: Certificate, code: str, clean: dict[str, Any]) -> None:
    kind = cert_type(code)
    assert kind is not None
    errors = []
    if code != record.cert_type:
        errors.append(FieldError("type", "amend_mismatch",
                                 f"an amendment keeps the type {record.cert_type}"))
    elif kind.registration_number(clean) != record.registration_number:
        errors.append(FieldError("registration_number", "amend_mismatch",
                                 f"an amendment keeps the registration number "
                                 f"{record.registration_number}"))
    if errors:
        raise ValidationFailed(errors)


def digilocker_link_pages() -> Blueprint:
    """Linking an applicant's DigiLocker account (digilocker/link.py): the clerk's call that
    makes the applicant's link, the link itself, and DigiLocker's OAuth callback."""
    from digilocker import link

    bp = Blueprint("digilocker_link", __name__)

    @bp.post("/api/v1/certificates/<cert_id>/digilocker-link")
    def make_link(cert_id: str) -> Response:
        who = principal()
        require(runtime().sessions, who, Action.SUBMIT, _id_or_none(cert_id))
        record = _owned(cert_id, who, Action.SUBMIT)
        url, expires = link.link_url(runtime().settings, record.id)
        return jsonify({"certificate": record.id, "url": url, "expires_at": expires.isoformat()})

    @bp.get("/digilocker/link/<cert_id>")
    def start_link(cert_id: str) -> Response:
        session = db()
        try:
            url = link.start(session, runtime().settings, cert_id, request.args.get("t", ""))
            session.commit()
        except BaseException:
            session.rollback()
            raise
        response = Response(status=302)
        response.headers["Location"] = url
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/digilocker/callback")
    def callback() -> Response:
        done = link.finish(runtime(), request.args)
        with runtime().sessions() as session:
            delivery = delivery_view(session, done.certificate_id)
        if request.accept_mimetypes.best == "text/html":  # a citizen's browser, not a client
            from api_portal import linked_page

            return linked_page()
        answer: link.LinkedAnswer = {"linked": True, "certificate": done.certificate_id,
                                     "digilockerid": done.digilockerid, "delivery": delivery}
        return jsonify(answer)

    return bp


def admin_api() -> Blueprint:
    """A department's administration (its tokens and people, for its admins) and its part of
    the audit chain (for its auditors). Everything is scoped to the caller's department."""
    bp = Blueprint("admin", __name__, url_prefix="/api/v1")

    @bp.post("/tokens")
    def token_create() -> tuple[Response, int]:
        who = _allowed(permissions.Action.MANAGE_TOKENS)
        body = _fields_body(tokens.NEW_TOKEN)
        session = db()
        expires_days = body.get("expires_days", tokens.DEFAULT_EXPIRES_DAYS)
        errors = tokens.NEW_TOKEN.unknown(body) + tokens.check_new_token(
            session, who.department, body.get("name"), body.get("role"), expires_days)
        if errors:
            raise ValidationFailed(errors)
        secret = _committed(lambda s: tokens.create_token(
            s, who.department, body["name"], body["role"], expires_days=expires_days,
            actor=who.actor))
        row = tokens.find_token(session, who.department.id, body["name"])
        assert row is not None
        # The token itself is in this answer only: it is stored as a hash.
        return jsonify({**tokens.describe(row), "token": secret}), 201

    @bp.get("/tokens")
    def token_list() -> Response:
        who = _allowed(permissions.Action.MANAGE_TOKENS)
        return jsonify({"tokens": [tokens.describe(t) for t in
                                   tokens.list_tokens(db(), who.department.id)]})

    @bp.post("/tokens/<name>/revoke")
    def token_revoke(name: str) -> Response:
        who = _allowed(permissions.Action.MANAGE_TOKENS)
        row = tokens.find_token(db(), who.department.id, name)
        if row is None:
            elsewhere = tokens.departments_with_token(db(), name)
            if elsewhere:
                permissions.deny(runtime().sessions, who, permissions.Action.MANAGE_TOKENS,
                                 "other_department", target=f"token:{elsewhere[0]}/{name}",
                                 target_department=elsewhere[0])
            raise NotFound(f"no token named {name!r}")
        return jsonify(tokens.describe(_committed(
            lambda s: tokens.revoke_token(s, who.department, name, who.actor))))

    @bp.post("/users")
    def user_add() -> tuple[Response, int]:
        who = _allowed(permissions.Action.MANAGE_USERS)
        fields = users.NEW_USER.keys
        body = _fields_body(users.NEW_USER)
        session = db()
        errors = users.NEW_USER.unknown(body) + users.user_errors(
            session, *(body.get(f) for f in fields))
        if errors:
            raise ValidationFailed(errors)
        user = _committed(lambda s: users.add_user(s, who.department, *(body[f] for f in fields),
                                                   actor=who.actor))
        return jsonify(users.describe(user)), 201

    @bp.get("/users")
    def user_list() -> Response:
        who = _allowed(permissions.Action.MANAGE_USERS)
        return jsonify({"users": [users.describe(u) for u in
                                  users.list_users(db(), who.department.id)]})

    @bp.post("/users/<username>/disable")
    def user_disable(username: str) -> Response:
        who = _allowed(permissions.Action.MANAGE_USERS)
        user = users.find_user(db(), username)
        if user is not None and user.department_id != who.department.id:
            permissions.deny(runtime().sessions, who, permissions.Action.MANAGE_USERS,
                             "other_department", target=f"user:{username}",
                             target_department=user.department_id)
            user = None
        if user is None:
            raise NotFound(f"no user {username!r}")
        return jsonify(users.describe(_committed(lambda s: users.disable_user(s, user, who.actor))))

    @bp.get("/audit")
    def audit_events() -> Response:
        who = _allowed(permissions.Action.AUDIT_READ)
        page = department_audit.audit_page(db(), who.department.id, request.args)
        return jsonify({"events": [department_audit.event_view(e) for e in page.events],
                        "next_after": page.next_after})

    return bp


def _allowed(action: permissions.Action) -> Principal:
    who = principal()
    permissions.require(runtime().sessions, who, action)
    return who


def _checked(spec: Fields, body: Any) -> dict[str, Any]:
    """`body`, when it has no problem `spec` states (else a 422 listing every one)."""
    errors = spec.check(body)
    if errors:
        raise ValidationFailed(errors)
    checked: dict[str, Any] = body
    return checked


def _fields_body(spec: Fields) -> dict[str, Any]:
    """A JSON object body of an admin request (its fields are checked by the caller)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([spec.not_an_object()])
    return body


def _committed(change: Callable[[Session], T]) -> T:
    """Run `change` in the request's session and commit it (or roll it back and re-raise)."""
    session = db()
    try:
        result = change(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def rts_api() -> Blueprint:
    """The Right to Public Services report (issuer/rts.py): a department's requests due within
    ?due_within= working days (default 2) or overdue, optionally of one ?ward= office."""
    from issuer.db import utcnow
    from issuer.permissions import Action, require
    from issuer.rts import report_query, rts_report
    from issuer.rts_calendar import load_calendar

    bp = Blueprint("rts", __name__, url_prefix="/api/v1")

    @bp.get("/rts")
    def report() -> Response:
        who = principal()
        require(runtime().sessions, who, Action.RTS_READ)
        due_within, ward = report_query(request.args)
        result = rts_report(db(), load_calendar(runtime().settings), utcnow(),
                            department_id=who.department.id, ward=ward, due_within=due_within)
        return jsonify(result.as_dict())

    return bp


def digilocker_api() -> Blueprint:
    """DigiLocker's calls on us (digilocker/pull_endpoint.py): XML in and out, authenticated by
    the x-digilocker-hmac header (or the legacy keyhash), never by a bearer token."""
    from datetime import UTC, datetime

    from digilocker.pdf_cache import PdfCache
    from digilocker.pull_endpoint import answer
    from digilocker.request_auth import HEADER

    bp = Blueprint("digilocker", __name__, url_prefix="/digilocker")
    cache = PdfCache()  # one per app, so per gunicorn worker

    def pull(operation: str) -> Response:
        limit = runtime().settings.max_body_bytes
        try:
            raw: bytes | None = request.stream.read(limit + 1)
        except RequestEntityTooLarge:  # a Content-Length over the cap: not read at all
            raw = None
        if raw is not None and len(raw) > limit:
            raw = None
        rt = runtime()
        result = answer(operation, raw, request.headers.get(HEADER), rt.settings, rt.engine,
                        rt.store, datetime.now(UTC), cache)
        mimetype = "application/xml" if result.xml else "text/plain"
        return Response(result.body, status=result.http_status, mimetype=mimetype)

    bp.add_url_rule("/pulluri", "pulluri", lambda: pull("pulluri"), methods=["POST"])
    bp.add_url_rule("/pulldoc", "pulldoc", lambda: pull("pulldoc"), methods=["POST"])
    return bp


class ManifestIcon(TypedDict):
    src: str
    sizes: str
    type: str


class WebManifest(TypedDict):
    """The verify page's web app manifest (/v/manifest.webmanifest)."""

    name: str
    short_name: str
    start_url: str
    scope: str
    display: Literal["standalone"]
    background_color: str
    theme_color: str
    icons: list[ManifestIcon]


def public_pages() -> Blueprint:
    bp = Blueprint("public", __name__)

    @bp.get("/v")
    def verify_page() -> str:
        return render_template("verify.html", issuer=runtime().settings.issuer_name_en)

    @bp.get("/v/assets/<name>")
    def asset(name: str) -> Response:
        if name not in WEB_ASSETS:
            raise NotFound("no such file")
        return send_from_directory(web_dir(), name, max_age=300)

    @bp.get("/v/vendor/<name>")
    def vendor(name: str) -> Response:
        if name not in VENDOR_FILES:
            raise NotFound("no such file")
        # Not there until `make` fetched it: 404 then.
        return whole_file(web_dir() / "vendor" / name, FONT_MAX_AGE, VENDOR_FILES[name])

    @bp.get("/v/sw.js")
    def service_worker() -> Response:
        # The offline app's worker (templates/web/sw.js), for the page at /v: a worker's scope
        # may not lie above its own folder unless the server allows it.
        answer = send_from_directory(web_dir(), "sw.js", max_age=0)
        answer.headers["Service-Worker-Allowed"] = "/v"
        answer.headers["Cache-Control"] = "no-cache"
        return answer

    @bp.get("/v/manifest.webmanifest")
    def manifest() -> Response:
        settings = runtime().settings
        body: WebManifest = {
            "name": f"Verify a certificate · {settings.issuer_name_en}",
            "short_name": "Pramaan verify", "start_url": "/v", "scope": "/v",
            "display": "standalone", "background_color": "#ffffff", "theme_color": "#1e3a5f",
            "icons": [{"src": "/v/assets/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
        }
        return Response(json.dumps(body, ensure_ascii=False),
                        mimetype="application/manifest+json")

    @bp.get("/v/roots.json")
    def trust_roots() -> Response:
        # What the page trusts to check the published documents in the browser: the PDF trust
        # roots and the issuer's organisation (issuer/published.py verifier_anchors).
        from issuer import published

        answer = jsonify(published.verifier_anchors(runtime()))
        answer.headers["Cache-Control"] = "public, max-age=3600"
        return answer

    @bp.get("/v/fonts/<name>")
    def font(name: str) -> Response:
        if name not in WEB_FONTS:
            raise NotFound("no such font")
        return whole_file(fonts_dir() / name, FONT_MAX_AGE, "font/ttf")

    @bp.get("/healthz")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @bp.get("/.well-known/pramaan/<name>.json")
    def published_document(name: str) -> Response:
        # The signed seal trust list and status list, for verifiers to cache (issuer/published).
        from issuer import published

        if name not in (published.TRUST_LIST, published.STATUS_LIST):
            raise NotFound("no such document")
        found = published.document(runtime(), db(), name)
        answer = Response(found.body, mimetype="application/jose+json")
        fresh = published.STATUS_TTL if name == published.STATUS_LIST else published.TRUST_REFRESH
        answer.headers["Cache-Control"] = f"public, max-age={int(fresh.total_seconds())}"
        answer.headers["Access-Control-Allow-Origin"] = "*"  # any verifier's page may read it
        answer.last_modified = found.issued_at
        return answer

    return bp


def whole_file(path: Path, max_age: int, mimetype: str) -> Response:
    """A large static file (the decoder's wasm, the fonts) answered from memory, conditional on
    its ETag. send_from_directory streams an open file, and Werkzeug's server leaves that file
    open when a browser drops the connection mid-download (a page closed, a service worker
    cancelled): a leaked descriptor per dropped download."""
    try:
        body = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound("no such file") from None
    answer = Response(body, mimetype=mimetype)
    answer.cache_control.public = True
    answer.cache_control.max_age = max_age
    answer.add_etag()
    answer.make_conditional(request)
    return answer


def _response_headers(response: Response) -> Response:
    """Headers every response carries, whatever the server in front of the app."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    if response.mimetype in ("text/html", "image/svg+xml"):  # SVG opened alone runs script
        headers["Content-Security-Policy"] = PAGE_CSP
    if runtime().settings.verify_base_url.startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if response.status_code == 401 and request.path.startswith("/api/"):
        # A bearer challenge for our API only: DigiLocker's pull calls authenticate by HMAC.
        headers["WWW-Authenticate"] = _bearer_challenge()
    # The HTTP server (gunicorn; Werkzeug's in development) writes Date itself. Werkzeug's
    # make_conditional() (the PDF, the page's files) adds one more, and two Date headers is one
    # too many (RFC 9110 5.3): drop the app's.
    del headers["Date"]
    return response


def _bearer_challenge() -> str:
    """RFC 6750 3: an error code only when a bearer token was sent (and refused)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return ('Bearer realm="pramaan", error="invalid_token", '
                'error_description="the bearer token is unknown, revoked or expired"')
    return 'Bearer realm="pramaan"'


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": f"urn:pramaan:problem:{code}", "title": title, "status": status,
            "detail": detail, "code": code, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    return response


def _domain_error(exc: PramaanError) -> Response:
    extra = dict(exc.extra)
    code = exc.code
    if isinstance(exc, ValidationFailed):
        # A body of thousands of unknown keys must not come back as a report ten times its size.
        # Field paths echo request keys: never an Aadhaar number sent as a key.
        extra["errors"] = [{k: redact(v) for k, v in e.as_dict().items()}
                           for e in exc.errors[:MAX_REPORTED_ERRORS]]
        extra["error_count"] = len(exc.errors)
        extra["errors_truncated"] = len(exc.errors) > MAX_REPORTED_ERRORS
    if exc.status >= 500:
        log.error("%s: %s", code, exc.detail)
    if isinstance(exc, StoreError):
        audit_store_failure(runtime(), exc, request.path)
    return problem(exc.status, code, exc.title, redact(exc.detail), **extra)


def audit_store_failure(rt: Runtime, exc: StoreError, asked: str,
                        certificate_id: str | None = None) -> None:
    """A stored PDF that could not be served is an audit event (which certificate, which
    object, what was wrong, what asked for it), in a transaction of its own; the answer stays
    the error whatever happens here. (No request context needed: a streamed ZIP calls it.)"""
    try:
        with rt.sessions() as session, session.begin():
            owner = certificate_id or session.scalar(select(Certificate.id).where(
                Certificate.pdf_path == exc.relative).limit(1))
            audit.record(session, actor="system:store", action="store_read_failed",
                         certificate_id=owner,
                         details={"code": exc.code, "object": exc.where, "request": asked})
    except Exception:  # the answer must still go out; the log has it
        log.exception("could not audit the store failure of %s", exc.where)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _http_error(exc: HTTPException) -> Response | WerkzeugResponse:
    if isinstance(exc.response, WerkzeugResponse):  # made for it (the portal's "too many")
        return exc.response
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    return problem(status, code, exc.name, exc.description or exc.name)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return problem(500, "internal_error", "Internal error",
                   "something went wrong on our side; it has been logged")
