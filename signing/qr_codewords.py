"""Fast QR codewords (data bits + Reed-Solomon error correction) for python-qrcode.

python-qrcode writes the payload one bit at a time and divides polynomials with recursive list
operations: about half of its time for a ~850-digit seal. This module computes the same
codeword sequence with an integer bit accumulator and table-driven Reed-Solomon, and hands it
to python-qrcode (which still places modules, masks and builds the matrix). Equality with
`qrcode.util.create_data` is asserted by the tests for many payloads and versions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from qrcode import base, util
from qrcode.exceptions import DataOverflowError

_EXP = [0] * 512
_LOG = [0] * 256


def _init_tables() -> None:
    # Run once at import, which is before mutmut switches a mutant on: the tests run it again
    # (test_gf256_tables_rebuilt_are_python_qrcode_s) so that its mutants can be caught.
    x = 1
    for i in range(255):  # equivalent: 256 also logs 1 as 255 (a^255 = 1, indices stay < 512)
        _EXP[i] = x
        _LOG[x] = i
        x <<= 1
        if x & 0x100:  # equivalent: & 257 (x is even after the shift)
            x ^= 0x11D
    for i in range(255, 512):
        _EXP[i] = _EXP[i - 255]


_init_tables()


@functools.cache
def _generator(ec_count: int) -> tuple[int, ...]:
    """Coefficients (highest degree first, leading 1 dropped) of prod_{i<n} (x - a^i)."""
    poly = [1]
    for i in range(ec_count):
        nxt = [0] * (len(poly) + 1)
        for j, coef in enumerate(poly):
            nxt[j] ^= coef
            if coef:
                nxt[j + 1] ^= _EXP[_LOG[coef] + i]
        poly = nxt
    return tuple(poly[1:])


@functools.cache
def _products(ec_count: int) -> tuple[tuple[int, ...], ...]:
    """Row f holds f * generator in GF(256): one table lookup per data byte instead of n."""
    gen = _generator(ec_count)
    rows = [tuple(0 for _ in gen)]
    for factor in range(1, 256):
        lf = _LOG[factor]
        rows.append(tuple(_EXP[lf + _LOG[g]] if g else 0 for g in gen))
    return tuple(rows)


def _remainder(data: Sequence[int], ec_count: int) -> list[int]:
    products = _products(ec_count)
    rem = [0] * ec_count
    for byte in data:
        row = products[byte ^ rem[0]]
        # equivalent, next line: False is zip's default
        rem = [a ^ b for a, b in zip(rem[1:], row, strict=False)]  # equivalent
        rem.append(row[-1])
    return rem


def _data_bytes(version: int, data_list: Sequence[util.QRData], bit_limit: int) -> list[int]:
    acc = 0
    nbits = 0

    def put(value: int, length: int) -> None:
        nonlocal acc, nbits
        acc = (acc << length) | value
        nbits += length

    for segment in data_list:
        put(segment.mode, 4)
        put(len(segment), util.length_in_bits(segment.mode, version))
        raw = bytes(segment.data)  # python-qrcode keeps every segment as bytes
        if segment.mode == util.MODE_NUMBER:
            for i in range(0, len(raw), 3):
                digits = raw[i:i + 3]
                put(int(digits), util.NUMBER_LENGTH[len(digits)])
        elif segment.mode == util.MODE_ALPHA_NUM:
            index = util.ALPHA_NUM.find  # equivalent: rfind, the alphabet has no repeats
            for i in range(0, len(raw), 2):
                pair = raw[i:i + 2]
                if len(pair) == 2:
                    put(index(pair[:1]) * 45 + index(pair[1:]), 11)
                else:
                    put(index(pair), 6)
        else:
            put(int.from_bytes(raw, "big"), 8 * len(raw))  # equivalent: "big" is the default
    if nbits > bit_limit:
        raise DataOverflowError(f"Code length overflow. ({nbits} > {bit_limit})")
    put(0, min(bit_limit - nbits, 4))
    if nbits % 8:
        put(0, 8 - nbits % 8)
    # equivalent, next line: 0 bytes is []; "big" the default
    out = list(acc.to_bytes(nbits // 8, "big")) if nbits else []  # equivalent
    pad = (util.PAD0, util.PAD1)
    out.extend(pad[i % 2] for i in range((bit_limit - nbits) // 8))
    return out


def codewords(version: int, error_correction: int, data_list: Sequence[util.QRData]) -> list[int]:
    """The interleaved data + error-correction codewords, exactly as python-qrcode's
    `util.create_data(version, error_correction, data_list)` returns them."""
    blocks = base.rs_blocks(version, error_correction)
    bit_limit = sum(block.data_count * 8 for block in blocks)
    data = _data_bytes(version, data_list, bit_limit)
    dc_blocks: list[list[int]] = []
    ec_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        chunk = data[offset:offset + block.data_count]
        offset += block.data_count
        dc_blocks.append(chunk)
        ec_blocks.append(_remainder(chunk, block.total_count - block.data_count))
    out: list[int] = []
    for group in (dc_blocks, ec_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out
