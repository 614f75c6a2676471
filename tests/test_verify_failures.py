"""Every way verification says "not genuine", each with its own reason: seals signed by our own key
that claim another issuer, an unknown certificate or other fields; validly signed PDFs that are
not the issued file or carry no seal; keys and signers from someone else's PKI. Real keys, real
database, the public HTTP endpoint and the `pramaan verify` command."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import update

from issuer.models import Certificate
from issuer.verify import REASONS, Check, verify_pdf, verify_qr
from signing.devpki import DevPki
from signing.seal import PRIVATE_CLAIM, Sealer, SealKey, verify_seal
from tests.conftest import ROOT, Live, sample
from tests.test_signing_support import minimal_pdf


def issue(live: Live) -> tuple[Certificate, bytes]:
    created = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert created.status_code == 202, created.text
    cert_id = created.json()["id"]
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.state == "issued" and record.seal_text
    pdf = live.get(f"/api/v1/certificates/{cert_id}/pdf")
    assert pdf.status_code == 200
    return record, pdf.content


def claims_of(live: Live, seal_text: str) -> dict[int, Any]:
    report = verify_seal(seal_text, live.runtime.trust.seal_trust)
    assert report.ok and report.claims is not None
    return copy.deepcopy(report.claims)


def resealed(live: Live, claims: dict[int, Any]) -> str:
    """Claims signed by our own seal key, as only we (or a thief of the key) could."""
    return live.runtime.keyring.sealer.seal(claims)


def reason(verdict: dict[str, Any]) -> str:
    assert verdict["genuine"] is False and verdict["current"] is False, verdict
    assert verdict["status"] == "invalid"
    return str(verdict["reason"])


def over_http(live: Live, qr: str) -> dict[str, Any]:
    response = live.http.post(live.url("/api/v1/verify"), json={"qr": qr}, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_control_the_issued_seal_and_file_are_current(live: Live) -> None:
    record, pdf = issue(live)
    assert record.seal_text
    assert verify_qr(live.runtime, record.seal_text).current
    assert over_http(live, record.seal_text)["current"] is True
    verdict = verify_pdf(live.runtime, pdf)
    assert verdict.current, verdict.as_dict()
    assert {"pdf_signature", "seal", "record", "issued_file"} <= {c.name for c in verdict.checks}


def test_seal_signed_by_our_key_for_another_issuer_is_foreign(live: Live) -> None:
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    claims[1] = "in.gov.pcmc"  # a neighbouring corporation's issuer id
    forged = resealed(live, claims)
    assert verify_seal(forged, live.runtime.trust.seal_trust).ok, "the signature itself is fine"
    assert reason(verify_qr(live.runtime, forged).as_dict()) == "issuer: foreign_issuer"
    assert reason(over_http(live, forged)) == "issuer: foreign_issuer"


def test_validly_sealed_number_that_we_never_issued_is_unknown(live: Live) -> None:
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    claims[PRIVATE_CLAIM]["no"] = "PMC/B/2026/KB/999999"
    forged = resealed(live, claims)
    verdict = verify_qr(live.runtime, forged).as_dict()
    assert reason(verdict) == "record: unknown_certificate"
    assert reason(over_http(live, forged)) == "record: unknown_certificate"


def test_seals_made_before_the_compact_seal_still_verify(live: Live) -> None:
    # Until issue 10 a seal named its record by id, carried the ward's name and the full
    # 32-byte digest: paper printed then is verified as before.
    record, _ = issue(live)
    assert record.seal_text and record.fields_sha256
    claims = claims_of(live, record.seal_text)
    claims[PRIVATE_CLAIM].update({"id": uuid.UUID(record.id).bytes,
                                  "w": "Kothrud-Bavdhan Ward Office",
                                  "h": bytes.fromhex(record.fields_sha256)})
    claims[PRIVATE_CLAIM]["no"] = "PMC/B/2026/KB/999999"  # the id decides, not the number
    old = resealed(live, claims)
    verdict = verify_qr(live.runtime, old).as_dict()
    assert verdict["current"] is True, verdict
    assert verdict["certificate"]["id"] == record.id
    assert verdict["certificate"]["ward"] == "Kothrud-Bavdhan Ward Office"
    claims[PRIVATE_CLAIM]["id"] = uuid.uuid4().bytes
    assert reason(verify_qr(live.runtime, resealed(live, claims)).as_dict()) == (
        "record: unknown_certificate")


def test_seal_whose_fields_differ_from_the_record_is_a_mismatch(live: Live) -> None:
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    digest = bytearray(claims[PRIVATE_CLAIM]["h"])
    digest[0] ^= 0x01  # the fields the seal certifies are not the ones we recorded
    claims[PRIVATE_CLAIM]["h"] = bytes(digest)
    forged = resealed(live, claims)
    verdict = verify_qr(live.runtime, forged).as_dict()
    assert reason(verdict) == "record: fields_mismatch"
    assert reason(over_http(live, forged)) == "record: fields_mismatch"
    # The seal's digest is the record's, cut to 16 bytes: never shorter.
    assert record.fields_sha256 is not None
    claims[PRIVATE_CLAIM]["h"] = bytes.fromhex(record.fields_sha256)[:15]
    assert reason(verify_qr(live.runtime, resealed(live, claims)).as_dict()) == (
        "record: fields_mismatch")
    # The record's particulars are shown only beside a seal that matches them.
    assert "particulars" not in (verdict["certificate"] or {})
    genuine = verify_qr(live.runtime, record.seal_text).as_dict()
    assert genuine["certificate"]["particulars"]["father"]["name"]["en"] == (
        "Sandeep Trimbak Kulkarni")


def test_seal_without_a_certificate_id_is_refused(live: Live) -> None:
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    del claims[PRIVATE_CLAIM]["no"]
    forged = resealed(live, claims)
    assert reason(verify_qr(live.runtime, forged).as_dict()) == "claims: no_certificate_id"
    claims[PRIVATE_CLAIM]["no"] = ""
    assert reason(verify_qr(live.runtime, resealed(live, claims)).as_dict()) == (
        "claims: no_certificate_id")


def test_validly_signed_pdf_that_is_not_the_issued_file(live: Live) -> None:
    record, pdf = issue(live)
    # Our own signer, the genuine seal text, but another document: the hash gives it away.
    other = live.runtime.keyring.pades.sign(
        minimal_pdf(), reason="r", location="Pune", info={"PramaanSeal": record.seal_text or ""})
    verdict = verify_pdf(live.runtime, other)
    assert [c.name for c in verdict.checks if c.ok][:2] == ["pdf_signature", "seal"]
    assert reason(verdict.as_dict()) == "issued_file: not_the_issued_file"
    assert verify_pdf(live.runtime, pdf).current  # the issued file itself still is


@pytest.mark.parametrize("info", [None, {"PramaanSeal": ""}, {"PramaanOther": "x"}])
def test_signed_pdf_without_a_seal_is_refused(live: Live, info: dict[str, str] | None) -> None:
    issue(live)
    unsealed = live.runtime.keyring.pades.sign(minimal_pdf(), reason="r", location="Pune",
                                               info=info)
    assert reason(verify_pdf(live.runtime, unsealed).as_dict()) == "seal: missing"


def test_seal_by_a_key_we_do_not_trust_is_refused(live: Live, stranger: DevPki) -> None:
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    theirs = Sealer(SealKey.load(stranger.seal_key, stranger.seal_cert),
                    live.runtime.settings.verify_base_url).seal(claims)
    assert reason(verify_qr(live.runtime, theirs).as_dict()) == "seal: unknown_kid"
    pdf = live.runtime.keyring.pades.sign(minimal_pdf(), reason="r", location="Pune",
                                          info={"PramaanSeal": theirs})
    assert reason(verify_pdf(live.runtime, pdf).as_dict()) == "seal: unknown_kid"


def test_pramaan_verify_reports_the_reason_and_exits_1(live: Live, tmp_path: Path) -> None:
    record, pdf = issue(live)
    settings = live.runtime.settings
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"PRAMAAN_HOME": str(settings.home), "DATABASE_URL": settings.database_url,
                "PRAMAAN_KEYS_DIR": str(settings.keys_dir),
                "PRAMAAN_STORE_DIR": str(settings.store_dir)})
    cases = {
        "issued.pdf": (pdf, 0, None),
        "other.pdf": (live.runtime.keyring.pades.sign(
            minimal_pdf(), reason="r", location="Pune",
            info={"PramaanSeal": record.seal_text or ""}), 1, "issued_file: not_the_issued_file"),
        "unsealed.pdf": (live.runtime.keyring.pades.sign(minimal_pdf(), reason="r",
                                                         location="Pune"), 1, "seal: missing"),
    }
    for name, (data, code, why) in cases.items():
        (tmp_path / name).write_bytes(data)
        done = subprocess.run([sys.executable, "-m", "cli", "verify", str(tmp_path / name)],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
                              check=False)
        assert (done.returncode, json.loads(done.stdout)["reason"]) == (code, why), done.stderr


def test_a_compact_seal_names_its_record_and_ward_from_the_record(live: Live) -> None:
    # The compact seal carries neither the record's id nor the ward's name: the verdict takes
    # both from the record its number finds.
    record, _ = issue(live)
    assert record.seal_text
    claims = claims_of(live, record.seal_text)
    assert "id" not in claims[PRIVATE_CLAIM] and "w" not in claims[PRIVATE_CLAIM]
    verdict = verify_qr(live.runtime, record.seal_text).as_dict()
    assert verdict["current"] is True
    assert verdict["certificate"]["id"] == record.id
    assert verdict["certificate"]["ward"] == "Kothrud-Bavdhan Ward Office"


def test_a_pdf_verified_as_of_a_moment_after_its_signer_expired_is_not_genuine(
        live: Live) -> None:
    # `pramaan verify --at`: a B-B signature does not outlive its signer's certificate.
    _, pdf = issue(live)
    signer = x509.load_pem_x509_certificate(
        (live.runtime.settings.keys_dir / "signer.crt").read_bytes())
    assert verify_pdf(live.runtime, pdf, at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).current
    expired = signer.not_valid_after_utc + dt.timedelta(days=30)
    verdict = verify_pdf(live.runtime, pdf, at=expired)
    assert not verdict.genuine
    assert [(c.name, c.ok, c.reason) for c in verdict.checks] == [
        ("pdf_signature", False, "untrusted")]


def test_a_record_of_a_type_no_longer_issued_verifies_without_a_ward(live: Live) -> None:
    # A type taken out of the registry keeps its records: the compact seal still finds its
    # record, but no type is left to name the ward from the request.
    record, _ = issue(live)
    assert record.seal_text
    with live.runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == record.id)
                        .values(cert_type="marriage"))
    verdict = verify_qr(live.runtime, record.seal_text)
    assert verdict.current, verdict.as_dict()
    assert verdict.certificate is not None and verdict.certificate["id"] == record.id
    assert verdict.certificate["ward"] is None


def test_a_check_reason_is_one_of_the_published_codes() -> None:
    # Reasons are stable codes a client reads: a new one must join the published enum first.
    assert Check("seal", False, "bad_signature").as_dict()["reason"] == "bad_signature"
    with pytest.raises(ValueError, match="unknown check reason 'made_up'"):
        Check("seal", False, "made_up")
    assert {"foreign_link", "no_signature", "outside_window"} <= REASONS
