"""`make bench-bulk`: a batch of N birth certificates from one CSV through the real pipeline
(PostgreSQL, Redis, RQ worker processes, PAdES B-B, the local store), with 1 worker and with 2,
and in the same run the single-process stage floors (QR + render + sign + store, measured before
and after the runs, the faster of the two per stage), so the pipeline's own cost (queue,
database, storage, the batch's chunks) shows as a ratio.

For each worker count: the CSV is uploaded and validated as `POST /api/v1/batches` does it
(issuer/batches.upload: the time is reported), the workers are started and registered (keys
loaded), then the batch is handed to the queue (the development department approves at
upload); the clock runs from then to the last `sign` audit event. Every worker's RSS is sampled
throughout (peak, and at each quarter of the run: memory must stay flat).
PostgreSQL's activity is sampled every 50 ms for backends waiting on the audit head's row lock
(issuer/audit.py: every audited transaction takes it), to show whether the one chain limits
throughput.

`--rows 300` is the quick form `make bench` runs.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import request  # noqa: E402
from issuer.batches import Upload, approve_batch, upload  # noqa: E402
from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.db import as_utc  # noqa: E402
from issuer.issue import issue_certificate  # noqa: E402
from issuer.issue_group import GROUP_TIMES  # noqa: E402
from issuer.models import AuditEvent, Batch, Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402

POSTGRES = os.environ.get("PRAMAAN_BENCH_POSTGRES") or os.environ.get(
    "PRAMAAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("PRAMAAN_BENCH_REDIS", "redis://127.0.0.1:6379/7")
FLOOR_STAGES = ("qr", "render", "sign", "store")
WARM_UP = 30


def flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A request as CSV cells: nested fields under dotted names."""
    cells: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            cells.update(flat(value, f"{prefix}{key}."))
        elif value is not None:
            cells[f"{prefix}{key}"] = str(value)
    return cells


def births_csv(rows: int, first: int) -> bytes:
    records = [flat(request(first + i)) for i in range(rows)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode("utf-8")


def environment(home: Path, keys: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_", "REDIS_"))}
    env.update({"PRAMAAN_HOME": str(home), "PRAMAAN_KEYS_DIR": str(keys),
                "DATABASE_URL": database_url, "REDIS_URL": REDIS, "PRAMAAN_TSA_URL": "none"})
    return env


def stage_floors(tmp: Path, keys: Path, count: int) -> dict[str, float]:
    """Median ms of each stage issuing `count` certificates in this one process (SQLite),
    after WARM_UP unmeasured ones (a fresh process's first few dozen are slower)."""
    home = tmp / "floors"
    runtime = Runtime(Settings.from_env(env={"PRAMAAN_HOME": str(home), "PRAMAAN_TSA_URL": "none",
                                             "PRAMAAN_KEYS_DIR": str(keys)}))
    initialise(runtime)
    times: dict[str, list[float]] = {stage: [] for stage in FLOOR_STAGES}
    for i in range(count + WARM_UP):
        with runtime.sessions() as session, session.begin():
            department = session.get(Department, DEV_DEPARTMENT)
            assert department is not None
            cert_id = submit(session, department, "bench", request(900000 + i)).id
        timings: dict[str, float] = {}
        assert issue_certificate(runtime, cert_id, timings=timings)
        if i >= WARM_UP:
            for stage in FLOOR_STAGES:
                times[stage].append(timings[stage])
    runtime.close()
    return {stage: statistics.median(values) * 1000 for stage, values in times.items()}


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the machine has spent busy (all cores; /proc/stat less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def workers_cpu(pids: list[int]) -> float:
    """CPU seconds the worker processes have used (user + system)."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(stat[11]) + int(stat[12])  # utime, stime (fields 14 and 15)
    return total / TICK


def own_cpu() -> float:
    """CPU seconds this benchmark process has used (its sampler and polling included)."""
    times = os.times()
    return times.user + times.system


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, peak RSS) of a process in KiB, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(values["VmRSS"].split()[0]), int(values["VmHWM"].split()[0])


class Sampler:
    """Every worker's memory and PostgreSQL's waits on the audit head, in a thread."""

    def __init__(self, pids: list[int], admin: sa.Engine, schema: str) -> None:
        self.pids, self.admin, self.schema = pids, admin, schema
        self.memory: dict[int, list[tuple[float, int, int]]] = {pid: [] for pid in pids}
        self.lock_samples = 0
        self.head_waiters: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE '%audit_head%' AND query NOT ILIKE '%pg_stat_activity%'")
        last_memory = 0.0
        with self.admin.connect() as conn:
            while not self._stop.wait(0.05):
                self.head_waiters.append(int(conn.execute(query).scalar_one()))
                conn.commit()
                now = time.monotonic()
                if now - last_memory >= 1:
                    last_memory = now
                    for pid in self.pids:
                        seen = memory_kb(pid)
                        if seen is not None:
                            self.memory[pid].append((now, *seen))


def one_run(tmp: Path, keys: Path, rows: int, workers: int) -> dict[str, Any]:
    """Issue `rows` certificates from one CSV batch with `workers` worker processes."""
    import signal

    from redis import Redis
    from rq import Worker

    schema = f"bulk_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES else "?"
    database_url = f"{POSTGRES}{sep}options=-csearch_path%3D{schema}"
    env = environment(tmp / f"w{workers}", keys, database_url)
    redis = Redis.from_url(REDIS)
    redis.flushdb()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        runtime = Runtime(Settings.from_env(env=env))
        initialise(runtime)
        data = births_csv(rows, first=workers * 1_000_000)
        started = time.monotonic()
        with runtime.sessions() as session, session.begin():
            department = session.get(Department, DEV_DEPARTMENT)
            assert department is not None
            batch, _ = upload(session, department, "bench:clerk",
                              Upload(data, "csv", "birth", file_name="births.csv"),
                              runtime.settings)
            batch_id = batch.id
            assert batch.valid_rows == rows, batch.row_errors[:3]
        upload_seconds = time.monotonic() - started
        logs = [(tmp / f"worker-{workers}-{n}.log").open("w") for n in range(workers)]
        procs = [subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--rts-every", "0"],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
                 for log in logs]
        deadline = time.monotonic() + 180
        while Worker.count(connection=redis) < workers:  # keys loaded, listening
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("the workers did not start")
            time.sleep(0.2)
        with Sampler([p.pid for p in procs], admin, schema) as sampler:
            with runtime.sessions() as session, session.begin():
                batch = session.get(Batch, batch_id)
                assert batch is not None
                if batch.state == "awaiting_approval":  # else approved at upload (automatic)
                    batch.sample_seen_by = ["bench:officer"]  # the officer saw specimens
                    approve_batch(session, batch, "bench:officer")
            pids = [p.pid for p in procs]
            cpu_before = machine_busy(), workers_cpu(pids), own_cpu()
            began = as_utc(dt.datetime.now(dt.UTC))
            runtime.dispatcher.enqueue_batch(batch_id)
            last = wait_for_signatures(runtime, rows, began)
            cpu_after = machine_busy(), workers_cpu(pids), own_cpu()
        seconds = (last - began).total_seconds()
        machine, in_workers, here = (after - before
                                     for before, after in zip(cpu_before, cpu_after, strict=True))
        runtime.close()
        for log in logs:
            log.close()
        return {"rows": rows, "workers": workers, "upload_validate_seconds": upload_seconds,
                "in_run_stage_ms": in_run_stages([Path(log.name) for log in logs]),
                "seconds": seconds, "certificates_per_second": rows / seconds,
                "memory": memory_figures(sampler.memory),
                "cpu_ms_per_certificate": {
                    "workers": in_workers * 1000 / rows, "bench": here * 1000 / rows,
                    "others": (machine - in_workers - here) * 1000 / rows},
                "machine_busy_share": machine / (seconds * (os.cpu_count() or 1)),
                "audit_head": {
                    "samples": len(sampler.head_waiters),
                    "share_with_a_waiter": (sum(1 for w in sampler.head_waiters if w)
                                            / max(1, len(sampler.head_waiters))),
                    "mean_waiters": statistics.fmean(sampler.head_waiters or [0])}}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.flushdb()
        redis.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def in_run_stages(logs: list[Path]) -> dict[str, float]:
    """Milliseconds per certificate each stage took inside the workers during the run, from the
    line each group job logs (issuer/issue_group.py): the floors' stages measured under the
    run's own conditions, beside the bookkeeping (intents, with the seal, and mark)."""
    totals: dict[str, float] = {}
    issued = 0
    for path in logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):  # a JSON log line (PRAMAAN_LOG_FORMAT=json)
                line = str(json.loads(line).get("message", ""))
            head, mark, figures = line.partition(f" {GROUP_TIMES} ")
            if not mark:
                continue
            issued += int(head.rsplit(": ", 1)[1].split()[0])
            # Text lines end with the job's ids (issuer/log_format.py) after the figures.
            stage_ms, _ = json.JSONDecoder().raw_decode(figures)
            for name, ms in stage_ms.items():
                totals[name] = totals.get(name, 0.0) + ms
    return {name: total / max(1, issued) for name, total in sorted(totals.items())}


def wait_for_signatures(runtime: Runtime, rows: int, began: Any) -> Any:
    """The time of the last `sign` audit event, once there are `rows` of them."""
    shown = 0.0
    while True:
        with runtime.sessions() as session:
            signed = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "sign")) or 0
            if signed >= rows:
                return as_utc(session.scalar(sa.select(sa.func.max(AuditEvent.at)).where(
                    AuditEvent.action == "sign")))
            failed = session.scalars(sa.select(Certificate.last_error).where(
                Certificate.attempts > 0).limit(1)).first()
        if failed:  # a failed attempt waits for the sweeper: nothing to time
            raise SystemExit(f"a certificate failed to issue: {failed}")
        if time.monotonic() - shown > 5:
            shown = time.monotonic()
            elapsed = (dt.datetime.now(dt.UTC) - began).total_seconds()
            print(f"  {signed}/{rows} signed after {elapsed:.0f} s", file=sys.stderr)
        time.sleep(2)  # the end time is the last event's own, not when we look


def memory_figures(samples: Mapping[int, list[tuple[float, int, int]]]) -> list[dict[str, Any]]:
    """Per worker: peak RSS, and the RSS a quarter, half, three quarters of the way through the
    run and at its end (medians of the samples around each point): flat memory shows as the
    same figure from the quarter on (the start holds typst's first compiles; with one worker,
    the batch's certificates are made before any is signed)."""
    figures = []
    for series in samples.values():
        if not series:
            continue
        span = max(1, len(series) // 20)
        points = []
        for share in (0.25, 0.5, 0.75, 1.0):
            middle = min(len(series) - 1, int(share * (len(series) - 1)))
            window = series[max(0, middle - span):middle + 1]
            points.append(round(statistics.median(rss for _, rss, _ in window) / 1024, 1))
        figures.append({"peak_rss_mb": round(max(peak for *_, peak in series) / 1024, 1),
                        "rss_mb_at_quarters": points,
                        "growth_mb_from_quarter": round(points[-1] - points[0], 1)})
    return figures


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def report(floors: Mapping[str, float], runs: list[dict[str, Any]]) -> Iterator[str]:
    floor_ms = sum(floors.values())
    yield f"stage floors (one process, ms): {json.dumps(rounded(dict(floors)))} = {floor_ms:.1f}"
    for run in runs:
        ideal = run["workers"] * 1000 / floor_ms
        yield (f"{run['workers']} worker(s): {run['certificates_per_second']:.1f} certificates/s "
               f"(stage floors allow {ideal:.1f}: overhead "
               f"{(ideal / run['certificates_per_second'] - 1) * 100:.0f} % of the floors)")
        cpu = run["cpu_ms_per_certificate"]
        yield (f"  CPU per certificate: workers {cpu['workers']:.1f} ms, everything else "
               f"(PostgreSQL, Redis, the system) {cpu['others']:.1f} ms, this benchmark "
               f"{cpu['bench']:.1f} ms; the machine {run['machine_busy_share'] * 100:.0f} % busy")
        if "in_run_stage_sum_ms" in run:
            yield (f"  the same stages inside its workers: {run['in_run_stage_sum_ms']:.1f} ms a "
                   f"certificate: overhead {run['overhead_vs_in_run_stages'] * 100:.0f} % of "
                   f"them; {json.dumps(rounded(run['in_run_stage_ms']))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the CSV (10,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker processes to compare (default 1 and 2)")
    parser.add_argument("--floor-count", type=int, default=100,
                        help="certificates issued in one process for the stage floors")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from signing.devpki import ensure_dev_pki

    with tempfile.TemporaryDirectory(prefix="pramaan-bench-bulk-") as tmp_name:
        tmp = Path(tmp_name)
        keys = ensure_dev_pki(tmp / "keys").keys_dir
        before = stage_floors(tmp / "before", keys, args.floor_count)
        runs = []
        for workers in args.workers:
            print(f"{args.rows} rows, {workers} worker(s):", file=sys.stderr)
            runs.append(one_run(tmp, keys, args.rows, workers))
        after = stage_floors(tmp / "after", keys, args.floor_count)
    # The machine's speed drifts over a run: the floors are measured before and after it, and
    # the faster of the two taken for each stage, so the overhead is never flattered by a slow
    # moment of the floors.
    floors = {stage: min(before[stage], after[stage]) for stage in FLOOR_STAGES}
    figures: dict[str, Any] = {"stage_floor_ms": floors, "stage_floor_sum_ms": sum(floors.values()),
                               "stage_floor_ms_before": before, "stage_floor_ms_after": after,
                               "runs": runs}
    rates = {run["workers"]: run["certificates_per_second"] for run in runs}
    if 1 in rates and 2 in rates:
        figures["scaling_2_vs_1"] = rates[2] / rates[1]
    for run in runs:
        ideal = run["workers"] * 1000 / figures["stage_floor_sum_ms"]
        run["overhead_vs_floors"] = ideal / run["certificates_per_second"] - 1
        in_run = sum(run["in_run_stage_ms"].get(stage, 0.0) for stage in FLOOR_STAGES)
        if in_run:
            run["in_run_stage_sum_ms"] = in_run
            run["overhead_vs_in_run_stages"] = (run["workers"] * 1000 / in_run
                                                / run["certificates_per_second"] - 1)
    for line in report(floors, runs):
        print(line, file=sys.stderr)
    print(json.dumps(rounded(figures), indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(rounded(figures), indent=2))


if __name__ == "__main__":
    main()
