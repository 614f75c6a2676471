"""`pramaan store migrate --to s3://...`: copy a store to another, verifying every hash.

Every object of the source is read (its bytes checked against the SHA-256 its key names) and
written to the target under the same key, unless the target already holds it, in which case
the target's copy is read and checked instead: a run interrupted half-way is simply run again,
and nothing is copied twice. Objects that cannot be read are listed, not skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from issuer.storage import Store, StoreError


@dataclass
class Migrated:
    copied: int = 0
    already_there: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)

    @property
    def total(self) -> int:
        return self.copied + self.already_there + len(self.failed)


def digest_of(key: str) -> str:
    """The SHA-256 a content key names (`aa/bb/<sha256>.pdf`)."""
    name = key.rsplit("/", 1)[-1]
    return name.removesuffix(".pdf")


def migrate(source: Store, target: Store,
            step: Callable[[str, str], None] | None = None) -> Migrated:
    """Copy every object of `source` into `target`; `step(key, outcome)` after each one."""
    done = Migrated()
    for key in source.keys():
        digest = digest_of(key)
        try:
            if target.exists(key):
                target.get(key, digest)
                done.already_there += 1
                outcome = "already there"
            else:
                stored = target.put(source.get(key, digest))
                if stored.path != key:
                    raise ValueError(f"stored as {stored.path}, expected {key}")
                done.copied += 1
                outcome = "copied"
        except (StoreError, ValueError) as exc:
            done.failed.append((key, str(exc)))
            outcome = "failed"
        if step is not None:
            step(key, outcome)
    return done
