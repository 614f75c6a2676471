"""`make bench-qr`: how often the printed QR reads, per condition and decoder, before and after
the compact seal and the larger print (issue 10), on real certificates of every type.

Rows: the seal as it was (the record's id, the ward's name, the full digest, UTF-8 Marathi) in
the 38 mm print of birth/1; the compact seal in that old print; the compact seal as issued now
(55 mm, birth/2, death/2, property_no_dues/2). Conditions and decoders: tests/qr_conditions.py
(a cheap phone's video frame, a 150 dpi office scan, a stained 300 dpi scan; zxing-cpp, zbar).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.certtypes import cert_type  # noqa: E402
from issuer.issue import Intent, issue_certificate, render_data  # noqa: E402
from issuer.models import Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402
from signing.qr import qr_svg, qr_version  # noqa: E402
from signing.seal import PRIVATE_CLAIM, verify_seal  # noqa: E402
from tests.qr_conditions import CONDITIONS, DECODERS, decode_rates, printed_qr  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "samples"
KINDS = {"birth": "birth-1", "death": "death-1", "property_no_dues": "property-1"}


def legacy_seal(runtime: Runtime, record: Certificate) -> str:
    """The record's seal as it was made before the compact seal: id, ward name, full digest,
    the type's code, the dates by name, the Marathi name in UTF-8."""
    assert record.seal_text and record.fields_sha256
    claims: dict[Any, Any] = dict(verify_seal(record.seal_text, runtime.trust.seal_trust).claims
                                  or {})
    kind = cert_type(record.cert_type)
    assert kind is not None
    from issuer.canonical import canonical_request

    facts = kind.seal_facts(canonical_request(record.request))
    ours = dict(claims[PRIVATE_CLAIM])
    ours.update({"id": uuid.UUID(record.id).bytes, "w": facts.ward, "t": record.cert_type,
                 "d": dict(facts.dates), "n": dict(facts.holder),
                 "h": bytes.fromhex(record.fields_sha256)})
    claims[PRIVATE_CLAIM] = ours
    return runtime.keyring.sealer.seal(claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pramaan-bench-qr-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env(env={
            "PRAMAAN_HOME": str(home), "PRAMAAN_TSA_URL": "none",
            "PRAMAAN_VERIFY_BASE_URL": "https://verify.pmc.gov.in"})
        runtime = Runtime(settings)
        initialise(runtime, dev_pki=True)
        for code, sample in KINDS.items():
            with runtime.sessions() as session, session.begin():
                department = session.get(Department, DEV_DEPARTMENT)
                assert department is not None
                cert_id = submit(session, department, "bench",
                                 json.loads((SAMPLES / f"{sample}.json").read_text("utf-8"))).id
            assert issue_certificate(runtime, cert_id)
            with runtime.sessions() as session:
                record = session.get(Certificate, cert_id)
                assert record is not None and record.seal_text
                intent = Intent.of(record)
                old_text = legacy_seal(runtime, record)
            old_template = intent.template_version.split("/")[0] + "/1"
            data = render_data(settings, intent)
            variants = {
                "before: seal as it was, 38 mm": (old_text, runtime.renderer.render(
                    old_template, data, qr_svg(old_text))),
                "compact seal, 38 mm": (intent.seal_text, runtime.renderer.render(
                    old_template, data, qr_svg(intent.seal_text))),
                "now: compact seal, 55 mm": (intent.seal_text, runtime.renderer.render(
                    intent.template_version, data, qr_svg(intent.seal_text))),
            }
            for name, (text, pdf) in variants.items():
                path = home / "qr.pdf"
                path.write_bytes(pdf)
                printed = printed_qr(path)
                rates = decode_rates(printed, text, frames=args.frames)
                rows.append({"type": code, "variant": name, "characters": len(text),
                             "version": qr_version(text), "width_mm": round(printed.width_mm, 1),
                             "rates": {f"{c}/{d}": n for (c, d), n in rates.items()}})
                print(f"{code:17} {name:31} {len(text):4} chars v{qr_version(text):<2} "
                      f"{printed.width_mm:4.1f} mm  " + "  ".join(
                          f"{c}/{d} {rates[(c, d)]:2}/{args.frames}"
                          for c in CONDITIONS for d in DECODERS), flush=True)
        runtime.close()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
