"""`make bench`: the two stores side by side in one run. Put and get medians of certificate-sized
objects in the local directory and in S3 (a SeaweedFS started here on 127.0.0.1, as in the
tests), then certificates per second issued end to end (submit, seal, QR, render, sign, store)
with each store, interleaved so that drift on a shared machine touches both alike."""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.issue import issue_certificate  # noqa: E402
from issuer.models import Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.storage import FileStore, Store, open_store  # noqa: E402
from issuer.submit import submit  # noqa: E402
from tests.s3_server import start, stop  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "samples" / "birth-1.json"
OBJECT_BYTES = 120 * 1024  # about a signed certificate at B-LT


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def put_get(store: Store, count: int) -> tuple[float, float]:
    puts, gets = [], []
    for i in range(count):
        data = b"%PDF-1.7\n" + os.urandom(OBJECT_BYTES) + f"\n%{i}\n".encode()
        began = time.perf_counter()
        stored = store.put(data)
        puts.append(time.perf_counter() - began)
        began = time.perf_counter()
        assert store.get(stored.path, stored.sha256) == data
        gets.append(time.perf_counter() - began)
    return median_ms(puts), median_ms(gets)


def runtime_for(home: Path, store_url: str | None) -> Runtime:
    settings = Settings.from_env(env={"PRAMAAN_HOME": str(home)},
                                 overrides={"store_url": store_url, "tsa_url": "none"})
    runtime = Runtime(settings)
    initialise(runtime)
    return runtime


def issue_one(runtime: Runtime, i: int, timings: dict[str, list[float]]) -> float:
    data: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text(encoding="utf-8")))
    data["registration_number"] = f"B-2026-PMC-{200000 + i}"
    data["child"]["name"]["en"] += f" {i}"
    began = time.perf_counter()
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "bench", data).id
    stages: dict[str, float] = {}
    assert issue_certificate(runtime, cert_id, timings=stages)
    took = time.perf_counter() - began
    timings.setdefault("store", []).append(stages["store"])
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100, help="objects put and read back")
    parser.add_argument("--count", type=int, default=40, help="certificates per store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pramaan-bench-store-") as tmp:
        server = start(Path(tmp) / "seaweedfs")
        try:
            for name, value in server.environment().items():
                os.environ[name] = value
            s3_url = f"s3://{server.bucket}/bench"
            local = FileStore(Path(tmp) / "objects")
            print(f"store: {args.objects} objects of {OBJECT_BYTES // 1024} KB, medians")
            for label, store in (("local", local), ("s3", open_store(s3_url + "-objects"))):
                put, get = put_get(store, args.objects)
                print(f"  {label:6} put {put:6.2f} ms   get {get:6.2f} ms")
            runtimes = {"local": runtime_for(Path(tmp) / "local", None),
                        "s3": runtime_for(Path(tmp) / "s3", s3_url)}
            took: dict[str, list[float]] = {"local": [], "s3": []}
            stages: dict[str, dict[str, list[float]]] = {"local": {}, "s3": {}}
            for name, runtime in runtimes.items():  # warm-up: keys, compiler, connections
                issue_one(runtime, 0 if name == "local" else 1, stages[name])
                stages[name].clear()
            for i in range(args.count):
                for name, runtime in runtimes.items():
                    number = 10 + 2 * i + (0 if name == "local" else 1)
                    took[name].append(issue_one(runtime, number, stages[name]))
            print(f"end to end, B-B, {args.count} birth certificates per store, interleaved:")
            rate = {}
            for name in runtimes:
                rate[name] = len(took[name]) / sum(took[name])
                print(f"  {name:6} {rate[name]:6.1f} certificates/s   median "
                      f"{median_ms(took[name]):6.1f} ms   store stage "
                      f"{median_ms(stages[name]['store']):6.2f} ms")
            print(f"  s3 / local: {rate['s3'] / rate['local']:.2f}x the certificates per second")
            for runtime in runtimes.values():
                runtime.close()
        finally:
            stop(server)


if __name__ == "__main__":
    main()
