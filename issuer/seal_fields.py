"""How a seal writes its fields compactly, and how readers expand them again: the type by its
number prefix ("B"), its one date without a name, and names one byte per Devanagari letter.

UTF-8 spends three bytes on every Devanagari code point, so a Marathi name costs a printed QR
three times what its English twin does. A seal carries the Marathi name packed instead: each
code point of the Devanagari block (U+0900-U+097F) as one byte 0x80 + (code point - U+0900),
printable ASCII (spaces, digits, punctuation) as itself, and the two joiners Marathi spelling uses
(ZWNJ U+200C, ZWJ U+200D) as 0x01 and 0x02. A name with any other character stays a text string.
The packed form is a CBOR byte string, the plain form a text string, so a reader knows which it
holds; the verify page unpacks the same way (templates/web/seal.js `unpackName`).
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict

SEAL_DIGEST_BYTES: Final = 16
"""The fields digest a seal carries: SHA-256 cut to 128 bits (a second preimage stays out of
reach; the record keeps the full digest)."""

_BLOCK: Final = 0x0900
_HIGH: Final = 0x80
_JOINERS: Final = {"\u200c": 0x01, "\u200d": 0x02}
_FROM_JOINER: Final = {code: char for char, code in _JOINERS.items()}


def pack(text: str) -> bytes | str:
    """`text` packed one byte per letter, or `text` itself when a character does not pack."""
    out = bytearray()
    for char in text:
        point = ord(char)
        if _BLOCK <= point < _BLOCK + 0x80:
            out.append(_HIGH + point - _BLOCK)
        elif 0x20 <= point < 0x7F:
            out.append(point)
        elif char in _JOINERS:
            out.append(_JOINERS[char])
        else:
            return text
    return bytes(out)


def unpack(value: object) -> str | None:
    """The name a seal carries (packed bytes or plain text) as text; None for anything else."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes | bytearray):
        return None
    chars = []
    for byte in value:
        if byte >= _HIGH:
            chars.append(chr(_BLOCK + byte - _HIGH))
        elif 0x20 <= byte < 0x7F:
            chars.append(chr(byte))
        elif byte in _FROM_JOINER:
            chars.append(_FROM_JOINER[byte])
        else:
            return None
    return "".join(chars)


def type_and_dates(ours: dict[Any, Any]) -> tuple[str | None, dict[str, str] | None]:
    """The type code and the dates ({name: ISO date}) of a seal's own claims: compact seals
    carry the type's number prefix and one date (its name is the type's `seal_date`); seals
    made before carry the code and a map, returned as they are (None where a claim is not of
    that shape: no seal of ours has one)."""
    from issuer.certtypes import known_types

    kind, dates = ours.get("t"), ours.get("d")
    by_prefix = {k.number_prefix: k for k in known_types().values()}
    if isinstance(kind, str) and kind in by_prefix:
        found = by_prefix[kind]
        kind, dates = found.code, {found.seal_date: dates} if isinstance(dates, str) else dates
    return (kind if isinstance(kind, str) else None,
            dates if isinstance(dates, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in dates.items()) else None)


class Holder(TypedDict, total=False):
    """The holder's name as the seal carries it, in English and Marathi (null: not text)."""

    en: str | None
    mr: str | None


LANGUAGES: Final[tuple[Literal["en"], Literal["mr"]]] = ("en", "mr")


def holder_of(value: object) -> Holder | None:
    """A seal's "n" claim ({"en": text, "mr": packed or text}) as text in both languages: the
    languages it names (ours name both), nothing else."""
    if not isinstance(value, dict):
        return None
    holder: Holder = {}
    for lang in LANGUAGES:
        if lang in value:
            holder[lang] = unpack(value[lang])
    return holder
