"""Our fast codeword path must equal python-qrcode's own, byte for byte, and decode."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
import qrcode
from qrcode import base, util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

from signing.qr import DEFAULT_MASK_PATTERN, _fit_version, _payload_bits, qr_svg
from signing.qr_codewords import _EXP, _LOG, _data_bytes, _init_tables, codewords
from tests.tools import need

PREFIXES = ("https://verify.pmc.example/v#", "http://127.0.0.1:8000/v#", "", "HELLO WORLD ",
            "नमस्ते ", "ABC123XYZ")


def test_gf256_tables_rebuilt_are_python_qrcode_s() -> None:
    """The tables are built at import, before mutmut switches a mutant on: build them again,
    from zeros, and compare with python-qrcode's (exponents up to 511: a product's index)."""
    saved = _EXP[:], _LOG[:]
    _EXP[:], _LOG[:] = [0] * 512, [0] * 256
    try:
        _init_tables()
        assert _EXP == [base.gexp(i) for i in range(512)]
        assert [_EXP[_LOG[a]] for a in range(1, 256)] == list(range(1, 256))
    finally:
        _EXP[:], _LOG[:] = saved


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


@pytest.mark.parametrize("mode", [util.MODE_NUMBER, util.MODE_ALPHA_NUM, util.MODE_8BIT_BYTE])
def test_payload_bits_are_the_bits_python_qrcode_writes(mode: int) -> None:
    """Every length remainder of every mode, with the count field of each version range."""
    alphabet = {util.MODE_NUMBER: "0123456789", util.MODE_ALPHA_NUM: "0123456789ABC $%*+-./:",
                util.MODE_8BIT_BYTE: "abc#/?"}[mode]
    rng = random.Random(mode)
    for length in range(1, 31):
        text = "".join(rng.choice(alphabet) for _ in range(length))
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
        code.add_data(util.QRData(text, mode=mode))
        for version in (1, 10, 27):
            sizes = util.mode_sizes_for_version(version)
            written = util.BitBuffer()
            for data in code.data_list:
                written.put(data.mode, 4)
                written.put(len(data), sizes[data.mode])
                data.write(written)
            assert _payload_bits(code, sizes) == len(written), (length, version)


def test_the_largest_seal_fits_version_40_and_one_digit_more_is_refused() -> None:
    largest = "7" * 3993  # the numeric capacity of version 40 at error correction Q
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    code.add_data(largest)
    assert _fit_version(code) == code.best_fit() == 40
    assert qr_svg(largest).count(b"<path") == 1
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    code.add_data(largest + "7")
    with pytest.raises(DataOverflowError, match=r"^the seal does not fit in a QR code$"):
        _fit_version(code)


def test_codewords_refuse_data_over_the_version_s_capacity_as_python_qrcode_does() -> None:
    """27 digits fill version 1 at Q; 28 do not: both libraries say so, neither truncates."""
    for length, fits in ((27, True), (28, False)):
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
        code.add_data("7" * length)
        if fits:
            assert codewords(1, ERROR_CORRECT_Q, code.data_list) == util.create_data(
                1, ERROR_CORRECT_Q, code.data_list)
            continue
        with pytest.raises(DataOverflowError):
            util.create_data(1, ERROR_CORRECT_Q, code.data_list)
        with pytest.raises(DataOverflowError, match=r"^Code length overflow\. \(\d+ > 104\)$"):
            codewords(1, ERROR_CORRECT_Q, code.data_list)


def test_data_bytes_are_exactly_the_version_s_data_capacity() -> None:
    for length in (1, 20, 27):
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
        code.add_data("7" * length)
        assert len(_data_bytes(1, code.data_list, 104)) == 13, length
