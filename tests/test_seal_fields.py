"""Marathi names packed one byte per letter in the seal (issuer.seal_fields.py), and unpacked the
same way by the verify page (templates/web/seal.js `unpackName`, in Debian's Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from issuer.seal_fields import holder_of, pack, unpack
from tests.browser import browser, page  # noqa: F401 - fixtures
from tests.conftest import Live, make_settings, serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

NAMES = ["आरव संदीप कुलकर्णी", "रुखसाना इम्तियाज शेख व इतर १", "ॲलन डि'सूझा", "कु. श्रद्धा",
         "र्\u200dया", "क\u200cष", "Flat 12, B-4 (near ॐ)", "॥ ० ९ ॿ ऀ"]


@pytest.mark.parametrize("name", NAMES)
def test_a_devanagari_name_packs_one_byte_per_code_point_and_back(name: str) -> None:
    packed = pack(name)
    assert isinstance(packed, bytes) and len(packed) == len(name)
    assert len(packed) * 3 <= len(name.encode()) + 2 * sum(c.isascii() for c in name)
    assert unpack(packed) == name


@pytest.mark.parametrize("name", ["Zoë", "क€", "emoji 🙂", "tab\there", "ক (Bengali)"])
def test_a_name_with_a_character_outside_the_scheme_stays_text(name: str) -> None:
    assert pack(name) == name and unpack(name) == name


@pytest.mark.parametrize("raw", [b"\x00", b"\x03", b"\x1f", b"\x7f", b"a\tb"])
def test_bytes_outside_the_scheme_do_not_unpack(raw: bytes) -> None:
    assert unpack(raw) is None


def test_a_holder_claim_reads_in_both_languages() -> None:
    assert holder_of({"en": "Aarav", "mr": pack("आरव")}) == {"en": "Aarav", "mr": "आरव"}
    assert holder_of({"en": "Aarav", "mr": 7}) == {"en": "Aarav", "mr": None}
    assert holder_of(["Aarav"]) is None


@pytest.fixture
def origin(tmp_path: Path, keys_dir: Path) -> Iterator[Live]:
    yield from serve(make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir))


def test_the_verify_page_unpacks_as_the_server_does(origin: Live,
                                                   page: Page) -> None:  # noqa: F811
    page.goto(f"{origin.base}/v")
    cases = [list(pack(name)) for name in NAMES] + [[0], [3], [0x7f]]
    read = page.evaluate("""async (cases) => {
        const {unpackName} = await import('/v/assets/seal.js');
        return cases.map((c) => unpackName(Uint8Array.from(c))); }""", cases)
    assert read == [*NAMES, None, None, None]
