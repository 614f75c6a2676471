"""The verify page (`/v`) in a real browser (tests/browser.py: Debian's Chromium through
Playwright): a verifier opens the QR's link and reads the verdict and the particulars; a link
with one digit changed shows a red failure, never a partial green. Real HTTP on 127.0.0.1, a
certificate issued by the real pipeline. Screenshots: var/test-artifacts/browser/."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import as_utc
from issuer.fields import IST
from issuer.models import Certificate, Department
from issuer.tokens import create_token
from templates import fonts_dir
from tests.browser import browser, page, screenshot  # noqa: F401 - fixtures
from tests.conftest import Live, sample

if TYPE_CHECKING:
    from playwright.sync_api import Page


def issued_digits(live: Live, data: dict[str, Any] | None = None) -> str:
    """The digits after '#' in the QR of a birth certificate just issued."""
    return digits_of(live, issued(live, data))


def issued(live: Live, data: dict[str, Any] | None = None) -> str:
    cert_id = live.post_json("/api/v1/certificates", data or sample("birth-1")).json()["id"]
    assert isinstance(cert_id, str)
    return cert_id


def digits_of(live: Live, cert_id: str) -> str:
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.state == "issued" and record.seal_text
        return record.seal_text.split("#", 1)[1]


def digit_changed(digits: str, position: int, by: int) -> str:
    """`digits` with the digit at `position` moved on by `by` (mod 10)."""
    return digits[:position] + str((int(digits[position]) + by) % 10) + digits[position + 1:]


def officer(live: Live) -> requests.Session:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        token = create_token(session, department, f"officer-{uuid.uuid4().hex[:6]}", "officer")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def verdict_of(page: Page) -> tuple[str, str]:  # noqa: F811 - the fixture's name
    """(class, text) of the verdict once the page has checked the link."""
    result = page.locator("#result")
    page.wait_for_function(
        "() => !document.getElementById('result').textContent.startsWith('Checking')",
        timeout=30_000)
    return result.get_attribute("class") or "", result.inner_text()


def test_a_genuine_link_shows_current_and_the_particulars(live: Live,
                                                         page: Page) -> None:  # noqa: F811
    digits = issued_digits(live)
    page.goto(f"{live.base}/v#{digits}")

    kind, text = verdict_of(page)

    assert kind == "verdict ok", (kind, text)
    assert "Genuine and current" in text
    # The seal was checked here (WebCrypto, the signed trust list), the rest asked online.
    assert "Seal checked on this device" in page.locator("#how").inner_text()
    details = page.locator("#details").inner_text()
    assert "Aarav Sandeep Kulkarni" in details and "आरव संदीप कुलकर्णी" in details
    assert "B-2026-PMC-004512" in details
    assert "21-02-2026" in details and "2026-02-21" not in details, "the date as printed"
    # Online, every particular the paper prints, with its labels: a forged paper with a
    # parent's name changed does not match the page.
    particulars = page.locator("#particulars").inner_text()
    for printed in ("Name of the father / वडिलांचे नाव",
                    "Sandeep Trimbak Kulkarni / संदीप त्र्यंबक कुलकर्णी",
                    "Name of the mother / आईचे नाव", "Shraddha Sandeep Kulkarni",
                    "Kamla Nehru Hospital, Mangalwar Peth, Pune", "Karve Road, Kothrud",
                    "Date of registration / नोंदणी दिनांक\n02-03-2026"):
        assert printed in particulars, printed
    assert "Sex / लिंग\nMale / पुरुष" in particulars
    page_text = page.locator("body").inner_text()
    assert "sandeep.k@example.in" not in page_text and "+919800000012" not in page_text
    # The Marathi is drawn in the shipped Devanagari font, fetched from us (this machine has no
    # Devanagari font of its own: without it the screenshot shows empty boxes).
    loaded = page.evaluate("""async () => { await document.fonts.ready;
        return [...document.fonts].filter(f => f.status === 'loaded')
                                  .map(f => [f.family.replaceAll('"', ''), f.weight]); }""")
    for face in (["Noto Sans Devanagari", "400"], ["Noto Sans Devanagari", "700"]):
        assert face in loaded, loaded
    screenshot(page, "verify-genuine-current")


def test_a_link_with_one_digit_changed_shows_not_genuine_in_red(live: Live,
                                                                page: Page) -> None:  # noqa: F811
    digits = issued_digits(live)
    page.goto(f"{live.base}/v#{digit_changed(digits, len(digits) // 2, 1)}")

    kind, text = verdict_of(page)

    assert kind == "verdict bad", (kind, text)
    assert "NOT GENUINE" in text and "Genuine and current" not in text
    assert page.locator("#details").inner_text().strip() == "", "nothing shown as if genuine"
    screenshot(page, "verify-one-digit-changed")


def test_the_shipped_fonts_are_served_and_nothing_else(live: Live) -> None:
    served = live.get("/v/fonts/NotoSansDevanagari-Regular.ttf")
    assert served.status_code == 200 and served.headers["Content-Type"] == "font/ttf"
    assert served.content == (fonts_dir() / "NotoSansDevanagari-Regular.ttf").read_bytes()
    assert "max-age=2592000" in served.headers["Cache-Control"]
    for name in ("OFL.txt", "..%2Fweb%2Fverify.html", "NotoSans-Italic.ttf"):
        refused = live.get(f"/v/fonts/{name}")
        assert refused.status_code == 404, name
        assert refused.headers["Content-Type"] == "application/problem+json"


def test_a_revoked_certificate_shows_revoked_with_the_reason(live: Live,
                                                            page: Page) -> None:  # noqa: F811
    cert_id = issued(live)
    digits = digits_of(live, cert_id)
    revoked = officer(live).post(live.url(f"/api/v1/certificates/{cert_id}/revoke"),
                                 json={"reason": "registered twice"}, timeout=60)
    assert revoked.status_code == 200, revoked.text
    page.goto(f"{live.base}/v#{digits}")

    kind, text = verdict_of(page)

    assert kind == "verdict warn", (kind, text)
    assert "REVOKED" in text and "registered twice" in text and "current" not in text
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.revoked_at is not None
        on = as_utc(record.revoked_at).astimezone(IST).strftime("%d-%m-%Y")
    assert f"({on})" in text, text
    screenshot(page, "verify-revoked")


def test_a_corrected_certificate_shows_superseded(live: Live, page: Page) -> None:  # noqa: F811
    original = issued(live)
    digits = digits_of(live, original)
    correction = {**sample("birth-1"), "corrects": original}
    correction["child"]["name"]["en"] = "Aarav Sandip Kulkarni"
    made = live.post_json("/api/v1/certificates", correction)
    assert made.status_code == 202 and made.json()["state"] == "issued", made.text
    page.goto(f"{live.base}/v#{digits}")

    kind, text = verdict_of(page)

    assert kind == "verdict warn", (kind, text)
    assert "SUPERSEDED" in text and "Genuine and current" not in text
    assert made.json()["number"] in text, "the number to ask for instead"
    screenshot(page, "verify-superseded")


def installed(page: Page, link: str) -> None:  # noqa: F811 - the fixture's name
    """Open `link` online and wait until the offline app (sw.js) controls the page and has
    saved what it needs."""
    page.goto(link)
    verdict_of(page)
    page.evaluate("() => navigator.serviceWorker.ready")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    page.wait_for_function("""async () => {
        const shell = await caches.open('pramaan-verify-v1');
        return (await shell.keys()).length >= 15; }""", timeout=30_000)


def offline_page(page: Page) -> Page:  # noqa: F811 - the fixture's name
    """A new tab of the same browser profile, with the network cut off."""
    page.context.set_offline(True)
    return page.context.new_page()


def test_offline_a_genuine_link_is_checked_on_the_device(live: Live,
                                                        page: Page) -> None:  # noqa: F811
    first = issued_digits(live)
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-004513"
    data["child"]["name"] = {"en": "Ira Sandeep Kulkarni", "mr": "इरा संदीप कुलकर्णी"}
    second = issued_digits(live, data)
    installed(page, f"{live.base}/v#{first}")
    tab = offline_page(page)
    tab.goto(f"{live.base}/v#{second}")

    kind, text = verdict_of(tab)

    assert kind == "verdict ok", (kind, text)
    assert "Genuine and current" in text
    how = tab.locator("#how").inner_text()
    assert "without a network" in how and "status list signed" in how, how
    details = tab.locator("#details").inner_text()
    assert "Ira Sandeep Kulkarni" in details and "इरा संदीप कुलकर्णी" in details
    assert "B-2026-PMC-004513" in details and "21-02-2026" in details
    # Said plainly: what the paper prints beyond the seal was not checked.
    unchecked = tab.locator("#unchecked").inner_text()
    assert "Not checked without a network" in unchecked and "mother" in unchecked
    assert tab.locator("#particulars").count() == 0, "no particulars from a server offline"
    screenshot(tab, "verify-offline-genuine")


def test_offline_a_changed_digit_is_red(live: Live, page: Page) -> None:  # noqa: F811
    digits = issued_digits(live)
    installed(page, f"{live.base}/v#{digits}")
    tab = offline_page(page)
    tab.goto(f"{live.base}/v#{digit_changed(digits, len(digits) // 3, 3)}")

    kind, text = verdict_of(tab)

    assert kind == "verdict bad", (kind, text)
    assert "NOT GENUINE" in text
    assert tab.locator("#details").inner_text().strip() == ""
    screenshot(tab, "verify-offline-one-digit-changed")


def test_offline_a_revoked_certificate_shows_revoked_from_the_saved_status_list(
        live: Live, page: Page) -> None:  # noqa: F811
    kept, revoked_id = issued_digits(live), issued(live, _another_birth())
    revoked_digits = digits_of(live, revoked_id)
    revoked = officer(live).post(live.url(f"/api/v1/certificates/{revoked_id}/revoke"),
                                 json={"reason": "registered twice"}, timeout=60)
    assert revoked.status_code == 200, revoked.text
    installed(page, f"{live.base}/v#{kept}")  # saves the status list signed after revoking
    tab = offline_page(page)
    tab.goto(f"{live.base}/v#{revoked_digits}")

    kind, text = verdict_of(tab)

    assert kind == "verdict bad", (kind, text)
    assert "REVOKED" in text and "Genuine and current" not in text
    screenshot(tab, "verify-offline-revoked")


def test_offline_without_a_saved_status_list_the_status_is_not_claimed(
        live: Live, page: Page) -> None:  # noqa: F811
    digits = issued_digits(live)
    installed(page, f"{live.base}/v#{digits}")
    page.evaluate("""async () => {
        for (const name of ['pramaan-verify-v1', 'pramaan-published-v1']) {
            await (await caches.open(name)).delete('/.well-known/pramaan/status-list.json'); } }""")
    tab = offline_page(page)
    tab.goto(f"{live.base}/v#{digits}")

    kind, text = verdict_of(tab)

    assert kind == "verdict warn", (kind, text)
    assert "status not checked" in text and "no saved status list" in text
    assert "Aarav Sandeep Kulkarni" in tab.locator("#details").inner_text()


def _another_birth() -> dict[str, Any]:
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-004514"
    return data


def pdf_of(live: Live, cert_id: str) -> bytes:
    answer = live.get(f"/api/v1/certificates/{cert_id}/pdf")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF-"), answer.text
    return answer.content


def pdf_verdict(page: Page) -> tuple[str, str]:  # noqa: F811 - the fixture's name
    page.wait_for_function("""() => {
        const t = document.getElementById('pdf-result').textContent;
        return t && !t.startsWith('Checking'); }""", timeout=60_000)
    result = page.locator("#pdf-result")
    return result.get_attribute("class") or "", result.inner_text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_uploaded_pdf_is_checked_by_the_server(live: Live, page: Page,  # noqa: F811
                                                  tmp_path: Path) -> None:
    pdf = pdf_of(live, issued(live))
    genuine = tmp_path / "certificate.pdf"
    genuine.write_bytes(pdf)
    page.goto(f"{live.base}/v")
    page.set_input_files("#pdf", str(genuine))

    kind, text = pdf_verdict(page)

    assert kind == "verdict ok", (kind, text)
    assert "Genuine and current" in text
    assert "Aarav Sandeep Kulkarni" in page.locator("#pdf-details").inner_text()
    assert "Shraddha Sandeep Kulkarni" in page.locator("#pdf-particulars").inner_text()
    screenshot(page, "verify-pdf-genuine")

    # One byte of the signed content changed: the signature no longer holds.
    at = pdf.index(b"/Type /Catalog") if b"/Type /Catalog" in pdf else len(pdf) // 3
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:])
    page.set_input_files("#pdf", str(altered))
    kind, text = pdf_verdict(page)
    assert kind == "verdict bad" and "NOT GENUINE" in text, (kind, text)
    assert page.locator("#pdf-details").inner_text().strip() == ""
    screenshot(page, "verify-pdf-altered")

    photo = tmp_path / "photo.pdf"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n not a pdf")
    page.set_input_files("#pdf", str(photo))
    kind, text = pdf_verdict(page)
    assert kind == "verdict bad" and "not a PDF" in text, (kind, text)


def test_the_pdf_check_refuses_what_is_not_a_pdf_with_a_problem(live: Live) -> None:
    url = live.url("/api/v1/verify/pdf")
    wrong_type = requests.post(url, data=b"%PDF-1.7", headers={"Content-Type": "text/plain"},
                               timeout=30)
    assert wrong_type.status_code == 415
    assert wrong_type.json()["type"] == "urn:pramaan:problem:unsupported_media_type"
    not_pdf = requests.post(url, data=b"hello", headers={"Content-Type": "application/pdf"},
                            timeout=30)
    assert not_pdf.status_code == 422 and not_pdf.json()["errors"][0]["code"] == "not_a_pdf"
    big = requests.post(url, data=b"%PDF-" + b"0" * (2 * 1024 * 1024),
                        headers={"Content-Type": "application/pdf"}, timeout=30)
    assert big.status_code == 413
    just_over = requests.post(url, data=b"%PDF-" + b"0" * (2 * 1024 * 1024 - 4), timeout=30,
                              headers={"Content-Type": "application/pdf"})
    assert just_over.status_code == 413  # one byte over: read, then refused
    broken = requests.post(url, data=b"%PDF-1.7\n garbage", timeout=30,
                           headers={"Content-Type": "application/pdf"})
    assert broken.status_code == 200
    assert broken.json()["genuine"] is False and broken.json()["reason"].startswith(
        "pdf_signature: ")
