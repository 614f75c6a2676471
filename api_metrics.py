"""GET /metrics: the Prometheus exposition (issuer/metrics.py has what is in it).

Who may scrape: with PRAMAAN_METRICS_TOKEN set, whoever sends `Authorization: Bearer <it>`;
without, a client on the loopback address whose request came through no proxy (no
Forwarded/X-Forwarded-For header: a reverse proxy on the same machine would otherwise make
every client look local). The numbers are counts by type, state, queue and action: nothing
about a person."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, request

from api import runtime
from issuer.errors import Forbidden, Unauthorized
from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE
from issuer.metrics import exposition, scrape_registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-Ip")


def metrics_endpoint() -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    def metrics() -> Response:
        rt = runtime()
        may_scrape(rt.settings.metrics_token)
        registry = scrape_registry(rt.sessions, rt.settings.redis_url,
                                   (SIGN_QUEUE, DELIVER_QUEUE))
        return Response(exposition(registry), content_type=CONTENT_TYPE,
                        headers={"Cache-Control": "no-store"})

    return bp


def may_scrape(token: str | None) -> None:
    """Raise Unauthorized / Forbidden unless this request may read the metrics."""
    if token is not None:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                sent.strip().encode(), token.encode()):
            raise Unauthorized("send 'Authorization: Bearer <PRAMAAN_METRICS_TOKEN>'")
        return
    if not _loopback(request.remote_addr) or any(h in request.headers for h in PROXY_HEADERS):
        raise Forbidden("the metrics are served to loopback clients only; set "
                        "PRAMAAN_METRICS_TOKEN to scrape from elsewhere")


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
