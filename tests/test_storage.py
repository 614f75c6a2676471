"""The content-addressed PDF store: files are found by their SHA-256 and checked against it on
every read, so a corrupted, truncated or swapped file is an error and its bytes never leave."""

from __future__ import annotations

import errno
import hashlib
import resource
import signal
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from issuer.models import AuditEvent, Certificate
from issuer.storage import (
    FileStore,
    StoreMissing,
    StoreUnavailable,
    StoreUnreadable,
    content_key,
)
from tests.conftest import Live, sample

PDF = b"%PDF-1.7\n% not really a certificate, just bytes to store\n%%EOF\n"


def test_put_stores_by_hash_and_get_returns_the_same_bytes(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    digest = hashlib.sha256(PDF).hexdigest()

    stored = store.put(PDF)

    assert stored.sha256 == digest
    assert stored.path == f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"
    assert (tmp_path / "store" / stored.path).read_bytes() == PDF
    assert store.get(stored.path, stored.sha256) == PDF
    assert not list((tmp_path / "store").rglob(".tmp-*")), "no temporary file is left behind"


def test_putting_the_same_bytes_again_keeps_the_one_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    first = store.put(PDF)
    mtime = (tmp_path / first.path).stat().st_mtime_ns

    again = store.put(PDF)

    assert again == first
    assert (tmp_path / first.path).stat().st_mtime_ns == mtime, "never rewritten"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{first.sha256}.pdf"]
    other = store.put(PDF + b"\n")
    assert other.sha256 != first.sha256 and store.get(other.path, other.sha256) == PDF + b"\n"


@pytest.mark.parametrize("damage", ["flip", "truncate", "append", "swap"])
def test_a_damaged_file_is_an_error_never_its_bytes(tmp_path: Path, damage: str) -> None:
    store = FileStore(tmp_path)
    stored = store.put(PDF)
    path = tmp_path / stored.path
    path.chmod(0o644)
    data = bytearray(PDF)
    if damage == "flip":
        data[10] ^= 0x01
    elif damage == "truncate":
        del data[-5:]
    elif damage == "append":
        data += b"%injected\n"
    else:
        data = bytearray(b"%PDF-1.7\n% another document entirely\n%%EOF\n")
    path.write_bytes(bytes(data))

    with pytest.raises(StoreUnreadable) as caught:
        store.get(stored.path, stored.sha256)
    # Said plainly to the client; the operators' audit names the key and the file itself.
    assert str(caught.value) == caught.value.detail == (
        "the stored PDF does not match its recorded SHA-256, so it is not served; the "
        "operators have been told (it can be restored from a backup)")
    assert caught.value.relative == stored.path
    assert caught.value.where == str(tmp_path / stored.path)
    assert (caught.value.code, caught.value.status, caught.value.title) == (
        "stored_file_corrupt", 500, "Stored file corrupt")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    stored = store.put(PDF)
    (tmp_path / stored.path).unlink()
    with pytest.raises(StoreMissing) as caught:
        store.get(stored.path, stored.sha256)
    # The client is told plainly; the operators' audit names the key and the file itself.
    assert str(caught.value) == caught.value.detail == (
        "the stored PDF is missing from the store; the operators have been told (it can be "
        "restored from a backup)")
    assert caught.value.relative == stored.path
    assert caught.value.where == str(tmp_path / stored.path)
    assert (caught.value.code, caught.value.status) == ("stored_file_missing", 503)


def test_an_unreachable_store_is_an_error_naming_the_object() -> None:
    # Raised by the S3 store (tests/test_object_store.py); its message and fields, here.
    key = content_key(hashlib.sha256(PDF).hexdigest())
    error = StoreUnavailable(key, f"s3://certificates/pramaan/{key}")
    assert str(error) == error.detail == (
        "the file store cannot be reached just now; try again in a few minutes")
    assert error.relative == key and error.where == f"s3://certificates/pramaan/{key}"
    assert (error.code, error.status, error.title) == ("store_unavailable", 503,
                                                       "Store unavailable")


def test_exists_and_keys_see_stored_files_only(tmp_path: Path) -> None:
    # What `pramaan store migrate` walks: every stored PDF's key in key order, and nothing
    # else in the folder (a put's temporary file, a stray file, a folder).
    store = FileStore(tmp_path)
    assert list(store.keys()) == []
    stored = [store.put(PDF + b"%%%d\n" % n) for n in range(3)]
    (tmp_path / stored[0].path).with_name(".tmp-abc123").write_bytes(PDF)
    (tmp_path / stored[0].path).with_suffix(".txt").write_bytes(PDF)
    (tmp_path / "loose.pdf").write_bytes(PDF)

    assert list(store.keys()) == sorted(s.path for s in stored)
    assert all(store.exists(s.path) for s in stored)
    missing = content_key(hashlib.sha256(b"never stored").hexdigest())
    assert not store.exists(missing)
    assert not store.exists(stored[0].path.rsplit("/", 1)[0]), "a folder is not a stored file"


def test_download_of_a_corrupted_stored_pdf_is_a_500_without_its_bytes(live: Live) -> None:
    created = live.post_json("/api/v1/certificates", sample("birth-1")).json()
    pdf_url = created["links"]["self"] + "/pdf"
    good = live.get(pdf_url)
    assert good.status_code == 200
    with live.runtime.sessions() as session:
        record = session.get(Certificate, created["id"])
        assert record is not None and record.pdf_path
    path = live.runtime.settings.store_dir / record.pdf_path
    damaged = bytearray(good.content)
    damaged[len(damaged) // 2] ^= 0x20
    path.write_bytes(bytes(damaged))

    response = live.get(pdf_url)

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "stored_file_corrupt"
    assert b"%PDF" not in response.content and record.pdf_path not in response.text
    # The operators' audit event names the damaged file itself (to restore it from a backup).
    with live.runtime.sessions() as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "store_read_failed")).all()
    assert [(e.certificate_id, e.details["code"], e.details["object"]) for e in events] == [
        (record.id, "stored_file_corrupt", str(path))]
    path.write_bytes(good.content)  # repaired: served again, byte for byte
    assert live.get(pdf_url).content == good.content


def test_documents_sharing_a_folder_are_both_stored(tmp_path: Path) -> None:
    # Find two documents whose hashes share the first four hex digits (<aa>/<bb>/): the second
    # put finds the folder already there.
    seen: dict[str, bytes] = {}
    for n in range(1_000_000):
        data = PDF + b"%%%d\n" % n
        prefix = hashlib.sha256(data).hexdigest()[:4]
        if prefix in seen:
            first, second = seen[prefix], data
            break
        seen[prefix] = data
    store = FileStore(tmp_path)
    a, b = store.put(first), store.put(second)
    assert a.path.rsplit("/", 1)[0] == b.path.rsplit("/", 1)[0] and a.path != b.path
    assert store.get(a.path, a.sha256) == first and store.get(b.path, b.sha256) == second


def test_the_store_writes_beside_the_target_not_in_the_system_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An atomic rename needs the temporary file on the store's own filesystem.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-dir"))
    store = FileStore(tmp_path / "store")
    stored = store.put(PDF)
    assert store.get(stored.path, stored.sha256) == PDF


def test_a_failed_write_leaves_nothing_behind_and_raises_the_write_error(tmp_path: Path) -> None:
    # The disk fills up mid-write (a file-size limit stands in for it): the error is the
    # write's own, and neither a partial file nor a temporary one is left.
    store = FileStore(tmp_path)
    data = PDF * 2000
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError) as caught:
            store.put(data)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.errno == errno.EFBIG
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    stored = store.put(data)  # and it works once there is room again
    assert store.get(stored.path, stored.sha256) == data
