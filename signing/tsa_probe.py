"""Is the configured TSA there? One real RFC 3161 request, as signing would send it, for a
process that holds no keys (`pramaan doctor` on an API machine: no key check runs there)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from signing.timestamps import StrictTimeStamper, TsaUnavailable

# Any digest asks the same question; a fixed one keeps the request the same every time.
PROBE_DIGEST = hashlib.sha256(b"pramaan doctor").digest()


def probe_tsa(url: str, *, timeout: float) -> dt.datetime:
    """Ask the TSA at `url` for a timestamp (with a nonce, which the answer must echo, for
    `PROBE_DIGEST`, which the token must carry) and return the time it gave; wait at most
    `timeout` seconds. Raises `TsaUnavailable` for a TSA that is down, slow, or answers
    anything but a granted timestamp for that digest and nonce."""
    stamper = StrictTimeStamper(url, timeout=timeout)
    try:
        token = asyncio.run(stamper.async_timestamp(PROBE_DIGEST, "sha256"))
    except OSError as exc:  # pyHanko's TimestampRequestError is an OSError
        raise TsaUnavailable(f"no timestamp from the TSA at {url}: {exc}") from exc
    when: dt.datetime = token["content"]["encap_content_info"]["content"].parsed[
        "gen_time"].native
    return when
