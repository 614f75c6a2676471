"""The spine: POST a birth request over HTTP, get a signed PDF, check it with independent tools."""

from __future__ import annotations

import hashlib
import unicodedata
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader

from issuer.audit import verify_chain
from issuer.db import as_utc
from issuer.fields import IST, today_ist
from issuer.issue import certified_fields, fields_digest
from issuer.verify import verify_pdf, verify_qr
from signing.seal import PRIVATE_CLAIM, verify_seal
from signing.validate import validate_pdf
from tests.conftest import Live, sample
from tests.tools import nss_db_with_root, pdfsig, pdftotext, qr_from_pdf


def issue(live: Live, name: str | dict = "birth-1") -> tuple[dict, bytes]:
    created = live.post_json("/api/v1/certificates", sample(name) if isinstance(name, str)
                             else name)
    assert created.status_code == 202, created.text
    body = created.json()
    assert created.headers["Location"] == body["status_url"]
    status = live.get(body["status_url"])
    assert status.status_code == 200
    record = status.json()
    assert record["state"] == "issued", record
    pdf = live.get(record["links"]["pdf"])
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    return record, pdf.content


def test_issue_and_download(live: Live, tmp_path: Path, keys_dir: Path) -> None:
    record, pdf = issue(live)
    assert record["number"].startswith("PMC/B/")
    assert record["pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert record["template_version"] == "birth/3"
    assert len(record["seal_kid"]) == 16
    again = live.get(record["links"]["pdf"])
    assert again.content == pdf, "every download is byte-identical"
    etag = f'"{record["pdf_sha256"]}"'
    cached = live.get(record["links"]["pdf"], headers={"If-None-Match": etag})
    assert cached.status_code == 304

    # pyHanko's validator: intact, valid, chains to the dev root, covers the whole file.
    report = validate_pdf(pdf, [keys_dir / "root.crt"])
    assert report.ok, report
    # The signed revision names the certificate; the signature says what and where.
    assert report.info["PramaanCertificateId"] == record["id"]
    settings = live.runtime.settings
    signature = PdfFileReader(BytesIO(pdf)).embedded_signatures[0].sig_object
    assert str(signature["/Reason"]) == (f"Certificate {record['number']} issued by "
                                         f"{settings.issuer_name_en}")
    assert str(signature["/Location"]) == settings.signing_location == "Pune, Maharashtra, India"

    # Poppler's pdfsig with an NSS database that trusts only the dev root.
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    nss = nss_db_with_root(tmp_path / "nss", keys_dir / "root.crt")
    out = pdfsig(path, nss)
    assert "Signature is Valid" in out, out
    assert "Certificate is Trusted" in out, out

    # pdftotext finds both names of the child.
    text = unicodedata.normalize("NFC", pdftotext(path))
    child = sample("birth-1")["child"]["name"]
    assert child["en"] in text
    # poppler splits some Devanagari clusters with a space ("कु लकर्णी"): compare without spaces.
    squeezed = "".join(text.split())
    assert "".join(unicodedata.normalize("NFC", child["mr"]).split()) in squeezed

    # A scan at 300 dpi decodes to exactly the sealed string, and that string verifies.
    scanned = qr_from_pdf(path, tmp_path)
    runtime = live.runtime
    with runtime.sessions() as session:
        from issuer.models import Certificate

        stored = session.get(Certificate, record["id"])
        assert stored is not None
        assert scanned == [stored.seal_text] == [report.info["PramaanSeal"]]
        # The seal carries the record's slot in the status list (the verify page's, later).
        sealed = verify_seal(scanned[0], runtime.trust.seal_trust)
        assert sealed.claims is not None and stored.status_index is not None
        assert sealed.claims[PRIVATE_CLAIM]["si"] == stored.status_index
        # ... and the digest of the fields it certifies, as printed on the day of issue (India's
        # date), the same digest the record keeps for verification.
        issued_on = as_utc(stored.issued_at).astimezone(IST).date()
        digest = fields_digest(certified_fields(stored, issued_on))
        assert digest == bytes.fromhex(stored.fields_sha256)
        assert sealed.claims[PRIVATE_CLAIM]["h"] == digest[:16]  # 128 bits in the seal
    verdict = verify_qr(runtime, scanned[0])
    assert verdict.current, verdict.as_dict()
    assert verdict.certificate and verdict.certificate["number"] == record["number"]
    assert verify_pdf(runtime, pdf).current

    with runtime.sessions() as session:
        chain = verify_chain(session)
    assert chain.ok and chain.events == 4  # submit, approve, seal (intent), sign


def test_verify_endpoint_and_page(live: Live) -> None:
    record, _pdf = issue(live)
    with live.runtime.sessions() as session:
        from issuer.models import Certificate

        stored = session.get(Certificate, record["id"])
        assert stored is not None and stored.seal_text
        seal = stored.seal_text
    assert seal.startswith(live.runtime.settings.verify_base_url + "/v#")
    ok = live.http.post(live.url("/api/v1/verify"), json={"qr": seal}, timeout=30).json()
    assert ok["current"] is True and ok["status"] == "current"
    digits = seal.split("#", 1)[1]
    flipped = digits[:-5] + str((int(digits[-5]) + 1) % 10) + digits[-4:]
    tampered = seal.split("#")[0] + "#" + flipped
    bad = live.http.post(live.url("/api/v1/verify"), json={"qr": tampered}, timeout=30).json()
    assert bad["genuine"] is False and bad["status"] == "invalid"
    page = live.get("/v")
    assert page.status_code == 200 and "Verify a certificate" in page.text


def test_second_request_for_same_registration_is_409(live: Live) -> None:
    record, _ = issue(live)
    again = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert again.status_code == 409
    assert again.headers["Content-Type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["code"] == "duplicate_registration"
    assert problem["certificate_id"] == record["id"]
    assert problem["href"] == record["links"]["self"]


def test_registration_numbers_compare_without_case(live: Live) -> None:
    record, _ = issue(live)
    data = sample("birth-1")
    data["registration_number"] = data["registration_number"].lower()
    again = live.post_json("/api/v1/certificates", data)
    assert again.status_code == 409 and again.json()["certificate_id"] == record["id"]


def test_seal_behind_a_foreign_link_is_not_genuine(live: Live) -> None:
    record, _ = issue(live)
    with live.runtime.sessions() as session:
        from issuer.models import Certificate

        stored = session.get(Certificate, record["id"])
        assert stored is not None and stored.seal_text
    digits = stored.seal_text.split("#", 1)[1]
    assert verify_qr(live.runtime, digits).current  # typed digits alone are fine
    forged = verify_qr(live.runtime, "https://pmc-verify.example.net/v#" + digits).as_dict()
    assert forged["genuine"] is False and forged["reason"] == "link: foreign_link"


def test_numbers_are_sequential_per_type_ward_and_year(live: Live) -> None:
    year = today_ist().year
    first, _ = issue(live, "birth-1")  # Kothrud-Bavdhan Ward Office
    other_ward, _ = issue(live, "birth-2")  # Hadapsar-Mundhwa Ward Office
    same_ward = sample("birth-2")
    same_ward["ward_office"] = sample("birth-1")["ward_office"]
    same_ward["registration_number"] = "B-2026-PMC-009999"
    second, _ = issue(live, same_ward)
    assert first["number"] == f"PMC/B/{year}/KB/000001"
    assert second["number"] == f"PMC/B/{year}/KB/000002"
    assert other_ward["number"] == f"PMC/B/{year}/HM/000001"
