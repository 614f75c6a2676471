"""The store behind one interface, against a real S3 server (SeaweedFS on 127.0.0.1, no mocks):
content-addressed keys written once, every read checked, missing and corrupt objects as clear
errors with an audit event, `pramaan store migrate` verifying and resumable, and the whole
service issuing and serving certificates from object storage."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from issuer.models import AuditEvent, BatchRow, Certificate
from issuer.storage import FileStore, StoreMissing, StoreUnreadable, content_key, open_store
from issuer.storage_s3 import S3Store, parse_s3_url
from issuer.store_migrate import migrate
from tests.conftest import ROOT, Live, make_settings, sample, serve
from tests.s3_server import S3Server


def test_store_urls_name_a_backend() -> None:
    assert isinstance(open_store("file:///var/lib/pramaan/store"), FileStore)
    assert isinstance(open_store("s3://bucket/certificates"), S3Store)
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    for bad in ("file://relative/store", "http://bucket/x", "s3:///nobucket", "store"):
        with pytest.raises(ValueError):
            open_store(bad)


def test_an_object_is_written_once_under_its_hash_and_read_back_checked(s3_url: str) -> None:
    store = open_store(s3_url)
    data = b"%PDF-1.7 a certificate"
    stored = store.put(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.path == content_key(stored.sha256)
    assert store.get(stored.path, stored.sha256) == data
    assert store.put(data) == stored  # again: the same key, nothing rewritten
    assert store.exists(stored.path) and not store.exists(content_key("0" * 64))
    assert list(store.keys()) == [stored.path]
    with pytest.raises(StoreMissing):
        store.get(content_key("0" * 64), "0" * 64)


def test_a_changed_object_is_refused_on_read_and_never_overwritten(
        s3_url: str, s3_server: S3Server) -> None:
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    stored = store.put(b"%PDF-1.7 the original")
    # Someone with the bucket's keys overwrites it behind our back.
    s3_server.client().put_object(Bucket=store.bucket, Key=store.key(stored.path),
                                  Body=b"%PDF-1.7 forged")
    with pytest.raises(StoreUnreadable):
        store.get(stored.path, stored.sha256)
    # A put of the original finds the key taken by other bytes: refused, not overwritten.
    with pytest.raises(StoreUnreadable):
        store.put(b"%PDF-1.7 the original")


def test_migrate_copies_every_object_verifies_and_resumes(tmp_path: Path, s3_url: str,
                                                          s3_server: S3Server) -> None:
    local = FileStore(tmp_path / "store")
    blobs = [f"%PDF-1.7 certificate {i}".encode() for i in range(12)]
    for blob in blobs:
        local.put(blob)
    target = open_store(s3_url)
    # Interrupted after five objects...
    seen: list[str] = []

    class Stop(Exception):
        pass

    def step(key: str, outcome: str) -> None:
        seen.append(outcome)
        if len(seen) == 5:
            raise Stop

    with pytest.raises(Stop):
        migrate(local, target, step)
    # ...and run again: the five are checked, not copied again; the rest are copied.
    done = migrate(local, target)
    assert (done.copied, done.already_there, done.failed) == (7, 5, [])
    assert sorted(target.keys()) == sorted(local.keys())
    for key in local.keys():
        digest = key.rsplit("/", 1)[1][:-4]
        assert target.get(key, digest) == local.get(key, digest)
    # A damaged copy already in the target is not taken for "already there".
    assert isinstance(target, S3Store)
    damaged = sorted(target.keys())[3]
    s3_server.client().put_object(Bucket=target.bucket, Key=target.key(damaged), Body=b"x")
    checked = migrate(local, target)
    assert [key for key, _ in checked.failed] == [damaged] and checked.already_there == 11
    # A corrupt source file is listed, never copied.
    victim = sorted(local.keys())[0]
    (local.root / victim).write_bytes(b"rotten")
    again = migrate(local, open_store(s3_url.rstrip("/") + "-second"))
    assert [key for key, _ in again.failed] == [victim] and again.copied == 11


def test_the_service_issues_and_serves_from_object_storage(
        tmp_path: Path, s3_url: str, keys_dir: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, keys_dir, store_url=s3_url)
    for live in serve(settings):
        made = live.post_json("/api/v1/certificates", sample("birth-1"))
        assert made.status_code == 202, made.text
        record = live.get(made.json()["links"]["self"]).json()
        assert record["state"] == "issued"
        pdf = live.get(record["links"]["pdf"]).content
        assert hashlib.sha256(pdf).hexdigest() == record["pdf_sha256"]
        assert not (tmp_path / "var" / "store").exists()  # nothing on the local disk
        store = open_store(s3_url)
        assert store.get(content_key(record["pdf_sha256"]), record["pdf_sha256"]) == pdf


def test_a_missing_object_is_a_clear_error_and_an_audit_event(
        tmp_path: Path, s3_url: str, s3_server: S3Server, keys_dir: Path,
        sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, keys_dir, store_url=s3_url)
    for live in serve(settings):
        made = live.post_json("/api/v1/certificates", sample("birth-1"))
        record = live.get(made.json()["links"]["self"]).json()
        store = open_store(s3_url)
        assert isinstance(store, S3Store)
        s3_server.client().delete_object(
            Bucket=store.bucket, Key=store.key(content_key(record["pdf_sha256"])))
        answer = live.get(record["links"]["pdf"])
        assert answer.status_code == 503
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["code"] == "stored_file_missing"
        assert "Traceback" not in answer.text
        with live.runtime.sessions() as session:
            events = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "store_read_failed")).all()
            assert [e.certificate_id for e in events] == [record["id"]]
            assert events[0].details["code"] == "stored_file_missing"
            issued = session.get(Certificate, record["id"])
            assert issued is not None and issued.state == "issued"  # nothing else changed


def test_pramaan_store_migrate_moves_a_real_store(tmp_path: Path, s3_url: str,
                                                  s3_server: S3Server, keys_dir: Path,
                                                  sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, keys_dir)
    for live in serve(settings):
        for kind in ("birth-1", "death-1"):
            assert live.post_json("/api/v1/certificates", sample(kind)).status_code == 202
    env = {**s3_server.environment(), "PRAMAAN_HOME": str(tmp_path),
           "DATABASE_URL": sqlite_url, "PRAMAAN_KEYS_DIR": str(keys_dir), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "cli", "store", "migrate", "--to", s3_url]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    assert "2 copied, 0 already there, 0 failed" in first.stdout
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert "0 copied, 2 already there, 0 failed" in second.stdout
    with_s3 = make_settings(tmp_path, sqlite_url, keys_dir, store_url=s3_url)
    for live in serve(with_s3):
        listing = live.get("/api/v1/certificates").json()
        assert len(listing["certificates"]) == 2
        for item in listing["certificates"]:
            pdf = live.get(f"/api/v1/certificates/{item['id']}/pdf")
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_batch_zip_leaves_out_a_missing_pdf_says_why_and_audits_it(live: Live) -> None:
    from tests.test_batches import _batch, births, officer_department

    people = officer_department(live)
    batch_id = _batch(live, births(3, first=910))
    approved = people["officer"].post(live.url(f"/api/v1/batches/{batch_id}/approve"),
                                      timeout=60)
    if approved.status_code != 200:  # an officer approves what they have seen a specimen of
        batch = people["officer"].get(live.url(f"/api/v1/batches/{batch_id}"), timeout=60).json()
        sample_of = people["officer"].get(live.url(batch["links"]["sample"]), timeout=60).json()
        people["officer"].get(live.url(sample_of["specimens"][0]["pdf"]), timeout=120)
        approved = people["officer"].post(live.url(f"/api/v1/batches/{batch_id}/approve"),
                                          timeout=60)
    assert approved.status_code == 200, approved.text
    with live.runtime.sessions() as session:
        made = session.scalars(select(Certificate).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch_id).order_by(BatchRow.line)).all()
        assert [c.state for c in made] == ["issued"] * 3
        lost = made[1]
    (live.runtime.settings.store_dir / (lost.pdf_path or "")).unlink()
    zipped = people["clerk"].get(live.url(f"/api/v1/batches/{batch_id}/certificates.zip"),
                                 timeout=120)
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.testzip() is None
        pdfs = [n for n in archive.namelist() if n.endswith(".pdf")]
        table = list(csv.DictReader(io.StringIO(archive.read("certificates.csv").decode())))
    assert len(pdfs) == 2
    row = next(r for r in table if r["certificate_id"] == lost.id)
    assert row["pdf_file"] == "" and row["error"].startswith("stored_file_missing")
    with live.runtime.sessions() as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "store_read_failed")).all()
        assert [e.certificate_id for e in events] == [lost.id]
