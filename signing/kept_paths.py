"""Certificate paths validated with a validation context, kept while that context lives.

A long-term signature (PAdES B-LT, B-LTA) validates the signer's chain and the TSA's (twice:
for the signature's timestamp, then for the document timestamp) before it embeds their
revocation information. A thread reuses one validation context for five minutes
(signing.revocation.ReusedContext), whose revocation information does not change; validating
the same certificates against it again for every document gave the same paths each time and
took a third of a B-LTA signature. The paths are kept per context (a new context, after five
minutes or a failure, validates afresh) and only until the first certificate of the path
expires.

What goes into the document security store does not depend on it: pyHanko embeds every OCSP
answer and CRL the context holds, and the certificates of the paths.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable

from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.path import ValidationPath


class KeptPaths:
    """Validation paths per (validation context, key), kept until the first of them expires."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._kept: weakref.WeakKeyDictionary[
            ValidationContext, dict[Hashable, tuple[list[ValidationPath], dt.datetime]]
        ] = weakref.WeakKeyDictionary()

    async def paths(self, context: ValidationContext, key: Hashable,
                    validate: Callable[[], Awaitable[list[ValidationPath]]],
                    ) -> list[ValidationPath]:
        """The paths `validate` found for `key` with `context`, if none has expired since;
        else `validate`'s answer now (kept when it succeeds; a failure is not kept)."""
        with self._lock:
            kept = self._kept.get(context, {}).get(key)
        if kept is not None and self._clock() < kept[1]:
            return kept[0]
        found = await validate()
        with self._lock:
            self._kept.setdefault(context, {})[key] = (found, expiry(found))
        return found

    def __len__(self) -> int:
        """How many contexts have kept paths (tests: a dropped context's go with it)."""
        with self._lock:
            return len(self._kept)


def expiry(paths: list[ValidationPath]) -> dt.datetime:
    """When the first certificate of `paths` (roots included) expires; never for no paths."""
    return min((cert.not_valid_after for path in paths
                for cert in path.iter_certs(include_root=True)),
               default=dt.datetime.max.replace(tzinfo=dt.UTC))
