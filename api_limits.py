"""Rate limits on what anyone may call without an account: the citizen portal and public verify.

Counted by Flask-Limiter in Redis when the service has one (REDIS_URL), so every API process of
a deployment shares the same counts and a restart forgets none; on a laptop without Redis, in
this process's memory. A sliding window: a burst at the edge of a window does not double the
allowance. When Redis cannot be reached the counts go on in memory (logged) rather than
refusing every citizen or letting every request through uncounted.
"""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from issuer.settings import Settings

KEY_PREFIX = "pramaan-limits"


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    """The app's limiter; behind `settings.proxy_hops` reverse proxies the client address is
    taken from X-Forwarded-For that many hops back (never from a header nobody vouches for)."""
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    return Limiter(
        client_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        strategy="sliding-window-counter",
        headers_enabled=True,
        key_prefix=KEY_PREFIX,
        in_memory_fallback_enabled=True,
    )


def client_address() -> str:
    return request.remote_addr or "unknown"


def digest_key(*parts: str) -> str:
    """A counter's key for what a client asked about (a registration number): hashed, so the
    counters in Redis hold no reference in clear."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
