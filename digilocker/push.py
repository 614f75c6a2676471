"""Push URI to Account (PROTOCOL.md §6): we tell DigiLocker to add (A), update (U) or delete (D)
one document URI in a linked citizen's locker. DigiLocker then pulls the document from us.

Choices for what §6 leaves UNCONFIRMED (README: DigiLocker push):
- Body: multipart/form-data, as the Authorized Partner spec [S2] declares (the one public
  implementation that sends form-urlencoded [S8] never ran that code).
- hmac: lowercase hex SHA-256 (a plain digest, not an HMAC) of client_secret, clientid,
  digilockerid, uri, doctype, description, docid, issuedate, validfrom, validto, action, ts
  concatenated in that order [S8][S15]. An empty optional field (we never have a `validto`:
  our certificates do not expire) is left out of the body; in the concatenation it adds nothing,
  which is what "leaving it out" [S8] and "an empty string" both give, so the two readings
  agree.
- ts: UNIX seconds (UNIX time has no zone; "IST" in [S2] cannot change the number).
- Dates: DDMMYYYY in India Standard Time.
- A 400 "URI already exists in this account" answering an A is a success: it is what a repeat of
  an A whose first answer was lost gets, so a lost response costs one repeat and no duplicate.
  Likewise a 400 about the URI answering a repeated D (the locker no longer has it: the first D
  went through). A repeated U is applied again by DigiLocker: §6 has no idempotency key, so a
  lost answer to a U costs one repeated update of the same document (never a second entry).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import requests

PUSH_PATH = "/account/1/pushuri"
ACTIONS = ("A", "U", "D")
# Connect and read timeouts (seconds): a DigiLocker that hangs is retried later like one that is
# down, never waited on for long.
TIMEOUT = (5.0, 20.0)
_ALREADY_HERE = "already exists in this account"
_ELSEWHERE = "another account"
_MAX_ERROR = 300
# HTTP statuses worth trying again: DigiLocker's own failures (500, 530 in v2.4), gateways,
# rate limits and timeouts. Any other 4xx is an answer about the push itself and waits for an
# operator (`pramaan digilocker retry`).
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504, 530})


@dataclass(frozen=True)
class PushDocument:
    """What one push says about one document."""

    digilockerid: str
    uri: str
    doctype: str
    description: str
    docid: str
    issued_on: date
    action: str


@dataclass(frozen=True)
class Outcome:
    """`delivered`, or not: `retry` (try again later) or a permanent refusal; `error` says why."""

    delivered: bool
    retry: bool
    error: str | None = None


def ddmmyyyy(day: date) -> str:
    return day.strftime("%d%m%Y")


def push_fields(doc: PushDocument, client_id: str, client_secret: str, ts: int) -> dict[str, str]:
    """The form fields of one push, `hmac` included, in the order of the digest."""
    if doc.action not in ACTIONS:
        raise ValueError(f"unknown push action {doc.action!r}")
    issued = ddmmyyyy(doc.issued_on)
    ordered = {
        "clientid": client_id,
        "digilockerid": doc.digilockerid,
        "uri": doc.uri,
        "doctype": doc.doctype,
        "description": doc.description,
        "docid": doc.docid,
        "issuedate": issued,
        "validfrom": issued,
        "validto": "",
        "action": doc.action,
        "ts": str(ts),
    }
    fields = {name: value for name, value in ordered.items() if value}
    fields["hmac"] = push_hmac(client_secret, list(ordered.values()))
    return fields


def push_hmac(client_secret: str, values: list[str]) -> str:
    """sha256(client_secret || values...) as lowercase hex (§6; see the module docstring)."""
    return hashlib.sha256("".join([client_secret, *values]).encode("utf-8")).hexdigest()


def send_push(http: requests.Session, base_url: str, fields: dict[str, str],
              repeat: bool = False) -> Outcome:
    """POST the push and classify the answer (`repeat`: an earlier attempt of this same push may
    have gone through). Never raises for a network failure: that is a `retry` outcome like a
    5xx."""
    try:
        response = http.post(base_url + PUSH_PATH, files={k: (None, v) for k, v in fields.items()},
                             timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return Outcome(False, True, f"network: {type(exc).__name__}")
    return classify(response.status_code, response.text, fields.get("action", ""), repeat)


def classify(status: int, body: str, action: str, repeat: bool = False) -> Outcome:
    """What an answer of DigiLocker to a push means for us."""
    text = " ".join(body.split())[:_MAX_ERROR]
    lowered = body.lower()
    if 200 <= status < 300:
        return Outcome(True, False)
    if status == 400 and action == "A" and _ALREADY_HERE in lowered:
        return Outcome(True, False, f"HTTP 400 {text} (taken as delivered: a repeat)")
    if (status == 400 and action == "D" and repeat and "uri" in lowered
            and _ELSEWHERE not in lowered):
        return Outcome(True, False, f"HTTP 400 {text} (taken as delivered: a repeated delete)")
    return Outcome(False, status in _TRANSIENT, f"HTTP {status} {text}".strip())
