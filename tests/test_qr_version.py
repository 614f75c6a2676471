"""`qr_version` names the version of the symbol `qr_svg` draws (error correction Q), so a caller
can size the printed seal before drawing it."""

from __future__ import annotations

import re

import pytest

from signing.qr import BORDER_MODULES, qr_svg, qr_version

TEXTS = {
    "short link": "https://verify.pmc.example/v#1",
    "seal link": "https://verify.pmc.example/v#1" + "0123456789" * 75,
    "longest seal": "http://127.0.0.1:8000/v#1" + "9" * 841,
    "devanagari": "नमस्ते " * 20,
}


def drawn_version(text: str) -> int:
    """The version of the symbol in the SVG: its side is 17 + 4 * version modules plus the
    quiet zone on both sides."""
    match = re.search(rb'viewBox="0 0 (\d+) \1"', qr_svg(text))
    assert match is not None
    side = int(match[1]) - 2 * BORDER_MODULES
    assert (side - 17) % 4 == 0
    return (side - 17) // 4


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_qr_version_is_the_version_qr_svg_draws(name: str) -> None:
    text = TEXTS[name]
    assert qr_version(text) == drawn_version(text)


def test_qr_version_of_a_seal_link() -> None:
    # Error correction Q: python-qrcode's default (M) would fit it in version 14.
    assert qr_version(TEXTS["seal link"]) == 17
