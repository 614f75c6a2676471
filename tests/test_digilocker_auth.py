"""Request authentication of the pull endpoints (PROTOCOL.md §4): the golden vectors verbatim,
both x-digilocker-hmac encodings and the legacy keyhash over real HTTP, the ts window and the
replay guard on txn."""

from __future__ import annotations

import base64
import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digilocker.request_auth import header_ok, hmac_hex, keyhash, keyhash_ok, parse_ts, ts_fresh
from issuer.models import Certificate, DigiLockerReplay
from issuer.settings import Settings
from tests.conftest import Live, make_settings, sample
from tests.digilocker_pull_requests import (
    KEY,
    doc_request,
    issue,
    new_txn,
    now_ts,
    post,
    reply,
    sign,
    uri_request,
)

# §4.1 golden vector, verbatim: the 354-byte single-line body.
GOLDEN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><PullURIRequest '
    b'xmlns:ns2="http://tempuri.org/" ver="1.0" ts="2024-01-01T10:00:00+05:30" txn="1704083400" '
    b'orgId="in.gov.example" format="pdf"><DocDetails><DocType>BTCER</DocType><DigiLockerId>'
    b"123e4567-e89b-12d3-a456-426655440000</DigiLockerId><UDF1>REG-2024-0001</UDF1></DocDetails>"
    b"</PullURIRequest>"
)
GOLDEN_HEX = "9d07b4795730fbb1b3d70061e55410e54a53a4b354be763125543ce6fe40808d"
GOLDEN_B64_HEX = (
    "OWQwN2I0Nzk1NzMwZmJiMWIzZDcwMDYxZTU1NDEwZTU0YTUzYTRiMzU0YmU3NjMxMjU1NDNjZTZmZTQwODA4ZA=="
)
GOLDEN_B64_RAW = "nQe0eVcw+7Gz1wBh5VQQ5UpTpLNUvnYxJVQ85v5AgI0="
# §4.2 golden vector.
GOLDEN_TS = "2024-01-01T10:00:00+05:30"
GOLDEN_KEYHASH = "e055c6947b5aa5e656763a33b567817028635f133f7e96aaec25a374b66f5a63"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, keys_dir, digilocker_api_key=KEY)


def test_the_hmac_golden_vector_in_both_encodings() -> None:
    assert len(GOLDEN_BODY) == 354
    assert hmac_hex(GOLDEN_BODY, "test-api-key") == GOLDEN_HEX
    assert header_ok(GOLDEN_BODY, GOLDEN_B64_HEX, "test-api-key")
    assert header_ok(GOLDEN_BODY, GOLDEN_B64_RAW, "test-api-key")
    assert not header_ok(GOLDEN_BODY, GOLDEN_B64_HEX, "test-api-kez")
    assert not header_ok(GOLDEN_BODY + b" ", GOLDEN_B64_RAW, "test-api-key")
    # Base64 of the upper-case hex, the hex itself, or nothing: not what DigiLocker sends.
    assert not header_ok(GOLDEN_BODY, base64.b64encode(GOLDEN_HEX.upper().encode()).decode(),
                         "test-api-key")
    assert not header_ok(GOLDEN_BODY, GOLDEN_HEX, "test-api-key")
    assert not header_ok(GOLDEN_BODY, "", "test-api-key")


def test_the_keyhash_golden_vector() -> None:
    assert keyhash("test-api-key", GOLDEN_TS) == GOLDEN_KEYHASH
    assert GOLDEN_KEYHASH == hashlib.sha256(b"test-api-key" + GOLDEN_TS.encode()).hexdigest()
    assert keyhash_ok("test-api-key", GOLDEN_TS, GOLDEN_KEYHASH)
    assert keyhash_ok("test-api-key", GOLDEN_TS, GOLDEN_KEYHASH.upper())
    assert not keyhash_ok("test-api-key", "2024-01-01T10:00:01+05:30", GOLDEN_KEYHASH)
    assert not keyhash_ok("test-api-key", GOLDEN_TS, "")


def test_ts_forms_and_window() -> None:
    at = datetime(2024, 1, 1, 4, 30, tzinfo=UTC)
    for form in ("2024-01-01T10:00:00+05:30", "2024-01-01T04:30:00Z", "2024-01-01T10:00:00+0530",
                 "2024-01-01T10:00:00.250+05:30", "2024-01-01T10:00:00"):  # no offset: IST
        parsed = parse_ts(form)
        assert parsed is not None and abs((parsed - at).total_seconds()) < 1, form
    for bad in ("", "1704083400", "2024-13-01T10:00:00+05:30", "yesterday", "2024-01-01"):
        assert parse_ts(bad) is None, bad
    assert ts_fresh("2024-01-01T10:05:00+05:30", at, 300)
    assert ts_fresh("2024-01-01T09:55:00+05:30", at, 300)
    assert not ts_fresh("2024-01-01T10:05:01+05:30", at, 300)
    assert not ts_fresh("2024-01-01T09:54:59+05:30", at, 300)


@pytest.mark.parametrize("encoding", ["hex", "raw"])
def test_both_header_encodings_are_accepted_over_http(live: Live, encoding: str) -> None:
    answer = reply(post(live, "pulluri", uri_request("BTCER", {"RegistrationNumber": "X-1",
                                                                "DateOfBirth": "01-01-2020"}),
                        encoding=encoding))
    assert answer.status == "0"  # authenticated, and nothing found


def test_a_missing_or_wrong_header_is_401(live: Live) -> None:
    raw = doc_request("in.gov.pmc-BTCER-x")
    assert post(live, "pulldoc", raw, encoding=None).status_code == 401
    assert post(live, "pulldoc", raw, header=sign(raw, key="another-key")).status_code == 401
    assert post(live, "pulldoc", raw, header=sign(raw + b"\n")).status_code == 401
    assert post(live, "pulldoc", raw, header="not base64!").status_code == 401
    assert post(live, "pulldoc", raw, header="").status_code == 401
    assert post(live, "pulluri", raw, header=GOLDEN_B64_HEX).status_code == 401


def test_the_legacy_keyhash_authenticates_without_the_header(live: Live) -> None:
    ts = now_ts()
    good = doc_request("in.gov.pmc-BTCER-x", ts=ts, keyhash=keyhash(KEY, ts))
    answer = reply(post(live, "pulldoc", good, encoding=None))
    assert answer.status == "0" and answer.ts == ts
    wrong = doc_request("in.gov.pmc-BTCER-x", ts=ts, keyhash=keyhash("other", ts))
    assert post(live, "pulldoc", wrong, encoding=None).status_code == 401
    # A wrong header is not rescued by a right keyhash: the header, when sent, decides.
    assert post(live, "pulldoc", good, header=sign(good, key="other")).status_code == 401


def test_no_api_key_configured_refuses_everything(tmp_path: Path, sqlite_url: str,
                                                  keys_dir: Path) -> None:
    from tests.conftest import serve
    for live in serve(make_settings(tmp_path, sqlite_url, keys_dir)):
        raw = doc_request("in.gov.pmc-BTCER-x")
        assert post(live, "pulldoc", raw).status_code == 401


def test_a_ts_outside_the_window_is_status_0_and_echoed(live: Live) -> None:
    for shift in (-301 - 5, 301 + 5):
        ts = now_ts(shift)
        answer = reply(post(live, "pulluri", uri_request("PRTAX", {"PropertyId": "P-1"}, ts=ts)))
        assert (answer.status, answer.ts) == ("0", ts)
    for ts in ("", "not a time", "1704083400"):
        answer = reply(post(live, "pulluri", uri_request("PRTAX", {"PropertyId": "P-1"}, ts=ts)))
        assert answer.status == "0"


def test_a_replayed_txn_is_refused_within_the_window(live: Live) -> None:
    issue(live, sample("property-1"))
    txn = new_txn()
    raw = uri_request("PRTAX", {"PropertyId": "PMC/PT/12/0456/00078123"}, txn=txn)
    first = reply(post(live, "pulluri", raw))
    assert first.status == "1" and first.txn == txn
    with live.runtime.sessions() as session:
        assert session.get(DigiLockerReplay, f"pulluri:{txn}") is not None
    again = reply(post(live, "pulluri", raw))  # the same bytes, still inside the window
    assert again.status == "0" and again.txn == txn and not again.details
    # The same txn on the other operation is another request, not a replay of this one.
    reply(post(live, "pulldoc", doc_request("in.gov.pmc-BTCER-x", txn=txn)))
    with live.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DigiLockerReplay)) == 2


def test_old_replay_rows_are_pruned(live: Live) -> None:
    with live.runtime.sessions() as session, session.begin():
        old = datetime.now(UTC) - timedelta(seconds=2 * 300 + 60)
        session.add(DigiLockerReplay(txn="pulluri:ancient", seen_at=old))
        session.add(DigiLockerReplay(txn="pulluri:recent", seen_at=datetime.now(UTC)))
    # A request whose txn does not prune leaves them; one whose txn does (one in 64, by the
    # first byte of its SHA-256) forgets the old one only.
    txns = (f"7{n}" for n in itertools.count())
    keeps = next(t for t in txns if hashlib.sha256(t.encode()).digest()[0] % 64)
    reply(post(live, "pulluri", uri_request("PRTAX", {"PropertyId": "P-1"}, txn=keeps)))
    with live.runtime.sessions() as session:
        assert session.get(DigiLockerReplay, "pulluri:ancient") is not None
    prunes = next(t for t in txns if hashlib.sha256(t.encode()).digest()[0] % 64 == 0)
    reply(post(live, "pulluri", uri_request("PRTAX", {"PropertyId": "P-1"}, txn=prunes)))
    with live.runtime.sessions() as session:
        assert session.get(DigiLockerReplay, "pulluri:ancient") is None
        assert session.get(DigiLockerReplay, "pulluri:recent") is not None
        assert session.get(DigiLockerReplay, f"pulluri:{prunes}") is not None


def test_an_unusable_stored_pdf_is_status_0_and_the_txn_stays_spent(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored PDF that no longer matches its hash is never handed over; the error is ours
    (logged), and the txn is spent like any other: the same request again is a replay."""
    record = issue(live, sample("birth-1"))
    with live.runtime.sessions() as session:
        stored = session.get(Certificate, record["id"])
        assert stored is not None and stored.pdf_path is not None
        path = live.runtime.settings.store_dir / stored.pdf_path
    good = path.read_bytes()
    path.write_bytes(good.replace(b"%%EOF", b"%%EOX"))
    txn = new_txn()
    raw = doc_request(f"in.gov.pmc-BTCER-{record['id']}", txn=txn)
    with caplog.at_level("ERROR", logger="digilocker.pull_endpoint"):
        refused = reply(post(live, "pulldoc", raw))
    assert refused.status == "0" and refused.txn == txn and not refused.details
    assert any("the stored PDF is unusable" in r.getMessage() for r in caplog.records)
    with live.runtime.sessions() as session:
        assert session.get(DigiLockerReplay, f"pulldoc:{txn}") is not None
    path.write_bytes(good)
    assert reply(post(live, "pulldoc", raw)).status == "0"  # a replay, though the PDF is back
    fresh = reply(post(live, "pulldoc", doc_request(f"in.gov.pmc-BTCER-{record['id']}")))
    assert fresh.status == "1" and fresh.details["DocContent"] == base64.b64encode(good).decode()
