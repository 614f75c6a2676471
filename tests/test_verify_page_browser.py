"""The verify page (`/v`) in a real browser (tests/browser.py: Debian's Chromium through
Playwright): a verifier opens the QR's link and reads the verdict and the particulars; a link
with one digit changed shows a red failure, never a partial green. Real HTTP on 127.0.0.1, a
certificate issued by the real pipeline. Screenshots: var/test-artifacts/browser/."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

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
    position = len(digits) // 2
    changed = digits[:position] + str((int(digits[position]) + 1) % 10) + digits[position + 1:]
    page.goto(f"{live.base}/v#{changed}")

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
