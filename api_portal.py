"""The citizen portal (/portal): a certificate downloaded by what its holder knows.

English or Marathi on every page (?lang=, remembered in a cookie). Every wrong combination of
details gets the same page with the same status; the tries are rate limited per client address
and per registration number (api_limits.py), so neither guessing dates for one number nor
trying numbers from many addresses gets far. The forms carry a CSRF token that must match a
cookie only this site can set (double submit; the cookie is SameSite=Strict). Nothing of what a
citizen types is logged; a download is an audit event.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, request
from flask_limiter import Limiter, RequestLimit

from api import db, runtime
from api_limits import digest_key
from api_pages import page, secure_cookies, words
from issuer import audit
from issuer.models import State
from issuer.portal import (
    KINDS,
    MAX_REFERENCE,
    Found,
    Kind,
    find,
    normal_reference,
    parse_date,
    printed_day,
)
from issuer.settings import Settings

CSRF_COOKIE = "pramaan_portal_csrf"
ACTOR = "citizen:portal"
WORDS = "portal_text.json"


def portal_pages(limiter: Limiter, settings: Settings) -> Blueprint:
    bp = Blueprint("portal", __name__, url_prefix="/portal")
    limited = _limits(limiter, settings.portal_client_limit, settings.portal_number_limit)
    bp.register_error_handler(_Answer, _answered)

    @bp.get("")
    def home() -> Response:
        return _page("portal_home.html", kinds=list(KINDS))

    @bp.get("/<kind>")
    def form(kind: str) -> Response:
        return _form(_kind(kind))

    @bp.post("/<kind>")
    @limited
    def lookup(kind: str) -> Response:
        wanted, values = _asked(kind)
        found = find(db(), wanted, values["reference"], values["second"])
        if found is None:
            return _refused(wanted, values)
        return _result(wanted, values, found)

    @bp.post("/<kind>/pdf")
    @limited
    def download(kind: str) -> Response:
        wanted, values = _asked(kind)
        session = db()
        found = find(session, wanted, values["reference"], values["second"])
        if found is None or not found.downloadable:
            return _refused(wanted, values)
        record = found.record
        assert record.pdf_path is not None and record.pdf_sha256 is not None
        data = runtime().store.get(record.pdf_path, record.pdf_sha256)
        audit.record(session, actor=ACTOR, action="portal_download", certificate_id=record.id,
                     details={"number": record.number, "pdf_sha256": record.pdf_sha256})
        session.commit()
        answer = Response(data, mimetype="application/pdf")
        name = (record.number or record.id).replace("/", "-")
        answer.headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @bp.post("/<kind>/digilocker")
    @limited
    def to_digilocker(kind: str) -> Response:
        from digilocker import link

        wanted, values = _asked(kind)
        found = find(db(), wanted, values["reference"], values["second"])
        if found is None or not found.downloadable or not _digilocker_ready():
            return _refused(wanted, values)
        # The applicant's own link (digilocker/link.py), as the office would hand it over:
        # from there DigiLocker's sign-in, and the push of this certificate once linked.
        url, _ = link.link_url(runtime().settings, found.record.id)
        answer = Response(status=303)
        answer.headers["Location"] = url
        answer.headers["Cache-Control"] = "no-store"
        return answer

    return bp


def _limits(limiter: Limiter, per_client: str, per_number: str) -> Callable[
        [Callable[..., Any]], Callable[..., Any]]:
    """The portal's two limits, shared by its three forms (a look-up, a download and a
    DigiLocker hand-over all count): per client address and per reference asked about."""

    def both(view: Callable[..., Any]) -> Callable[..., Any]:
        view = limiter.shared_limit(per_number, scope="portal-number", key_func=_number_key,
                                    on_breach=_too_many)(view)
        return limiter.shared_limit(per_client, scope="portal-client",
                                    on_breach=_too_many)(view)

    return both


def _number_key() -> str:
    kind = (request.view_args or {}).get("kind", "")
    reference = normal_reference(request.form.get("reference", ""))[:MAX_REFERENCE]
    return digest_key(str(kind), reference)


def _too_many(_limit: RequestLimit) -> Response:
    kind = KINDS.get(str((request.view_args or {}).get("kind", "")))
    if kind is None:
        return _page("portal_home.html", status=429, kinds=list(KINDS))
    return _form(kind, status=429, refused=_t("too_many"), values=_values())


def _kind(code: str) -> Kind:
    kind = KINDS.get(code)
    if kind is None:
        from issuer.errors import NotFound

        raise NotFound("no such certificate type")
    return kind


def _values() -> dict[str, str]:
    return {name: request.form.get(name, "")[:MAX_REFERENCE].strip()
            for name in ("reference", "second")}


def _asked(code: str) -> tuple[Kind, dict[str, str]]:
    """The kind and the two details, after the CSRF check; a form with a detail missing or
    malformed goes back with what is wrong (that says nothing about any record)."""
    kind = _kind(code)
    values = _values()
    sent = request.form.get("csrf", "")
    kept = request.cookies.get(CSRF_COOKIE, "")
    if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        raise _Answer(_form(kind, status=403, refused=_t("expired_form"), values=values))
    errors = {}
    if not values["reference"]:
        errors["reference"] = _t("need_reference")
    if kind.second == "date" and parse_date(values["second"]) is None:
        errors["second"] = _t("need_date")
    if kind.second == "property_id" and not values["second"]:
        errors["second"] = _t("need_property")
    if errors:
        raise _Answer(_form(kind, status=422, errors=errors, values=values))
    return kind, values


class _Answer(Exception):
    """Not an error: the page to answer with instead of the view's own."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered")
        self.response = response


def linked_page() -> Response:
    """What a citizen's browser sees back from DigiLocker once the account is linked."""
    return _page("portal_linked.html")


def _refused(kind: Kind, values: dict[str, str]) -> Response:
    """The one answer to every combination that names no certificate."""
    return _form(kind, status=404, refused=_t("not_found"), values=values)


def _result(kind: Kind, values: dict[str, str], found: Found) -> Response:
    record = found.record
    tone, message = "ok", _t("ready")
    if found.downloadable:
        pass
    elif record.state == State.REVOKED.value:
        tone = "bad"
        message = _t("revoked").format(day=printed_day(record.revoked_at),
                                       reason=record.decision_reason or "")
    elif record.state == State.REJECTED.value:
        tone, message = "bad", _t("rejected").format(reason=record.decision_reason or "")
    elif record.state == State.FAILED.value:
        tone, message = "wait", _t("failed")
    else:
        tone, message = "wait", _t("pending").format(due=printed_day(record.due_at))
    facts = _holder(kind, record.request)
    return _page("portal_result.html", kind=kind.code, found=found, tone=tone, message=message,
                 values=values, holder=facts, digilocker=_digilocker_ready(),
                 issued_on=printed_day(record.issued_at))


def _holder(kind: Kind, data: dict[str, Any]) -> dict[str, str]:
    from issuer.certtypes import cert_type

    known = cert_type(kind.code)
    if known is None:
        return {"en": "", "mr": ""}
    return dict(known.seal_facts(data).holder)


def _digilocker_ready() -> bool:
    """Linking is configured (digilocker/link.py: the partner API and our OAuth client, and the
    key of the link tokens: configured, or generated in development)."""
    settings = runtime().settings
    return bool(settings.digilocker_base_url and settings.digilocker_client_id
                and settings.digilocker_client_secret
                and (settings.digilocker_token_key or settings.development))


def _form(kind: Kind, status: int = 200, **context: Any) -> Response:
    context.setdefault("values", {"reference": "", "second": ""})
    context.setdefault("errors", {})
    g.page_path = f"/portal/{kind.code}"  # the language switch of an answer to a POST
    return _page("portal_form.html", status=status, kind=kind.code, second=kind.second,
                 **context)


def _t(key: str) -> str:
    return words(WORDS)[key]


def _csrf_token() -> str:
    token = g.get("portal_csrf") or request.cookies.get(CSRF_COOKIE) or ""
    if len(token) != 43:
        token = secrets.token_urlsafe(32)
    g.portal_csrf = token
    return token


def _page(template: str, status: int = 200, **context: Any) -> Response:
    settings = runtime().settings
    answer = page(template, WORDS, status, csrf=_csrf_token(),
                  verify_url=settings.verify_base_url + "/v", **context)
    answer.set_cookie(CSRF_COOKIE, _csrf_token(), httponly=True, samesite="Strict",
                      secure=secure_cookies(), path="/portal")
    return answer


def _answered(exc: _Answer) -> Response:
    return exc.response
