"""`make bench` (second part): what refusing a hostile QR seal costs, next to refusing a seal with
a wrong signature (issue 5, item 1: each hostile seal must cost at most twice that).

Every case is a real transport text (flag digit + digits) verified with `verify_seal`, as from
a QR or a PDF's /PramaanSeal. Cases are timed interleaved, one call at a time, and the median of
each is compared with the wrong-signature median measured in the same run (ratios hold; absolute
times drift on shared machines). The "cbor2 before" column is what the same attacker bytes (the
payload, or the unprotected header) cost in cbor2's decoder configured as the code before this
change had it, which decoded them before checking the signature. Figures are printed, never
asserted: the exit status is always 0.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signing.cose import sign1  # noqa: E402
from signing.devpki import ensure_dev_pki  # noqa: E402
from signing.seal import (  # noqa: E402
    MAX_DIGITS,
    PRIVATE_CLAIM,
    Sealer,
    SealKey,
    decode_seal,
    transport_text,
    verify_seal,
)
from signing.trust_list import TrustList  # noqa: E402
from tests.raw_cbor import arr, bstr, head, mp, tag, tstr, uint  # noqa: E402

TARGET_RATIO = 2.0
MARKS = {"signed": " *"}
LEGEND = """\
* needs our private key, so not something an attacker can send; shown for information"""
FORGED_SIGNATURE = bytes(range(64))


def claims_with(value: bytes, issued_at: int) -> bytes:
    return mp((uint(1), tstr("in.gov.pmc")), (uint(6), uint(issued_at)),
              (head(1, -1 - PRIVATE_CLAIM), value))


def shared_dag(levels: int) -> bytes:
    """Tag 28/29 value sharing: each level is an array holding the previous one twice, so the
    decoded object has 2**levels paths, and hashing it (as a map key) walks every one."""
    items = [tag(28, arr())]
    items += [tag(28, arr(tag(29, uint(i)), tag(29, uint(i)))) for i in range(levels)]
    return arr(*items)


def frame(payload: bytes, kid: bytes, *, protected: bytes | None = None,
          unprotected: bytes = b"\xa0") -> bytes:
    if protected is None:
        protected = mp((uint(1), head(1, 6)), (uint(4), bstr(kid)))
    return b"\xd2\x84" + bstr(protected) + unprotected + bstr(payload) + bstr(FORGED_SIGNATURE)


@dataclass
class Case:
    name: str
    text: str
    old_decoded: bytes | None = None  # what the old code handed cbor2 before the signature check
    kind: str = "hostile"  # "baseline", "hostile" (counted) or "signed" (see LEGEND)


def old_decoder_cost(payload: bytes, budget: float) -> float:
    """Median seconds of cbor2's decoder configured as the old `strict_loads` (max_depth 16,
    no indefinite lengths, no duplicate keys) on `payload`, repeated within `budget` seconds."""
    times: list[float] = []
    spent = 0.0
    while spent < budget and len(times) < 200:
        re.purge()  # cbor2 compiles tag 35 with re.compile, whose cache would hide the cost
        decoder = cbor2.CBORDecoder(io.BytesIO(payload), max_depth=16, allow_indefinite=False,
                                    allow_duplicate_keys=False)
        start = time.perf_counter()
        try:
            decoder.decode()
        except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError):
            pass
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times)


def build_cases(key: SealKey, sealer: Sealer, issued_at: int, levels: int) -> list[Case]:
    kid = key.kid
    genuine = decode_seal(sealer.seal(realistic_claims(issued_at))).message

    big = tag(2, bstr(b"\xa5" * 15_000))  # a 15 KB bignum: DEFLATE makes it ~40 bytes
    # cbor2 compiles tag 35 with re.compile: each case-insensitive full-range class costs
    # ~4 ms, and 1000 of them deflate to ~60 bytes (a ~340-digit QR).
    regex_bomb = tag(35, tstr("(?i)" + "[a-\U0010ffff]" * 1000))
    hostile: dict[str, bytes] = {
        "regex tag 35, 1000 (?i) classes": claims_with(regex_bomb, issued_at),
        "decimal fraction tag 4, 15 KB mantissa": claims_with(
            tag(4, arr(uint(10**6), big)), issued_at),
        "bigfloat tag 5, 15 KB mantissa": claims_with(tag(5, arr(uint(10**5), big)), issued_at),
        "fraction tag 30 of 7 KB bignums": claims_with(
            tag(30, arr(tag(2, bstr(b"\xa5" * 7000)), tag(2, bstr(b"\x5b" * 7000)))), issued_at),
        "bignum tag 2 as a map key": mp((big, uint(1))),
        f"shared refs tag 28/29, {levels} levels": mp((shared_dag(levels), uint(1))),
        "set tag 258, 300 items": claims_with(tag(258, arr(*map(uint, range(300)))), issued_at),
        "datetime tags 0/1": claims_with(
            arr(tag(0, tstr("2025-11-20T10:00:00Z")), tag(1, uint(issued_at))), issued_at),
        "IP tags 52/54/260/261": claims_with(arr(
            tag(52, bstr(b"\x7f\x00\x00\x01")), tag(54, bstr(bytes(16))),
            tag(260, bstr(bytes(4))), tag(261, mp((bstr(bytes(4)), uint(8))))), issued_at),
        "deep arrays (2000 levels)": claims_with(b"\x81" * 2000 + uint(0), issued_at),
        "indefinite lengths": claims_with(b"\x9f" * 10 + b"\xff" * 10, issued_at),
        "floats and undefined": claims_with(arr(b"\xfb" + bytes(8), b"\xf7"), issued_at),
        "plain payload of 16 KiB": bstr(bytes(16 * 1024 - 120)),
    }
    # The baseline: a genuine payload under our kid, signed by some other P-256 key (a real,
    # well-formed signature, so verifying it does the full ECDSA work).
    impostor = ec.generate_private_key(ec.SECP256R1())
    cases = [Case("wrong signature (baseline)",
                  transport_text(sign1(genuine.payload, impostor, kid)), genuine.payload,
                  kind="baseline")]
    cases += [Case(f"{name}, forged sig", transport_text(frame(payload, kid)), payload)
              for name, payload in hostile.items()]
    regex = hostile["regex tag 35, 1000 (?i) classes"]
    dag = mp((shared_dag(levels), uint(1)))
    cases += [
        Case("regex tag 35, unknown kid", transport_text(frame(regex, b"\x00unknown")), regex),
        Case("tag in the protected header", transport_text(frame(
            regex, kid, protected=mp((uint(1), head(1, 6)), (uint(4), tag(2, bstr(kid))))))),
        Case("regex tag 35 in the unprotected header", transport_text(frame(
            b"", kid, unprotected=mp((uint(4), regex_bomb)))), mp((uint(4), regex_bomb))),
        Case("shared refs in the unprotected header", transport_text(frame(
            b"", kid, unprotected=dag)), dag),
        Case("DEFLATE bomb (largest accepted)", bomb_text()),
        # Every seal this long pays for turning its digits into bytes before anything can be
        # checked; MAX_DIGITS bounds that.
        Case("wrong signature, longest text accepted", longest_text(kid)),
        Case("regex tag 35, validly signed by our key", transport_text(
            sign1(regex, key.private_key, kid)), regex, kind="signed"),
    ]
    return cases


def bomb_text() -> str:
    size = 3_000_000
    while True:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(bytes(size)) + compressor.flush()
        digits = "1" + _decimal(int.from_bytes(b"\x01" + bomb, "big"))
        if len(digits) <= MAX_DIGITS:
            return digits
        size = size * 9 // 10


def longest_text(kid: bytes) -> str:
    """A plain (not deflated) frame of incompressible bytes, as long as a QR allows."""
    payload = bstr(hashlib.shake_256(b"incompressible").digest(2840))
    text = transport_text(frame(payload, kid))
    while len(text) > MAX_DIGITS:
        payload = bstr(payload[3:-1])
        text = transport_text(frame(payload, kid))
    return text


def _decimal(number: int) -> str:
    from decimal import Decimal

    return str(Decimal(number))  # Decimal is not subject to the 4300-digit int/str limit


def realistic_claims(issued_at: int) -> dict[int, object]:
    return {
        1: "in.gov.pmc",
        6: issued_at,
        PRIVATE_CLAIM: {
            "id": bytes(range(16)), "t": "birth", "n": {"en": "Aarav Sandeep Kulkarni",
                                                        "mr": "आरव संदीप कुलकर्णी"},
            "d": {"birth": "2025-11-20"}, "r": "B-2026-PMC-100001", "no": "PMC-BIRTH-000001",
            "w": "Ward 14 Kothrud", "si": 123456, "h": bytes(32),
        },
    }


def measure(cases: list[Case], trust: TrustList, repeat: int) -> dict[str, list[float]]:
    calls: list[tuple[str, Callable[[], object]]] = [
        (case.name, lambda text=case.text: verify_seal(text, trust)) for case in cases
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in calls}
    clock = time.perf_counter
    for _ in range(repeat):
        for name, call in calls:
            start = clock()
            call()
            times[name].append(clock() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1000, help="timed calls per case")
    parser.add_argument("--levels", type=int, default=20,
                        help="shared-reference levels (cbor2 cost doubles with each)")
    parser.add_argument("--before-budget", type=float, default=1.0,
                        help="seconds to spend timing cbor2 on each payload (at least one run)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pramaan-bench-") as tmp:
        pki = ensure_dev_pki(Path(tmp))
        key = SealKey.load(pki.seal_key, pki.seal_cert)
    sealer = Sealer(key, "https://verify.pmc.example")
    trust = TrustList([key.trust_entry()])
    issued_at = int(time.time())
    cases = build_cases(key, sealer, issued_at, args.levels)

    reasons = {case.name: verify_seal(case.text, trust).reason for case in cases}
    times = measure(cases, trust, args.repeat)
    baseline = statistics.median(times[cases[0].name])

    print(f"seal refusal, {args.repeat} interleaved calls per case "
          f"(target: each hostile seal <= {TARGET_RATIO:.1f} x the wrong-signature median)")
    header = f"{'case':50} {'digits':>6} {'reason':>14} {'median us':>10} {'ratio':>6} " \
             f"{'cbor2 before':>13}"
    print(header)
    print("-" * len(header))
    worst: tuple[float, str] = (0.0, "")
    before_costs: dict[bytes, float] = {}
    failed = []
    for case in cases:
        median = statistics.median(times[case.name])
        ratio = median / baseline
        before = ""
        if case.old_decoded is not None:
            if case.old_decoded not in before_costs:
                before_costs[case.old_decoded] = old_decoder_cost(case.old_decoded,
                                                                  args.before_budget)
            cost = before_costs[case.old_decoded]
            before = _seconds(cost)
            worst = max(worst, (cost, case.name))
        digits = len(case.text.split("#", 1)[-1])
        mark = MARKS.get(case.kind, "")
        print(f"{case.name + mark:50} {digits:>6} {reasons[case.name]!s:>14} "
              f"{median * 1e6:>10.1f} {ratio:>6.2f} {before:>13}")
        if case.kind == "hostile" and ratio > TARGET_RATIO:
            failed.append(case.name)
    print(LEGEND)
    print(f"worst cbor2 cost before (decoded before the signature check): "
          f"{_seconds(worst[0])} for '{worst[1]}'")
    for case in cases:
        if case.kind == "hostile":
            ratio = statistics.median(times[case.name]) / baseline
            verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
            print(f"{verdict} {ratio:5.2f} x  {case.name}")
    print(f"{'PASS' if not failed else 'FAIL'}: every hostile seal costs <= {TARGET_RATIO:.1f} x "
          f"a wrong-signature refusal ({baseline * 1e6:.1f} us)"
          + (f"; over: {', '.join(failed)}" if failed else ""))


def _seconds(value: float) -> str:
    if value >= 0.1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} us"


if __name__ == "__main__":
    main()
