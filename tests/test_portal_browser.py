"""The citizen portal in a real browser (Debian's Chromium through Playwright): a citizen fills
the form with the keyboard, downloads the right PDF, gets the one refusal for wrong details,
reads the errors next to their fields, and switches to Marathi. Screenshots:
var/test-artifacts/browser/portal-*.png."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser import browser, page, screenshot  # noqa: F401 - fixtures
from tests.conftest import Live
from tests.test_portal import issued_birth

if TYPE_CHECKING:
    from playwright.sync_api import Page

# WCAG 2.1 contrast of a colour pair, computed in the page from the colours it really uses.
CONTRAST = """(selector) => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((c) => {
      c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  return [...document.querySelectorAll(selector)].filter((el) => el.innerText.trim())
    .map((el) => {
      const [a, b] = [lum(getComputedStyle(el).color), lum(background(el))];
      return [el.tagName + ' ' + el.innerText.slice(0, 30),
              (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
    });
}"""


def test_a_citizen_downloads_the_right_pdf_with_the_keyboard(live: Live,
                                                            page: Page) -> None:  # noqa: F811
    made = issued_birth(live)
    page.goto(f"{live.base}/portal")
    screenshot(page, "portal-home")
    page.get_by_role("link", name="Birth certificate").click()
    page.wait_for_selector("#reference")
    for _ in range(8):  # from the top of the page, by keyboard: the skip link, then the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "reference":
            break
    assert page.evaluate("document.activeElement.id") == "reference"
    page.keyboard.type(made["data"]["registration_number"])
    page.keyboard.press("Tab")
    page.keyboard.type("21-02-2026")  # as the paper prints dates
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_selector("#outcome")
    assert "Your certificate is ready" in page.inner_text("#outcome")
    assert page.inner_text("#number") == made["view"]["number"]
    screenshot(page, "portal-ready")

    with page.expect_download() as downloading:
        page.click("#download")
    saved = downloading.value
    data = Path(saved.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == live.get(
        f"/api/v1/certificates/{made['id']}").json()["pdf_sha256"]
    assert saved.suggested_filename == made["view"]["number"].replace("/", "-") + ".pdf"


def test_wrong_details_get_one_refusal_and_errors_sit_by_their_fields(
        live: Live, page: Page) -> None:  # noqa: F811
    made = issued_birth(live)
    page.goto(f"{live.base}/portal/birth")
    page.get_by_label("Registration number").fill(made["data"]["registration_number"])
    page.get_by_label("Date of birth").fill("22-02-2026")
    page.get_by_role("button", name="Find my certificate").click()
    refusal = page.get_by_role("alert")
    assert "No certificate matches these details" in refusal.inner_text()
    # What was typed stays, to be corrected rather than typed again.
    assert page.get_by_label("Registration number").input_value() == \
        made["data"]["registration_number"]
    screenshot(page, "portal-refused")

    page.get_by_label("Registration number").fill("")
    page.get_by_role("button", name="Find my certificate").click()
    alert = page.get_by_role("alert")
    assert "Enter the number printed on your receipt" in alert.inner_text()
    reference = page.get_by_label("Registration number")
    assert reference.get_attribute("aria-invalid") == "true"
    assert "reference-error" in (reference.get_attribute("aria-describedby") or "")
    alert.get_by_role("link").first.click()  # the summary's link goes to the field
    assert page.evaluate("location.hash") == "#reference"
    screenshot(page, "portal-field-errors")


def test_the_marathi_switch_and_the_contrast(live: Live, page: Page) -> None:  # noqa: F811
    page.goto(f"{live.base}/portal/birth")
    page.get_by_role("link", name="मराठी").click()
    assert page.evaluate("document.documentElement.lang") == "mr"
    assert page.get_by_label("नोंदणी क्रमांक").is_visible()
    assert page.get_by_label("जन्म दिनांक").is_visible()
    assert page.get_by_role("button", name="माझे प्रमाणपत्र शोधा").is_visible()
    # The Devanagari is drawn with the shipped font, not a fallback's empty boxes.
    page.wait_for_function("() => document.fonts.check('16px \"Noto Sans Devanagari\"', 'नोंदणी')")
    screenshot(page, "portal-marathi")
    assert page.get_by_text("Registration number").count() == 0
    ratios = page.evaluate(CONTRAST, "label, p, button, a, dd, dt, h1, li")
    assert ratios
    low = [(what, round(ratio, 2)) for what, ratio in ratios if ratio < 4.5]
    assert not low, low
    page.get_by_role("link", name="English").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.get_by_label("Registration number").is_visible()
