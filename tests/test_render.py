"""Rendering: the PDF a citizen gets, checked the way a reader, a printer and a phone see it.

Text layer via pdftotext, the QR via pdftoppm + zbarimg, page and fonts via pdfinfo/pdffonts
(poppler-utils, zbar-tools). No mocks: real typst, real fonts, real QR.
"""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import typst

from issuer.render import Renderer, nfc
from signing.qr import qr_svg, qr_version
from tests.conftest import SAMPLES
from tests.fixture_scope import shared

TOOLS = ("pdftotext", "pdftoppm", "pdfinfo", "pdffonts", "zbarimg")


@pytest.fixture(scope=shared("module"), autouse=True)
def _tools() -> None:
    """The independent checkers are part of the suite (make debian-tools): fail, never skip."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"install {', '.join(missing)} (poppler-utils, zbar-tools)"


INJECTION = "*bold* #set text(red) [x] $y$ <z> \\"


@pytest.fixture(scope=shared("module"))
def samples() -> Path:
    """The sample requests shipped with the tests (copies of shared/data/samples)."""
    return SAMPLES


@pytest.fixture(scope=shared("module"))
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope=shared("module"))
def seal() -> str:
    """Same shape as a real seal: link, flag digit, ~750 digits of COSE_Sign1."""
    rng = random.Random(20261128)
    return "https://127.0.0.1:8000/v#1" + "".join(rng.choice("0123456789") for _ in range(750))


@pytest.fixture(scope=shared("module"))
def qr(seal: str) -> bytes:
    return qr_svg(seal)


def request(samples: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((samples / f"{name}.json").read_text(encoding="utf-8"))
    return data


def certificate_data(req: dict[str, Any], number: str = "PMC/B/2026/000001") -> dict[str, Any]:
    """The template input exactly as the issue job builds it."""
    return {
        "issuer": {
            "name": {"en": "Pune Municipal Corporation", "mr": "पुणे महानगरपालिका"},
            "department": {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"},
        },
        "certificate": {
            "number": number,
            "issued_at": "2026-11-28",
            "template_version": "birth/1",
            "verify_host": "127.0.0.1:8000",
        },
        "request": req,
    }


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pdf_file(tmp_path: Path, pdf: bytes, name: str = "out.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def pdf_text(tmp_path: Path, pdf: bytes) -> str:
    return run("pdftotext", "-enc", "UTF-8", str(pdf_file(tmp_path, pdf, "text.pdf")), "-")


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def decode_qr(tmp_path: Path, pdf: bytes, dpi: int = 300) -> str:
    path = pdf_file(tmp_path, pdf, "qr.pdf")
    run("pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "pg"))
    (png,) = tmp_path.glob("pg*.png")
    return run("zbarimg", "--raw", "-q", str(png)).removesuffix("\n")


@pytest.mark.parametrize("name", ["birth-1", "birth-2"])
def test_text_layer_has_names_and_certificate_number(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path, name: str
) -> None:
    req = request(samples, name)
    text = pdf_text(tmp_path, renderer.render("birth/1", certificate_data(req), qr))

    child = req["child"]["name"]
    assert child["en"] in text
    # poppler splits some shaped Devanagari clusters with a space ("कु लकर्णी": typst writes
    # ActualText spans with a glyph offset), so the Marathi name is compared without spaces.
    assert squash(unicodedata.normalize("NFC", child["mr"])) in squash(text)
    assert squash(req["mother"]["name"]["mr"]) in squash(text)
    assert "PMC/B/2026/000001" in text
    assert req["registration_number"] in text
    assert "Scan to verify at" in text and "127.0.0.1:8000" in text


def test_fields_are_formatted_and_translated(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    text1 = pdf_text(
        tmp_path, renderer.render("birth/1", certificate_data(request(samples, "birth-1")), qr)
    )
    text2 = pdf_text(
        tmp_path, renderer.render("birth/1", certificate_data(request(samples, "birth-2")), qr)
    )

    assert "21-02-2026" in text1 and "02-03-2026" in text1 and "28-11-2026" in text1
    assert "Male" in text1 and "पुरुष" in text1
    assert "Female" in text2 and "स्त्री" in text2
    assert "birth/1" in text1
    # Remarks print only when present: birth-1 has them, birth-2 has empty strings.
    assert "Remarks" in text1 and "Registered within the prescribed time." in text1
    assert "Remarks" not in text2
    # Contact details of the applicant are not certified facts and never print.
    assert "+919800000012" not in text1 and "sandeep.k@example.in" not in text1


@pytest.mark.parametrize("name", ["birth-1", "birth-2"])
def test_qr_decodes_to_the_seal_at_300_dpi(
    samples: Path, renderer: Renderer, seal: str, qr: bytes, tmp_path: Path, name: str
) -> None:
    pdf = renderer.render("birth/1", certificate_data(request(samples, name)), qr)
    assert decode_qr(tmp_path, pdf) == seal


def test_automatic_mask_also_decodes(
    samples: Path, renderer: Renderer, seal: str, tmp_path: Path
) -> None:
    pdf = renderer.render(
        "birth/1", certificate_data(request(samples, "birth-1")), qr_svg(seal, mask_pattern=None)
    )
    assert decode_qr(tmp_path, pdf) == seal


def test_one_a4_page(samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path) -> None:
    pdf = renderer.render("birth/1", certificate_data(request(samples, "birth-1")), qr)
    info = run("pdfinfo", str(pdf_file(tmp_path, pdf)))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)$", info, re.M)


def test_fonts_are_embedded_subset_noto_only(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    pdf = renderer.render("birth/1", certificate_data(request(samples, "birth-1")), qr)
    rows = run("pdffonts", str(pdf_file(tmp_path, pdf))).splitlines()[2:]
    fonts = {row.split()[0]: row for row in rows}
    names = {name.split("+", 1)[1] for name in fonts}
    assert names == {
        "NotoSans-Regular",
        "NotoSans-Bold",
        "NotoSansDevanagari-Regular",
        "NotoSansDevanagari-Bold",
    }
    for name, row in fonts.items():
        assert re.fullmatch(r"[A-Z]{6}\+Noto\S+", name), row
        # columns after the encoding: emb sub uni
        assert re.search(r"\s+yes\s+yes\s+yes\s+\d+\s+\d+$", row), row


def test_compiler_is_reused_for_later_documents(samples: Path, qr: bytes, tmp_path: Path) -> None:
    fresh = Renderer()
    numbers = ["PMC/B/2026/000011", "PMC/B/2026/000012", "PMC/B/2026/000013"]
    names = ["birth-1", "birth-2", "birth-1"]
    for number, name in zip(numbers, names, strict=True):
        req = request(samples, name)
        text = pdf_text(tmp_path, fresh.render("birth/1", certificate_data(req, number), qr))
        assert number in text
        assert req["child"]["name"]["en"] in text


def test_markup_in_data_prints_literally(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    req = request(samples, "birth-1")
    req["child"]["name"]["en"] = INJECTION
    req["child"]["name"]["mr"] = '#panic("x") ]) // ' + "आरव"
    req["remarks"]["en"] = '#import "/etc/passwd" = Heading'
    text = pdf_text(tmp_path, renderer.render("birth/1", certificate_data(req), qr))
    assert INJECTION in text
    assert '#panic("x") ]) // आरव' in text
    assert '#import "/etc/passwd" = Heading' in text


def test_same_input_renders_identically(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    data = certificate_data(request(samples, "birth-2"))
    first = renderer.render("birth/1", data, qr)
    second = Renderer().render("birth/1", copy.deepcopy(data), qr)
    assert pdf_text(tmp_path, first) == pdf_text(tmp_path, second)
    # No clock or randomness in the output: rendering is a pure function of its inputs.
    assert first == second


def test_text_is_nfc_normalised(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    req = request(samples, "birth-1")
    req["child"]["name"]["en"] = "Rene\u0301e Kulkarni"
    text = pdf_text(tmp_path, renderer.render("birth/1", certificate_data(req), qr))
    assert "Ren\u00e9e Kulkarni" in text
    assert nfc({"a": ["e\u0301", ("o\u0308",)], "e\u0301": 1}) == {
        "a": ["\u00e9", ["\u00f6"]],
        "\u00e9": 1,
    }


def test_unknown_certificate_type_is_rejected(renderer: Renderer, qr: bytes) -> None:
    with pytest.raises(ValueError, match="unknown certificate type 'marriage'"):
        renderer.render("marriage/1", {}, qr)


def test_word_too_wide_for_its_field_fails(samples: Path, renderer: Renderer, qr: bytes) -> None:
    # Over validation's 40 characters a word is refused rather than broken over lines.
    req = request(samples, "birth-1")
    req["mother"]["name"]["en"] = "Sh" + "ra" * 60
    with pytest.raises(typst.TypstError, match="word too wide"):
        renderer.render("birth/1", certificate_data(req), qr)


def test_content_beyond_one_page_fails(samples: Path, renderer: Renderer, qr: bytes) -> None:
    # Far beyond the request limits (an address of ~12,000 characters, validation allows 300):
    # even the smallest text size cannot hold it, and the render fails instead of spilling.
    req = request(samples, "birth-1")
    req["permanent_address"]["en"] = " ".join([req["permanent_address"]["en"]] * 200)
    with pytest.raises(typst.TypstError, match="does not fit on one page"):
        renderer.render("birth/1", certificate_data(req), qr)


def test_qr_svg_is_one_vector_path(seal: str) -> None:
    svg = qr_svg(seal).decode("ascii")
    assert qr_version(seal) == 17
    size = 17 * 4 + 17 + 2 * 4  # modules of version 17 plus the quiet zone
    assert f'viewBox="0 0 {size} {size}"' in svg
    assert 'shape-rendering="crispEdges"' in svg
    assert svg.count("<path") == 1 and svg.count("<rect") == 1
    assert "<image" not in svg and "png" not in svg.lower()
    assert qr_svg(seal) == qr_svg(seal)


# ---------------------------------------------------------------- long requests still fit one page
# Validation limits (issuer/certtypes/birth.py), in characters, English and Marathi alike; no word
# may be longer than 40 characters. The template shrinks the particulars table to fit them.
LIMITS = {
    "child.name": 100,
    "mother.name": 100,
    "father.name": 100,
    "child.place_of_birth": 200,
    "permanent_address": 300,
    "remarks": 300,
    "ward_office": 120,
}
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


def field(req: dict[str, Any], path: str) -> dict[str, str]:
    node = req
    for key in path.split("."):
        node = node[key]
    return node


def request_at_limits(
    samples: Path, shape: tuple[str, str] | None = None, seed: int = 2026
) -> dict[str, Any]:
    """birth-1 with every text field at its limit in both languages: realistic mixed words with a
    40-character word leading the child's name (English) and the address (Marathi), or, with
    `shape`, repeats of the words `shape` = (English, Marathi)."""
    req = request(samples, "birth-1")
    rng = random.Random(seed)
    for path, length in LIMITS.items():
        value = field(req, path)
        for lang, words in (("en", EN_WORDS), ("mr", MR_WORDS)):
            if shape is not None:
                word = shape[0] if lang == "en" else shape[1]
                value[lang] = at_limit([word], length, rng, lang)
                continue
            first = {("child.name", "en"): LONG_EN, ("permanent_address", "mr"): LONG_MR}
            value[lang] = at_limit(words, length, rng, lang, first.get((path, lang), ""))
    # The request is valid: at the limits, not past them.
    from issuer.certtypes.birth import Birth

    fields = {path.split(".")[0] for path in LIMITS}
    assert [e for e in Birth().validate(req) if e.field.split(".")[0] in fields] == []
    for path, length in LIMITS.items():
        assert [len(field(req, path)[lang]) for lang in ("en", "mr")] == [length, length], path
    return req


def particulars_size(data: dict[str, Any], qr: bytes) -> dict[str, str]:
    """How the template laid out the particulars: {"mode": "full" | "fitted", "size": "…pt"}."""
    import templates

    fonts = typst.Fonts(
        include_system_fonts=False,
        include_embedded_fonts=False,
        font_paths=[str(templates.fonts_dir())],
    )
    found = typst.query(
        str(templates.templates_dir() / "birth" / "1.typ"),
        "<particulars-size>",
        field="value",
        one=True,
        root=str(templates.templates_dir()),
        font_paths=fonts,
        ignore_system_fonts=True,
        sys_inputs={"data": json.dumps(nfc(data), ensure_ascii=False), "qr": qr.decode()},
    )
    result: dict[str, str] = json.loads(found)
    return result


def points(size: str) -> float:
    return float(size.removesuffix("pt"))


def words_with_boxes(tmp_path: Path, pdf: bytes) -> list[tuple[str, float, float, float, float]]:
    """Every word of the text layer with its box (xMin, yMin, xMax, yMax) in points."""
    html = run("pdftotext", "-bbox", str(pdf_file(tmp_path, pdf, "bbox.pdf")), "-")
    found = re.findall(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', html
    )
    return [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in found]


def assert_particulars_inside(tmp_path: Path, pdf: bytes) -> None:
    """No word of the particulars runs past the value cell's right edge or down into the QR (which
    sits right above "Scan to verify at")."""
    mm = 72 / 25.4
    words = words_with_boxes(tmp_path, pdf)
    top = min(y0 for w, _, y0, _, _ in words if w == "Name")  # "Name of the child"
    seal_top = min(y0 for w, _, y0, _, _ in words if w == "Certificate")  # "Certificate number"
    qr_top = min(y0 for w, _, y0, _, _ in words if w == "Scan") - 38 * mm
    table = [(w, x1, y1) for w, _, y0, x1, y1 in words if top <= y0 < seal_top]
    cell_right = (210 - 17 - 2.6) * mm  # page width - margin - cell padding
    assert [w for w, x1, _ in table if x1 > cell_right + 0.5] == []
    assert max(y1 for _, _, y1 in table) < qr_top


def test_samples_print_at_full_size(samples: Path, qr: bytes) -> None:
    # Usual data keeps the usual layout: no shrinking, no fitting pass.
    for name in ("birth-1", "birth-2"):
        data = certificate_data(request(samples, name))
        assert particulars_size(data, qr) == {"mode": "full", "size": "10.5pt"}


def test_request_at_the_limits_prints_on_one_page(
    samples: Path, renderer: Renderer, seal: str, qr: bytes, tmp_path: Path
) -> None:
    req = request_at_limits(samples)
    data = certificate_data(req)
    pdf = renderer.render("birth/1", data, qr)

    info = run("pdfinfo", str(pdf_file(tmp_path, pdf)))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert decode_qr(tmp_path, pdf) == seal
    text = squash(pdf_text(tmp_path, pdf))
    assert squash(req["child"]["name"]["en"]) in text
    assert squash(req["child"]["name"]["mr"]) in text
    assert squash(LONG_MR) in text
    assert "\u200b" not in text
    # Realistic text at the limits stays readable: the table shrinks to no less than 7.5 pt.
    layout = particulars_size(data, qr)
    assert layout["mode"] == "fitted" and 7.5 <= points(layout["size"]) < 10.5
    assert_particulars_inside(tmp_path, pdf)


@pytest.mark.parametrize(
    "shape",
    [("WWWWWWWW", "कुलकर्णी"), ("W" * 40, "म" * 40), ("\u01c4" * 40, "ओ" * 40)],
    ids=["W8", "W40", "widest"],
)
def test_widest_valid_text_still_prints_on_one_page(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path, shape: tuple[str, str]
) -> None:
    # Fields at their limits made of the widest letters (Ǆ is the widest the fonts have, ओ the
    # widest Devanagari): smaller text, but one page, never an error for a valid request.
    req = request_at_limits(samples, shape)
    pdf = renderer.render("birth/1", certificate_data(req), qr)
    info = run("pdfinfo", str(pdf_file(tmp_path, pdf)))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert_particulars_inside(tmp_path, pdf)


def test_word_wider_than_its_cell_breaks_over_lines(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    # 40 capital Ws in the child's name (11 pt bold) are wider than the value cell at full size:
    # the word starts its own line and breaks between letters, inside the cell, and the text
    # layer still has the name without zero-width spaces.
    req = request(samples, "birth-1")
    req["child"]["name"] = {"en": "Aarav " + "W" * 40 + " Kulkarni", "mr": "आरव " + "म" * 40}
    pdf = renderer.render("birth/1", certificate_data(req), qr)
    info = run("pdfinfo", str(pdf_file(tmp_path, pdf)))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert_particulars_inside(tmp_path, pdf)
    text = pdf_text(tmp_path, pdf)
    assert squash(req["child"]["name"]["en"]) in squash(text)
    assert "\u200b" not in text
