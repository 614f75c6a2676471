"""Is a pull request from DigiLocker? The `x-digilocker-hmac` header, the legacy `keyhash`, and
the freshness of `ts` (PROTOCOL.md §4).

Both header encodings seen in working issuers are accepted (§4.1, UNCONFIRMED officially):
Base64 of the lowercase hex HMAC-SHA256 (88 characters; DIVOC, Sunbird, Assam) and Base64 of the
raw 32 bytes (44 characters). They are told apart by the decoded length, and compared in
constant time. The HMAC covers the exact bytes received, never a re-serialisation (§11.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone

HEADER = "x-digilocker-hmac"
IST = timezone(timedelta(hours=5, minutes=30))
# ISO 8601 as the samples write it (§4.4), seconds optional fraction, offset or Z; without an
# offset the time is read as IST, DigiLocker's own zone (§4.4 leaves this UNCONFIRMED).
_TS = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:\.\d{1,9})?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def hmac_hex(body: bytes, key: str) -> str:
    """Lowercase hex HMAC-SHA256 of `body` under the API key (the §4.1 golden vector's hex)."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def header_ok(body: bytes, header: str, key: str) -> bool:
    """Whether `header` is Base64(hex HMAC) or Base64(raw HMAC) of `body` under `key`."""
    try:
        decoded = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256)
    if len(decoded) == 64:
        return hmac.compare_digest(decoded, digest.hexdigest().encode("ascii"))
    if len(decoded) == 32:
        return hmac.compare_digest(decoded, digest.digest())
    return False


def keyhash(key: str, ts: str) -> str:
    """The v1.0 `keyhash`: plain SHA-256 of the API key followed by ts, lowercase hex (§4.2)."""
    return hashlib.sha256((key + ts).encode("utf-8")).hexdigest()


def keyhash_ok(key: str, ts: str, sent: str) -> bool:
    """Whether `sent` is the keyhash of `ts` (hex in either case), compared in constant time."""
    return bool(sent) and hmac.compare_digest(sent.strip().lower().encode("utf-8"),
                                              keyhash(key, ts).encode("ascii"))


def parse_ts(text: str) -> datetime | None:
    """The instant `ts` names (aware), or None when it is not an ISO 8601 date-time."""
    match = _TS.fullmatch(text.strip())
    if match is None:
        return None
    zone = match["zone"] or "+05:30"
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{zone}")
    except ValueError:
        return None


def ts_fresh(text: str, now: datetime, window_seconds: int) -> bool:
    """Whether `ts` is within `window_seconds` of `now`, either side (clocks drift both ways)."""
    at = parse_ts(text)
    return at is not None and abs((now - at).total_seconds()) <= window_seconds
