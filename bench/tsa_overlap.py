"""`make bench-overlap`: issuing through the RQ path (PostgreSQL, Redis, `pramaan worker
--processes P --threads T`) while the TSA is a network round trip away, at B-B and at B-LTA,
with one worker and with several documents in flight.

A timestamp costs a round trip per document (two at B-LTA: the signature's, then the document
timestamp's). The development TSA is told to wait DELAY ms before each answer, as a distant TSA
would (PRAMAAN_DEV_TSA_DELAY_MS); the revocation information is the dev CAs' own, as in `make
run`. Several workers (threads of a process, or processes) keep several documents in flight, so
while one waits for the TSA another renders and signs: the figure is B-LTA certificates per
second over B-B's with the same shape, and B-LTA's best over B-B's best, in one run (ratios hold
on a shared machine; absolute rates drift). Each shape and level runs `--repeats` times in
turn; the median counts.

The workers are started and registered first (each has loaded its keys), then every job is
enqueued at once; the rate runs from the enqueueing to the last `sign` audit event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import request  # noqa: E402
from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.db import as_utc  # noqa: E402
from issuer.models import AuditEvent, Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402

POSTGRES = os.environ.get("PRAMAAN_BENCH_POSTGRES") or os.environ.get(
    "PRAMAAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("PRAMAAN_BENCH_REDIS", "redis://127.0.0.1:6379/7")


def environment(home: Path, keys: Path, database_url: str, level: str,
                delay_ms: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_", "REDIS_"))}
    env.update({"PRAMAAN_HOME": str(home), "PRAMAAN_KEYS_DIR": str(keys),
                "DATABASE_URL": database_url, "REDIS_URL": REDIS,
                "PRAMAAN_TSA_URL": "dev", "PRAMAAN_SIGNATURE_LEVELS": f"birth={level}",
                "PRAMAAN_DEV_TSA_DELAY_MS": str(delay_ms)})
    return env


def one_run(tmp: Path, keys: Path, level: str, shape: tuple[int, int], count: int,
            delay_ms: int) -> float:
    """Certificates per second for `count` birth certificates at `level`: the workers are
    started and registered first, then every job is enqueued at once; the clock runs from the
    enqueueing to the last `sign` audit event."""
    import signal
    import time

    from redis import Redis
    from rq import Worker

    schema = f"overlap_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES else "?"
    database_url = f"{POSTGRES}{sep}options=-csearch_path%3D{schema}"
    processes, threads = shape
    home = tmp / f"{level}-{processes}x{threads}"
    env = environment(home, keys, database_url, level, delay_ms)
    redis = Redis.from_url(REDIS)
    redis.flushdb()
    workers = None
    try:
        runtime = Runtime(Settings.from_env(env=env))
        initialise(runtime)
        with runtime.sessions() as session, session.begin():
            department = session.get(Department, DEV_DEPARTMENT)
            assert department is not None
            ids = [submit(session, department, "bench:clerk", request(i)).id
                   for i in range(count)]
        log = (tmp / f"workers-{level}-{processes}x{threads}.log").open("w")
        workers = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--rts-every", "0",
                                    "--processes", str(processes), "--threads", str(threads)],
                                   env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 180
        while Worker.count(connection=redis) < processes * threads:  # keys loaded
            if time.monotonic() > deadline or workers.poll() is not None:
                raise SystemExit("the workers did not start")
            time.sleep(0.2)
        started = time.monotonic()
        began = dt.datetime.now(dt.UTC)
        for cert_id in ids:  # after the commit, as the API does
            runtime.dispatcher.enqueue_issue(cert_id)
        while True:
            with runtime.sessions() as session:
                times = sorted(as_utc(t) for t in session.scalars(
                    sa.select(AuditEvent.at).where(AuditEvent.action == "sign")))
            if len(times) >= count:
                break
            with runtime.sessions() as session:
                failed = session.scalars(sa.select(Certificate.last_error).where(
                    Certificate.attempts > 0).limit(1)).first()
            if failed:  # a failed attempt waits for the sweeper: nothing to time
                raise SystemExit(f"a certificate failed to issue: {failed}")
            if time.monotonic() - started > 1800:
                raise SystemExit(f"{len(times)} of {count} certificates were signed")
            time.sleep(0.1)
        runtime.close()
        return count / (times[-1] - began).total_seconds()
    finally:
        if workers is not None:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(timeout=60)
            except subprocess.TimeoutExpired:
                workers.kill()
        redis.flushdb()
        redis.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="certificates per run")
    parser.add_argument("--delay-ms", type=int, default=100,
                        help="the TSA's round trip, in ms (default 100)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4],
                        help="worker processes to compare (default 1, 2 and 4)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8],
                        help="worker threads in each process to compare (default 1 and 8)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each shape and level, the median reported (default 3)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from signing.devpki import ensure_dev_pki

    shapes = [(p, t) for p in args.processes for t in args.threads]
    with tempfile.TemporaryDirectory(prefix="pramaan-bench-overlap-") as tmp_name:
        tmp = Path(tmp_name)
        keys = ensure_dev_pki(tmp / "keys").keys_dir
        runs: dict[str, dict[str, list[float]]] = {"B-B": {}, "B-LTA": {}}
        for _ in range(args.repeats):  # the shapes and levels in turn, so drift hits all alike
            for processes, threads in shapes:
                for level in ("B-B", "B-LTA"):
                    rate = one_run(tmp, keys, level, (processes, threads), args.count,
                                   args.delay_ms)
                    runs[level].setdefault(f"{processes}x{threads}", []).append(rate)
                    print(f"{level} with {processes} worker process(es) x {threads} "
                          f"thread(s): {rate:.1f} certificates/s", file=sys.stderr)
        rates = {level: {shape: round(statistics.median(values), 1)
                         for shape, values in by_shape.items()}
                 for level, by_shape in runs.items()}
    figures = {
        "tsa_round_trip_ms": args.delay_ms,
        "certificates": args.count,
        "runs_each (median reported)": args.repeats,
        "certificates_per_second (processes x threads)": rates,
        "b_lta_vs_b_b_at_the_same_shape": {
            shape: round(rates["B-LTA"][shape] / rates["B-B"][shape], 2)
            for shape in rates["B-B"]},
        # The target: B-LTA's best rate against B-B's best, each with the shape that suits it
        # (B-B is CPU-bound: more documents in flight than cores only add overhead).
        "b_lta_best_vs_b_b_best": round(max(rates["B-LTA"].values())
                                        / max(rates["B-B"].values()), 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
