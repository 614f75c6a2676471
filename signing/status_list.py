"""The status list: a certificate's status by the index its seal carries ("si"), as a
compressed array of 2-bit values (the IETF Token Status List pattern, draft-ietf-oauth-status-
list: `{"bits": 2, "lst": base64url(zlib(bytes))}`, the value of index i in bits 2i..2i+1 counted
from the least significant bit of byte 2i // 8).

Values: 0 issued and current, 1 revoked, 2 not issued when the list was made (pending, failed
or cancelled: no genuine seal of it was out), 3 superseded by a correction (the registered
"application-specific" value).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from signing.errors import SigningError

BITS: Final = 2
MAX_ENTRIES: Final = 1 << 26
"""The most indices a list may hold (16 MiB of statuses): a bound on decompression."""
BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


class Status(IntEnum):
    """A certificate's status in the list."""

    CURRENT = 0
    REVOKED = 1
    NOT_ISSUED = 2
    SUPERSEDED = 3


class StatusListRefused(SigningError):
    """A status list that cannot be read (malformed, or too large once inflated)."""

    code = "document_refused"


@dataclass(frozen=True)
class StatusList:
    """Statuses by index; indices at or past `size` are unknown to this list."""

    size: int
    packed: bytes

    @classmethod
    def build(cls, statuses: Mapping[int, Status], size: int) -> StatusList:
        """A list of `size` indices, CURRENT except where `statuses` says otherwise."""
        if not 0 <= size <= MAX_ENTRIES or any(not 0 <= i < size for i in statuses):
            raise SigningError(f"status indices must lie in 0..{size - 1} (size at most "
                               f"{MAX_ENTRIES})", code="invalid_status_list")
        packed = bytearray((size * BITS + 7) // 8)
        for index, status in statuses.items():
            bit = index * BITS
            packed[bit // 8] |= int(status) << (bit % 8)
        return cls(size=size, packed=bytes(packed))

    def status(self, index: int) -> Status | None:
        """The status at `index`, or None when this list does not cover it."""
        if not 0 <= index < self.size:
            return None
        bit = index * BITS
        return Status((self.packed[bit // 8] >> (bit % 8)) & ((1 << BITS) - 1))

    def to_json(self) -> dict[str, Any]:
        """The `status_list` claim: bits, the compressed list, and how many indices it holds
        (`size`, ours: the draft pads to whole bytes, so the last byte may hold unused slots)."""
        compressed = zlib.compress(self.packed, 9)
        # base64 never starts with "=" (lstrip would do the same), and codec names are
        # case-insensitive ("ASCII" the same).
        encoded = base64.urlsafe_b64encode(compressed).rstrip(b"=")  # equivalent: lstrip
        return {"bits": BITS, "size": self.size,
                "lst": encoded.decode("ascii")}  # equivalent: "ASCII"

    @classmethod
    def from_json(cls, claim: object) -> StatusList:
        """Read a `status_list` claim; refuses other bit widths, a list whose length does not
        match `size`, and anything that would inflate past `MAX_ENTRIES`."""
        if not isinstance(claim, dict) or set(claim) != {"bits", "size", "lst"}:
            raise StatusListRefused("a status list holds exactly bits, size and lst")
        size, lst = claim["size"], claim["lst"]
        if claim["bits"] != BITS or type(claim["bits"]) is not int:
            raise StatusListRefused(f"only {BITS}-bit status lists are read")
        if type(size) is not int or not 0 <= size <= MAX_ENTRIES or not isinstance(lst, str):
            raise StatusListRefused(f"size must be an integer in 0..{MAX_ENTRIES}")
        expected = (size * BITS + 7) // 8
        try:
            # base64url without padding, every character of it (none skipped, as base64's
            # lenient decoding would). With only the alphabet and the padding it lacks, strict
            # decoding (validate=True) would refuse nothing more: it differs only on other
            # characters and misplaced "=".
            if not BASE64URL.fullmatch(lst):
                raise ValueError("a character that is not base64url")
            padding = "=" * (-len(lst) % 4)
            compressed = base64.b64decode(lst + padding, altchars=b"-_")
            inflater = zlib.decompressobj()
            # One byte more than the list can hold tells a longer one; the bound keeps a bomb
            # from inflating (a test measures the memory).
            packed = inflater.decompress(compressed, expected + 1)
            complete = inflater.eof and not inflater.unused_data
        except (ValueError, binascii.Error, zlib.error) as exc:
            raise StatusListRefused(f"lst is not base64url of zlib data: {exc}") from exc
        if len(packed) != expected or not complete:
            raise StatusListRefused(f"lst does not inflate to exactly {expected} bytes")
        return cls(size=size, packed=packed)
