"""Which verify base URLs can go into a QR link: one a phone can open, and in production one the
public can reach. The link is printed on paper for decades, so a wrong one is refused at startup,
never discovered on the first certificate."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def default_verify_base(host: str, port: int) -> str:
    """The development default, derived from where `pramaan serve` listens. An unspecified
    listen address (0.0.0.0, ::) is not an address anyone can open, so loopback stands in."""
    name = host.strip().strip("[]")
    if not name or _is_unspecified(name):
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{port}"


def verify_base_problem(url: str, *, production: bool) -> str | None:
    """Why `url` cannot be the base of QR links, or None when it can.

    Always refused: anything but an http(s) origin with an optional path, a query, fragment or
    user info, an unspecified host (0.0.0.0, ::). In production also refused: plain http, and a
    host the public cannot reach (loopback, private, link-local or reserved addresses, names
    without a dot such as `localhost`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL with a host, e.g. https://verify.pmc.gov.in"
    if parts.query or parts.fragment or "#" in url or "?" in url:
        return "must not carry a query or fragment (the seal follows '#')"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry user info"
    if port == 0:
        return "port 0 is not a port a phone can open"
    if _is_unspecified(host):
        return ("0.0.0.0 / :: is where a server listens, not an address a phone can open; "
                "set PRAMAAN_VERIFY_BASE_URL to the public https address of the verify page")
    if not production:
        return None
    if parts.scheme != "https":
        return "must be https in production (PRAMAAN_ENV=production)"
    if not _public_host(host):
        return ("is not a public address; QR links printed now must open on any phone for "
                "decades: set PRAMAAN_VERIFY_BASE_URL to the public https address")
    return None


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _public_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "." in host and host not in _LOOPBACK_NAMES and not host.endswith(
            (".localhost", ".local", ".internal", ".test", ".invalid", ".example")
        )
    return address.is_global
