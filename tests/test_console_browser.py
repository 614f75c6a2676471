"""The officers' console in a real browser (Debian's Chromium through Playwright): a clerk submits
a request, an officer signs in, finds it in the ward's queue, looks at the preview, approves it,
and the certificate appears; the console in Marathi. Screenshots:
var/test-artifacts/browser/console-*.png."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.browser import browser, page, screenshot  # noqa: F401 - fixtures
from tests.conftest import Live, sample
from tests.test_console import PASSWORD, issued_now, office
from tests.test_portal_browser import CONTRAST

if TYPE_CHECKING:
    from playwright.sync_api import Page


def sign_in(page: Page, live: Live, username: str) -> None:  # noqa: F811 - the fixture's name
    page.set_viewport_size({"width": 1280, "height": 900})  # an office's desktop screen
    page.goto(f"{live.base}/console/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#who")


def test_an_officer_approves_a_clerk_s_request_and_the_certificate_appears(
        live: Live, page: Page) -> None:  # noqa: F811
    place = office(live)
    data = sample("birth-1")
    data["registration_number"] = "B-2026-PMC-990001"

    sign_in(page, live, f"clerk.{place.code}")
    page.click("#new")
    page.get_by_label("The request as JSON", exact=False).fill(
        json.dumps(data, ensure_ascii=False, indent=1))
    page.get_by_role("button", name="Submit for approval").click()
    assert "Submitted" in page.inner_text("#done")
    cert_id = page.url.split("/console/c/")[1].split("?")[0]
    screenshot(page, "console-clerk-submitted")
    page.click("#sign-out")
    page.wait_for_selector("#username")

    sign_in(page, live, f"officer.{place.code}")
    ward = page.locator("section.ward", has_text="Kothrud-Bavdhan Ward Office")
    assert ward.count() == 1
    screenshot(page, "console-queue")
    ward.get_by_role("link", name="B-2026-PMC-990001").click()
    preview = page.locator("#preview")
    preview.wait_for()
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    assert page.evaluate("document.getElementById('preview').naturalWidth") > 800
    assert "Aarav Sandeep Kulkarni" in page.inner_text("table.particulars")
    screenshot(page, "console-record")
    page.get_by_role("button", name="Approve and issue").click()
    assert "Approved" in page.inner_text("#done")
    record = issued_now(live, cert_id)
    page.reload()
    assert page.inner_text("#state") == "issued"
    assert page.inner_text("#number") == record.number
    assert page.locator("#pdf").count() == 1
    screenshot(page, "console-issued")
    ratios = page.evaluate(CONTRAST, "label, p, button, a, dd, dt, h1, h2, th, td, li")
    low = [(what, round(ratio, 2)) for what, ratio in ratios if ratio < 4.5]
    assert not low, low


def test_the_console_switches_to_marathi(live: Live, page: Page) -> None:  # noqa: F811
    place = office(live)
    place.submit()
    sign_in(page, live, f"officer.{place.code}")
    page.get_by_role("link", name="मराठी").click()
    assert page.evaluate("document.documentElement.lang") == "mr"
    assert page.get_by_role("heading", name="मंजुरीच्या प्रतीक्षेतील विनंत्या").is_visible()
    assert page.get_by_role("button", name="साइन आउट करा").is_visible()
    page.wait_for_function("() => document.fonts.check('16px \"Noto Sans Devanagari\"', 'मंजुरी')")
    screenshot(page, "console-marathi")
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("heading", name="Requests awaiting approval").is_visible()
