"""Our fast codeword path must equal python-qrcode's own, byte for byte, and decode."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
import qrcode
from qrcode import util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from signing.qr import DEFAULT_MASK_PATTERN, _fit_version, qr_svg
from signing.qr_codewords import codewords
from tests.tools import need

PREFIXES = ("https://verify.pmc.example/v#", "http://127.0.0.1:8000/v#", "", "HELLO WORLD ",
            "नमस्ते ", "ABC123XYZ")


@pytest.mark.parametrize("ecc", [ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q,
                                 ERROR_CORRECT_H])
def test_codewords_equal_python_qrcode(ecc: int) -> None:
    rng = random.Random(ecc)
    checked = 0
    for length in [1, 2, 3, 4, 5, 17, 100, 300, 751, 841, 1000, 1200]:
        for prefix in PREFIXES:
            text = prefix + "".join(rng.choice("0123456789") for _ in range(length))
            code = qrcode.QRCode(error_correction=ecc)
            code.add_data(text)
            version = code.best_fit()
            assert _fit_version(code) == version, (prefix, length)
            assert codewords(version, ecc, code.data_list) == util.create_data(
                version, ecc, code.data_list), (prefix, length)
            checked += 1
    assert checked == 72


def test_matrix_equals_python_qrcode() -> None:
    from signing.qr import _matrix

    rng = random.Random(3)
    text = "https://verify.pmc.example/v#1" + "".join(rng.choice("0123456789") for _ in range(841))
    stock = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, box_size=1, border=4, mask_pattern=4)
    stock.add_data(text)
    stock.make(fit=True)
    assert _matrix(text, 4) == stock.get_matrix()


def test_svg_decodes_with_zbar(tmp_path: Path) -> None:
    # Draw the SVG path as a PBM (exact module grid, 8 px per module) and let zbarimg read it.
    from signing.qr import _matrix

    need("zbarimg")
    text = "http://127.0.0.1:8000/v#1" + "9" * 700
    matrix = _matrix(text, 4)
    scale = 8
    rows = []
    for row in matrix:
        line = "".join(("1 " if dark else "0 ") * scale for dark in row)
        rows.extend([line] * scale)
    size = len(matrix) * scale
    pbm = tmp_path / "qr.pbm"
    pbm.write_text(f"P1\n{size} {size}\n" + "\n".join(rows) + "\n")
    out = subprocess.run(["zbarimg", "--raw", "-q", str(pbm)], capture_output=True, text=True,
                         check=False)
    assert out.stdout.strip() == text


def test_the_svg_is_a_standalone_utf8_document_drawn_with_the_mask_asked_for() -> None:
    text = "https://verify.pmc.example/v#" + "7" * 300
    svg = qr_svg(text)
    assert svg.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n'
                          b'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 ')
    assert svg == qr_svg(text, mask_pattern=DEFAULT_MASK_PATTERN)
    assert len({qr_svg(text, mask_pattern=mask) for mask in range(8)}) == 8  # each its own
