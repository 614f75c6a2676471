"""A decoder for plain CBOR (RFC 8949) only, for seal claims whose signature has been checked.

General CBOR decoders (cbor2) turn tags into Python objects, and some of those cost real time
(shared references that expand exponentially when hashed, big numbers, decimals). A seal never
needs any of it, so this decoder accepts exactly:

- unsigned and negative integers (major types 0 and 1, so within 64 bits by construction);
- byte strings and text strings (text must be valid UTF-8);
- arrays, and maps whose keys are integers or text, without duplicate keys;
- the simple values false, true and null.

Everything else is refused with `SealError("malformed")`: every tag (major type 6), floats,
undefined and other simple values, indefinite lengths, heads that are not in their shortest
form, nesting deeper than `MAX_DEPTH`, more than `MAX_ITEMS` items, and trailing bytes.
Input over `MAX_BYTES` is refused with `SealError("too_large")` before anything is read.

The decoder is iterative (an explicit stack bounded by `MAX_DEPTH`), never recursive, and checks
every declared length against the bytes left before it allocates anything.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from signing.errors import SealError

PlainValue: TypeAlias = (
    "int | bytes | str | bool | list[PlainValue] | dict[int | str, PlainValue] | None"
)
"""What `loads_plain` returns: plain Python values only."""

MAX_DEPTH: Final = 8
"""Most arrays and maps nested in one another (the outermost counts as 1)."""
MAX_ITEMS: Final = 1024
"""Most data items in one document (map keys and values each count)."""
MAX_BYTES: Final = 16 * 1024
"""Longest input accepted."""

_MAJOR_UINT: Final = 0
_MAJOR_NINT: Final = 1
_MAJOR_BYTES: Final = 2
_MAJOR_TEXT: Final = 3
_MAJOR_ARRAY: Final = 4
_MAJOR_MAP: Final = 5
_MAJOR_TAG: Final = 6
_MAJOR_SIMPLE: Final = 7

_SIMPLE_VALUES: Final[dict[int, bool | None]] = {20: False, 21: True, 22: None}
# Smallest argument each long head form may carry; anything smaller has a shorter form.
_SHORTEST_FROM: Final = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}


def read_head(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one CBOR head at `pos`: return (major type, argument, position after the head).

    Only definite, shortest-form heads are accepted; tags, floats and simple values are refused
    before their argument is read. Raises `SealError("malformed")` otherwise or when truncated.
    """
    if pos >= len(data):
        raise _malformed("truncated CBOR: a head is missing")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    if major == _MAJOR_TAG:
        raise _malformed("CBOR tags are not accepted")
    if major == _MAJOR_SIMPLE:
        if info not in _SIMPLE_VALUES:
            raise _malformed("only the simple values false, true and null are accepted")
        return major, info, pos + 1
    if info < 24:
        return major, info, pos + 1
    if info > 27:
        raise _malformed("indefinite lengths and reserved heads are not accepted")
    end = pos + 1 + (1 << (info - 24))
    if end > len(data):
        raise _malformed("truncated CBOR: a head's argument is cut off")
    argument = int.from_bytes(data[pos + 1 : end], "big")
    if argument < _SHORTEST_FROM[info]:
        raise _malformed("a CBOR head is not in its shortest form")
    return major, argument, end


def read_byte_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """Read one definite, shortest-form byte string at `pos` without looking inside it: return
    its bytes and the position after it. Raises `SealError("malformed")` on anything else."""
    major, length, start = read_head(data, pos)
    if major != _MAJOR_BYTES:
        raise _malformed("a byte string was expected")
    if length > len(data) - start:
        raise _malformed("truncated CBOR: a byte string is cut off")
    return data[start : start + length], start + length


class _Open:
    """An array or map being filled: `left` items (arrays) or pairs (maps) still to come."""

    __slots__ = ("key", "left", "value")

    def __init__(self, value: list[PlainValue] | dict[int | str, PlainValue], left: int) -> None:
        self.value = value
        self.left = left
        self.key: int | str | None = None


def loads_plain(data: bytes) -> PlainValue:
    """Decode exactly one plain CBOR item from `data` (see the module docstring for what is
    accepted). Raises `SealError("malformed")`, or `SealError("too_large")` over `MAX_BYTES`."""
    if len(data) > MAX_BYTES:
        raise SealError("too_large", f"CBOR over {MAX_BYTES} bytes")
    stack: list[_Open] = []
    pos = 0
    for _ in range(MAX_ITEMS):
        value, pos, opened = _read_item(data, pos, len(stack))
        if opened is not None:
            if opened.left:
                if stack and isinstance(stack[-1].value, dict) and stack[-1].key is None:
                    raise _malformed("map keys must be integers or text")
                stack.append(opened)
                continue
        while True:
            if not stack:
                if pos != len(data):
                    raise _malformed("trailing bytes after the CBOR item")
                return value
            top = stack[-1]
            if isinstance(top.value, list):
                top.value.append(value)
                top.left -= 1
            elif top.key is None:
                top.key = _map_key(value, top.value)
                break
            else:
                top.value[top.key] = value
                top.key = None
                top.left -= 1
            if top.left:
                break
            value = stack.pop().value
    raise _malformed(f"more than {MAX_ITEMS} CBOR items")


def _read_item(data: bytes, pos: int, depth: int) -> tuple[PlainValue, int, _Open | None]:
    """One item: a finished value, or a new empty array/map to fill (then also the value)."""
    major, argument, pos = read_head(data, pos)
    left = len(data) - pos
    if major == _MAJOR_UINT:
        return argument, pos, None
    if major == _MAJOR_NINT:
        return -1 - argument, pos, None
    if major == _MAJOR_SIMPLE:
        return _SIMPLE_VALUES[argument], pos, None
    if major in (_MAJOR_BYTES, _MAJOR_TEXT):
        if argument > left:
            raise _malformed("truncated CBOR: a string is cut off")
        raw = data[pos : pos + argument]
        if major == _MAJOR_BYTES:
            return raw, pos + argument, None
        try:
            return raw.decode("utf-8"), pos + argument, None  # equivalent: "UTF-8" same codec
        except UnicodeDecodeError as exc:
            raise _malformed("a CBOR text string is not valid UTF-8") from exc
    if depth >= MAX_DEPTH:
        raise _malformed(f"CBOR nested deeper than {MAX_DEPTH}")
    # Each item needs at least one byte: a count beyond the bytes left is a lie, refused
    # before anything is built.
    if major == _MAJOR_ARRAY:
        if argument > left:
            raise _malformed("truncated CBOR: an array is cut off")
        array: list[PlainValue] = []
        return array, pos, _Open(array, argument)
    if argument > left // 2:  # equivalent: `/ 2` (an int exceeds n / 2 iff it exceeds n // 2)
        raise _malformed("truncated CBOR: a map is cut off")
    mapping: dict[int | str, PlainValue] = {}
    return mapping, pos, _Open(mapping, argument)


def _map_key(key: PlainValue, mapping: dict[int | str, PlainValue]) -> int | str:
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise _malformed("map keys must be integers or text")
    if key in mapping:
        raise _malformed("duplicate map key")
    return key


def _malformed(message: str) -> SealError:
    return SealError("malformed", message)
