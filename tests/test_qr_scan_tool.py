"""The tests' own QR reader (tests/tools.py `qr_from_pdf`) reads QR codes only, like
issuer/scan.py: another symbol on the page (here a real EAN-13) is never taken for the seal."""

from __future__ import annotations

from pathlib import Path

import typst

from signing.qr import qr_svg
from tests.tools import qr_from_pdf

FONTS = Path(__file__).resolve().parents[1] / "templates" / "fonts"
EAN = "5901234123457"  # a valid EAN-13 (check digit 7)
_L = ("0001101", "0011001", "0010011", "0111101", "0100011",
      "0110001", "0101111", "0111011", "0110111", "0001011")
_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
           "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")


def ean13_modules(code: str) -> str:
    """The 95 bar/space modules of an EAN-13 symbol (1 = bar)."""
    def right(d: int) -> str:
        return "".join("1" if b == "0" else "0" for b in _L[d])

    first, digits = int(code[0]), [int(c) for c in code[1:]]
    left = "".join(_L[d] if p == "L" else right(d)[::-1]
                   for d, p in zip(digits[:6], _PARITY[first], strict=True))
    return "101" + left + "01010" + "".join(right(d) for d in digits[6:]) + "101"


def page_with_qr_and_ean(tmp_path: Path, qr_text: str) -> Path:
    (tmp_path / "qr.svg").write_bytes(qr_svg(qr_text))
    bars = "\n".join(
        f"#place(dx: {20 + 0.5 * i}mm, dy: 150mm, rect(width: 0.5mm, height: 25mm, fill: black))"
        for i, bit in enumerate(ean13_modules(EAN)) if bit == "1"
    )
    source = tmp_path / "page.typ"
    source.write_text(
        '#set page(paper: "a4", margin: 0mm)\n'
        '#place(dx: 20mm, dy: 20mm, image("qr.svg", width: 38mm))\n' + bars + "\n",
        encoding="utf-8",
    )
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(typst.compile(str(source), root=str(tmp_path), font_paths=[str(FONTS)]))
    return pdf


def test_qr_from_pdf_reads_the_qr_and_ignores_other_barcodes(tmp_path: Path) -> None:
    text = "https://verify.pmc.example/v#1" + "1234567890" * 20
    assert len(ean13_modules(EAN)) == 95
    assert qr_from_pdf(page_with_qr_and_ean(tmp_path, text), tmp_path) == [text]
