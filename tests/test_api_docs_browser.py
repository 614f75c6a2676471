"""The API's documentation page (/api/v1/docs) in a real browser (tests/browser.py): under the
pages' CSP it lists every operation of the OpenAPI document, with no console error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser import browser, page, screenshot  # noqa: F401 - fixtures
from tests.conftest import Live

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_docs_page_lists_every_operation(live: Live, page: Page) -> None:  # noqa: F811
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(live.url("/api/v1/docs"))
    page.wait_for_selector("details.op")
    doc = live.get("/api/v1/openapi.json").json()
    operations = sum(1 for item in doc["paths"].values() for method in item)
    shown = page.locator("#operations details.op")
    assert shown.count() == operations
    assert page.locator("#schemas details.op").count() == len(doc["components"]["schemas"])
    first = shown.filter(has_text="/api/v1/certificates").first
    first.locator("summary").click()
    assert "CertificateRequest" in first.inner_text() or "CertificateList" in first.inner_text()
    screenshot(page, "api-docs")
    assert problems == []
