"""The Base64 of signed PDFs DigiLocker has pulled lately, by SHA-256, in one worker's memory.

DigiLocker pulls a document each time its holder opens it, so the same few PDFs are read, hashed
and Base64-encoded again and again. Keyed by the PDF's recorded SHA-256, an entry can never be
stale: a corrected certificate is a new PDF with a new hash. What is cached was checked against
that hash when it was read (Store.get), so a file changed on disk later is never handed out
from here either; it is caught when the entry is next read from disk. Bounded by the characters
held (least recently used out first); thread-safe for gunicorn's threads.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_BUDGET = 32 * 1024 * 1024  # characters of Base64, per worker process


class PdfCache:
    """At most `budget` characters of Base64 (0: cache nothing)."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._held = 0
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def base64(self, sha256: str, read: Callable[[str], bytes]) -> str:
        """The Base64 of the PDF whose SHA-256 is `sha256`; `read(sha256)` gives its bytes
        (checked against the hash) when it is not held."""
        with self._lock:
            held = self._entries.get(sha256)
            if held is not None:
                self._entries.move_to_end(sha256)
                return held
        encoded = base64.b64encode(read(sha256)).decode("ascii")
        if len(encoded) <= self.budget:
            with self._lock:
                if sha256 not in self._entries:
                    self._entries[sha256] = encoded
                    self._held += len(encoded)
                while self._held > self.budget:
                    _, dropped = self._entries.popitem(last=False)
                    self._held -= len(dropped)
        return encoded

    def __len__(self) -> int:
        return len(self._entries)
