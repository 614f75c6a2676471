"""Raw CBOR written by hand, for hostile seals: cbor2 would never write most of these shapes
(tags anywhere, non-shortest heads). Shared by the hostile-seal tests and the refusal bench."""

from __future__ import annotations


def head(major: int, n: int, width: int | None = None) -> bytes:
    """A CBOR head; `width` (1, 2, 4 or 8 argument bytes) forces a longer, non-shortest form."""
    if width is None:
        if n < 24:
            return bytes([major << 5 | n])
        width = next(w for w in (1, 2, 4, 8) if n < 1 << (8 * w))
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + n.to_bytes(width, "big")


def uint(n: int) -> bytes:
    return head(0, n)


def nint(n: int) -> bytes:
    return head(1, -1 - n)


def bstr(data: bytes) -> bytes:
    return head(2, len(data)) + data


def tstr(text: str) -> bytes:
    data = text.encode()
    return head(3, len(data)) + data


def arr(*items: bytes) -> bytes:
    return head(4, len(items)) + b"".join(items)


def mp(*pairs: tuple[bytes, bytes]) -> bytes:
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def tag(number: int, body: bytes) -> bytes:
    return head(6, number) + body
