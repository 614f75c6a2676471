"""Death and property no-dues certificates end to end: POST over real HTTP, a signed PDF that
pdfsig trusts, the wording pdftotext reads, a QR that scans to a seal naming the holder, its own
numbering series. The longest valid requests issue too (their seal still scans at 300 dpi)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from issuer.models import AuditEvent, Certificate
from issuer.verify import verify_qr
from signing.seal import decode_seal
from tests.conftest import Live, sample
from tests.test_templates_maximal import maximal
from tests.tools import nss_db_with_root, pdfsig, pdftotext, qr_from_pdf

# type -> (sample, number series, holder in the seal, key date in the seal, text on the PDF)
EXPECTED: dict[str, tuple[str, str, dict[str, str], dict[str, str], list[str]]] = {
    "death": (
        "death-1", "PMC/D/",
        {"en": "Vishwanath Dattatray Joshi", "mr": "विश्वनाथ दत्तात्रय जोशी"},
        {"death": "2026-04-09"},
        ["DEATH CERTIFICATE", "Vishwanath Dattatray Joshi", "D-2026-PMC-001877",
         "Registrar of Births and Deaths", "death/3"],
    ),
    "property_no_dues": (
        "property-1", "PMC/P/",
        {"en": "Rukhsana Imtiaz Shaikh and 1 other", "mr": "रुखसाना इम्तियाज शेख व इतर १"},
        {"paid_up_to": "2027-03-31"},
        ["PROPERTY TAX NO-DUES CERTIFICATE", "PMC/PT/12/0456/00078123", "Imtiaz Yusuf Shaikh",
         "NIL", "Property Tax Department", "property_no_dues/3"],
    ),
}


def issue(live: Live, data: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    created = live.post_json("/api/v1/certificates", data)
    assert created.status_code == 202, created.text
    record = live.get(created.json()["status_url"]).json()
    assert record["state"] == "issued", record
    pdf = live.get(record["links"]["pdf"])
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    return record, pdf.content


def stored(live: Live, cert_id: str) -> Certificate:
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        session.expunge(record)
        return record


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_issue_sign_print_and_verify(
    live: Live, tmp_path: Path, keys_dir: Path, code: str
) -> None:
    name, series, holder, dates, printed = EXPECTED[code]
    record, pdf = issue(live, sample(name))
    assert record["number"].startswith(series)
    assert record["template_version"] == f"{code}/3"

    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    out = pdfsig(path, nss_db_with_root(tmp_path / "nss", keys_dir / "root.crt"))
    assert "Signature is Valid" in out and "Certificate is Trusted" in out, out
    text = unicodedata.normalize("NFC", pdftotext(path))
    squeezed = "".join(text.split())
    for expected in [*printed, record["number"], holder["mr"].split(" व ")[0]]:
        assert "".join(expected.split()) in squeezed, expected

    (scanned,) = qr_from_pdf(path, tmp_path)
    assert scanned == stored(live, record["id"]).seal_text
    verdict = verify_qr(live.runtime, scanned)
    assert verdict.current, verdict.as_dict()
    assert verdict.certificate is not None
    assert verdict.certificate["type"] == code
    assert verdict.certificate["holder"] == holder
    assert verdict.certificate["dates"] == dates
    assert verdict.certificate["number"] == record["number"]


def test_cause_of_death_is_nowhere_after_issue(live: Live, tmp_path: Path) -> None:
    data = sample("death-1")
    data["cause_of_death"] = {"en": "Septicaemia", "mr": "रक्तदोष"}
    record, pdf = issue(live, data)
    row = stored(live, record["id"])
    assert "cause_of_death" not in row.request
    assert "Septicaemia" not in json.dumps(row.request)
    assert row.seal_text is not None
    payload = decode_seal(row.seal_text).message.payload
    assert b"Septic" not in payload and "रक्तदोष".encode() not in payload
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    text = pdftotext(path)
    assert "Septic" not in text and "रक्तदोष" not in text
    with live.runtime.sessions() as session:
        details = [json.dumps(e.details, ensure_ascii=False) for e in
                   session.scalars(select(AuditEvent).where(AuditEvent.certificate_id == row.id))]
    assert details and not any("Septic" in d or "रक्तदोष" in d for d in details)
    listed = live.get(f"/api/v1/certificates/{row.id}").text
    assert "Septic" not in listed


@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_longest_valid_request_issues_and_its_seal_scans(
    live: Live, tmp_path: Path, name: str
) -> None:
    _, pdf = issue(live, maximal(name))
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    (scanned,) = qr_from_pdf(path, tmp_path)
    assert verify_qr(live.runtime, scanned).current
