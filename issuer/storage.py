"""Where signed PDFs live: a content-addressed store behind one small interface (`Store`).

Two backends, chosen by PRAMAAN_STORE_URL: the local directory (`file:///path`, the embedded
default under PRAMAAN_HOME: `FileStore`) and S3-compatible object storage (`s3://bucket/prefix`:
`issuer/storage_s3.py`). Both keep an object under the key derived from the SHA-256 of its bytes
(`<aa>/<bb>/<sha256>.pdf`), write it once and never rewrite it, and check every read against the
SHA-256 recorded for it. A record's `pdf_path` is that key, whatever the backend.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from issuer.errors import PramaanError


@dataclass(frozen=True)
class Stored:
    sha256: str
    path: str  # the key, relative to the store's root (or prefix)


class StoreError(PramaanError):
    """A stored file cannot be served: said plainly, audited by the API, never a stack trace."""

    def __init__(self, relative: str, where: str, detail: str) -> None:
        super().__init__(detail)
        self.relative = relative
        self.where = where


class StoreMissing(StoreError):
    code = "stored_file_missing"
    status = 503
    title = "Stored file missing"

    def __init__(self, relative: str, where: str) -> None:
        super().__init__(relative, where, "the stored PDF is missing from the store; the "
                         "operators have been told (it can be restored from a backup)")


class StoreUnreadable(StoreError):
    code = "stored_file_corrupt"
    status = 500
    title = "Stored file corrupt"

    def __init__(self, relative: str, where: str) -> None:
        super().__init__(relative, where, "the stored PDF does not match its recorded "
                         "SHA-256, so it is not served; the operators have been told (it can be "
                         "restored from a backup)")


class StoreUnavailable(StoreError):
    code = "store_unavailable"
    status = 503
    title = "Store unavailable"

    def __init__(self, relative: str, where: str) -> None:
        super().__init__(relative, where, "the file store cannot be reached just now; try again "
                         "in a few minutes")


class Store(Protocol):
    """What the service needs of a store."""

    url: str

    def put(self, data: bytes) -> Stored: ...

    def get(self, relative: str, sha256: str) -> bytes: ...

    def exists(self, relative: str) -> bool: ...

    def keys(self) -> Iterator[str]: ...


def content_key(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"


class FileStore:
    """Files live at <root>/<aa>/<bb>/<sha256>.pdf, written atomically, never rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.resolve().as_uri()

    @classmethod
    def of(cls, url: str) -> FileStore:
        """The file store of a file:///absolute/path URL (ValueError for anything else)."""
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") \
                or not parts.path.startswith("/"):
            raise ValueError(f"{url!r}: a file store is file:///absolute/path")
        return cls(Path(unquote(parts.path)))

    def put(self, data: bytes) -> Stored:
        digest = hashlib.sha256(data).hexdigest()
        relative = content_key(digest)
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
        try:
            data = (self.root / relative).read_bytes()
        except FileNotFoundError:
            raise StoreMissing(relative, str(self.root / relative)) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreUnreadable(relative, str(self.root / relative))
        return data

    def exists(self, relative: str) -> bool:
        return (self.root / relative).is_file()

    def keys(self) -> Iterator[str]:
        """Every stored file's key, in key order (not the temporary files of a put)."""
        for path in sorted(self.root.glob("??/??/*.pdf")):
            yield path.relative_to(self.root).as_posix()


def open_store(url: str) -> Store:
    """The store a PRAMAAN_STORE_URL names: file:///absolute/path or s3://bucket/prefix."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return FileStore.of(url)
    if scheme == "s3":
        from issuer.storage_s3 import S3Store

        return S3Store(url)
    raise ValueError(f"{url!r}: the store is file:///path or s3://bucket/prefix")
