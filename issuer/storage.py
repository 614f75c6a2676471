"""Content-addressed store for signed PDFs: the path is derived from the SHA-256 of the bytes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    sha256: str
    path: str  # relative to the store root


class PdfStore:
    """Files live at <root>/<aa>/<bb>/<sha256>.pdf, written atomically, never rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> Stored:
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Mutants of the prefix are equivalent: it names a file that never outlives put().
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")  # equivalent: prefix
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                # missing_ok=False/None is equivalent: mkstemp made the file before the try.
                Path(tmp).unlink(missing_ok=True)  # equivalent: missing_ok
                raise
        return Stored(digest, relative)

    def get(self, relative: str, sha256: str) -> bytes:
        """The stored bytes, checked against the hash recorded for them."""
        data = (self.root / relative).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"stored file {relative} does not match its recorded SHA-256")
        return data
