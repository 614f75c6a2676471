"""A real browser for the people-facing pages: Playwright for Python driving Debian's Chromium
(`apt-get install chromium`; `make debian-tools` installs it). Never a downloaded browser:
`playwright install` is not run, the executable is the system's (`PRAMAAN_CHROMIUM` names
another). Headless; as root (CI, containers) without Chromium's sandbox, which refuses root.

Screenshots of each state a test reaches are saved under `var/test-artifacts/browser/` (kept
after the run, ignored by git): look at them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.conftest import ROOT, service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

T = TypeVar("T")
ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"


def chromium_path() -> str | None:
    return os.environ.get("PRAMAAN_CHROMIUM") or shutil.which("chromium")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Per test, and to be asked for after `live`: Playwright's sync API keeps an asyncio loop
    running in this thread while it is open, and the app's set-up (pyHanko's validation) calls
    asyncio.run in this thread."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        service_missing("Chromium", FileNotFoundError("chromium (apt-get install chromium)"))
    assert executable is not None
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-IN", viewport={"width": 412, "height": 915})
    try:
        yield context.new_page()
    finally:
        context.close()


def off_the_loop(call: Callable[[], T]) -> T:
    """Run `call` in another thread: while Playwright's sync API is open this thread has a
    running asyncio loop, and code that calls asyncio.run (pyHanko's validation, the published
    documents' certificate checks) must run elsewhere."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def screenshot(page: Page, name: str) -> Path:
    """Save what the page shows now as `name`.png among the test artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
