"""What the HTML pages of the portal and the console share: the language (English or Marathi on
every page: `?lang=`, remembered in a cookie, else the browser's Accept-Language), their words
(templates/web/*_text.json) and the page response itself (no caching, Content-Language)."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, make_response, render_template, request

from templates import web_dir

LANG_COOKIE = "pramaan_lang"
LANGS = ("en", "mr")


@functools.cache
def _strings(name: str) -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(
        (web_dir() / name).read_text(encoding="utf-8"))
    return loaded


def language() -> str:
    asked = request.args.get("lang", "")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in LANGS:
        return kept
    return request.accept_languages.best_match(LANGS) or "en"


def words(name: str | tuple[str, ...]) -> dict[str, str]:
    """The words of `name` (a file of templates/web/, or several) in the page's language."""
    lang = language()
    names = (name,) if isinstance(name, str) else name
    return {key: value[lang] for one in names for key, value in _strings(one).items()}


def switch_url(lang: str) -> str:
    """This page in `lang`: the same path (a form's own page after a POST) and query."""
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = lang
    return f"{g.get('page_path') or request.path}?{urlencode(args)}"


def secure_cookies() -> bool:
    runtime = current_app.extensions["pramaan"]
    return bool(runtime.settings.verify_base_url.startswith("https://"))


def page(template: str, words_file: str | tuple[str, ...], status: int = 200,
         **context: Any) -> Response:
    lang = language()
    settings = current_app.extensions["pramaan"].settings
    body = render_template(template, lang=lang, t=words(words_file),
                           issuer=settings.issuer_name_en if lang == "en"
                           else settings.issuer_name_mr, switch_url=switch_url, **context)
    answer = make_response(body, status)
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["Content-Language"] = lang
    answer.vary.add("Cookie")
    answer.vary.add("Accept-Language")
    if request.args.get("lang") in LANGS:
        answer.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax",
                          secure=secure_cookies(), httponly=True)
    return answer
