"""Bulk issuance (issuer/batches.py, api_batches.py): a CSV or JSON Lines file becomes a batch,
each bad row is reported by line and field, the same file or Idempotency-Key never makes a
second batch, an officer who did not upload it approves it, and every valid row is issued once,
in process and through real RQ workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from issuer.batch_files import read_rows
from issuer.batches import BatchState, Upload, approve_batch, make_certificates, upload
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import utcnow
from issuer.departments import add_department
from issuer.errors import InvalidTransition, ValidationFailed
from issuer.models import AuditEvent, Batch, BatchRow, Certificate, Department, State
from issuer.settings import Settings
from issuer.sweep import sweep
from issuer.tokens import create_token
from signing.validate import validate_pdf
from tests.certificate_pdfs import squash, text_of
from tests.conftest import ROOT, Live, make_settings, sample, serve
from tests.test_jobs import run_worker_burst, worker_env

OFFICE = "pmc-births"


def flat(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"child": {"sex": "male"}} as {"child.sex": "male"}: a CSV row's columns."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def births(count: int, first: int = 1) -> list[dict[str, Any]]:
    rows = []
    for n in range(first, first + count):
        row = copy.deepcopy(sample("birth-1"))
        row["registration_number"] = f"B-2026-PMC-{n:06d}"
        rows.append(row)
    return rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = list(flat(rows[0]))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        cells = flat(row)
        writer.writerow([cells.get(c, "") for c in columns])
    return buffer.getvalue().encode()


def as_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


# --- reading files -----------------------------------------------------------------------

def test_a_csv_with_marathi_nested_columns_and_a_bom_reads_as_the_json_request() -> None:
    row = sample("birth-1")
    data = "\ufeff".encode() + as_csv([row]) + b"\r\n"  # Excel's BOM, a trailing blank line
    [read] = read_rows(data, "csv")
    expected = {k: v for k, v in row.items()}
    assert read.problem is None and read.line == 2
    assert read.data == expected
    assert read.data["child"]["name"]["mr"] == "आरव संदीप कुलकर्णी"


def test_bad_rows_are_numbered_and_a_bad_file_is_refused_whole() -> None:
    text = "registration_number,child.sex\nB-1,male\nB-2\n\nB-3,female\n"
    rows = read_rows(text.encode(), "csv")
    assert [(r.line, r.problem.code if r.problem else None) for r in rows] == [
        (2, None), (3, "columns"), (5, None)]
    lines = read_rows(b'{"a": 1}\nnot json\n[1]\n{"a": 1, "a": 2}\n', "jsonl")
    assert [(r.line, r.problem.code if r.problem else None) for r in lines] == [
        (1, None), (2, "json"), (3, "type"), (4, "json")]
    assert "duplicate key" in str(lines[3].problem)
    for data, fmt, code in ((b"\xff\xfe,", "csv", "encoding"), (b"", "csv", "no_header"),
                            (b"a,b\n", "csv", "empty"),
                            (b"a,a\n1,2\n", "csv", "header"), (b"a,a.b\n1,2\n", "csv", "header"),
                            (b"a,.b\n1,2\n", "csv", "header"), (b"\n\n", "jsonl", "empty")):
        with pytest.raises(ValidationFailed) as refused:
            read_rows(data, fmt)
        assert refused.value.errors[0].code == code, data


# --- over HTTP ---------------------------------------------------------------------------

def ensure_department(live: Live) -> None:
    """A births office with maker-checker approval."""
    with live.runtime.sessions() as session, session.begin():
        if session.get(Department, OFFICE) is None:
            add_department(session, OFFICE, "Births office", "जन्म नोंदणी कार्यालय",
                           approval="officer", types=["birth"], actor="test")


def officer_department(live: Live) -> dict[str, requests.Session]:
    """The births office's clerk's and two officers' sessions."""
    ensure_department(live)
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE)
        assert department is not None
        tokens = {role: create_token(session, department, f"{role}-batch", role.rstrip("2"))
                  for role in ("clerk", "officer", "officer2")}
    sessions = {}
    for role, token in tokens.items():
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        sessions[role] = http
    return sessions


def post_batch(live: Live, http: requests.Session, data: bytes, media: str = "text/csv",
               **params: str) -> requests.Response:
    headers = {"Content-Type": media}
    if "key" in params:
        headers["Idempotency-Key"] = params.pop("key")
    return http.post(live.url("/api/v1/batches"), data=data, headers=headers,
                     params={"type": "birth", **params}, timeout=120)


def watermark_pixels(pdf: Path) -> int:
    """How many pixels of the page at 50 dpi are the specimen watermark's pale red (white
    under translucent red: the template itself prints no such colour)."""
    raw = subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", str(pdf)],
                         capture_output=True, check=True).stdout
    magic, width, height, depth, pixels = raw.split(maxsplit=4)
    assert (magic, depth) == (b"P6", b"255")
    assert len(pixels) == int(width) * int(height) * 3
    return sum(1 for i in range(0, len(pixels), 3)
               if pixels[i] > 225 and 150 < pixels[i + 1] < 215 and 150 < pixels[i + 2] < 215
               and pixels[i] - pixels[i + 1] > 25)


def look_at_sample(live: Live, http: requests.Session, batch_id: str) -> None:
    """What an officer does before approving: open a specimen of the batch's rows."""
    shown = http.get(live.url(f"/api/v1/batches/{batch_id}/sample"), timeout=60)
    assert shown.status_code == 200, shown.text
    specimen = http.get(live.url(shown.json()["specimens"][0]["pdf"]), timeout=120)
    assert specimen.status_code == 200, specimen.text


def approve_over_http(live: Live, http: requests.Session, batch_id: str) -> requests.Response:
    look_at_sample(live, http, batch_id)
    return http.post(live.url(f"/api/v1/batches/{batch_id}/approve"), timeout=300)


def seen_and_approved(session: Session, batch: Batch, actor: str) -> None:
    """approve_batch in process, as by an officer who has opened a specimen."""
    batch.sample_seen_by = [*batch.sample_seen_by, actor]
    approve_batch(session, batch, actor)


def test_a_batch_is_validated_reported_approved_as_a_whole_and_issued_once(
        live: Live, tmp_path: Path) -> None:
    people = officer_department(live)
    rows = births(4)
    rows[1]["child"]["sex"] = "unknown"  # line 3: a field error
    rows[3]["registration_number"] = rows[0]["registration_number"]  # line 5: repeats line 2
    rows.append(births(1, first=9)[0])  # line 6: valid
    sent = post_batch(live, people["clerk"], as_csv(rows))
    assert sent.status_code == 201, sent.text
    batch = sent.json()
    assert sent.headers["Location"] == f"/api/v1/batches/{batch['id']}"
    assert (batch["state"], batch["rows"]) == (
        "awaiting_approval", {"total": 5, "valid": 3, "invalid": 2})
    errors = {e["line"]: [x["code"] for x in e["errors"]] for e in batch["row_errors"]}
    assert errors[5] == ["duplicate_in_file"] and 3 in errors and set(errors) == {3, 5}
    assert batch["progress"]["pending"] == 3 and batch["progress"]["failed"] == 2
    report = people["clerk"].get(live.url(batch["links"]["report"]), timeout=60)
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(report.text)))
    assert lines[0] == ["line", "field", "code", "message"]
    assert ["5", "registration_number", "duplicate_in_file",
            "line 2 has the same registration number"] in lines

    # The same file again, or the same key again: the same batch, nothing new.
    again = post_batch(live, people["clerk"], as_csv(rows), key="upload-1")
    assert again.status_code == 200 and again.json()["id"] == batch["id"]
    keyed = post_batch(live, people["clerk"], as_jsonl(births(1, first=20)), "application/x-ndjson",
                       key="upload-2")
    assert keyed.status_code == 201
    replay = post_batch(live, people["clerk"], as_jsonl(births(1, first=20)),
                        "application/x-ndjson", key="upload-2")
    assert replay.status_code == 200 and replay.json()["id"] == keyed.json()["id"]
    reused = post_batch(live, people["clerk"], as_csv(births(1, first=30)), key="upload-2")
    assert reused.status_code == 409, reused.text
    with live.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 2

    # Only an officer approves; then every valid row is issued, each once.
    url = live.url(f"/api/v1/batches/{batch['id']}/approve")
    assert people["clerk"].post(url, timeout=60).status_code == 403
    unseen = people["officer"].post(url, timeout=60)
    assert unseen.status_code == 409 and unseen.json()["code"] == "sample_not_seen"
    approved = approve_over_http(live, people["officer"], batch["id"])
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert done["state"] == "issuing" and done["decided_by"] == f"token:{OFFICE}/officer-batch"
    assert done["progress"] == {"pending": 0, "issued": 3, "failed": 2, "done": True,
                                "rate_per_second": done["progress"]["rate_per_second"],
                                "eta_seconds": None}
    twice = people["officer2"].post(url, timeout=60)
    assert twice.status_code == 409 and twice.json()["code"] == "invalid_state"
    with live.runtime.sessions() as session:
        made = session.scalars(select(Certificate).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch["id"])).all()
        assert sorted(c.registration_number for c in made) == [
            "B-2026-PMC-000001", "B-2026-PMC-000003", "B-2026-PMC-000009"]
        assert {c.state for c in made} == {State.ISSUED.value}
        assert len({c.number for c in made}) == 3
        assert {c.approved_by for c in made} == {done["decided_by"]}
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.like("batch_%"))).all()
        assert sorted(actions) == ["batch_approve", "batch_upload", "batch_upload"]
        pdf = live.runtime.store.get(made[0].pdf_path or "", made[0].pdf_sha256 or "")
    assert validate_pdf(pdf, live.runtime.trust.trust_root_paths).ok

    # The result as one ZIP, streamed (no Content-Length): the signed PDFs and a CSV.
    zipped = people["clerk"].get(live.url(done["links"]["certificates"]), timeout=120,
                                 stream=True)
    assert zipped.status_code == 200 and "Content-Length" not in zipped.headers
    assert zipped.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.testzip() is None
        names = sorted(archive.namelist())
        table = list(csv.DictReader(io.StringIO(archive.read("certificates.csv").decode())))
        pdfs = {name: archive.read(name) for name in names if name.endswith(".pdf")}
    by_number = {c.number: c for c in made}
    assert sorted(pdfs) == sorted(f"{n.replace('/', '-')}.pdf" for n in by_number if n)
    for name, data in pdfs.items():
        record = next(c for c in made if f"{(c.number or '').replace('/', '-')}.pdf" == name)
        assert hashlib.sha256(data).hexdigest() == record.pdf_sha256
    assert [(r["line"], r["state"]) for r in table] == [
        ("2", "issued"), ("4", "issued"), ("6", "issued"), ("3", "invalid"), ("5", "invalid")]
    assert all(r["pdf_sha256"] == by_number[r["number"]].pdf_sha256
               for r in table if r["state"] == "issued")
    assert "duplicate" in table[-1]["error"]


def test_an_officer_sees_specimens_spread_through_the_file_that_can_never_pass_as_certificates(
        live: Live, tmp_path: Path) -> None:
    people = officer_department(live)
    rows = births(12, first=700)
    rows[4]["child"]["sex"] = "unknown"  # line 6 is bad: never shown
    rows[-1]["child"]["name"] = {"en": "Tanvi Shrikant Deshpande", "mr": "तन्वी श्रीकांत देशपांडे"}
    batch = post_batch(live, people["clerk"], as_csv(rows)).json()
    shown = people["officer"].get(live.url(f"/api/v1/batches/{batch['id']}/sample"), timeout=60)
    lines = [s["line"] for s in shown.json()["specimens"]]
    # 11 valid rows (lines 2-5, 7-13): the first, the last and three evenly between.
    assert lines == [2, 4, 8, 11, 13], lines
    specimen = people["officer"].get(live.url(shown.json()["specimens"][-1]["pdf"]), timeout=120)
    assert specimen.status_code == 200 and specimen.headers["Content-Type"] == "application/pdf"
    pdf = tmp_path / "specimen.pdf"
    pdf.write_bytes(specimen.content)
    text = squash(text_of(tmp_path, specimen.content))
    assert squash("Tanvi Shrikant Deshpande") in text and squash("तन्वी श्रीकांत देशपांडे") in text
    assert squash("SPECIMEN · नमुना") in text  # where the number goes
    assert watermark_pixels(pdf) > 1500  # across the page (poppler reads no rotated text)
    assert "PMC/B/" not in text  # no certificate number
    unsigned = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, check=False)
    assert "does not contain any signatures" in unsigned.stdout + unsigned.stderr
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    scan = subprocess.run(["zbarimg", "-q", str(tmp_path / "page-1.png")],
                          capture_output=True, text=True, check=False)
    assert scan.stdout == "", scan.stdout  # no seal to scan
    with live.runtime.sessions() as session:
        seen = session.get(Batch, batch["id"])
        assert seen is not None and seen.sample_seen_by == [f"token:{OFFICE}/officer-batch"]
        assert session.scalar(select(func.count()).select_from(Certificate)) == 0

    for wrong in ("6", "1", "14", "99999"):  # a bad row, the header, past the end
        missing = people["officer"].get(
            live.url(f"/api/v1/batches/{batch['id']}/sample/{wrong}.pdf"), timeout=60)
        assert missing.status_code == 404, (wrong, missing.text)
        assert missing.json()["code"] == "not_found"
    # The uploader looking changes nothing: only the approver's own look counts.
    look_at_sample(live, people["clerk"], batch["id"])
    unseen = people["officer2"].post(live.url(f"/api/v1/batches/{batch['id']}/approve"),
                                     timeout=60)
    assert unseen.status_code == 409 and unseen.json()["code"] == "sample_not_seen"
    approved = approve_over_http(live, people["officer2"], batch["id"])
    assert approved.status_code == 200, approved.text


def test_all_or_nothing_refuses_a_batch_with_one_bad_row(live: Live) -> None:
    people = officer_department(live)
    rows = births(3, first=40)
    del rows[2]["child"]["date_of_birth"]
    sent = post_batch(live, people["clerk"], as_jsonl(rows), "application/x-ndjson",
                      mode="all_or_nothing")
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["state"] == "refused" and body["progress"]["pending"] == 0
    assert body["row_errors"][0]["line"] == 3
    assert body["row_errors"][0]["errors"][0]["field"] == "child.date_of_birth"
    approve = people["officer"].post(live.url(f"/api/v1/batches/{body['id']}/approve"),
                                     timeout=60)
    assert approve.status_code == 409
    with live.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BatchRow)) == 0
        assert session.scalar(select(func.count()).select_from(Certificate)) == 0


def test_what_a_client_gets_wrong_is_a_clear_error(live: Live) -> None:
    people = officer_department(live)
    clerk = people["clerk"]
    cases = [
        (post_batch(live, clerk, b"a,b\n1,2\n", "application/pdf"), 415, None),
        (clerk.post(live.url("/api/v1/batches"), data=b"x", headers={
            "Content-Type": "text/csv"}, timeout=60), 422, ("type", "required")),
        (post_batch(live, clerk, as_csv(births(1)), type=""), 422, ("type", "required")),
        (post_batch(live, clerk, as_csv(births(1)), type="nope"), 422, ("type", "choice")),
        (post_batch(live, clerk, as_csv(births(1)), type="death"), 422, ("type", "not_allowed")),
        (post_batch(live, clerk, as_csv(births(1)), mode="some"), 422, ("mode", "choice")),
        (post_batch(live, clerk, b"\xff\xfe", "text/csv"), 422, ("file", "encoding")),
    ]
    for response, status, error in cases:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        if error is not None:
            first = response.json()["errors"][0]
            assert (first["field"], first["code"]) == error, response.text
    in_form = clerk.post(live.url("/api/v1/batches"), files={
        "file": ("births.csv", as_csv(births(1)), "text/csv")}, data={"type": "nope"}, timeout=60)
    assert in_form.status_code == 422, in_form.text
    assert [(e["field"], e["code"]) for e in in_form.json()["errors"]] == [("type", "choice")]
    multipart = clerk.post(live.url("/api/v1/batches"), files={
        "file": ("births.csv", as_csv(births(2, first=50)), "text/csv")},
        data={"type": "birth"}, timeout=60)
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["file_name"] == "births.csv"
    unknown = clerk.get(live.url("/api/v1/batches/not-an-id"), timeout=60)
    assert unknown.status_code == 404


def test_another_department_cannot_see_a_batch(live: Live) -> None:
    people = officer_department(live)
    batch = post_batch(live, people["clerk"], as_csv(births(1, first=60))).json()
    theirs = live.get(f"/api/v1/batches/{batch['id']}")  # the development department's clerk
    assert theirs.status_code == 404
    with live.runtime.sessions() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
        assert any(e.details.get("batch") == batch["id"] for e in denied)


def test_a_self_approving_department_issues_at_upload(live: Live) -> None:
    sent = live.http.post(live.url("/api/v1/batches"), data=as_csv(births(2, first=70)),
                          headers={"Content-Type": "text/csv"}, params={"type": "birth"},
                          timeout=300)
    assert sent.status_code == 201, sent.text
    with live.runtime.sessions() as session:
        batch = session.get(Batch, sent.json()["id"])
        assert batch is not None and batch.state == BatchState.ISSUING
        assert batch.department_id == DEV_DEPARTMENT


# --- in process: the rules ---------------------------------------------------------------

def _batch(live: Live, rows: list[dict[str, Any]], actor: str = "clerk-a") -> str:
    ensure_department(live)
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE)
        assert department is not None
        batch, created = upload(session, department, actor,
                                Upload(as_csv(rows), "csv", "birth"), live.runtime.settings)
        assert created
        return batch.id


def test_the_uploader_never_approves_and_aadhaar_is_never_kept(live: Live) -> None:
    rows = births(1, first=80)
    rows[0]["applicant"]["aadhaar"] = "234123412346"
    batch_id = _batch(live, rows)
    with live.runtime.sessions() as session, session.begin():
        batch = session.get(Batch, batch_id)
        assert batch is not None
        assert batch.valid_rows == 1, batch.row_errors
        with pytest.raises(InvalidTransition):
            approve_batch(session, batch, "clerk-a")
        row = session.scalars(select(BatchRow).where(BatchRow.batch_id == batch_id)).one()
        assert "234123412346" not in json.dumps(row.request)
        assert row.aadhaar_last4 == "2346" and row.aadhaar_hmac


def test_a_registration_issued_meanwhile_is_a_failed_row_and_the_rest_are_issued(
        live: Live) -> None:
    rows = births(3, first=90)
    batch_id = _batch(live, rows)
    # A single request for line 3's registration, issued before the batch is approved.
    people = officer_department(live)
    single = people["clerk"].post(live.url("/api/v1/certificates"), json=rows[1], timeout=60)
    assert single.status_code == 202, single.text
    people["officer"].post(live.url(f"/api/v1/certificates/{single.json()['id']}/approve"),
                           timeout=120)
    with live.runtime.sessions() as session, session.begin():
        batch = session.get(Batch, batch_id)
        assert batch is not None
        seen_and_approved(session, batch, "officer-b")
    issued: list[str] = []
    made = make_certificates(live.runtime.sessions, batch_id, live.runtime.settings,
                             issued.extend)
    assert made == 2 and len(issued) == 2
    assert make_certificates(live.runtime.sessions, batch_id, live.runtime.settings,
                             issued.extend) == 0  # a repeat makes nothing
    with live.runtime.sessions() as session:
        failed = session.scalars(select(BatchRow).where(BatchRow.batch_id == batch_id,
                                                        BatchRow.error.is_not(None))).one()
        assert failed.line == 3 and "meanwhile" in (failed.error or "")


def test_a_row_whose_registration_has_a_current_certificate_is_refused_at_upload(
        live: Live) -> None:
    people = officer_department(live)
    rows = births(3, first=120)
    single = people["clerk"].post(live.url("/api/v1/certificates"), json=rows[1], timeout=60)
    assert single.status_code == 202, single.text
    batch_id = _batch(live, rows)
    with live.runtime.sessions() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None and batch.valid_rows == 2
        assert batch.row_errors == [{"line": 3, "errors": [{
            "field": "registration_number", "code": "duplicate",
            "message": "a current certificate exists for this registration"}]}]


def test_a_registration_taken_between_a_chunk_s_check_and_insert_is_a_failed_row(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a chunk can lose: its one query finds the registration free, then another
    request's certificate commits before the chunk inserts. Here the query is made to answer
    as it would have a moment earlier (free) while the other certificate already exists: the
    unique index refuses the insert, the chunk rolls back whole, the next pass marks the row."""
    import issuer.batches as batches

    rows = births(3, first=95)
    batch_id = _batch(live, rows)
    people = officer_department(live)
    single = people["clerk"].post(live.url("/api/v1/certificates"), json=rows[2], timeout=60)
    assert single.status_code == 202, single.text
    real, passes = batches.active_registrations, []

    def a_moment_earlier(*args: Any) -> set[str]:
        passes.append(1)
        return set() if len(passes) == 1 else real(*args)

    monkeypatch.setattr(batches, "active_registrations", a_moment_earlier)
    with live.runtime.sessions() as session, session.begin():
        batch = session.get(Batch, batch_id)
        assert batch is not None
        seen_and_approved(session, batch, "officer-b")
    issued: list[str] = []
    assert make_certificates(live.runtime.sessions, batch_id, live.runtime.settings,
                             issued.extend) == 2
    assert len(passes) >= 2 and len(issued) == 2
    with live.runtime.sessions() as session:
        failed = session.scalars(select(BatchRow).where(BatchRow.batch_id == batch_id,
                                                        BatchRow.error.is_not(None))).one()
        assert failed.line == 4 and "meanwhile" in (failed.error or "")


def test_a_stopped_batch_is_resumed_by_the_sweeper(live: Live) -> None:
    batch_id = _batch(live, births(3, first=100))
    with live.runtime.sessions() as session, session.begin():
        batch = session.get(Batch, batch_id)
        assert batch is not None
        seen_and_approved(session, batch, "officer-b")  # and the job never ran
    assert sweep(live.runtime, older_than_seconds=0) >= 1
    with live.runtime.sessions() as session:
        states = session.scalars(select(Certificate.state).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch_id)).all()
        assert sorted(states) == [State.ISSUED.value] * 3
        assert session.get(Batch, batch_id).state == BatchState.ISSUING  # type: ignore[union-attr]


# --- through RQ workers ------------------------------------------------------------------

@pytest.fixture
def live_rq(tmp_path: Path, database_url: str, keys_dir: Path, redis_url: str) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url))


def test_rq_workers_make_and_issue_a_batch_each_row_once(live_rq: Live) -> None:
    people = officer_department(live_rq)
    batch = post_batch(live_rq, people["clerk"], as_csv(births(12, first=200))).json()
    approved = approve_over_http(live_rq, people["officer"], batch["id"])
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    ran = run_worker_burst(live_rq.runtime.settings, "--processes", "2")
    body = people["clerk"].get(live_rq.url(f"/api/v1/batches/{batch['id']}"), timeout=60).json()
    assert body["state"] == "issuing", ran.stderr[-8000:]
    assert (body["progress"]["issued"], body["progress"]["pending"]) == (12, 0)
    with live_rq.runtime.sessions() as session:
        signs = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "sign"))
        assert signs == 12


# --- the pipeline under failure ----------------------------------------------------------

def start_worker(settings: Settings, **env: str) -> subprocess.Popen[str]:
    """A long-running worker (not burst) sweeping every second: work stuck for no time at all
    goes back to the queue."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py"), "--rts-every", "0"],
        env={**worker_env(settings), "PRAMAAN_SWEEP_SECONDS": "1",
             "PRAMAAN_SWEEP_AFTER_SECONDS": "0", **env},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(worker: subprocess.Popen[str]) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        _, stderr = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        _, stderr = worker.communicate()
    return stderr


def batch_states(live: Live, batch_id: str) -> list[str]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(Certificate.state).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch_id)))


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_worker_sweeps_up_an_approved_batch_nobody_enqueued(live_rq: Live) -> None:
    batch_id = _batch(live_rq, births(5, first=300))
    with live_rq.runtime.sessions() as session, session.begin():
        batch = session.get(Batch, batch_id)
        assert batch is not None
        seen_and_approved(session, batch, "officer-b")  # Redis never heard of it
    worker = start_worker(live_rq.runtime.settings)
    try:
        wait_until(lambda: batch_states(live_rq, batch_id) == [State.ISSUED.value] * 5, 120,
                   "the worker's sweeper did not hand the batch on")
    finally:
        stderr = stop(worker)
    assert "sweep: " in stderr


def test_a_worker_killed_mid_batch_loses_no_row_and_issues_none_twice(live_rq: Live) -> None:
    from redis import Redis
    from rq import Queue, Worker
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    people = officer_department(live_rq)
    rows = 40
    batch = post_batch(live_rq, people["clerk"], as_csv(births(rows, first=400))).json()
    # The TSA 300 ms away (B-T): a job spends most of its time waiting, so the kill lands in
    # the middle of one.
    slow = {"PRAMAAN_TSA_URL": "dev", "PRAMAAN_SIGNATURE_LEVEL": "B-T",
            "PRAMAAN_SIGNATURE_LEVELS": "", "PRAMAAN_DEV_TSA_DELAY_MS": "300"}
    first = start_worker(live_rq.runtime.settings, PRAMAAN_SWEEP_SECONDS="0", **slow)
    try:
        approved = approve_over_http(live_rq, people["officer"], batch["id"])
        assert approved.status_code == 200

        def mid_job() -> bool:
            states = batch_states(live_rq, batch["id"])
            return states.count(State.ISSUED.value) >= 5 and State.SIGNING.value in states

        wait_until(mid_job, 120, "the first worker issued nothing")
        first.kill()  # SIGKILL: no goodbye, a job in its hands
        first.communicate()
    finally:
        stop(first)
    issued_at_kill = batch_states(live_rq, batch["id"]).count(State.ISSUED.value)
    assert issued_at_kill < rows, "killed too late to prove anything"
    # What the dead worker held stays `signing`, its job `started`; as if five minutes passed
    # (issue.RESUME_AFTER; RQ's heartbeat TTL, the job's timeout and a minute), no worker alive.
    with live_rq.runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.state == State.SIGNING.value)
                        .values(updated_at=utcnow() - timedelta(minutes=5)))
    redis = Redis.from_url(live_rq.runtime.settings.redis_url or "")
    queue = Queue("sign", connection=redis)
    abandoned = StartedJobRegistry(queue=queue).get_expired_job_ids(time.time() + 300)
    assert len(abandoned) == 1, abandoned  # the job it died with
    # A worker that is already running (its own start-up clean-up of RQ's registries done: RQ
    # cleans them again only every ten minutes) must find it once its heartbeat has expired.
    before = Worker.count(connection=redis)  # the dead one may still be listed
    second = start_worker(live_rq.runtime.settings, PRAMAAN_SWEEP_SECONDS="2")
    wait_until(lambda: Worker.count(connection=redis) > before, 120, "the worker is not up")
    time.sleep(1)
    with redis.pipeline() as pipe:  # its heartbeat expired
        pipe.zadd(StartedJobRegistry(queue=queue).key, {abandoned[0]: time.time() - 1})
        pipe.execute()
    try:
        wait_until(lambda: batch_states(live_rq, batch["id"]) == [State.ISSUED.value] * rows,
                   300, "the batch did not complete after the kill")
    finally:
        stop(second)
    with live_rq.runtime.sessions() as session:
        made = session.scalars(select(Certificate).join(
            BatchRow, BatchRow.certificate_id == Certificate.id).where(
            BatchRow.batch_id == batch["id"])).all()
        serials = sorted(int((c.number or "").rsplit("/", 1)[1]) for c in made)
        assert serials == list(range(serials[0], serials[0] + rows))  # no gap, no repeat
        signs = session.execute(select(AuditEvent.certificate_id, func.count()).where(
            AuditEvent.action == "sign").group_by(AuditEvent.certificate_id)).all()
        assert sorted(count for _, count in signs) == [1] * rows  # each signed once
    failed = FailedJobRegistry(queue=queue).get_job_ids()
    # The job that died was reaped (failed) by the sweeper, then replaced by a new one that
    # finished its certificate: nothing is left failed.
    assert failed == [], failed
    redis.close()


# --- pramaan bulk ------------------------------------------------------------------------

def pramaan_bulk(live: Live, *args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRAMAAN_")}
    if token is not None:
        env["PRAMAAN_API_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "cli", "bulk", *args, "--url", live.base],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_pramaan_bulk_uploads_waits_for_approval_and_follows_to_the_end(
        live: Live, tmp_path: Path) -> None:
    people = officer_department(live)
    tokens = {role: http.headers["Authorization"].split()[1] for role, http in people.items()}
    rows = births(3, first=500)
    rows.append(copy.deepcopy(rows[0]))  # line 5 repeats line 2
    path = tmp_path / "births.csv"
    path.write_bytes(as_csv(rows))

    sent = pramaan_bulk(live, str(path), "--type", "birth", token=tokens["clerk"])
    assert sent.returncode == 1, sent.stderr  # 1: a row failed (0 only when none did)
    assert "awaiting_approval" in sent.stdout and "3 valid, 1 not" in sent.stdout
    batch_id = sent.stdout.split()[1]
    assert "/report.csv" in sent.stdout and "--approve" in sent.stdout
    again = pramaan_bulk(live, str(path), "--type", "birth", token=tokens["clerk"])
    assert again.stdout.split()[1] == batch_id  # the same file: the same batch

    refused = pramaan_bulk(live, batch_id, "--approve", token=tokens["clerk"])
    assert refused.returncode == 2 and "HTTP 403" in refused.stderr
    unseen = pramaan_bulk(live, batch_id, "--approve", token=tokens["officer"])
    assert unseen.returncode == 2 and "sample_not_seen" in unseen.stderr
    both = pramaan_bulk(live, batch_id, "--sample", str(tmp_path / "s"), "--approve",
                        token=tokens["officer"])
    assert both.returncode == 2 and "sample first" in both.stderr
    looked = pramaan_bulk(live, batch_id, "--sample", str(tmp_path / "sample"),
                          token=tokens["officer"])
    assert looked.returncode == 0, looked.stderr
    specimens = sorted((tmp_path / "sample").glob("*.pdf"))
    assert [p.name for p in specimens] == [
        f"batch-{batch_id}-line-{line}-specimen.pdf" for line in (2, 3, 4)]
    assert all(p.read_bytes().startswith(b"%PDF-") for p in specimens)
    assert str(specimens[0]) in looked.stdout
    done = pramaan_bulk(live, batch_id, "--approve", "--wait", token=tokens["officer"])
    assert done.returncode == 1, done.stderr  # one row failed: not a clean run
    assert "issued 3, failed 1, pending 0" in done.stdout
    assert "issuing" in done.stderr and "4/4" in done.stderr  # the bar, at its end

    missing = pramaan_bulk(live, batch_id, token=None)
    assert missing.returncode == 2 and "PRAMAAN_API_TOKEN" in missing.stderr
    untyped = pramaan_bulk(live, str(path), token=tokens["clerk"])
    assert untyped.returncode == 2 and "--type" in untyped.stderr


def test_a_batch_s_failed_certificates_are_retried_by_an_officer(live: Live) -> None:
    people = officer_department(live)
    batch = post_batch(live, people["clerk"], as_csv(births(2, first=600))).json()
    url = live.url(f"/api/v1/batches/{batch['id']}")
    approve_over_http(live, people["officer"], batch["id"])
    with live.runtime.sessions() as session, session.begin():  # one of them failed for good
        row = session.scalars(select(BatchRow).where(BatchRow.batch_id == batch["id"],
                                                     BatchRow.line == 3)).one()
        record = session.get(Certificate, row.certificate_id)
        assert record is not None
        record.state, record.last_error, record.attempts = State.FAILED.value, "disk full", 3
    failed = people["clerk"].get(url, timeout=60).json()["progress"]
    assert (failed["issued"], failed["failed"]) == (1, 1)
    assert people["clerk"].post(url + "/retry", timeout=60).status_code == 403
    retried = people["officer"].post(url + "/retry", timeout=120)
    assert retried.status_code == 200, retried.text
    assert retried.json()["retried"] == 1
    assert retried.json()["progress"] == {**failed, "issued": 2, "failed": 0,
                                          "rate_per_second": retried.json()["progress"][
                                              "rate_per_second"]}
    again = people["officer"].post(url + "/retry", timeout=60).json()
    assert again["retried"] == 0
