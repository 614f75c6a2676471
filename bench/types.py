"""`make bench`: per certificate type (birth, death, property no-dues), the median render and sign
times of N certificates issued through the real pipeline (submit, seal, QR, render, PAdES sign,
store) in one process and one run, types interleaved so that drift on a shared machine touches
each alike (ratios hold; absolute times drift)."""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.issue import issue_certificate  # noqa: E402
from issuer.models import Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "samples"
TYPES = {"birth": "birth-1", "death": "death-1", "property_no_dues": "property-1"}
STAGES = ("render", "sign")


def request(code: str, i: int) -> dict[str, Any]:
    """The type's sample with its own registry number and a name that differs per document."""
    data: dict[str, Any] = copy.deepcopy(
        json.loads((SAMPLES / f"{TYPES[code]}.json").read_text(encoding="utf-8")))
    if code == "birth":
        data["registration_number"] = f"B-2026-PMC-{100000 + i}"
        data["child"]["name"]["en"] += f" {i}"
    elif code == "death":
        data["registration_number"] = f"D-2026-PMC-{100000 + i}"
        data["deceased"]["name"]["en"] += f" {i}"
    else:
        data["certificate_reference"] = f"PT-ND-2026-{100000 + i}"
        data["owners"][0]["name"]["en"] += f" {i}"
    return data


def issue_one(runtime: Runtime, data: dict[str, Any]) -> dict[str, float]:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "bench", data).id
    timings: dict[str, float] = {}
    assert issue_certificate(runtime, cert_id, timings=timings)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100, help="certificates per type")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    warmup = 5
    times: dict[str, dict[str, list[float]]] = {c: {s: [] for s in STAGES} for c in TYPES}
    with tempfile.TemporaryDirectory(prefix="pramaan-bench-types-") as tmp:
        runtime = Runtime(Settings.from_env(env={"PRAMAAN_HOME": tmp, "PRAMAAN_TSA_URL": "none"}))
        initialise(runtime)
        runtime.keyring  # noqa: B018 - load keys before timing
        for i in range(args.count + warmup):
            for code in TYPES:
                timings = issue_one(runtime, request(code, i))
                if i >= warmup:
                    for stage in STAGES:
                        times[code][stage].append(timings[stage])
            print(f"\rissued {i + 1}/{args.count + warmup} of each type", end="",
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
        runtime.close()

    figures = {
        "certificates_per_type": args.count,
        "median_ms": {code: {stage: round(statistics.median(values) * 1000, 2)
                             for stage, values in stages.items()}
                      for code, stages in times.items()},
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
