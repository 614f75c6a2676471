"""Personal data: after a full run with a known Aadhaar number, the number is nowhere: not in any
table (SQLite file bytes and dump; every PostgreSQL row as text), not in the logs, the PDFs (raw,
inflated, as text), the seal, the store, the audit chain or any response. Only its last four
digits and its HMAC are kept. Contact details show masked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api import create_app
from issuer.aadhaar import (
    DEV_KEY_FILE,
    VARIABLE,
    aadhaar_key,
    dev_key,
    key_source,
    match_aadhaar,
    parse_key,
    take_aadhaar,
)
from issuer.audit import verify_chain
from issuer.certtypes import known_types
from issuer.departments import add_department
from issuer.errors import ConfigError, ValidationFailed
from issuer.models import AuditEvent, Certificate
from issuer.settings import Settings
from issuer.tokens import create_token
from signing.seal import decode_seal
from tests.conftest import SAMPLES, Live, make_settings, sample, serve
from tests.tools import pdftotext

NUMBER = "864297531049"  # passes Verhoeff (tests/test_applicant.py checks the algorithm)
SPACED = "8642 9753 1049"
LAST4 = "1049"
# The number as written three ways, and its first eight digits, together and spaced.
NEEDLES = (NUMBER, SPACED, "8642-9753-1049", NUMBER[:8], SPACED[:9])
KEY_HEX = "7f" * 32


def found_in(data: str | bytes) -> list[str]:
    """Which needles occur in `data`: as text, or in bytes as ASCII, UTF-16 or hex digits."""
    if isinstance(data, str):
        return [n for n in NEEDLES if n in data]
    hits = []
    for needle in NEEDLES:
        forms = (needle.encode(), needle.encode("utf-16-be"), needle.encode("utf-16-le"),
                 needle.encode().hex().encode(), needle.encode().hex().upper().encode())
        if any(form in data for form in forms):
            hits.append(needle)
    return hits


def inflated_streams(pdf: bytes) -> Iterator[bytes]:
    """Every Flate stream of a PDF, inflated (those that do not inflate are skipped)."""
    for match in re.finditer(rb"stream\r?\n", pdf):
        end = pdf.find(b"endstream", match.end())
        if end < 0:
            continue
        try:
            yield zlib.decompressobj().decompress(pdf[match.end():end])
        except zlib.error:
            continue


def pdf_findings(pdf: bytes, workdir: Path, name: str) -> dict[str, list[str]]:
    path = workdir / f"{name}.pdf"
    path.write_bytes(pdf)
    findings = {f"{name}: bytes": found_in(pdf), f"{name}: text": found_in(pdftotext(path))}
    streams = list(inflated_streams(pdf))
    assert streams, f"{name}: no Flate stream inflated: the search would see nothing"
    findings[f"{name}: streams"] = [n for s in streams for n in found_in(s)]
    return findings


def database_text(runtime_engine: sa.Engine, database_url: str) -> str:
    """Every row of every table, as text."""
    parts = []
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as conn:
            parts.extend(conn.iterdump())
        return "\n".join(parts)
    with runtime_engine.connect() as conn:
        tables = conn.scalars(sa.text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")).all()
        assert "certificates" in tables and "audit_events" in tables
        for table in tables:
            rows = conn.scalars(sa.text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).all()
            parts.extend(f"{table}: {row}" for row in rows)
    return "\n".join(parts)


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def with_aadhaar(name: str, aadhaar: str) -> dict[str, Any]:
    data = sample(name)
    data["applicant"]["aadhaar"] = aadhaar
    return data


def issued(live: Live, body: dict[str, Any]) -> tuple[str, list[str]]:
    """Submit over HTTP, wait until issued; the id and every response body seen."""
    created = live.post_json("/api/v1/certificates", body)
    assert created.status_code == 202, created.text
    texts = [created.text]
    url = created.json()["status_url"]
    for _ in range(600):  # inline jobs: issued within the request; a bound, not a timing
        shown = live.get(url)
        texts.append(shown.text)
        if shown.json()["state"] in ("issued", "failed"):
            break
    assert shown.json()["state"] == "issued", shown.text
    assert shown.json()["applicant"]["aadhaar"] == f"XXXX XXXX {LAST4}"
    pdf = live.get(f"{url}/pdf")
    assert pdf.status_code == 200
    return created.json()["id"], texts


def refusals(live: Live) -> list[str]:
    """Requests that are refused while carrying the number: none echoes it."""
    bad_checksum = with_aadhaar("birth-2", SPACED[:-1] + "8")
    as_key = sample("birth-2")
    as_key["applicant"][NUMBER] = "x"
    responses = [
        live.post_json("/api/v1/certificates", bad_checksum),
        live.post_json("/api/v1/certificates", as_key),
        live.http.post(live.url("/api/v1/certificates"),
                       data=f'{{"type": "birth", "{SPACED}": 1, "{SPACED}": 2}}',
                       headers={"Content-Type": "application/json"}, timeout=60),
    ]
    assert [r.status_code for r in responses] == [422, 422, 400]
    fields = [(e["field"], e["code"]) for e in responses[0].json()["errors"]]
    assert fields == [("applicant.aadhaar", "checksum")]
    assert ("applicant.XXXX XXXX 1049", "unknown_field") in [
        (e["field"], e["code"]) for e in responses[1].json()["errors"]]
    return [r.text for r in responses]


def test_an_aadhaar_number_is_nowhere_after_a_run(
    live: Live, settings: Settings, database_url: str, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "werkzeug", "issuer", "api"):
        caplog.set_level(logging.DEBUG, logger=name)
    requests = [with_aadhaar("birth-1", SPACED)]
    for name, kind in (("death-1", "death"), ("property-1", "property_no_dues")):
        if kind in known_types():  # the types of this issue, as they land
            requests.append(with_aadhaar(name, NUMBER))
    ids, texts = [], refusals(live)
    for body in requests:
        cert_id, seen = issued(live, body)
        ids.append(cert_id)
        texts.extend(seen)
    listing = live.get("/api/v1/certificates")
    assert listing.status_code == 200, listing.text
    texts.append(listing.text)

    findings: dict[str, list[str]] = {
        f"response {i}": found_in(text) for i, text in enumerate(texts)}
    rt = live.runtime
    with rt.sessions() as session:
        records = [session.get(Certificate, i) for i in ids]
        events = list(session.scalars(sa.select(AuditEvent)))
        assert verify_chain(session).ok
    (tmp_path / "out").mkdir()
    key = aadhaar_key(settings)
    expected = hmac.new(key, NUMBER.encode(), hashlib.sha256).hexdigest()
    for record in records:
        assert record is not None and record.pdf_path and record.seal_text
        assert (record.aadhaar_last4, record.aadhaar_hmac) == (LAST4, expected)
        assert "aadhaar" not in record.request["applicant"]
        findings[f"{record.id} seal"] = found_in(decode_seal(record.seal_text).cose)
        pdf = rt.store.get(record.pdf_path, record.pdf_sha256)
        findings.update(pdf_findings(pdf, tmp_path / "out", record.id))
    assert match_aadhaar(SPACED, key) == expected
    findings["audit chain"] = found_in(json.dumps(
        [[e.actor, e.action, e.certificate_id, e.details] for e in events], ensure_ascii=False))
    dump = database_text(rt.engine, database_url)
    assert expected in dump and records[0] and records[0].registration_number in dump
    findings["database rows"] = found_in(dump)
    # Every file the run wrote: the SQLite database (and any journal), the store, the PDFs.
    written = list(files_under(tmp_path))
    assert any(p.suffix == ".pdf" for p in written)
    findings.update({f"file {p}": found_in(p.read_bytes()) for p in written})
    captured = capfd.readouterr()
    log_text = caplog.text + "\n".join(
        (r.getMessage() + (r.exc_text or "")) for r in caplog.records)
    assert "POST /api/v1/certificates" in log_text, "the server's own log lines are captured"
    # Nothing even tried to log it: redaction (issuer/log_redaction.py) would leave its mark.
    findings["logs"] = found_in(log_text) + (
        ["redacted"] if f"XXXX XXXX {LAST4}" in log_text else [])
    findings["stdout/stderr"] = found_in(captured.out + captured.err)
    assert {where: hits for where, hits in findings.items() if hits} == {}


def test_the_list_shows_contact_details_masked(live: Live) -> None:
    cert_id, _ = issued(live, with_aadhaar("birth-1", NUMBER))
    listing = live.get("/api/v1/certificates")
    assert listing.status_code == 200, listing.text
    [row] = [r for r in listing.json()["certificates"] if r["id"] == cert_id]
    assert "+919800000012" not in listing.text and "sandeep.k@" not in listing.text
    assert row["applicant"] == {"name": "Sandeep Trimbak Kulkarni", "mobile": "+91******0012",
                                "email": "s*******@example.in", "aadhaar": "XXXX XXXX 1049"}


def test_an_amendment_keeps_the_aadhaar_number_out_of_the_request(live: Live,
                                                                   database_url: str) -> None:
    with live.runtime.sessions() as session, session.begin():
        department = add_department(session, "pmc-ward-aundh", "Aundh Ward", "औंध क्षेत्रीय",
                                    approval="officer", actor="test")
        clerk = create_token(session, department, "aundh-clerk", "clerk")
    live.http.headers["Authorization"] = f"Bearer {clerk}"
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert created.status_code == 202 and created.json()["state"] == "submitted", created.text
    url = created.json()["status_url"]
    amended = live.http.put(live.url(url), json=with_aadhaar("birth-1", SPACED), timeout=60)
    assert amended.status_code == 200, amended.text
    assert amended.json()["applicant"]["aadhaar"] == f"XXXX XXXX {LAST4}"
    again = live.http.put(live.url(url), json=sample("birth-1"), timeout=60)
    assert again.status_code == 200, again.text
    assert again.json()["applicant"]["aadhaar"] == f"XXXX XXXX {LAST4}", "kept, not resent"
    with live.runtime.sessions() as session:
        record = session.get(Certificate, created.json()["id"])
        assert record is not None and record.aadhaar_last4 == LAST4
        assert record.aadhaar_hmac == match_aadhaar(NUMBER, aadhaar_key(live.runtime.settings))
    findings = {"responses": found_in(amended.text + again.text),
                "database rows": found_in(database_text(live.runtime.engine, database_url))}
    assert {where: hits for where, hits in findings.items() if hits} == {}


def test_the_development_key_is_made_once_private(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    results: list[bytes] = []

    def take() -> None:
        results.append(dev_key(keys))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results[0]) == 32
    assert [p.name for p in keys.iterdir()] == [DEV_KEY_FILE], "no temporary file is left"
    assert stat.S_IMODE((keys / DEV_KEY_FILE).stat().st_mode) == 0o600
    assert dev_key(keys) == results[0]


def production(tmp_path: Path, sqlite_url: str, keys_dir: Path, **extra: Any) -> Settings:
    return make_settings(tmp_path, sqlite_url, keys_dir, environment="production",
                         verify_base_url="https://verify.pmc.example.in",
                         verify_base_url_configured=True, **extra)


def test_production_takes_the_key_from_the_environment(tmp_path: Path, sqlite_url: str,
                                                       keys_dir: Path) -> None:
    key = bytes(range(32))
    for written in (key.hex(), key.hex().upper(), f" {key.hex()}\n",
                    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"):
        settings = production(tmp_path, sqlite_url, keys_dir, aadhaar_hmac_key=written)
        assert aadhaar_key(settings) == key, written
    odd = b"\xfb\xff" * 16  # base64 with '+' and '/', URL-safe with '-' and '_'
    for written in (base64.b64encode(odd).decode(), base64.urlsafe_b64encode(odd).decode()):
        settings = production(tmp_path, sqlite_url, keys_dir, aadhaar_hmac_key=written)
        assert aadhaar_key(settings) == odd, written
    env_settings = Settings.from_env(env={
        VARIABLE: key.hex(), "PRAMAAN_ENV": "production", "PRAMAAN_HOME": str(tmp_path),
        "PRAMAAN_VERIFY_BASE_URL": "https://verify.pmc.example.in"})
    assert aadhaar_key(env_settings) == key
    # In production the development key file is never used, even where one exists.
    dev_key(keys_dir)
    with pytest.raises(ConfigError, match=VARIABLE):
        aadhaar_key(production(tmp_path, sqlite_url, keys_dir))


@pytest.mark.parametrize(("written", "problem"), [
    ("ab" * 31, "at least 32 bytes, it holds 31"),
    ("c2hvcnQ=", "at least 32 bytes"),
    ("not a key at all!", "hex or base64"),
    ("abcde", "hex or base64"),
])
def test_a_bad_key_refuses_to_start(tmp_path: Path, sqlite_url: str, keys_dir: Path,
                                    written: str, problem: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, keys_dir, aadhaar_hmac_key=written)
    with pytest.raises(ConfigError, match=VARIABLE) as refused:
        create_app(settings)
    assert problem in refused.value.detail
    assert written not in refused.value.detail


@pytest.fixture
def production_live(tmp_path: Path, sqlite_url: str, keys_dir: Path,
                    caplog: pytest.LogCaptureFixture) -> Iterator[Live]:
    caplog.set_level(logging.WARNING)
    yield from serve(production(tmp_path, sqlite_url, keys_dir))


def test_production_without_a_key_refuses_only_requests_with_an_aadhaar_number(
    production_live: Live, caplog: pytest.LogCaptureFixture,
) -> None:
    warned = [r for r in caplog.get_records("setup") if r.name == "issuer.aadhaar"]
    assert warned and VARIABLE in warned[0].getMessage() and warned[0].levelno == logging.WARNING
    refused = production_live.post_json("/api/v1/certificates", with_aadhaar("birth-1", NUMBER))
    assert refused.status_code == 500, refused.text
    assert refused.json()["code"] == "config_invalid" and VARIABLE in refused.json()["detail"]
    assert not found_in(refused.text)
    with production_live.runtime.sessions() as session:
        assert session.scalars(sa.select(Certificate)).first() is None
    accepted = production_live.post_json("/api/v1/certificates", sample("birth-1"))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["applicant"]["aadhaar"] is None
    assert not found_in(caplog.text)


def test_take_aadhaar_leaves_the_rest_and_reads_the_key_only_when_needed() -> None:
    def no_key() -> bytes:
        raise AssertionError("the key was read for a request without an Aadhaar number")

    plain = sample("birth-1")
    assert take_aadhaar(plain, no_key) == (plain, None, None)
    for empty in ("", "   "):
        data = with_aadhaar("birth-1", empty)
        assert take_aadhaar(data, no_key) == (plain, None, None)
    data = with_aadhaar("birth-1", SPACED)
    key = parse_key(KEY_HEX, "test")
    clean, last4, digest = take_aadhaar(data, key)
    assert clean == plain and last4 == LAST4
    assert data["applicant"]["aadhaar"] == SPACED, "the caller's request is not changed"
    assert digest == hmac.new(key, NUMBER.encode(), hashlib.sha256).hexdigest()
    assert take_aadhaar(with_aadhaar("birth-1", NUMBER), lambda: key)[2] == digest


@pytest.mark.parametrize(("value", "code"), [
    ("864297531048", "checksum"), ("164297531049", "format"), ("8642975310", "format"),
    (864297531049, "type"),
])
def test_take_aadhaar_refuses_a_number_no_validator_checked(value: Any, code: str) -> None:
    def no_key() -> bytes:
        raise AssertionError("the key was read for a number that is refused")

    data = sample("birth-1")
    data["applicant"]["aadhaar"] = value
    with pytest.raises(ValidationFailed) as refused:
        take_aadhaar(data, no_key)
    assert [(e.field, e.code) for e in refused.value.errors] == [("applicant.aadhaar", code)]
    assert not found_in(repr(refused.value.errors))


def test_a_new_key_means_old_hmacs_no_longer_match() -> None:
    old, new = parse_key(KEY_HEX, "old"), parse_key("8e" * 32, "new")
    assert match_aadhaar(NUMBER, old) != match_aadhaar(NUMBER, new)
    assert match_aadhaar(NUMBER, old) == match_aadhaar(SPACED, old)
    with pytest.raises(ValueError, match="12 digits"):
        match_aadhaar(NUMBER[:-1], old)


def test_a_caller_without_settings_cannot_accept_an_aadhaar_number() -> None:
    with pytest.raises(ConfigError, match=VARIABLE):
        key_source(None)()


def run_cli(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "PRAMAAN_KEYS_DIR", "PRAMAAN_STORE_DIR",
                        VARIABLE)}
    env["PRAMAAN_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], env=env,
                          cwd=SAMPLES.parents[2], capture_output=True, text=True, timeout=300,
                          check=False)


def test_pramaan_init_makes_the_key_and_pramaan_issue_keeps_no_aadhaar(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init = run_cli(home, "init")
    assert init.returncode == 0, init.stderr
    key_file = home / "keys" / DEV_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    request = tmp_path / "request.json"
    request.write_text(json.dumps(with_aadhaar("birth-1", SPACED)), encoding="utf-8")
    result = run_cli(home, "issue", "--data", request, "--out", home / "cert.pdf")
    assert result.returncode == 0, result.stderr
    request.unlink()
    findings = {"output": found_in(result.stdout + result.stderr)}
    findings.update({str(p): found_in(p.read_bytes()) for p in files_under(home)})
    assert {where: hits for where, hits in findings.items() if hits} == {}
    with closing(sqlite3.connect(home / "var" / "pramaan.db")) as conn:
        stored = conn.execute("SELECT aadhaar_last4, aadhaar_hmac FROM certificates").fetchall()
    key = parse_key(key_file.read_text(encoding="ascii"), "file")
    assert stored == [(LAST4, match_aadhaar(NUMBER, key))]
