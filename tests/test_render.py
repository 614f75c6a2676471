"""Rendering: the PDF a citizen gets, checked the way a reader, a printer and a phone see it.

Text layer via pdftotext, the QR via pdftoppm + zbarimg, page and fonts via pdfinfo/pdffonts
(poppler-utils, zbar-tools). No mocks: real typst, real fonts, real QR.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import typst

from issuer.render import TEMPLATE_VERSIONS, Renderer, nfc
from signing.qr import qr_svg, qr_version

TOOLS = ("pdftotext", "pdftoppm", "pdfinfo", "pdffonts", "zbarimg")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS),
    reason=f"needs {', '.join(TOOLS)} (poppler-utils, zbar-tools)",
)

INJECTION = "*bold* #set text(red) [x] $y$ <z> \\"


@pytest.fixture(scope="module")
def samples() -> Path:
    """Sample requests: <repo>/../shared/data/samples, else $PRAMAAN_SHARED/data/samples."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"]
    if os.environ.get("PRAMAAN_SHARED"):
        candidates.append(Path(os.environ["PRAMAAN_SHARED"]) / "data" / "samples")
    for path in candidates:
        if (path / "birth-1.json").is_file():
            return path
    pytest.skip(f"sample requests not found in {', '.join(map(str, candidates))}")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def seal() -> str:
    """Same shape as a real seal: link, flag digit, ~750 digits of COSE_Sign1."""
    rng = random.Random(20261128)
    return "https://127.0.0.1:8000/v#1" + "".join(rng.choice("0123456789") for _ in range(750))


@pytest.fixture(scope="module")
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
            "template_version": TEMPLATE_VERSIONS["birth"],
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
    text = pdf_text(tmp_path, renderer.render("birth", certificate_data(req), qr))

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
        tmp_path, renderer.render("birth", certificate_data(request(samples, "birth-1")), qr)
    )
    text2 = pdf_text(
        tmp_path, renderer.render("birth", certificate_data(request(samples, "birth-2")), qr)
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
    pdf = renderer.render("birth", certificate_data(request(samples, name)), qr)
    assert decode_qr(tmp_path, pdf) == seal


def test_automatic_mask_also_decodes(
    samples: Path, renderer: Renderer, seal: str, tmp_path: Path
) -> None:
    pdf = renderer.render(
        "birth", certificate_data(request(samples, "birth-1")), qr_svg(seal, mask_pattern=None)
    )
    assert decode_qr(tmp_path, pdf) == seal


def test_one_a4_page(samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path) -> None:
    pdf = renderer.render("birth", certificate_data(request(samples, "birth-1")), qr)
    info = run("pdfinfo", str(pdf_file(tmp_path, pdf)))
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)$", info, re.M)


def test_fonts_are_embedded_subset_noto_only(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    pdf = renderer.render("birth", certificate_data(request(samples, "birth-1")), qr)
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
        text = pdf_text(tmp_path, fresh.render("birth", certificate_data(req, number), qr))
        assert number in text
        assert req["child"]["name"]["en"] in text


def test_markup_in_data_prints_literally(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    req = request(samples, "birth-1")
    req["child"]["name"]["en"] = INJECTION
    req["child"]["name"]["mr"] = '#panic("x") ]) // ' + "आरव"
    req["remarks"]["en"] = '#import "/etc/passwd" = Heading'
    text = pdf_text(tmp_path, renderer.render("birth", certificate_data(req), qr))
    assert INJECTION in text
    assert '#panic("x") ]) // आरव' in text
    assert '#import "/etc/passwd" = Heading' in text


def test_same_input_renders_identically(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    data = certificate_data(request(samples, "birth-2"))
    first = renderer.render("birth", data, qr)
    second = Renderer().render("birth", copy.deepcopy(data), qr)
    assert pdf_text(tmp_path, first) == pdf_text(tmp_path, second)
    # No clock or randomness in the output: rendering is a pure function of its inputs.
    assert first == second


def test_text_is_nfc_normalised(
    samples: Path, renderer: Renderer, qr: bytes, tmp_path: Path
) -> None:
    req = request(samples, "birth-1")
    req["child"]["name"]["en"] = "Rene\u0301e Kulkarni"
    text = pdf_text(tmp_path, renderer.render("birth", certificate_data(req), qr))
    assert "Ren\u00e9e Kulkarni" in text
    assert nfc({"a": ["e\u0301", ("o\u0308",)], "e\u0301": 1}) == {
        "a": ["\u00e9", ["\u00f6"]],
        "\u00e9": 1,
    }


def test_unknown_certificate_type_is_rejected(renderer: Renderer, qr: bytes) -> None:
    with pytest.raises(ValueError, match="unknown certificate type 'marriage'"):
        renderer.render("marriage", {}, qr)


def test_word_too_wide_for_its_field_fails(samples: Path, renderer: Renderer, qr: bytes) -> None:
    req = request(samples, "birth-1")
    req["mother"]["name"]["en"] = "Sh" + "ra" * 60
    with pytest.raises(typst.TypstError, match="word too wide"):
        renderer.render("birth", certificate_data(req), qr)


def test_content_beyond_one_page_fails(samples: Path, renderer: Renderer, qr: bytes) -> None:
    req = request(samples, "birth-1")
    req["permanent_address"]["en"] = " ".join([req["permanent_address"]["en"]] * 6)
    with pytest.raises(typst.TypstError, match="does not fit on one page"):
        renderer.render("birth", certificate_data(req), qr)


def test_qr_svg_is_one_vector_path(seal: str) -> None:
    svg = qr_svg(seal).decode("ascii")
    assert qr_version(seal) == 17
    size = 17 * 4 + 17 + 2 * 4  # modules of version 17 plus the quiet zone
    assert f'viewBox="0 0 {size} {size}"' in svg
    assert 'shape-rendering="crispEdges"' in svg
    assert svg.count("<path") == 1 and svg.count("<rect") == 1
    assert "<image" not in svg and "png" not in svg.lower()
    assert qr_svg(seal) == qr_svg(seal)
