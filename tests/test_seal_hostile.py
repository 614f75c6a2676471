"""Hostile seals (issue 5, item 1): CBOR an attacker chose must never be interpreted before the
ES256 signature is checked, and after it only as plain CBOR.

Every seal here is a real transport text (flag digit + decimal digits) that goes through
`verify_seal` exactly as a scanned QR or a PDF's /PramaanSeal does. Bytes are written by hand
(not with cbor2) so that shapes cbor2 would never produce (non-shortest heads, indefinite
lengths, duplicate keys) can be built. Timing is measured in `bench/seal_refusal.py`, not here.
"""

from __future__ import annotations

import decimal
import hashlib
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import signing.seal
from signing.cbor_plain import MAX_BYTES, MAX_DEPTH, MAX_ITEMS, loads_plain
from signing.cose import Sign1, decode1, sign1, verify1
from signing.devpki import DevPki
from signing.errors import SealError
from signing.seal import (
    MAX_DIGITS,
    MAX_INFLATED_BYTES,
    PRIVATE_CLAIM,
    SealKey,
    transport_text,
    verify_seal,
)
from signing.trust_list import TrustList
from tests.fixture_scope import shared
from tests.raw_cbor import arr, bstr, head, mp, nint, tag, tstr, uint

BASE_URL = "https://verify.pmc.example"
# The hostile seals are built at import (collection), the seal key later by its fixture, with a
# notBefore 5 minutes before then: in a long suite that is more than 5 minutes after collection.
# A day ahead lies inside the key's 5-year window whenever this module runs.
ISSUED_AT = int(time.time()) + 24 * 3600
FORGED_SIGNATURE = hashlib.sha512(b"not a signature").digest()  # 64 bytes, r||s, invalid
UNKNOWN_KID = b"\x00unknown"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def claims_with(value: bytes) -> bytes:
    """A claims map that would verify, with `value` under our private claim."""
    return mp(
        (uint(1), tstr("in.gov.pmc")), (uint(6), uint(ISSUED_AT)), (nint(PRIVATE_CLAIM), value)
    )


def shared_dag(levels: int) -> bytes:
    """Tag 28/29 value sharing: each level is an array holding the previous one twice. cbor2
    builds a DAG with 2**levels paths; hashing it (as a map key) walks every path."""
    items = [tag(28, arr())]
    items += [tag(28, arr(tag(29, uint(i)), tag(29, uint(i)))) for i in range(levels)]
    return arr(*items)


# Payloads that are not plain CBOR. Each must be refused as "malformed" even when validly
# signed by our own key, and must never be looked at when the signature is wrong.
HOSTILE_PAYLOADS: dict[str, bytes] = {
    # tags cbor2 turns into objects, some of them expensive
    "bignum tag 2 (huge)": claims_with(tag(2, bstr(b"\xff" * 2000))),
    "negative bignum tag 3 (huge)": claims_with(tag(3, bstr(b"\x7f" * 2000))),
    "decimal fraction tag 4, huge exponent": claims_with(tag(4, arr(uint(10**9), uint(1)))),
    "decimal fraction tag 4, bignum exponent": claims_with(
        tag(4, arr(tag(2, bstr(b"\x01" + bytes(40))), uint(3)))
    ),
    "bigfloat tag 5, huge exponent": claims_with(
        tag(5, arr(uint(10**6), tag(2, bstr(b"\xff" * 64))))
    ),
    "set tag 258": claims_with(tag(258, arr(*(uint(i) for i in range(50))))),
    "shared refs tag 28/29 as a map key": mp((shared_dag(24), uint(1))),
    "shared refs tag 28/29 as a value": claims_with(shared_dag(24)),
    "datetime tag 0": claims_with(tag(0, tstr("2025-11-20T10:00:00Z"))),
    "epoch datetime tag 1": claims_with(tag(1, uint(ISSUED_AT))),
    "epoch datetime tag 1, out of range": claims_with(tag(1, uint(2**63))),
    "regex tag 35": claims_with(tag(35, tstr("(a+)+$"))),
    # cbor2 compiles this with re.compile, ~4 ms per class (1000 of them: 4 s, ~60 B deflated)
    "regex tag 35, costly to compile": claims_with(tag(35, tstr("(?i)" + "[a-\U0010ffff]" * 200))),
    "decimal fraction tag 4, 15 KB mantissa": claims_with(
        tag(4, arr(uint(10**6), tag(2, bstr(b"\xa5" * 15_000))))
    ),
    "fraction tag 30": claims_with(tag(30, arr(tag(2, bstr(b"\xff" * 500)), uint(7)))),
    "IPv4 tag 52": claims_with(tag(52, bstr(b"\x7f\x00\x00\x01"))),
    "IPv6 tag 54": claims_with(tag(54, bstr(bytes(16)))),
    "IP address tag 260": claims_with(tag(260, bstr(b"\x7f\x00\x00\x01"))),
    "IP network tag 261": claims_with(tag(261, mp((bstr(b"\x7f\x00\x00\x01"), uint(8))))),
    "UUID tag 37": claims_with(tag(37, bstr(bytes(16)))),
    "URI tag 32": claims_with(tag(32, tstr("https://evil.example"))),
    "embedded CBOR tag 24": claims_with(tag(24, bstr(tag(2, bstr(b"\xff" * 64))))),
    "string references tag 256/25": tag(256, claims_with(arr(tstr("abc"), tag(25, uint(0))))),
    "self-described CBOR tag 55799": tag(55799, claims_with(uint(1))),
    "CWT tag 61 around the claims": tag(61, claims_with(uint(1))),
    "tag as a map key": mp((tag(1, uint(6)), uint(ISSUED_AT))),
    # other things plain CBOR refuses
    "deep arrays": claims_with(b"\x81" * 1000 + uint(0)),
    "deep maps": claims_with(b"\xa1\x00" * 1000 + uint(0)),
    "just over the depth limit": claims_with(b"\x81" * MAX_DEPTH + uint(0)),
    "too many items": claims_with(arr(*[uint(0)] * MAX_ITEMS)),
    "indefinite array": claims_with(b"\x9f\x00\x00\xff"),
    "indefinite map": claims_with(b"\xbf\x00\x00\xff"),
    "indefinite byte string": claims_with(b"\x5f\x41a\xff"),
    "indefinite text string": claims_with(b"\x7f\x61a\xff"),
    "lone break": claims_with(b"\xff"),
    "array longer than the data": claims_with(head(4, 5) + uint(0)),
    "array of 2**64-1 items": claims_with(head(4, 2**64 - 1)),
    "map of 2**64-1 pairs": claims_with(head(5, 2**64 - 1)),
    "byte string longer than the data": claims_with(head(2, 2**32 - 1) + b"abc"),
    "text string longer than the data": claims_with(head(3, 200) + b"abc"),
    "non-shortest int": claims_with(head(0, 5, width=1)),
    "non-shortest 16-bit int": claims_with(head(0, 200, width=2)),
    "non-shortest 64-bit negative int": claims_with(head(1, 7, width=8)),
    "non-shortest string length": claims_with(head(3, 3, width=1) + b"abc"),
    "non-shortest array length": claims_with(head(4, 1, width=4) + uint(0)),
    "non-shortest map length": head(5, 3, width=1) + claims_with(uint(0))[1:],
    "reserved head 28": claims_with(b"\x1c"),
    "duplicate int key": mp((uint(1), tstr("a")), (uint(6), uint(ISSUED_AT)), (uint(1), tstr("b"))),
    "duplicate text key": claims_with(mp((tstr("n"), uint(1)), (tstr("n"), uint(2)))),
    "byte-string map key": claims_with(mp((bstr(b"n"), uint(1)))),
    "array map key": claims_with(mp((arr(uint(1)), uint(1)))),
    "empty array map key": claims_with(mp((arr(), uint(1)))),
    "boolean map key": claims_with(mp((b"\xf5", uint(1)))),
    "null map key": claims_with(mp((b"\xf6", uint(1)))),
    "text claim key at the top": mp((tstr("iss"), tstr("x")), (uint(6), uint(ISSUED_AT))),
    "half float": claims_with(b"\xf9\x3c\x00"),
    "single float": claims_with(b"\xfa\x7f\xc0\x00\x00"),
    "double float NaN": claims_with(b"\xfb\x7f\xf8" + bytes(6)),
    "undefined": claims_with(b"\xf7"),
    "simple value 16": claims_with(b"\xf0"),
    "simple value 255": claims_with(b"\xf8\xff"),
    "invalid UTF-8": claims_with(head(3, 2) + b"\xc3\x28"),
    "UTF-8 surrogate": claims_with(head(3, 3) + b"\xed\xa0\x80"),
    "trailing bytes": claims_with(uint(1)) + b"\x00",
    "two items": claims_with(uint(1)) + claims_with(uint(1)),
    "empty payload": b"",
    "not a map": arr(uint(1), uint(6)),
}


# --- COSE frames, written by hand -----------------------------------------------------------


def protected_for(kid: bytes) -> bytes:
    return mp((uint(1), nint(-7)), (uint(4), bstr(kid)))


def frame(
    payload: bytes,
    signature: bytes = FORGED_SIGNATURE,
    *,
    kid: bytes | None = None,
    protected: bytes | None = None,
    unprotected: bytes = b"\xa0",
) -> bytes:
    if protected is None:
        protected = protected_for(kid if kid is not None else b"\x00" * 8)
    return b"\xd2\x84" + bstr(protected) + unprotected + bstr(payload) + bstr(signature)


def as_text(cose: bytes) -> str:
    return f"{BASE_URL}/v#{transport_text(cose)}"


@pytest.fixture(scope=shared("module"))
def seal_key(pki: DevPki) -> SealKey:
    return SealKey.load(pki.seal_key, pki.seal_cert)


@pytest.fixture(scope=shared("module"))
def trust(seal_key: SealKey) -> TrustList:
    return TrustList([seal_key.trust_entry()])


def signed(payload: bytes, key: SealKey) -> str:
    """Validly signed by our own key: what a key holder's bug, not an attacker, could make."""
    return as_text(sign1(payload, key.private_key, key.kid))


def forged(payload: bytes, key: SealKey) -> str:
    """Our kid, a signature that does not verify: what an attacker can make."""
    return as_text(frame(payload, kid=key.kid))


def refusal(text: str, trust: TrustList) -> tuple[bool, str | None, Any]:
    report = verify_seal(text, trust)
    return report.ok, report.reason, report.claims


# --- the plain payload decoder, through verify_seal ------------------------------------------


def test_control_a_plain_payload_signed_by_our_key_verifies(
    seal_key: SealKey, trust: TrustList
) -> None:
    """The hand-written helpers make seals that verify, so each refusal below is about the one
    hostile detail and not about the helpers."""
    edge_values = arr(
        uint(2**64 - 1), nint(-(2**64)), b"\xf4", b"\xf5", b"\xf6", bstr(b""), tstr("ऐश्वर्या"),
        b"\x81" * (MAX_DEPTH - 2) + uint(0), mp((tstr("n"), uint(1)), (uint(1), uint(2))),
    )
    report = verify_seal(signed(claims_with(edge_values), seal_key), trust)

    assert (report.ok, report.reason) == (True, None)
    assert report.claims is not None
    nested: Any = [0]
    for _ in range(MAX_DEPTH - 3):
        nested = [nested]
    assert report.claims[PRIVATE_CLAIM] == [
        2**64 - 1, -(2**64), False, True, None, b"", "ऐश्वर्या", nested, {"n": 1, 1: 2},
    ]


@pytest.mark.parametrize("name", sorted(HOSTILE_PAYLOADS))
def test_hostile_payload_signed_by_our_key_is_malformed(
    name: str, seal_key: SealKey, trust: TrustList
) -> None:
    assert refusal(signed(HOSTILE_PAYLOADS[name], seal_key), trust) == (False, "malformed", None)


@pytest.mark.parametrize("name", sorted(HOSTILE_PAYLOADS))
def test_hostile_payload_under_a_wrong_signature_is_bad_signature(
    name: str, seal_key: SealKey, trust: TrustList
) -> None:
    """"bad_signature" and not "malformed": the payload was never looked at."""
    assert refusal(forged(HOSTILE_PAYLOADS[name], seal_key), trust) == (
        False, "bad_signature", None,
    )


@pytest.mark.parametrize("name", sorted(HOSTILE_PAYLOADS))
def test_hostile_payload_under_an_unknown_kid_is_unknown_kid(
    name: str, trust: TrustList
) -> None:
    cose = frame(HOSTILE_PAYLOADS[name], kid=UNKNOWN_KID)
    assert refusal(as_text(cose), trust) == (False, "unknown_kid", None)


def test_verify_never_hands_unverified_bytes_to_a_decoder(
    seal_key: SealKey, trust: TrustList, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Structural: the plain decoder is called only after a signature verified, only on the
    payload it covers, and cbor2's decoder is never used on the verify path at all."""
    events: list[tuple[str, Any]] = []
    real_verify1 = signing.seal.verify1
    real_loads_plain = signing.seal.loads_plain

    def spy_verify1(message: Any, public_key: Any) -> bool:
        result = real_verify1(message, public_key)
        events.append(("verify1", result))
        return result

    def spy_loads_plain(data: bytes) -> Any:
        events.append(("loads_plain", data))
        return real_loads_plain(data)

    def no_cbor2(*args: Any, **kwargs: Any) -> Any:
        events.append(("cbor2", args))
        raise AssertionError("cbor2 decoded seal data")

    monkeypatch.setattr(signing.seal, "verify1", spy_verify1)
    monkeypatch.setattr(signing.seal, "loads_plain", spy_loads_plain)
    for name in ("loads", "load", "CBORDecoder"):
        monkeypatch.setattr(cbor2, name, no_cbor2)

    hostile = HOSTILE_PAYLOADS["regex tag 35, costly to compile"]
    unverified = [
        forged(hostile, seal_key),
        as_text(frame(hostile, kid=UNKNOWN_KID)),
        as_text(frame(hostile, kid=seal_key.kid, protected=protected_for(seal_key.kid) + b"\xc0")),
    ]
    for text in unverified:
        assert not verify_seal(text, trust).ok
    assert all(event == ("verify1", False) for event in events)

    events.clear()
    genuine = claims_with(uint(1))
    assert verify_seal(signed(genuine, seal_key), trust).ok
    assert events == [("verify1", True), ("loads_plain", genuine)]


def test_a_tag_costs_the_plain_decoder_one_byte() -> None:
    """Refusal happens at the tag's first byte: what follows it is never read, even a body
    that is not valid CBOR at all."""
    with pytest.raises(SealError) as caught:
        loads_plain(mp((uint(1), tag(2, b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff"))))
    assert caught.value.reason == "malformed"
    assert "tags" in str(caught.value)


@pytest.mark.parametrize(
    ("depth", "ok"), [(MAX_DEPTH, True), (MAX_DEPTH + 1, False), (5_000, False)]
)
def test_plain_decoder_depth_limit_for_arrays_and_maps(depth: int, ok: bool) -> None:
    for opener in (b"\x81", b"\xa1\x00"):
        data = opener * depth + uint(0)
        if ok:
            loads_plain(data)
        else:
            with pytest.raises(SealError, match="deeper"):
                loads_plain(data)


def test_plain_decoder_item_limit() -> None:
    loads_plain(arr(*[uint(0)] * (MAX_ITEMS - 1)))
    with pytest.raises(SealError, match="items"):
        loads_plain(arr(*[uint(0)] * MAX_ITEMS))


@pytest.mark.parametrize(
    "data",
    [
        head(2, 2**64 - 1) + b"abc",
        head(3, 4) + b"abc",
        head(4, 2**64 - 1) + uint(0),
        head(4, 2) + uint(0),
        head(5, 2**32) + uint(0) * 3,
        head(5, 2) + uint(0) * 3,
    ],
)
def test_plain_decoder_refuses_declared_lengths_beyond_the_data_up_front(data: bytes) -> None:
    """A count or length larger than the bytes left is refused when read, before any item."""
    with pytest.raises(SealError, match="is cut off"):
        loads_plain(data)


@pytest.mark.parametrize("initial", [0x1F, 0x3F, 0x5F, 0x7F, 0x9F, 0xBF, 0x1C, 0x5D, 0x9E])
def test_plain_decoder_refuses_indefinite_and_reserved_heads(initial: int) -> None:
    with pytest.raises(SealError, match="indefinite lengths and reserved heads"):
        loads_plain(bytes([initial]) + bytes(200))


def test_plain_decoder_refuses_a_container_as_a_map_key_before_reading_it() -> None:
    with pytest.raises(SealError, match="map keys"):
        loads_plain(mp((arr(tag(2, bstr(b"\xff" * 64))), uint(1))))
    with pytest.raises(SealError, match="map keys"):
        loads_plain(mp((mp((uint(1), b"\x81" * 20 + uint(0))), uint(1))))


@pytest.mark.parametrize(
    "data",
    [
        b"\xd2\x84" + head(2, 2**32) + b"abc",
        b"\xd2\x84" + bstr(protected_for(bytes(8))) + b"\xa0" + head(2, 2**64 - 1) + b"abc",
    ],
)
def test_frame_refuses_lengths_beyond_the_data_up_front(data: bytes) -> None:
    with pytest.raises(SealError, match="is cut off"):
        decode1(data)


def test_plain_decoder_size_limit() -> None:
    with pytest.raises(SealError) as caught:
        loads_plain(bstr(bytes(16 * 1024)))
    assert caught.value.reason == "too_large"


# --- the COSE frame, before any key is looked up ---------------------------------------------

Build = Callable[[SealKey], bytes]


def _frames() -> dict[str, Build]:
    payload = claims_with(uint(1))
    sig = bstr(FORGED_SIGNATURE)

    def pay(k: SealKey) -> bytes:
        return bstr(payload)

    def prot(k: SealKey) -> bytes:
        return bstr(protected_for(k.kid))

    return {
        "untagged array": lambda k: frame(payload, kid=k.kid)[1:],
        "tag 18 in a long head": lambda k: b"\xd8\x12" + frame(payload, kid=k.kid)[1:],
        "tag 98 (COSE_Sign)": lambda k: b"\xd8\x62" + frame(payload, kid=k.kid)[1:],
        "tag 17 (COSE_Mac0)": lambda k: b"\xd1" + frame(payload, kid=k.kid)[1:],
        "tag 18 around a map": lambda k: b"\xd2\xa2" + frame(payload, kid=k.kid)[2:],
        "self-describe tag before tag 18": lambda k: tag(55799, frame(payload, kid=k.kid)),
        "tag 18 twice": lambda k: b"\xd2" + frame(payload, kid=k.kid),
        "indefinite array": lambda k: b"\xd2\x9f" + prot(k) + b"\xa0" + pay(k) + sig + b"\xff",
        "array of three": lambda k: b"\xd2\x83" + prot(k) + b"\xa0" + pay(k),
        "array of five": lambda k: b"\xd2\x85" + prot(k) + b"\xa0" + pay(k) + sig + b"\x40",
        "array length in a long head": lambda k: b"\xd2\x98\x04" + frame(payload, kid=k.kid)[2:],
        # protected header
        "tag around the protected bstr": lambda k: b"\xd2\x84"
        + tag(24, prot(k)) + b"\xa0" + pay(k) + sig,
        "protected header as a map": lambda k: b"\xd2\x84"
        + protected_for(k.kid) + b"\xa0" + pay(k) + sig,
        "protected kid as a bignum tag": lambda k: frame(
            payload, protected=mp((uint(1), nint(-7)), (uint(4), tag(2, bstr(k.kid))))
        ),
        "protected alg as a decimal fraction": lambda k: frame(
            payload, protected=mp((uint(1), tag(4, arr(uint(10**9), nint(-7)))),
                                  (uint(4), bstr(k.kid)))
        ),
        "protected header wrapped in a tag": lambda k: frame(
            payload, protected=tag(55799, protected_for(k.kid))
        ),
        "protected header with trailing tag": lambda k: frame(
            payload, protected=protected_for(k.kid) + tag(1, uint(0))
        ),
        "protected header, other algorithm": lambda k: frame(
            payload, protected=mp((uint(1), nint(-35)), (uint(4), bstr(k.kid)))
        ),
        "protected header, keys reversed": lambda k: frame(
            payload, protected=mp((uint(4), bstr(k.kid)), (uint(1), nint(-7)))
        ),
        "protected header, extra key": lambda k: frame(
            payload, protected=mp((uint(1), nint(-7)), (uint(4), bstr(k.kid)), (uint(5), uint(0)))
        ),
        "protected header, kid of 9 bytes": lambda k: frame(payload, kid=k.kid + b"\x00"),
        "protected header, kid of 7 bytes": lambda k: frame(payload, kid=k.kid[:7]),
        "protected header, non-shortest alg": lambda k: frame(
            payload, protected=mp((uint(1), head(1, 6, width=1)), (uint(4), bstr(k.kid)))
        ),
        "protected header, non-shortest kid length": lambda k: frame(
            payload, protected=mp((uint(1), nint(-7)), (uint(4), head(2, 8, width=1) + k.kid))
        ),
        "protected header, indefinite map": lambda k: frame(
            payload, protected=b"\xbf" + protected_for(k.kid)[1:] + b"\xff"
        ),
        "protected bstr in a long head": lambda k: b"\xd2\x84"
        + head(2, 13, width=1) + protected_for(k.kid) + b"\xa0" + pay(k) + sig,
        "protected bstr longer than the data": lambda k: b"\xd2\x84" + head(2, 2**32 - 1)
        + protected_for(k.kid),
        # unprotected header
        "unprotected header with a tag": lambda k: frame(
            payload, kid=k.kid, unprotected=mp((uint(4), tag(2, bstr(b"\xff" * 64))))
        ),
        "unprotected header is a tag": lambda k: frame(
            payload, kid=k.kid, unprotected=tag(258, arr())
        ),
        "unprotected header with a kid": lambda k: frame(
            payload, kid=k.kid, unprotected=mp((uint(4), bstr(k.kid)))
        ),
        "unprotected header with shared refs": lambda k: frame(
            payload, kid=k.kid, unprotected=mp((shared_dag(24), uint(1)))
        ),
        "unprotected header, indefinite empty map": lambda k: frame(
            payload, kid=k.kid, unprotected=b"\xbf\xff"
        ),
        "unprotected header as an empty array": lambda k: frame(
            payload, kid=k.kid, unprotected=b"\x80"
        ),
        # payload and signature containers
        "payload in a tag": lambda k: b"\xd2\x84" + prot(k) + b"\xa0" + tag(24, pay(k)) + sig,
        "payload as a map, not a bstr": lambda k: b"\xd2\x84" + prot(k) + b"\xa0" + payload + sig,
        "payload as an indefinite bstr": lambda k: b"\xd2\x84" + prot(k) + b"\xa0"
        + b"\x5f" + pay(k) + b"\xff" + sig,
        "payload length in a long head": lambda k: b"\xd2\x84" + prot(k) + b"\xa0"
        + head(2, len(payload), width=4) + payload + sig,
        "payload longer than the data": lambda k: b"\xd2\x84" + prot(k) + b"\xa0"
        + head(2, 2**64 - 1) + payload,
        "signature in a tag": lambda k: b"\xd2\x84" + prot(k) + b"\xa0" + pay(k) + tag(2, sig),
        "signature of 63 bytes": lambda k: frame(payload, FORGED_SIGNATURE[:63], kid=k.kid),
        "signature of 65 bytes": lambda k: frame(payload, FORGED_SIGNATURE + b"\x00", kid=k.kid),
        "signature length in a long head": lambda k: b"\xd2\x84" + prot(k) + b"\xa0" + pay(k)
        + head(2, 64, width=2) + FORGED_SIGNATURE,
        "signature as a text string": lambda k: b"\xd2\x84" + prot(k) + b"\xa0" + pay(k)
        + head(3, 64) + FORGED_SIGNATURE,
        "trailing byte": lambda k: frame(payload, kid=k.kid) + b"\x00",
        "trailing tag": lambda k: frame(payload, kid=k.kid) + tag(1, uint(0)),
        "truncated": lambda k: frame(payload, kid=k.kid)[:-1],
        "empty": lambda k: b"",
    }


FRAMES = _frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_hostile_frame_is_malformed(name: str, seal_key: SealKey, trust: TrustList) -> None:
    assert refusal(as_text(FRAMES[name](seal_key)), trust) == (False, "malformed", None)


def test_control_the_hand_written_frame_reaches_the_signature_check(
    seal_key: SealKey, trust: TrustList
) -> None:
    """The frame helper is right: with our kid it gets as far as the signature check, so the
    frame refusals above are each about their one detail."""
    assert frame(b"p", kid=seal_key.kid)[:-64] == sign1(b"p", seal_key.private_key,
                                                         seal_key.kid)[:-64]
    assert refusal(forged(claims_with(uint(1)), seal_key), trust) == (
        False, "bad_signature", None,
    )


def test_deflate_bomb_is_cut_off_while_inflating(trust: TrustList) -> None:
    """The largest bomb a seal text may carry (~1.2 KB of DEFLATE, over a MB inflated) is
    refused without ever being inflated past the cap."""
    size = 1_300_000
    while True:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(bytes(size)) + compressor.flush()
        text = "1" + str(decimal.Decimal(int.from_bytes(b"\x01" + bomb, "big")))
        if len(text) <= MAX_DIGITS:
            break
        size = size * 95 // 100
    assert len(text) > MAX_DIGITS - 100 and size > 64 * MAX_INFLATED_BYTES

    tracemalloc.start()
    try:
        report = verify_seal(text, trust)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (report.ok, report.reason) == (False, "too_large")
    assert peak < 256 * 1024, peak


def test_the_same_claims_signed_by_us_verify_but_with_a_tag_are_malformed(
    seal_key: SealKey, trust: TrustList
) -> None:
    """The three verdicts on one hostile payload show the order: kid, signature, then claims."""
    hostile = HOSTILE_PAYLOADS["decimal fraction tag 4, huge exponent"]

    assert refusal(as_text(frame(hostile, kid=UNKNOWN_KID)), trust)[1] == "unknown_kid"
    assert refusal(forged(hostile, seal_key), trust)[1] == "bad_signature"
    assert refusal(signed(hostile, seal_key), trust)[1] == "malformed"
    assert verify_seal(signed(claims_with(uint(10**9)), seal_key), trust).ok


# --- every refusal says why, and every limit is exact -----------------------------------------

PLAIN_REFUSALS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "truncated CBOR: a head is missing"),
    "tag": (tag(2, bstr(b"x")), "CBOR tags are not accepted"),
    "undefined": (b"\xf7", "only the simple values false, true and null are accepted"),
    "indefinite": (b"\x9f\x00\xff", "indefinite lengths and reserved heads are not accepted"),
    "argument cut off": (b"\x19\x01", "truncated CBOR: a head's argument is cut off"),
    "non-shortest head": (head(0, 23, width=1), "a CBOR head is not in its shortest form"),
    "string cut off": (head(3, 4) + b"abc", "truncated CBOR: a string is cut off"),
    "bytes cut off": (head(2, 4) + b"abc", "truncated CBOR: a string is cut off"),
    "invalid UTF-8": (head(3, 2) + b"\xc3\x28", "a CBOR text string is not valid UTF-8"),
    "too deep": (b"\x81" * (MAX_DEPTH + 1) + uint(0), f"CBOR nested deeper than {MAX_DEPTH}"),
    "array cut off": (head(4, 2) + uint(0), "truncated CBOR: an array is cut off"),
    "map cut off": (head(5, 2) + uint(0) * 3, "truncated CBOR: a map is cut off"),
    "container key": (mp((arr(uint(1)), uint(1))), "map keys must be integers or text"),
    "byte-string key": (mp((bstr(b"n"), uint(1))), "map keys must be integers or text"),
    "duplicate key": (mp((uint(1), uint(1)), (uint(1), uint(2))), "duplicate map key"),
    "trailing byte": (uint(1) + b"\x00", "trailing bytes after the CBOR item"),
    "too many items": (arr(*[uint(0)] * MAX_ITEMS), f"more than {MAX_ITEMS} CBOR items"),
}


@pytest.mark.parametrize("name", sorted(PLAIN_REFUSALS))
def test_plain_decoder_refusals_say_why(name: str) -> None:
    data, message = PLAIN_REFUSALS[name]
    with pytest.raises(SealError) as caught:
        loads_plain(data)
    assert (caught.value.reason, str(caught.value)) == ("malformed", message)


def test_plain_decoder_size_limit_is_exact() -> None:
    largest = bstr(bytes(MAX_BYTES - 3))  # a 3-byte head: exactly MAX_BYTES in all
    assert len(largest) == MAX_BYTES and loads_plain(largest) == bytes(MAX_BYTES - 3)
    with pytest.raises(SealError) as caught:
        loads_plain(largest + b"\x00")
    assert (caught.value.reason, str(caught.value)) == ("too_large", f"CBOR over {MAX_BYTES} bytes")


@pytest.mark.parametrize(
    ("data", "value"),
    [
        # the smallest argument of each long head form, with the head ending the input
        (b"\x18\x18", 24),
        (b"\x19\x01\x00", 256),
        (b"\x1a\x00\x01\x00\x00", 1 << 16),
        (b"\x1b" + (1 << 32).to_bytes(8, "big"), 1 << 32),
        (b"\x38\x18", -25),
        # strings, arrays and maps that end exactly where the input ends
        (tstr("abc"), "abc"),
        (bstr(b"abc"), b"abc"),
        (arr(uint(1)), [1]),
        (mp((uint(1), uint(2)), (uint(3), uint(4))), {1: 2, 3: 4}),
        (mp((tstr("n"), mp((uint(1), arr(uint(2), nint(-3)))))), {"n": {1: [2, -3]}}),
    ],
)
def test_plain_decoder_accepts_values_at_the_edges(data: bytes, value: object) -> None:
    assert loads_plain(data) == value


def test_cose_frame_refusals_say_why(seal_key: SealKey) -> None:
    good = frame(b"p", kid=seal_key.kid)
    cases = {
        b"": "not a tagged COSE_Sign1 array of four items",
        b"\xd2\x84": "truncated CBOR: a head is missing",
        b"\xd2\x84" + uint(1): "a byte string was expected",
        good[:-1]: "truncated CBOR: a byte string is cut off",
        frame(b"p", protected=mp((uint(1), nint(-7)))): (
            "the protected header must be exactly {1: -7, 4: kid}"
        ),
        frame(b"p", kid=seal_key.kid, unprotected=b"\x80"): (
            "the unprotected header must be an empty map"
        ),
        frame(b"p", FORGED_SIGNATURE[:63], kid=seal_key.kid): "an ES256 signature is 64 bytes",
        good + b"\x00": "trailing bytes after the COSE_Sign1",
    }
    for data, message in cases.items():
        with pytest.raises(SealError) as caught:
            decode1(data)
        assert (caught.value.reason, str(caught.value)) == ("malformed", message), data


def test_cose_signs_the_rfc9052_sig_structure(seal_key: SealKey) -> None:
    """Checked with cryptography alone over a Sig_structure built here, so sign1 and verify1
    cannot agree on a wrong one between themselves."""
    message = decode1(sign1(b"payload", seal_key.private_key, seal_key.kid))
    to_be_signed = arr(tstr("Signature1"), bstr(message.protected), bstr(b""), bstr(b"payload"))
    r, s = (int.from_bytes(message.signature[i:i + 32], "big") for i in (0, 32))
    seal_key.private_key.public_key().verify(
        encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA256())
    )
    assert s <= P256_ORDER // 2  # low-S form


def test_cose_refuses_to_sign_with_another_curve_or_kid(seal_key: SealKey) -> None:
    with pytest.raises(ValueError) as caught:
        sign1(b"p", ec.generate_private_key(ec.SECP384R1()), seal_key.kid)
    assert str(caught.value) == "ES256 needs a P-256 key"
    with pytest.raises(ValueError) as caught:
        sign1(b"p", seal_key.private_key, b"k")
    assert str(caught.value) == "a seal kid is 8 bytes"


def test_cose_verify_refuses_keys_that_are_not_ec_without_raising(seal_key: SealKey) -> None:
    message = decode1(sign1(b"p", seal_key.private_key, seal_key.kid))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert not verify1(message, rsa_key)  # type: ignore[arg-type]
    assert not verify1(message, ed25519.Ed25519PrivateKey.generate().public_key())  # type: ignore[arg-type]


def test_cose_verify_accepts_s_of_exactly_half_the_order() -> None:
    """The low-S bound is inclusive: s = n // 2 is the low form (its twin n - s is n // 2 + 1).
    No key is known for which RFC 6979 yields that s, so the key is solved for: pick the nonce
    k, then d = (s*k - z) / r mod n makes (r, s) a valid signature by d."""
    half = P256_ORDER // 2
    protected = cbor2.dumps({1: -7, 4: b"kid-0001"}, canonical=True)
    to_be_signed = arr(tstr("Signature1"), bstr(protected), bstr(b""), bstr(b"payload"))
    z = int.from_bytes(hashlib.sha256(to_be_signed).digest(), "big")
    k = 0x1234567890ABCDEF
    r = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x % P256_ORDER
    d = (half * k - z) * pow(r, -1, P256_ORDER) % P256_ORDER
    public_key = ec.derive_private_key(d, ec.SECP256R1()).public_key()
    public_key.verify(encode_dss_signature(r, half), to_be_signed, ec.ECDSA(hashes.SHA256()))

    def message(s: int) -> Sign1:
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return Sign1(kid=b"kid-0001", protected=protected, payload=b"payload",
                     signature=signature)

    assert verify1(message(half), public_key)
    assert not verify1(message(P256_ORDER - half), public_key)  # the valid high-S twin
