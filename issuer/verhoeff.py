"""The Verhoeff check digit (dihedral group D5), as UIDAI uses for the last digit of an Aadhaar
number. It catches every single-digit error and every swap of two adjacent digits, which is why a
mistyped number is refused at the door instead of being hashed into a value that matches no one."""

from __future__ import annotations

# Multiplication in D5.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# The permutation applied to a digit by its position (from the right), repeating every 8.
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INVERSE = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _checksum(digits: str, offset: int) -> int:
    c = 0
    for i, digit in enumerate(reversed(digits)):
        c = _D[c][_P[(i + offset) % 8][int(digit)]]
    return c


def is_valid(digits: str) -> bool:
    """True when `digits` (ASCII 0-9 only, its last digit the check digit) passes Verhoeff."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    return _checksum(digits, 0) == 0


def check_digit(digits: str) -> str:
    """The digit that, appended to `digits`, makes a valid Verhoeff number."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("Verhoeff works on ASCII digits only")
    return str(_INVERSE[_checksum(digits, 1)])
