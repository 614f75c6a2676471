"""QR symbols for the printed seal, drawn as one vector SVG path.

Pure functions of the text: no keys, no I/O, no raster images. The SVG is embedded in the typst
template as an image, so the QR stays vector in the PDF (QR.md print rules: error correction Q,
at least 35 mm wide, vector).
"""

from __future__ import annotations

import re
from bisect import bisect_left

import qrcode
from qrcode import util
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

from signing.qr_codewords import codewords

BORDER_MODULES = 4
"""Quiet zone on every side, in modules (the QR standard's minimum)."""

_DARK_RUN = re.compile(b"\x01+")

DEFAULT_MASK_PATTERN = 4
"""Fixed mask: automatic mask selection is ~80 % of the generation cost (QR.md)."""


def _matrix(text: str, mask_pattern: int | None) -> list[list[bool]]:
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_Q,
        box_size=1,  # equivalent: get_matrix() is in modules; box size only scales images
        border=BORDER_MODULES,  # equivalent: also python-qrcode's default (4)
        mask_pattern=mask_pattern,
    )
    # add_data(str) lets python-qrcode split byte and numeric segments by itself, which keeps
    # `https://host/v#` + ~750 digits at version 17 instead of 27.
    code.add_data(text)
    # python-qrcode fits the same smallest version itself when this is None, only slower.
    code.version = _fit_version(code)  # equivalent: same version, see above
    # equivalent, next line: None makes make() compute the same codewords itself, slower
    code.data_cache = codewords(code.version, code.error_correction, code.data_list)  # equivalent
    # equivalent, next line: None is False; True refits from our version and finds it again
    code.make(fit=False)  # equivalent
    matrix: list[list[bool]] = code.get_matrix()
    return matrix


def _payload_bits(code: qrcode.QRCode, mode_sizes: dict[int, int]) -> int:
    bits = 0
    for segment in code.data_list:
        n = len(segment)
        bits += 4 + mode_sizes[segment.mode]
        if segment.mode == util.MODE_NUMBER:
            bits += 10 * (n // 3) + (0, 4, 7)[n % 3]
        elif segment.mode == util.MODE_ALPHA_NUM:
            bits += 11 * (n // 2) + 6 * (n % 2)
        else:
            bits += 8 * n
    return bits


def _fit_version(code: qrcode.QRCode) -> int:
    """The smallest version that holds the segments: python-qrcode's `best_fit` computed from
    segment lengths instead of writing every bit into a scratch buffer (a quarter of the cost)."""
    start = 1
    while True:
        sizes = util.mode_sizes_for_version(start)
        bits = _payload_bits(code, sizes)
        # equivalent, next line: without lo=start the same, as the bits only grow with the start
        limits = util.BIT_LIMIT_TABLE[code.error_correction]
        version = bisect_left(limits, bits, start)  # equivalent
        if version > 40:
            raise DataOverflowError("the seal does not fit in a QR code")
        if util.mode_sizes_for_version(version) is sizes:
            return version
        start = version


def qr_version(text: str) -> int:
    """Return the QR version (1-40) that `qr_svg` uses for `text` (error correction Q)."""
    # The mask does not change the version, so none is given.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    code.add_data(text)
    # best_fit only: make() would also build the matrix, which is the expensive part.
    version: int = code.best_fit()
    return version


def qr_svg(text: str, *, mask_pattern: int | None = DEFAULT_MASK_PATTERN) -> bytes:
    """Return a standalone SVG document (UTF-8 bytes) drawing the QR symbol for `text`.

    Error correction Q, a quiet zone of 4 modules, black modules on a white background rect.
    The viewBox is in module units, so the consumer scales it to any physical size; all dark
    modules form ONE `<path>` (horizontal runs merged), which renders and decodes far better
    than separate squares. `mask_pattern` 0-7 fixes the mask; `None` selects it automatically
    (about 5x slower, same decodability).
    """
    matrix = _matrix(text, mask_pattern)
    size = len(matrix)
    parts: list[str] = []
    for y, row in enumerate(matrix):
        for run in _DARK_RUN.finditer(bytes(row)):  # bools -> b"\x00\x01..." in C
            start, length = run.start(), run.end() - run.start()
            parts.append(f"M{start} {y}h{length}v1h-{length}z")
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {size} {size}" '
        f'width="{size}" height="{size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(parts)}"/>'
        "</svg>\n"
    )
    return svg.encode("ascii")  # equivalent: "ASCII" (codec names ignore case)
