"""Everything one emulator instance remembers, in memory, behind one lock: OAuth codes and tokens,
each locker's issued documents, the counters tests read, and the fault generator.

One lock for all of it keeps the invariants simple (a push and a pull of the same URI never
interleave half-way); the emulator is a test double, not a throughput target."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from digilocker.emulator.config import Faults


@dataclass
class Code:
    """An authorization code (authlib's AuthorizationCodeMixin plus the PKCE fields)."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    digilockerid: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token:
    """An issued access/refresh token pair (authlib's TokenMixin)."""

    access_token: str
    refresh_token: str | None
    client_id: str
    digilockerid: str
    scope: str
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class Document:
    """One URI in a locker's issued list, with what the issuer's Pull Doc returned for it."""

    uri: str
    digilockerid: str
    org_id: str
    doctype: str
    description: str
    docid: str = ""
    issuedate: str = ""
    validfrom: str = ""
    validto: str = ""
    source: str = "push"  # "push" or "search"
    added_at: float = field(default_factory=time.time)
    updates: int = 0
    pdf: bytes | None = None
    xml: bytes | None = None
    pull_error: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "uri": self.uri, "doctype": self.doctype, "description": self.description,
            "docid": self.docid, "issuedate": self.issuedate, "validfrom": self.validfrom,
            "validto": self.validto, "source": self.source, "updates": self.updates,
            "pdf_sha256": hashlib.sha256(self.pdf).hexdigest() if self.pdf is not None else None,
            "pdf_size": len(self.pdf) if self.pdf is not None else None,
            "xml_sha256": hashlib.sha256(self.xml).hexdigest() if self.xml is not None else None,
            "pull_error": self.pull_error,
        }


class State:
    """The emulator's memory. Every method that touches shared data takes `lock`; callers that
    need several steps to be atomic hold `lock` themselves (it is re-entrant)."""

    def __init__(self, faults: Faults) -> None:
        self.lock = threading.RLock()
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}
        self.consents: set[tuple[str, str]] = set()  # (client_id, digilockerid)
        self.lockers: dict[str, dict[str, Document]] = {}
        self.pushes: dict[str, Counter[str]] = {}
        self.push_log: list[dict[str, Any]] = []
        self.pull_log: list[dict[str, Any]] = []
        self.injected: Counter[str] = Counter()
        self.set_faults(faults)

    def set_faults(self, faults: Faults) -> None:
        """New fault settings; the generator restarts from their seed so a test replays exactly."""
        with self.lock:
            self.faults = faults
            self.rng = random.Random(faults.seed)  # noqa: S311 - reproducible faults, not secrets
            self.fail_next = faults.fail_next

    def draw(self) -> tuple[float, float]:
        with self.lock:
            return self.rng.random(), self.rng.random()

    def document(self, uri: str) -> Document | None:
        with self.lock:
            for locker in self.lockers.values():
                if uri in locker:
                    return locker[uri]
            return None

    def issued(self, digilockerid: str) -> list[Document]:
        with self.lock:
            return list(self.lockers.get(digilockerid, {}).values())

    def count_push(self, uri: str, action: str) -> None:
        with self.lock:
            self.pushes.setdefault(uri, Counter())[action] += 1

    def log_push(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.push_log.append(entry)

    def log_pull(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.pull_log.append(entry)

    def snapshot(self) -> dict[str, Any]:
        """What GET /emulator/state shows (documented in the README)."""
        with self.lock:
            pulls = Counter(e["kind"] for e in self.pull_log)
            failed = sum(1 for e in self.pull_log if not e["ok"])
            return {
                "pushes": {uri: {a: counts.get(a, 0) for a in "AUD"}
                           for uri, counts in self.pushes.items()},
                "push_log": list(self.push_log),
                "pulls": {"doc": pulls.get("doc", 0), "uri": pulls.get("uri", 0),
                          "failed": failed},
                "pull_log": list(self.pull_log),
                "documents": {dl: [d.view() for d in locker.values()]
                              for dl, locker in self.lockers.items()},
                "linked": sorted([c, d] for c, d in self.consents),
                "faults": dict(vars(self.faults), paths=list(self.faults.paths),
                               fail_next=self.fail_next),
                "injected": dict(self.injected),
            }

    def reset(self) -> None:
        """Forget documents, counters and logs (not tokens or consents)."""
        with self.lock:
            self.lockers.clear()
            self.pushes.clear()
            self.push_log.clear()
            self.pull_log.clear()
            self.injected.clear()
