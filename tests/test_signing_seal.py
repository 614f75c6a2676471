"""The QR seal: COSE_Sign1, transport as digits, check-before-sign, verification, trust list."""

from __future__ import annotations

import base64
import hashlib
import random
import time
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import signing.seal
from signing.cose import Sign1, decode1, sign1, verify1
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import KeyMaterialMissing, SealError, SigningError
from signing.seal import (
    MAX_DIGITS,
    PRIVATE_CLAIM,
    Sealer,
    SealKey,
    SealReport,
    decode_seal,
    transport_text,
    verify_seal,
)
from signing.trust_list import TrustEntry, TrustList
from tests.fixture_scope import shared
from tests.test_signing_support import issue_end_entity

BASE_URL = "https://verify.pmc.example"
NAME_EN = "Aishwarya Venkataraman Deshpan"  # 30 letters and spaces
NO_SENTINEL = int.from_bytes(b"\x02abc", "big")
NAME_MR = unicodedata.normalize("NFC", "ऐश्वर्या व्यंकटरमण देशपांडे")
KID = b"kid-0001"  # kids are 8 bytes (SHA-256(cert DER)[:8])


# Inside the dev seal certificate's window, which starts 5 minutes before the test PKI is made,
# and that may be many minutes after this module is imported (collection of a long suite): a day
# ahead lies inside the 5-year window either way.
ISSUED_AT = int(time.time()) + 24 * 3600


def realistic_claims() -> dict[int, Any]:
    fields_hash = hashlib.sha256(b"canonical certified fields").digest()
    return {
        1: "in.gov.pmc",
        6: ISSUED_AT,
        PRIVATE_CLAIM: {
            1: "PMC-BIRTH-2025-000123",
            2: "BIRTH",
            3: NAME_EN,
            4: NAME_MR,
            5: "2025-11-20",
            6: "PMC/B/2025/12345",
            7: "Ward 14 Kothrud",
            8: "pmc-registrar-07",
            9: 123456,
            10: fields_hash,
        },
    }


@pytest.fixture(scope=shared("module"))
def seal_key(pki: DevPki) -> SealKey:
    return SealKey.load(pki.seal_key, pki.seal_cert)


@pytest.fixture(scope=shared("module"))
def sealer(seal_key: SealKey) -> Sealer:
    return Sealer(seal_key, BASE_URL)


@pytest.fixture(scope=shared("module"))
def trust(seal_key: SealKey) -> TrustList:
    return TrustList([seal_key.trust_entry(doc_types=("birth", "death"))])


# --- COSE_Sign1 ------------------------------------------------------------------------------


def test_cose_sign1_shape_matches_rfc9052(seal_key: SealKey) -> None:
    message = sign1(b"payload", seal_key.private_key, KID)

    item = cbor2.loads(message)
    assert isinstance(item, cbor2.CBORTag) and item.tag == 18
    protected, unprotected, payload, signature = item.value
    assert cbor2.loads(protected) == {1: -7, 4: KID}
    assert protected == cbor2.dumps({1: -7, 4: KID}, canonical=True)
    assert dict(unprotected) == {} and payload == b"payload" and len(signature) == 64


@pytest.mark.parametrize("kid", [b"", b"k", b"kid-00001"])
def test_cose_kids_are_eight_bytes(seal_key: SealKey, kid: bytes) -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        sign1(b"payload", seal_key.private_key, kid)


def test_cose_signatures_are_deterministic(seal_key: SealKey) -> None:
    first = sign1(b"payload", seal_key.private_key, KID)
    assert sign1(b"payload", seal_key.private_key, KID) == first


def test_cose_round_trip_and_wrong_key(seal_key: SealKey, stranger: DevPki) -> None:
    decoded = decode1(sign1(b"payload", seal_key.private_key, KID))

    assert (decoded.kid, decoded.payload) == (KID, b"payload")
    assert verify1(decoded, seal_key.private_key.public_key())
    other = SealKey.load(stranger.seal_key, stranger.seal_cert)
    assert not verify1(decoded, other.private_key.public_key())
    assert not verify1(
        Sign1(decoded.kid, decoded.protected, b"other payload", decoded.signature),
        seal_key.private_key.public_key(),
    )


PROTECTED = cbor2.dumps({1: -7, 4: KID}, canonical=True)


def frame(*parts: Any, tag: int = 18) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, list(parts)))


def test_cose_decode_reads_a_well_formed_frame_without_a_signature_check() -> None:
    decoded = decode1(frame(PROTECTED, {}, b"p", b"s" * 64))
    assert (decoded.kid, decoded.payload, decoded.signature) == (KID, b"p", b"s" * 64)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        cbor2.dumps([PROTECTED, {}, b"p", b"s" * 64]),  # untagged
        frame(PROTECTED, {}, b"p", b"s" * 64, tag=98),  # COSE_Sign, not Sign1
        frame(PROTECTED, {}, b"p"),  # three items
        frame(PROTECTED, {}, b"p", b"s" * 64, b""),  # five items
        frame(PROTECTED, {}, b"p", b"s" * 63),
        frame(PROTECTED, {}, b"p", b"s" * 65),
        frame(cbor2.dumps({1: -35, 4: KID}, canonical=True), {}, b"p", b"s" * 64),
        frame(cbor2.dumps({1: -7}), {}, b"p", b"s" * 64),
        frame(cbor2.dumps({1: -7, 4: b"k"}), {}, b"p", b"s" * 64),  # short kid
        frame(cbor2.dumps({4: KID, 1: -7}), {}, b"p", b"s" * 64),  # other key order
        frame(PROTECTED, {4: KID}, b"p", b"s" * 64),
        frame(cbor2.dumps({1.0: -7, 4: KID}), {}, b"p", b"s" * 64),
        frame(PROTECTED, {}, "p", b"s" * 64),  # text payload
        frame(PROTECTED, {}, b"p", b"s" * 64) + b"\x00",  # trailing byte
    ],
)
def test_cose_decode_rejects_anything_odd(data: bytes) -> None:
    with pytest.raises(SealError) as caught:
        decode1(data)
    assert caught.value.reason == "malformed"


def test_cose_verify_refuses_other_curves(seal_key: SealKey) -> None:
    decoded = decode1(sign1(b"p", seal_key.private_key, KID))
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert not verify1(decoded, p384)


# --- seal round trip -------------------------------------------------------------------------


def test_seal_round_trip(sealer: Sealer, trust: TrustList, seal_key: SealKey) -> None:
    text = sealer.seal(realistic_claims())

    assert text.startswith(f"{BASE_URL}/v#")
    assert text.isascii() and text.split("#", 1)[1].isdigit()
    report = verify_seal(text, trust)
    assert report.ok and report.reason is None
    assert report.claims == realistic_claims()
    assert report.kid == seal_key.kid.hex()
    assert report.signed_by is not None and "CN=Pramaan Dev QR Seal" in report.signed_by


def test_seal_is_deterministic(sealer: Sealer) -> None:
    assert sealer.seal(realistic_claims()) == sealer.seal(realistic_claims())


def test_seal_accepts_fragment_only_and_scanner_whitespace(
    sealer: Sealer, trust: TrustList
) -> None:
    text = sealer.seal(realistic_claims())
    digits = text.split("#", 1)[1]

    assert verify_seal(digits, trust).ok
    assert verify_seal(text + "\n", trust).ok
    assert verify_seal(f"  {text}\r\n", trust).ok


def test_seal_transport_flag_and_sentinel(sealer: Sealer) -> None:
    text = sealer.seal(realistic_claims())
    decoded = decode_seal(text)
    digits = text.split("#", 1)[1]

    raw = int(digits[1:]).to_bytes((int(digits[1:]).bit_length() + 7) // 8, "big")
    assert raw[0] == 1
    body = raw[1:]
    if digits[0] == "1":
        assert decoded.compressed and zlib.decompress(body, wbits=-15) == decoded.cose
    else:
        assert digits[0] == "0" and not decoded.compressed and body == decoded.cose


def test_leading_zero_bytes_survive_thanks_to_the_sentinel(
    sealer: Sealer, trust: TrustList
) -> None:
    # A claims map whose COSE bytes start with 0xD2 is the normal case; force the DEFLATE-free
    # path with incompressible bytes and check the exact byte string comes back.
    claims = {1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: bytes(range(256))}}
    text = sealer.seal(claims)
    report = verify_seal(text, trust)
    assert report.claims is not None and report.claims[PRIVATE_CLAIM][1] == bytes(range(256))


def test_longest_accepted_seal_round_trips(sealer: Sealer, trust: TrustList) -> None:
    # Near MAX_DIGITS, incompressible: the big-number conversions are exact at the limit.
    noise = hashlib.shake_256(b"noise").digest(1100)
    text = sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: noise}})

    assert MAX_DIGITS - 300 < len(text.split("#", 1)[1]) <= MAX_DIGITS
    report = verify_seal(text, trust)
    assert report.ok and report.claims is not None
    assert report.claims[PRIVATE_CLAIM][1] == noise


def test_claims_too_big_for_a_qr_are_refused(sealer: Sealer) -> None:
    noise = hashlib.shake_256(b"noise").digest(4000)
    with pytest.raises(SealError) as caught:
        sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: noise}})
    assert caught.value.reason == "too_large"


def test_check_before_sign_catches_claims_that_do_not_read_back(sealer: Sealer) -> None:
    # NaN encodes fine but never compares equal to itself: what we would sign is not what a
    # verifier would read back as equal, so the check must refuse it.
    with pytest.raises(SealError) as caught:
        sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: float("nan")}})
    assert caught.value.reason == "payload_mismatch"
    assert caught.value.code == "seal_invalid"


class NeverEqual(int):
    """Encodes as a plain integer but never compares equal: what we sign would not be what a
    verifier reads back as equal."""

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def test_check_before_sign_compares_what_a_verifier_reads_back(sealer: Sealer) -> None:
    with pytest.raises(SealError) as caught:
        sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: NeverEqual(7)}})
    assert caught.value.reason == "payload_mismatch"


def test_claims_are_encoded_canonically_whatever_order_they_come_in(sealer: Sealer) -> None:
    """One claims set, one payload: keys in length-first order (RFC 7049 3.9) at every level,
    so a verifier re-encoding the claims gets the signed bytes."""
    claims = {PRIVATE_CLAIM: {"zz": 1, "a": 2, 10: 3, 2: 4}, 6: ISSUED_AT, 1: "x"}
    payload = decode_seal(sealer.seal(claims)).message.payload
    assert payload == cbor2.dumps(claims, canonical=True)
    assert list(cbor2.loads(payload)) == [1, 6, PRIVATE_CLAIM]
    assert list(cbor2.loads(payload)[PRIVATE_CLAIM]) == [2, 10, "a", "zz"]


def test_claims_holding_tuples_read_back_as_the_lists_a_verifier_sees(sealer: Sealer,
                                                                      trust: TrustList) -> None:
    claims = {1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {"dates": ("2025-11-20", ("a", 2))}}
    report = verify_seal(sealer.seal(claims), trust)
    assert report.ok and report.claims is not None
    assert report.claims[PRIVATE_CLAIM] == {"dates": ["2025-11-20", ["a", 2]]}


def test_check_before_sign_refuses_claims_a_verifier_would_not_decode(sealer: Sealer) -> None:
    """Claims cbor2 can encode but the plain decoder refuses (tags, floats) are never sealed."""
    assert sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: 2**64 - 1}})  # control
    for value in (1.5, 2**64, {3}):
        with pytest.raises(SealError) as caught:
            sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: value}})
        assert caught.value.reason == "payload_mismatch", value


@pytest.mark.parametrize("claims", [{}, {"iss": "x"}, {1: object()}])
def test_claims_must_be_a_cbor_map_with_int_keys(sealer: Sealer, claims: Any) -> None:
    with pytest.raises(SealError):
        sealer.seal(claims)


# --- rejection -------------------------------------------------------------------------------


def test_every_single_digit_change_is_rejected(sealer: Sealer, trust: TrustList) -> None:
    text = sealer.seal(realistic_claims())
    start = text.index("#") + 1
    positions = range(start, len(text))
    for position in positions:
        digit = text[position]
        changed = text[:position] + str((int(digit) + 1) % 10) + text[position + 1 :]
        report = verify_seal(changed, trust)
        assert not report.ok, f"digit {position} changed and still verified"
        assert report.reason in {"bad_signature", "malformed", "unknown_kid"}, report.reason
        assert report.claims is None


def test_changes_in_the_last_digits_are_rejected_for_many_seals(
    sealer: Sealer, trust: TrustList
) -> None:
    # The last digits carry the last DEFLATE byte, whose unused high bits inflaters ignore.
    for serial in range(40):
        claims = realistic_claims()
        claims[PRIVATE_CLAIM][9] = serial
        text = sealer.seal(claims)
        for position in range(len(text) - 4, len(text)):
            for step in range(1, 10):
                digit = str((int(text[position]) + step) % 10)
                changed = text[:position] + digit + text[position + 1 :]
                assert not verify_seal(changed, trust).ok, (serial, position, digit)


def _inflates_to(data: bytes, expected: bytes) -> bool:
    try:
        return zlib.decompress(data, wbits=-15) == expected
    except zlib.error:
        return False


def test_nonzero_deflate_padding_bits_are_malformed(sealer: Sealer, trust: TrustList) -> None:
    tried = 0
    for serial in range(64):
        claims = realistic_claims()
        claims[PRIVATE_CLAIM][9] = serial
        decoded = decode_seal(sealer.seal(claims))
        if not decoded.compressed:
            continue
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = compressor.compress(decoded.cose) + compressor.flush()
        padded = body[:-1] + bytes([body[-1] | 0x80])
        if padded == body or not _inflates_to(padded, decoded.cose):
            continue  # the top bit of this stream's last byte is in use
        tried += 1
        number = int.from_bytes(b"\x01" + padded, "big")
        report = verify_seal(f"{BASE_URL}/v#1{number}", trust)
        assert (report.ok, report.reason) == (False, "malformed")
    assert tried > 0


def test_non_preferred_cbor_encoding_is_malformed(seal_key: SealKey) -> None:
    message = sign1(b"payload", seal_key.private_key, KID)
    # Re-encode the 64-byte signature with a 2-byte length (0x59 0x00 0x40 instead of 0x58 0x40).
    longer = message[:-66] + b"\x59\x00\x40" + message[-64:]
    assert message[-66:-64] == b"\x58\x40"

    with pytest.raises(SealError) as caught:
        decode1(longer)
    assert caught.value.reason == "malformed"


def test_one_changed_digit_in_the_middle_is_bad_signature_or_malformed(
    sealer: Sealer, trust: TrustList
) -> None:
    text = sealer.seal(realistic_claims())
    middle = (text.index("#") + len(text)) // 2
    changed = text[:middle] + ("1" if text[middle] != "1" else "2") + text[middle + 1 :]

    assert verify_seal(changed, trust).reason in {"bad_signature", "malformed"}


def test_seal_from_an_unknown_key_is_unknown_kid(stranger: DevPki, trust: TrustList) -> None:
    foreign = Sealer(SealKey.load(stranger.seal_key, stranger.seal_cert), BASE_URL)

    report = verify_seal(foreign.seal(realistic_claims()), trust)

    assert (report.ok, report.reason) == (False, "unknown_kid")
    assert report.kid is not None


def test_known_kid_signed_by_another_key_is_bad_signature(
    seal_key: SealKey, stranger: DevPki, trust: TrustList
) -> None:
    impostor_key = SealKey.load(stranger.seal_key, stranger.seal_cert).private_key
    payload = cbor2.dumps(realistic_claims(), canonical=True)
    cose = sign1(payload, impostor_key, seal_key.kid)  # claims our kid

    report = verify_seal(f"{BASE_URL}/v#{transport_text(cose)}", trust)

    assert (report.ok, report.reason) == (False, "bad_signature")
    assert report.kid == seal_key.kid.hex()


def test_verifier_tries_every_key_with_that_kid(
    seal_key: SealKey, sealer: Sealer, stranger: DevPki
) -> None:
    genuine = seal_key.trust_entry()
    other = SealKey.load(stranger.seal_key, stranger.seal_cert).trust_entry()
    colliding = TrustEntry(
        kid=genuine.kid,
        certificate_der=other.certificate_der,
        public_key=other.public_key,
        not_before=other.not_before,
        not_after=other.not_after,
    )

    report = verify_seal(sealer.seal(realistic_claims()), TrustList([colliding, genuine]))

    assert report.ok


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "malformed"),
        (f"{BASE_URL}/v#", "malformed"),
        (f"{BASE_URL}/v#2123", "malformed"),  # unknown flag
        (f"{BASE_URL}/v#0012", "malformed"),  # non-canonical leading zero
        (f"{BASE_URL}/v#0१२३", "malformed"),  # non-ASCII digits
        (f"{BASE_URL}/v#0{NO_SENTINEL}", "malformed"),  # first byte is not 0x01
        ("0" + "1" * (MAX_DIGITS + 1), "too_large"),
        ("https://evil.example/v#01234", "malformed"),
    ],
)
def test_garbage_seals_are_rejected_with_a_reason(trust: TrustList, text: str, reason: str) -> None:
    report = verify_seal(text, trust)
    assert (report.ok, report.reason) == (False, reason)


def test_deflate_bomb_is_too_large(trust: TrustList) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(100_000)) + compressor.flush()
    number = int.from_bytes(b"\x01" + bomb, "big")

    report = verify_seal(f"1{number}", trust)

    assert (report.ok, report.reason) == (False, "too_large")


def test_decode_seal_raises_typed_errors() -> None:
    with pytest.raises(SealError) as caught:
        decode_seal("https://verify.pmc.example/v#9")
    assert caught.value.reason == "malformed"


# --- trust list ------------------------------------------------------------------------------


def test_trust_list_json_for_publication(seal_key: SealKey, trust: TrustList) -> None:
    document = trust.to_json()

    assert document["version"] == 1
    (entry,) = document["keys"]
    assert entry["kid"] == seal_key.kid.hex()
    assert entry["alg"] == "ES256"
    assert entry["doc_types"] == ["birth", "death"]
    assert entry["signing_from"] < entry["signing_until"]
    assert hashlib.sha256(base64.b64decode(entry["certificate"])).digest()[:8] == seal_key.kid


def test_trust_list_from_cert_paths(pki: DevPki, seal_key: SealKey) -> None:
    trust = TrustList.from_cert_paths([pki.seal_cert, pki.seal_cert])

    assert len(trust.entries) == 1
    assert [e.kid for e in trust.keys_for(seal_key.kid)] == [seal_key.kid]
    assert trust.keys_for(b"\x00" * 8) == []


def test_trust_list_names_the_seal_certificate_it_cannot_load(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing.pem", tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")

    with pytest.raises(KeyMaterialMissing) as unreadable:
        TrustList.from_cert_paths([missing])
    with pytest.raises(KeyMaterialMissing) as no_pem:
        TrustList.from_cert_paths([empty])

    assert str(unreadable.value) == (
        f"cannot read seal certificate {missing}: No such file or directory")
    assert str(no_pem.value) == f"seal certificate {empty} holds no valid PEM certificate"


def test_one_seal_has_one_text(sealer: Sealer, trust: TrustList) -> None:
    """A genuine seal re-encoded another way (plain instead of deflated, or the high-S twin of
    its ECDSA signature) is refused: the same seal cannot circulate as several texts."""
    text = sealer.seal(realistic_claims())
    cose = decode_seal(text).cose
    plain = int.from_bytes(b"\x01" + cose, "big")
    assert verify_seal(f"{BASE_URL}/v#0{plain}", trust).reason == "malformed"

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    message = decode_seal(text).message
    s_value = int.from_bytes(message.signature[32:], "big")
    twin_signature = message.signature[:32] + (n - s_value).to_bytes(32, "big")
    twin = cbor2.dumps(cbor2.CBORTag(18, [message.protected, {}, message.payload,
                                          twin_signature]))
    assert verify_seal(f"{BASE_URL}/v#{transport_text(twin)}", trust).reason == "bad_signature"


def test_seal_outside_its_key_window_is_refused(seal_key: SealKey, trust: TrustList) -> None:
    """A key vouches only for seals it made while it was in service."""
    claims = realistic_claims()
    claims[6] = ISSUED_AT + 40 * 365 * 24 * 3600  # after the seal certificate expires
    cose = sign1(cbor2.dumps(claims, canonical=True), seal_key.private_key, seal_key.kid)
    assert verify_seal(f"{BASE_URL}/v#{transport_text(cose)}", trust).reason == "outside_window"
    del claims[6]
    cose = sign1(cbor2.dumps(claims, canonical=True), seal_key.private_key, seal_key.kid)
    assert verify_seal(f"{BASE_URL}/v#{transport_text(cose)}", trust).reason == "outside_window"


def test_retired_seal_keys_still_verify(tmp_path: Path) -> None:
    """After a seal-key rotation, certificates sealed with the old key still verify."""
    import shutil

    from signing.config import SignerConfig
    from signing.keyring import Keyring

    pki = ensure_dev_pki(tmp_path / "keys")
    old = Keyring.from_config(SignerConfig.from_keys_dir(pki.keys_dir), verify_base_url=BASE_URL)
    old_text = old.sealer.seal(realistic_claims())
    # Rotate: retire the current seal certificate, put a new key in place (another PKI's).
    (pki.keys_dir / "seal-retired").mkdir()
    shutil.copy(pki.seal_cert, pki.keys_dir / "seal-retired" / "seal-1.crt")
    other = ensure_dev_pki(tmp_path / "other")
    shutil.copy(other.seal_key, pki.seal_key)
    shutil.copy(other.seal_cert, pki.seal_cert)
    new = Keyring.from_config(SignerConfig.from_keys_dir(pki.keys_dir), verify_base_url=BASE_URL)
    assert new.seal_kid != old.seal_kid
    assert verify_seal(old_text, new.seal_trust).ok
    assert verify_seal(new.sealer.seal(realistic_claims()), new.seal_trust).ok


def test_sealer_refuses_claims_without_an_issue_time(sealer: Sealer) -> None:
    claims = realistic_claims()
    del claims[6]
    with pytest.raises(SealError) as caught:
        sealer.seal(claims)
    assert caught.value.reason == "outside_window"


# --- every refusal says why, and every limit is exact -----------------------------------------


def _digits(data: bytes) -> str:
    return str(int.from_bytes(b"\x01" + data, "big"))


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def test_transport_refusals_say_why(sealer: Sealer) -> None:
    digits = sealer.seal(realistic_claims()).split("#", 1)[1]
    deflated = _deflated(b"not a COSE message, but it has to be long enough to compress" * 3)
    cases = {
        "": "the seal must be a flag digit followed by digits",
        "1": "the seal must be a flag digit followed by digits",
        f"{BASE_URL}/v#{digits}#{digits}": "the seal must be a flag digit followed by digits",
        "01": "not a tagged COSE_Sign1 array of four items",  # shortest text: no bytes at all
        "2123": "unknown flag digit or non-canonical number",
        "0012": "unknown flag digit or non-canonical number",
        "010": "the sentinel byte is missing",  # 10 = 0x0a
        f"0{NO_SENTINEL}": "the sentinel byte is missing",
        "1" + _digits(deflated[:-1]): "truncated DEFLATE data or bytes after it",
        "1" + _digits(deflated + b"\x00"): "truncated DEFLATE data or bytes after it",
        "1" + _digits(_deflated(decode_seal(digits).cose) + b"\x00"): (
            "truncated DEFLATE data or bytes after it"
        ),
    }
    # The same message in another form than the one it is made in: not another text of it.
    cases["0" + _digits(decode_seal(digits).cose)] = (
        "the seal text is not in its canonical encoding")  # plain, where DEFLATE is shorter
    for text, message in cases.items():
        with pytest.raises(SealError) as caught:
            decode_seal(text)
        assert (caught.value.reason, str(caught.value)) == ("malformed", message), text
    too_long = "1" * (MAX_DIGITS + 1)
    with pytest.raises(SealError) as caught:
        decode_seal(too_long)
    assert (caught.value.reason, str(caught.value)) == (
        "too_large", f"{MAX_DIGITS + 1} digits, at most {MAX_DIGITS} accepted")
    with pytest.raises(SealError) as caught:
        decode_seal("1" + _digits(b"\xff\xff\xff"))  # reserved DEFLATE block type
    assert caught.value.reason == "malformed"
    assert str(caught.value).startswith("invalid DEFLATE data: ")


def test_seal_text_limit_is_exact(sealer: Sealer, trust: TrustList) -> None:
    """A seal of exactly MAX_DIGITS digits is made and verifies; one digit more is refused."""
    at_limit = None
    for size in range(1100, 1200):  # incompressible: each byte adds 2 or 3 digits
        noise = hashlib.shake_256(b"noise").digest(size)
        try:
            text = sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: noise}})
        except SealError as exc:
            assert exc.reason == "too_large"
            assert str(exc).startswith("the seal needs ")
            assert str(exc).endswith(" characters, too many for a QR")
            break
        if len(text.split("#", 1)[1]) == MAX_DIGITS:
            at_limit = text
    assert at_limit is not None
    assert verify_seal(at_limit, trust).ok
    assert verify_seal(at_limit.split("#", 1)[1], trust).ok
    too_long = at_limit + "0"
    assert verify_seal(too_long, trust).reason == "too_large"
    with pytest.raises(SealError) as caught:
        decode_seal(too_long)
    assert str(caught.value) == f"{MAX_DIGITS + 1} digits, at most {MAX_DIGITS} accepted"


def test_inflated_size_limit_is_exact(trust: TrustList) -> None:
    """A COSE message that inflates to exactly MAX_INFLATED_BYTES is read (and then judged on
    its kid); one byte more is too large."""
    def text_of(size: int) -> str:
        payload = bytes(size - 86)
        cose = b"\xd2\x84" + cbor2.dumps(cbor2.dumps({1: -7, 4: b"\x00" * 8}, canonical=True))
        cose += b"\xa0" + cbor2.dumps(payload) + cbor2.dumps(b"\x00" * 64)
        assert len(cose) == size
        return transport_text(cose)

    limit = signing.seal.MAX_INFLATED_BYTES
    assert text_of(limit)[0] == "1"  # deflated
    assert verify_seal(text_of(limit), trust).reason == "unknown_kid"
    with pytest.raises(SealError) as caught:
        decode_seal(text_of(limit + 1))
    assert (caught.value.reason, str(caught.value)) == (
        "too_large", f"inflates beyond {limit} bytes"
    )


def test_transport_deflates_at_level_9_only_when_shorter(seal_key: SealKey) -> None:
    """The one canonical text: raw DEFLATE at level 9 when strictly shorter, else plain."""
    level_9_differs = None
    for seed in range(50):  # text made of repeated words: levels 6 and 9 often differ there
        rng = random.Random(seed)
        words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(3, 40)))
                 for _ in range(12)]
        payload = b"".join(rng.choice(words)[: rng.randrange(1, 40)] for _ in range(150))
        cose = sign1(payload, seal_key.private_key, KID)
        level_6 = zlib.compressobj(6, zlib.DEFLATED, -15)
        if _deflated(cose) != level_6.compress(cose) + level_6.flush():
            level_9_differs = cose
            break
    assert level_9_differs is not None
    assert transport_text(level_9_differs) == "1" + _digits(_deflated(level_9_differs))
    incompressible = sign1(hashlib.shake_256(b"x").digest(200), seal_key.private_key, KID)
    assert transport_text(incompressible) == "0" + _digits(incompressible)
    # Another text of the same message (the compressible one sent plain) is refused, and the
    # refusal says why.
    compressible = sign1(b"a" * 200, seal_key.private_key, KID)
    assert transport_text(compressible)[0] == "1"
    with pytest.raises(SealError) as caught:
        decode_seal("0" + _digits(compressible))
    assert (caught.value.reason, str(caught.value)) == (
        "malformed", "the seal text is not in its canonical encoding")


def test_verify_base_url_edges(seal_key: SealKey) -> None:
    assert Sealer(seal_key, BASE_URL + "/").prefix == f"{BASE_URL}/v#"
    assert Sealer(seal_key, BASE_URL + "/pune/").prefix == f"{BASE_URL}/pune/v#"
    for url in (f"{BASE_URL}/#", f"{BASE_URL}/?", "https://", "ftp://x", "x.example"):
        with pytest.raises(SigningError) as caught:
            Sealer(seal_key, url)
        assert caught.value.code == "invalid_base_url", url


def test_sealer_refusals_say_why(sealer: Sealer) -> None:
    cases: dict[str, tuple[dict[Any, Any], str]] = {
        "no iat": ({1: "x"}, "claims need an integer iat (6) in the key's window"),
        "text key": ({"iss": "x", 6: ISSUED_AT}, "claim keys must be integers (CWT)"),
        "never equal": ({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: NeverEqual(7)}},
                        "the seal does not read back as the claims"),
    }
    for name, (claims, message) in cases.items():
        with pytest.raises(SealError) as caught:
            sealer.seal(claims)
        assert str(caught.value) == message, name
    with pytest.raises(SealError) as caught:
        sealer.seal({1: "x", 6: ISSUED_AT, PRIVATE_CLAIM: {1: 1.5}})
    assert str(caught.value).startswith("the seal does not read back: ")
    with pytest.raises(SealError) as caught:
        sealer.seal({1: object(), 6: ISSUED_AT})
    assert caught.value.reason == "malformed"
    assert str(caught.value).startswith("claims cannot be encoded as CBOR: ")


class _FaultySigner:
    """A P-256 key whose signatures are over other bytes, as a failing signing device's could
    be: check-before-sign must catch it before the text is handed out."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.curve = key.curve

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes, algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._key.sign(data + b"!", algorithm)


def test_check_before_sign_catches_a_signature_that_does_not_verify(seal_key: SealKey) -> None:
    faulty = SealKey(private_key=_FaultySigner(seal_key.private_key),  # type: ignore[arg-type]
                     certificate=seal_key.certificate, kid=seal_key.kid)
    with pytest.raises(SealError) as caught:
        Sealer(faulty, BASE_URL).seal(realistic_claims())
    assert (caught.value.reason, str(caught.value)) == (
        "payload_mismatch", "the seal does not read back as the claims"
    )


def test_iat_window_bounds_are_inclusive(sealer: Sealer, seal_key: SealKey,
                                         trust: TrustList) -> None:
    entry = seal_key.trust_entry()
    first, last = int(entry.not_before.timestamp()), int(entry.not_after.timestamp())
    for iat in (first, last):
        report = verify_seal(sealer.seal({1: "x", 6: iat}), trust)
        assert report.ok and report.claims == {1: "x", 6: iat}
    for iat in (first - 1, last + 1):
        with pytest.raises(SealError) as caught:
            sealer.seal({1: "x", 6: iat})
        assert caught.value.reason == "outside_window"
        cose = sign1(cbor2.dumps({1: "x", 6: iat}, canonical=True), seal_key.private_key,
                     seal_key.kid)
        assert verify_seal(transport_text(cose), trust).reason == "outside_window"


def test_failure_reports_name_the_kid_they_are_about(
    sealer: Sealer, seal_key: SealKey, stranger: DevPki, trust: TrustList
) -> None:
    kid = seal_key.kid.hex()
    message = decode_seal(sealer.seal(realistic_claims())).message
    forged = cbor2.dumps(cbor2.CBORTag(18, [message.protected, {}, message.payload,
                                            b"\x01" * 64]))
    other = SealKey.load(stranger.seal_key, stranger.seal_cert)
    not_a_map = sign1(cbor2.dumps([1, 6]), seal_key.private_key, seal_key.kid)
    late = sign1(cbor2.dumps({6: ISSUED_AT + 10**9}), seal_key.private_key, seal_key.kid)
    assert verify_seal("0", trust) == SealReport(ok=False, reason="malformed")
    assert verify_seal(transport_text(forged), trust) == SealReport(
        ok=False, reason="bad_signature", kid=kid)
    assert verify_seal(Sealer(other, BASE_URL).seal(realistic_claims()), trust) == SealReport(
        ok=False, reason="unknown_kid", kid=other.kid.hex())
    assert verify_seal(transport_text(not_a_map), trust) == SealReport(
        ok=False, reason="malformed", kid=kid)
    assert verify_seal(transport_text(late), trust) == SealReport(
        ok=False, reason="outside_window", kid=kid)


def test_seal_key_refusals_name_the_seal_files(pki: DevPki, stranger: DevPki,
                                               tmp_path: Path) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    key_path, cert_path = issue_end_entity(pki, tmp_path, name="p384", key=p384)
    with pytest.raises(SigningError) as caught:
        SealKey.load(key_path, cert_path)
    assert caught.value.code == "unsupported_key"
    assert str(caught.value) == f"seal key {key_path} is not EC P-256"
    missing = tmp_path / "missing.pem"
    with pytest.raises(SigningError, match=r"^cannot read seal certificate "):
        SealKey.load(pki.seal_key, missing)
    with pytest.raises(SigningError, match=r"^cannot read seal key "):
        SealKey.load(missing, pki.seal_cert)
    with pytest.raises(SigningError, match=r"^seal key: the private key does not match"):
        SealKey.load(stranger.seal_key, pki.seal_cert)
    no_ds_key, no_ds_cert = issue_end_entity(pki, tmp_path, name="no-ds",
                                             key=ec.generate_private_key(ec.SECP256R1()),
                                             digital_signature=False)
    with pytest.raises(SigningError, match=r"^seal certificate: .* lacks keyUsage"):
        SealKey.load(no_ds_key, no_ds_cert)


def test_a_seal_key_s_trust_entry_names_its_kid_window_and_doc_types(seal_key: SealKey) -> None:
    entry = seal_key.trust_entry(doc_types=("birth", "death"))
    assert (entry.kid, entry.doc_types) == (seal_key.kid, ("birth", "death"))
    assert (entry.not_before, entry.not_after) == (seal_key.certificate.not_valid_before_utc,
                                                   seal_key.certificate.not_valid_after_utc)
    assert seal_key.trust_entry().doc_types == ()


def test_a_body_deflate_cannot_shorten_travels_plain() -> None:
    """DEFLATE only when strictly shorter: for these 20 bytes raw DEFLATE at level 9 gives
    exactly 20 bytes, and the one canonical text is then the plain one."""
    body = b"XSITA0GE262MR6R62MQ4"
    compressor = zlib.compressobj(level=9, wbits=-15)
    assert len(compressor.compress(body) + compressor.flush()) == len(body)
    assert transport_text(body)[0] == "0"  # the plain flag digit


def test_claims_in_another_order_make_the_same_seal(sealer: Sealer) -> None:
    # The payload is canonical CBOR (map keys in length-first order), whatever order the
    # caller built its mapping in, so one certificate has one seal.
    now = int(time.time())
    claims = {1: "in.gov.pmc", 6: now, -70000: {"z": 1, "a": [2, 3], "m": "x"}}
    backwards = {-70000: {"m": "x", "a": [2, 3], "z": 1}, 6: now, 1: "in.gov.pmc"}
    assert sealer.seal(claims) == sealer.seal(backwards)


def test_sequences_in_claims_read_back_as_lists(sealer: Sealer, trust: TrustList) -> None:
    claims = {1: "in.gov.pmc", 6: int(time.time()), -70000: {"d": (("2026", 1), ("x", 2))}}
    report = verify_seal(sealer.seal(claims), trust)
    assert report.ok and report.claims == {1: "in.gov.pmc", 6: claims[6],
                                           -70000: {"d": [["2026", 1], ["x", 2]]}}


def test_seal_text_refusals_say_why(sealer: Sealer) -> None:
    with pytest.raises(SealError) as long:
        decode_seal("1" * (MAX_DIGITS + 1))
    assert (long.value.reason, str(long.value)) == (
        "too_large", f"{MAX_DIGITS + 1} digits, at most {MAX_DIGITS} accepted")
    # The same COSE message sent plain when DEFLATE is shorter: not its one canonical text.
    text = sealer.seal({1: "in.gov.pmc", 6: int(time.time()), -70000: {"n": "x" * 200}})
    decoded = decode_seal(text)
    assert decoded.compressed
    plain = "0" + str(int.from_bytes(b"\x01" + decoded.cose, "big"))
    with pytest.raises(SealError) as other:
        decode_seal(plain)
    assert (other.value.reason, str(other.value)) == (
        "malformed", "the seal text is not in its canonical encoding")


def test_claims_are_sealed_in_canonical_cbor_whatever_their_order_and_shapes(
        sealer: Sealer) -> None:
    # Keys out of order, a tuple of tuples: the payload is canonical CBOR of plain lists, and
    # the seal reads back equal to what was given.
    claims = {PRIVATE_CLAIM: {9: ("b", ("c", 1)), 1: "x"}, 6: ISSUED_AT, 1: "in.gov.pmc"}
    payload = decode_seal(sealer.seal(claims)).message.payload
    plain = {1: "in.gov.pmc", 6: ISSUED_AT, PRIVATE_CLAIM: {1: "x", 9: ["b", ["c", 1]]}}
    assert payload == cbor2.dumps(plain, canonical=True)
    assert payload != cbor2.dumps(claims)  # the order given would have been another text
