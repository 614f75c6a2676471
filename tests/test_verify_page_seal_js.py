"""The verify page's own seal check (templates/web/seal.js, run in Debian's Chromium) against
the server's (signing/seal.py): the same verdict, reason for reason, on every hostile seal the
server's tests build (tests/test_seal_hostile.py: CBOR tags, huge integers, deep nesting,
indefinite lengths, bombs, hand-written COSE frames), on forged and unknown-key seals and on a
genuine one. The browser's answer is what a verifier sees offline, so a disagreement is a bug in
one of the two."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from signing.cose import sign1
from signing.devpki import DevPki
from signing.seal import PRIVATE_CLAIM, SealKey, transport_text, verify_seal
from signing.trust_list import TrustList
from tests.browser import browser, page  # noqa: F401 - fixtures
from tests.conftest import Live, make_settings, serve
from tests.fixture_scope import shared
from tests.raw_cbor import mp, nint, tstr, uint
from tests.test_seal_hostile import (
    BASE_URL,
    FRAMES,
    HOSTILE_PAYLOADS,
    ISSUED_AT,
    P256_ORDER,
    as_text,
    claims_with,
    forged,
    frame,
    signed,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHECK_IN_BROWSER = """async ({cert, from, until, texts}) => {
    const {certificate} = await import('/v/assets/der.js');
    const {sealEntry, verifySeal} = await import('/v/assets/seal.js');
    const der = Uint8Array.from(atob(cert), (c) => c.charCodeAt(0));
    const entry = await sealEntry(certificate(der), from, until);
    const out = [];
    for (const text of texts) {
        try {
            const v = await verifySeal(text, [entry]);
            out.push([v.ok, v.reason]);
        } catch (e) {
            out.push([false, 'threw ' + e]);
        }
    }
    return out; }"""


@pytest.fixture
def origin(tmp_path: Path, keys_dir: Path) -> Iterator[Live]:
    """Any page of ours: WebCrypto needs a secure context (http://127.0.0.1 is one)."""
    yield from serve(make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir))


@pytest.fixture(scope=shared("module"))
def seal_key(pki: DevPki) -> SealKey:
    return SealKey.load(pki.seal_key, pki.seal_cert)


def in_browser(tab: Page, key: SealKey, texts: list[str]) -> list[tuple[bool, str | None]]:
    entry = key.trust_entry()
    answer = tab.evaluate(CHECK_IN_BROWSER, {
        "cert": base64.b64encode(key.certificate.public_bytes(
            serialization.Encoding.DER)).decode(),
        "from": entry.not_before.timestamp() * 1000, "until": entry.not_after.timestamp() * 1000,
        "texts": texts})
    return [(ok, reason) for ok, reason in answer]


def on_server(key: SealKey, texts: list[str]) -> list[tuple[bool, str | None]]:
    trust = TrustList([key.trust_entry()])
    return [(report.ok, report.reason) for report in (verify_seal(t, trust) for t in texts)]


def corpus(key: SealKey) -> dict[str, str]:
    """Named seal texts, hostile and not."""
    texts: dict[str, str] = {}
    for name, payload in HOSTILE_PAYLOADS.items():
        texts[f"signed: {name}"] = signed(payload, key)
        texts[f"forged: {name}"] = forged(payload, key)
        texts[f"unknown kid: {name}"] = as_text(frame(payload, kid=b"\x00unknown"))
    # Read as a map of one pair {1: 2} by a decoder that skipped the tag check: refused.
    texts["signed: tag 1 shaped like a map"] = signed(claims_with(b"\xc1\x01\x02"), key)
    for name, build in FRAMES.items():
        texts[f"frame: {name}"] = as_text(build(key))
    genuine = mp((uint(1), tstr("in.gov.pmc")), (uint(6), uint(ISSUED_AT)),
                 (nint(PRIVATE_CLAIM), mp((tstr("no"), tstr("PMC/B/2026/KB/000001")))))
    texts["genuine"] = signed(genuine, key)
    texts["genuine, digits only"] = signed(genuine, key).split("#", 1)[1]
    texts["signed before the key's window"] = signed(
        mp((uint(1), tstr("in.gov.pmc")), (uint(6), uint(1))), key)
    texts["no iat"] = signed(mp((uint(1), tstr("in.gov.pmc"))), key)
    texts["high-S twin"] = _high_s(sign1(genuine, key.private_key, key.kid))
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = bomb.compress(b"\x00" * 1_000_000) + bomb.flush()
    number = int.from_bytes(b"\x01" + deflated, "big")
    texts["DEFLATE bomb"] = f"{BASE_URL}/v#1{number}"
    texts["too many digits"] = f"{BASE_URL}/v#1" + "7" * 3000
    for name, digits in {"empty": "", "flag only": "1", "unknown flag": "29",
                         "leading zero": "1012", "letters": "1abc", "no sentinel": "1255",
                         "not DEFLATE": "1" + str(int.from_bytes(b"\x01\xff\xff", "big"))}.items():
        texts[f"digits: {name}"] = f"{BASE_URL}/v#{digits}"
    return texts


def _high_s(cose: bytes) -> str:
    r, s = decode_dss_signature(_der(cose[-64:]))
    twin = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    return as_text(cose[:-64] + twin)


def _der(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def test_the_browser_and_the_server_agree_on_every_seal(origin: Live, seal_key: SealKey,
                                                       page: Page) -> None:  # noqa: F811
    texts = corpus(seal_key)
    page.goto(f"{origin.base}/v")
    browser_says = dict(zip(texts, in_browser(page, seal_key, list(texts.values())), strict=True))
    server_says = dict(zip(texts, on_server(seal_key, list(texts.values())), strict=True))

    differ = {name: (browser_says[name], server_says[name]) for name in texts
              if browser_says[name] != server_says[name]}
    assert not differ, differ
    # The corpus reaches every verdict, so agreement is not agreement on one answer.
    reasons = {reason for _, reason in server_says.values()}
    assert reasons == {None, "malformed", "too_large", "unknown_kid", "bad_signature",
                       "outside_window"}, reasons
    assert browser_says["genuine"] == (True, None)
    assert browser_says["high-S twin"] == (False, "bad_signature")


def test_the_browser_reads_the_claims_the_server_reads(origin: Live, seal_key: SealKey,
                                                      page: Page) -> None:  # noqa: F811
    claims: dict[int, Any] = {1: "in.gov.pmc", 6: ISSUED_AT, PRIVATE_CLAIM: {
        "no": "PMC/B/2026/KB/000001", "n": {"en": "Aarav", "mr": "आरव"}, "si": 70000,
        "h": bytes(range(32)), "big": 2**63, "neg": -(2**40), "flags": [True, False, None]}}
    import cbor2

    text = as_text(sign1(cbor2.dumps(claims, canonical=True), seal_key.private_key,
                         seal_key.kid))
    assert transport_text(_cose_of(text))  # a real transport text
    page.goto(f"{origin.base}/v")
    read = page.evaluate("""async ({cert, from, until, text}) => {
        const {certificate} = await import('/v/assets/der.js');
        const {sealEntry, verifySeal, hex} = await import('/v/assets/seal.js');
        const der = Uint8Array.from(atob(cert), (c) => c.charCodeAt(0));
        const v = await verifySeal(text, [await sealEntry(certificate(der), from, until)]);
        const ours = v.claims.get(-65537);
        return {iat: v.claims.get(6), iss: v.claims.get(1), no: ours.get('no'),
                n: Object.fromEntries(ours.get('n')), si: ours.get('si'), h: hex(ours.get('h')),
                big: String(ours.get('big')), neg: ours.get('neg'), flags: ours.get('flags')};
        }""", {"cert": base64.b64encode(seal_key.certificate.public_bytes(
            serialization.Encoding.DER)).decode(), "from": 0, "until": 4e12, "text": text})

    assert read == {"iat": ISSUED_AT, "iss": "in.gov.pmc", "no": "PMC/B/2026/KB/000001",
                    "n": {"en": "Aarav", "mr": "आरव"}, "si": 70000, "h": bytes(range(32)).hex(),
                    "big": str(2**63), "neg": -(2**40), "flags": [True, False, None]}


def _cose_of(text: str) -> bytes:
    from signing.seal import decode_seal

    return decode_seal(text).cose
