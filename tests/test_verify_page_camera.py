"""Scanning the QR with the camera on the verify page itself (templates/web/camera.js), in
Debian's Chromium with a fake camera that films a printed certificate (a Y4M video of the page's
QR as a phone sees it, tests/qr_conditions.py). Headless Chromium on Linux has no
BarcodeDetector, so this reads with zxing-wasm, the decoder installed from npm at build time and
served by us (`make` fetches it: Makefile DECODER)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from templates import web_dir
from tests.browser import chromium_path, screenshot
from tests.conftest import Live, sample
from tests.qr_conditions import phone, printed_qr


def y4m(frame: Any, path: Path, frames: int = 20) -> Path:
    """`frame` (greyscale) as a Y4M video of `frames` frames, 4:2:0, padded to even sizes."""
    height, width = frame.shape
    even = np.full((height + height % 2, width + width % 2), 255, dtype=np.uint8)
    even[:height, :width] = frame
    h, w = even.shape
    chroma = np.full((h // 2) * (w // 2), 128, dtype=np.uint8).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + even.tobytes() + chroma + chroma)
    return path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_page_reads_the_qr_from_the_camera_and_verifies_it(live: Live,
                                                               tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert (web_dir() / "vendor" / "zxing_reader.wasm").exists(), "run make (it fetches it)"
    made = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert made.status_code == 202, made.text
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(live.get(made.json()["links"]["self"] + "/pdf").content)
    frame = phone(printed_qr(pdf), np.random.default_rng(5))
    video = y4m(frame, tmp_path / "camera.y4m")
    executable = chromium_path()
    assert executable is not None
    args = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}",
            "--use-fake-ui-for-media-stream"] + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=args)
        try:
            context = browser.new_context(locale="en-IN", viewport={"width": 412, "height": 915})
            context.grant_permissions(["camera"], origin=live.base)
            page = context.new_page()
            page.goto(f"{live.base}/v")
            assert page.evaluate("() => 'BarcodeDetector' in window") is False
            page.click("#scan")
            page.wait_for_function("() => location.hash.length > 100", timeout=60_000)
            page.wait_for_function(
                "() => !document.getElementById('result').textContent.startsWith('Checking')"
                " && document.getElementById('result').className.includes('ok')",
                timeout=60_000)
            text = page.locator("#result").inner_text()
            assert "Genuine and current" in text
            assert "Aarav Sandeep Kulkarni" in page.locator("#details").inner_text()
            # The decoder came from us: zxing-wasm's reader and its wasm, from /v/vendor/.
            loaded = page.evaluate("""() => performance.getEntriesByType('resource')
                .map((r) => new URL(r.name).pathname).filter((p) => p.startsWith('/v/vendor/'))""")
            assert "/v/vendor/zxing_reader.wasm" in loaded, loaded
            screenshot(page, "verify-camera-scan")
        finally:
            browser.close()
