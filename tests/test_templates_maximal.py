"""The longest valid requests of every type still print on one page with nothing cut off.

Every text field at its length limit in both languages (realistic mixed words with a 40-letter
word, the longest validation allows, in the name and the address), the most owners a no-dues
certificate may list, and the same again made of the widest letters the fonts have. Validation
is what refuses anything longer (issuer/certtypes/*), so a valid request never fails to render.
Checked with pdfinfo (one page) and pdftotext (the texts are there, inside the value column and
above the QR). The 200 dpi look by eye is in the README's certificate types section.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from issuer.certtypes.property_no_dues import MAX_OWNERS
from issuer.render import Renderer
from issuer.submit import validate
from tests.certificate_pdfs import (
    SEAL,
    pages,
    particulars_size,
    qr_text,
    render,
    squash,
    text_of,
    words_with_boxes,
)
from tests.conftest import sample
from tests.fixture_scope import shared

EN_WORDS = (
    "Shraddha Sandeep Kulkarni Trimbak Deshpande Flat 12, Kshitij Apartments, Karve Road, "
    "Kothrud, Pune 411038 Near Hanuman Mandir Lane No. 4, Opposite Sahyadri Hospital, Bavdhan "
    "Khurd, Gram Panchayat Office, Taluka Mulshi, District Maharashtra Registered within the "
    "prescribed time after verification of hospital intimation by Dr. Vaishali Joshi-Patwardhan"
).split()
MR_WORDS = (
    "श्रद्धा संदीप कुलकर्णी त्र्यंबक देशपांडे फ्लॅट १२, क्षितिज अपार्टमेंट्स, कर्वे रस्ता, कोथरूड, पुणे ४११०३८ "
    "हनुमान मंदिराजवळ गल्ली क्रमांक ४, सह्याद्री रुग्णालयासमोर, बावधन खुर्द, ग्रामपंचायत कार्यालय, "
    "तालुका मुळशी, जिल्हा महाराष्ट्र विहित मुदतीत नोंदणी केली आहे ज्ञानेश्वर पत्र्याचाळ"
).split()
LONG_EN = "Shrimantchhatrapatishivajimaharajchowkro"  # 40 characters
LONG_MR = "छत्रपतीशिवाजीमहाराजचौकपरिसरातीलगृहनिर्मा"  # 40 characters
REFERENCE = "PMC/PT/12/0456/00078123/2026-27/ABCDEFGH"  # 40 characters, the reference limit

# Field -> length limit, per type (the schemas' limits).
LIMITS: dict[str, dict[str, int]] = {
    "death": {
        "deceased.name": 100, "deceased.place_of_death": 200, "relative.name": 100,
        "permanent_address": 300, "remarks": 300, "ward_office": 120,
    },
    "property_no_dues": {
        "property_address": 300, "ward_office": 120,
        **{f"owners.{i}.name": 100 for i in range(MAX_OWNERS)},
    },
}
# The widest letters the fonts have: Ǆ (Latin) and ओ (Devanagari); W and म: wide and common.
SHAPES = {"W8": ("WWWWWWWW", "कुलकर्णी"), "W40": ("W" * 40, "म" * 40),
          "widest": ("\u01c4" * 40, "ओ" * 40)}


@pytest.fixture(scope=shared("module"), autouse=True)
def _tools() -> None:
    missing = [t for t in ("pdftotext", "pdfinfo", "pdftoppm", "zbarimg") if not shutil.which(t)]
    assert not missing, f"install {', '.join(missing)} (poppler-utils, zbar-tools)"


@pytest.fixture(scope=shared("module"))
def renderer() -> Renderer:
    return Renderer()


def at_limit(words: list[str], length: int, rng: random.Random, lang: str, first: str = "") -> str:
    """Random words from `words` after `first`, padded to exactly `length` characters."""
    text = first
    while fitting := [w for w in words if len(text) + 1 + len(w) <= length]:
        word = rng.choice(fitting)
        text = f"{text} {word}" if text else word
    pad = length - len(text)
    if pad == 1:
        text += "."
    elif pad > 1:
        text += " " + ("Pune" if lang == "en" else "पुणे") * pad
        text = text[:length]
    return text


def node(req: dict[str, Any], path: str) -> dict[str, str]:
    value: Any = req
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    assert isinstance(value, dict)
    return value


def maximal(name: str, shape: tuple[str, str] | None = None, seed: int = 2026) -> dict[str, Any]:
    """Sample `name` with every text field at its limit in both languages, every reference at
    40 characters, the most owners; checked valid by the real validator."""
    req = sample(name)
    kind = req["type"]
    rng = random.Random(seed)
    if kind == "property_no_dues":
        req["owners"] = [{"name": {"en": "", "mr": ""}} for _ in range(MAX_OWNERS)]
        req["usage"] = "mixed"  # the longest wording
        req["certificate_reference"] = req["property_id"] = REFERENCE
        req["last_receipt"]["number"] = REFERENCE
        req["last_receipt"]["amount_inr"] = "99999999999.99"
    else:
        req["registration_number"] = REFERENCE
        req["remarks"] = {"en": "", "mr": ""}
        req["deceased"]["age_years"] = 125
    for path, length in LIMITS[kind].items():
        value = node(req, path)
        for lang, words in (("en", EN_WORDS), ("mr", MR_WORDS)):
            if shape is not None:
                value[lang] = at_limit([shape[0] if lang == "en" else shape[1]], length, rng,
                                       lang)
                continue
            first = LONG_EN if lang == "en" and path.endswith("name") else ""
            first = LONG_MR if lang == "mr" and "address" in path else first
            value[lang] = at_limit(words, length, rng, lang, first)
    validate(req)  # valid: at the limits, not past them
    for path, length in LIMITS[kind].items():
        assert [len(node(req, path)[lang]) for lang in ("en", "mr")] == [length, length], path
    return req


# A word of the first row's label: where the particulars table starts.
FIRST_LABEL = {"death-1": "Name", "property-1": "number"}


def _qr_top(tmp_path: Path, pdf: bytes) -> float:
    """The top of the QR symbol on page 1, in PDF points from the top of the page."""
    import cv2
    import zxingcpp

    source = tmp_path / "qr-top.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", "-singlefile", str(source),
                    str(tmp_path / "qr-top")], check=True, capture_output=True, timeout=60)
    found = zxingcpp.read_barcodes(cv2.imread(str(tmp_path / "qr-top.png"),
                                              cv2.IMREAD_GRAYSCALE))
    assert len(found) == 1, found
    corners = found[0].position
    top = min(p.y for p in (corners.top_left, corners.top_right, corners.bottom_left,
                            corners.bottom_right))
    return float(top) * 72 / 150


def assert_nothing_cut_off(tmp_path: Path, pdf: bytes, name: str) -> None:
    """No word of the particulars runs past the value cell's right edge, and the table ends above
    the QR (found on the rendered page with zxing-cpp)."""
    mm = 72 / 25.4
    words = words_with_boxes(tmp_path, pdf)
    top = min(y0 for w, _, y0, _, _ in words if w == FIRST_LABEL[name])
    # The seal block begins with "Scan to verify at" beside the QR (templates of version 2),
    # or with the certificate number (version 1, "Scan" under the QR).
    seal_top = min(y0 for w, _, y0, _, _ in words if w in ("Scan", "Certificate") and y0 > top)
    qr_top = _qr_top(tmp_path, pdf)
    table = [(w, x1, y1) for w, _, y0, x1, y1 in words if top <= y0 < seal_top]
    cell_right = (210 - 17 - 2.6) * mm  # page width - margin - cell padding
    assert [w for w, x1, _ in table if x1 > cell_right + 0.5] == []
    assert max(y1 for _, _, y1 in table) < qr_top


def keys_death(req: dict[str, Any]) -> list[str]:
    d = req["deceased"]
    return [d["name"]["en"], d["name"]["mr"], d["place_of_death"]["en"],
            d["place_of_death"]["mr"], req["relative"]["name"]["mr"],
            req["permanent_address"]["en"], req["permanent_address"]["mr"],
            req["remarks"]["en"], req["remarks"]["mr"], req["registration_number"], "125 years",
            "Date of registration", "PMC/D/2026/000001"]


def keys_property(req: dict[str, Any]) -> list[str]:
    owners = [o["name"][lang] for o in req["owners"] for lang in ("en", "mr")]
    return [*owners, req["property_address"]["en"], req["property_address"]["mr"],
            req["ward_office"]["mr"], REFERENCE, "₹ 99,99,99,99,999.99", "NIL", "निरंक",
            "Mixed (residential and commercial)", "PMC/P/2026/000001"]


KEYS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "death-1": keys_death, "property-1": keys_property,
}


@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_longest_valid_request_prints_on_one_page(
    renderer: Renderer, tmp_path: Path, name: str
) -> None:
    req = maximal(name)
    pdf = render(renderer, req)
    assert pages(tmp_path, pdf) == 1
    # pdftotext joins a word broken after its hyphen ("Joshi-" / "Patwardhan"): no hyphens.
    flat = squash(text_of(tmp_path, pdf)).replace("-", "")
    missing = [key for key in KEYS[name](req) if squash(key).replace("-", "") not in flat]
    assert missing == []
    assert "\u200b" not in flat
    assert_nothing_cut_off(tmp_path, pdf, name)
    assert qr_text(tmp_path, pdf) == SEAL


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_widest_valid_text_still_prints_on_one_page(
    renderer: Renderer, tmp_path: Path, name: str, shape: str
) -> None:
    req = maximal(name, SHAPES[shape])
    pdf = render(renderer, req)
    assert pages(tmp_path, pdf) == 1
    assert_nothing_cut_off(tmp_path, pdf, name)
    flat = squash(text_of(tmp_path, pdf))
    assert squash("Certificate number") in flat and "Scantoverifyat" in flat


def test_one_more_owner_is_refused_rather_than_printed() -> None:
    from issuer.errors import ValidationFailed

    req = maximal("property-1")
    req["owners"].append(req["owners"][0])
    with pytest.raises(ValidationFailed) as refused:
        validate(req)
    assert [(e.field, e.code) for e in refused.value.errors] == [("owners", "too_many")]


@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_samples_print_at_full_size(name: str) -> None:
    # Usual data keeps the usual layout: no shrinking, no fitting pass.
    assert particulars_size(sample(name)) == {"mode": "full", "size": "10.5pt"}


@pytest.mark.parametrize(("name", "floor"), [("death-1", 7.5), ("property-1", 6.0)])
def test_realistic_text_at_the_limits_stays_readable(name: str, floor: float) -> None:
    # Every field at its limit, ten owners of 100-character names: smaller, not tiny.
    layout = particulars_size(maximal(name))
    assert layout["mode"] == "fitted"
    assert floor <= float(layout["size"].removesuffix("pt")) < 10.5


def test_ascii_runs_of_28_of_the_widest_letter_fit_their_cell_unbroken(
    renderer: Renderer, tmp_path: Path
) -> None:
    # The template breaks no ASCII run of 28 letters or fewer (references, numbers): even 28
    # bold 11 pt "m" (its widest ASCII letter) fit the value cell at full size.
    req = sample("death-1")
    req["deceased"]["name"]["en"] = "m" * 28 + " Joshi"
    req["registration_number"] = "m" * 28
    assert particulars_size(req) == {"mode": "full", "size": "10.5pt"}
    pdf = render(renderer, req)
    assert_nothing_cut_off(tmp_path, pdf, "death-1")
    assert f"{'m' * 28}\nJoshi\n" in text_of(tmp_path, pdf)  # wrapped at the blank only


def test_a_longer_ascii_run_is_broken_inside_its_cell(renderer: Renderer, tmp_path: Path) -> None:
    # 40 bold 11 pt "m" (a valid word: validation allows 40 letters) are wider than the cell:
    # the template breaks the run between letters rather than letting it run off the cell.
    req = sample("death-1")
    req["deceased"]["name"]["en"] = "m" * 40
    validate(req)
    pdf = render(renderer, req)
    assert_nothing_cut_off(tmp_path, pdf, "death-1")
    assert "m" * 40 in squash(text_of(tmp_path, pdf))
