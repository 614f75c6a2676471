"""`make bench`: per-stage medians and certificates/second for N birth certificates in one
process, and in the same run pyHanko's stock SimpleSigner on the same PDFs (ratios hold; absolute
times drift on shared machines)."""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.issue import Intent, issue_certificate, render_data  # noqa: E402
from issuer.models import Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402
from signing.qr import qr_svg  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "samples" / "birth-1.json"


def rss_kb() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def request(i: int) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text(encoding="utf-8")))
    data["registration_number"] = f"B-2026-PMC-{100000 + i}"
    data["child"]["name"]["en"] = f"Aarav Sandeep Kulkarni {i}"
    return data


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def stock_signer_times(keys: Path, pdfs: list[bytes], ours: Any) -> tuple[list[float], list[float]]:
    """Sign the same PDFs round-robin with pyHanko's stock SimpleSigner and with ours."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    stock = signers.SimpleSigner.load(str(keys / "signer.key"), str(keys / "signer.crt"),
                                      ca_chain_files=(str(keys / "ca.crt"),))
    assert stock is not None
    meta = signers.PdfSignatureMetadata(field_name="Stock", subfilter=fields.SigSeedSubFilter.PADES)
    stock_t, ours_t = [], []
    for pdf in pdfs:
        start = time.perf_counter()
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signers.PdfSigner(meta, signer=stock).sign_pdf(writer, output=io.BytesIO())
        stock_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours.sign(pdf, reason="bench", location="Pune")
        ours_t.append(time.perf_counter() - start)
    return stock_t, ours_t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pramaan-bench-") as tmp:
        home = Path(tmp)
        # B-B, as pyHanko's stock signer beside it (bench/signature_levels.py measures B-T).
        settings = Settings.from_env(env={"PRAMAAN_HOME": str(home), "PRAMAAN_TSA_URL": "none"})
        runtime = Runtime(settings)
        initialise(runtime)
        runtime.keyring  # noqa: B018 - load keys and compiler before timing
        stages: dict[str, list[float]] = {k: [] for k in ("seal", "qr", "render", "sign", "store")}
        end_to_end: list[float] = []
        rss: list[tuple[int, int]] = []
        ids: list[str] = []
        warmup = 5
        total_start = 0.0
        for i in range(args.count + warmup):
            if i == warmup:
                total_start = time.perf_counter()
            start = time.perf_counter()
            with runtime.sessions() as session, session.begin():
                department = session.get(Department, DEV_DEPARTMENT)
                assert department is not None
                record = submit(session, department, "bench", request(i))
                cert_id = record.id
            timings: dict[str, float] = {}
            assert issue_certificate(runtime, cert_id, timings=timings)
            if i >= warmup:
                end_to_end.append(time.perf_counter() - start)
                for key in stages:
                    stages[key].append(timings[key])
                ids.append(cert_id)
            if i % 25 == 0 or i == args.count + warmup - 1:
                rss.append(rss_kb())
            print(f"\rissued {i + 1 - warmup if i >= warmup else 0}/{args.count}", end="",
                  file=sys.stderr, flush=True)
        total = time.perf_counter() - total_start
        print(file=sys.stderr)

        # The same PDFs (unsigned, re-rendered from the issued records) for the signer comparison.
        pdfs = []
        with runtime.sessions() as session:
            for cert_id in ids[: min(60, len(ids))]:
                record = session.get(Certificate, cert_id)
                assert record is not None
                intent = Intent.of(record)
                pdfs.append(runtime.renderer.render(intent.template_version,
                                                    render_data(settings, intent),
                                                    qr_svg(intent.seal_text)))
        stock_t, ours_t = stock_signer_times(settings.keys_dir, pdfs, runtime.keyring.pades)
        runtime.close()

    figures = {
        "certificates": args.count,
        "stage_median_ms": {k: round(median_ms(v), 2) for k, v in stages.items()},
        "end_to_end_median_ms": round(median_ms(end_to_end), 2),
        "certificates_per_second": round(args.count / total, 1),
        "signer_compare_docs": len(pdfs),
        "stock_simplesigner_median_ms": round(median_ms(stock_t), 2),
        "our_signer_median_ms": round(median_ms(ours_t), 2),
        "sign_speedup_vs_stock": round(statistics.median(stock_t) / statistics.median(ours_t), 1),
        "rss_mb_samples": [round(cur / 1024, 1) for cur, _ in rss],
        "peak_rss_mb": round(max(peak for _, peak in rss) / 1024, 1),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
