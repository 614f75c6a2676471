"""`make bench-load`: reads and issuing at the same time, on loopback, bounded in time and count.

The whole service as deployed on one machine: `pramaan serve` (gunicorn, PRAMAAN_WEB_WORKERS x
PRAMAAN_WEB_THREADS), WORKERS RQ worker processes (`worker.py`), PostgreSQL (a fresh schema,
dropped at the end) and Redis (its own database number, flushed at the start and the end). A
births office with maker-checker approval gets SEED certificates issued first; then, for
WARMUP + SECONDS, four kinds of reader run side by side, CONCURRENCY clients each:

- download: `GET /api/v1/certificates/<id>/pdf` with the office's token (the PDF, checked to be
  one);
- verify: `POST /api/v1/verify` with the QR text, what the verify page (templates/web/verify.js,
  askServer) sends for every scan: the seal checked and the record's status read, and the
  verdict it shows when online (checked to be `current`);
- status-list: `GET /.well-known/pramaan/status-list.json`, which the same page fetches beside
  it on every scan (kept(), `cache: "no-cache"`) to check the seal on the phone;
- pulldoc: DigiLocker's signed Pull Doc (format pdf, a new txn each; checked for Status 1);

while an issuer submits ISSUE_RATE birth certificates a second as the clerk and approves each as
the officer (two requests; the approval queues the issue job), and the workers sign them (PAdES
B-B, no TSA). Counted over the SECONDS after the warm-up: requests/s and p50/p99 of each kind,
and the certificates issued (state `issued`, from the database) per second. Afterwards every
certificate submitted must be issued within DRAIN seconds. Every non-2xx answer, every wrong
answer (not a PDF, not current, a Pull Doc status other than 1) and every error is counted and
printed, and any of them makes the exit status 1.

The client: an own closed loop on asyncio (each client sends again as soon as it has its answer;
`--rate` makes it an open loop, latency counted from when a request was due) over
bench/loopback_http.py's bare keep-alive connections, as bench/digilocker_pull.py does. It runs
on the same two cores as everything it measures, so its CPU per request is taken from the server:
about 0.55 ms here against 0.85 ms with aiohttp (README, "DigiLocker pull"); locust would be a
new dependency whose users (requests or geventhttpclient on gevent) are no lighter, and wrk
cannot sign Pull Doc bodies or check answers without Lua scripts of its own. The public verify limit
(PRAMAAN_VERIFY_CLIENT_LIMIT, per client address) is raised for the run: on loopback every
phone would be one address; the limiter still counts every request in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.digilocker_pull import (  # noqa: E402
    KEY,
    _ticks,
    _tree,
    drop_schema,
    free_port,
    fresh_schema,
    pull_doc_body,
    signature,
    wait_until_up,
)
from bench.loopback_http import Connection  # noqa: E402
from bench.pipeline import request as birth_request  # noqa: E402
from issuer.bootstrap import initialise  # noqa: E402
from issuer.departments import add_department  # noqa: E402
from issuer.models import Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.tokens import create_token  # noqa: E402
from signing.devpki import ensure_dev_pki  # noqa: E402

REDIS = os.environ.get("PRAMAAN_BENCH_LOAD_REDIS", "redis://127.0.0.1:6379/12")
OFFICE = "pmc-births-load"
READS = ("download", "verify", "status-list", "pulldoc")
TIMEOUT = 60.0  # seconds one request may take before it counts as an error


class Client(Connection):
    """bench/loopback_http.Connection with GET as well as POST."""

    async def send(self, method: str, path: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if method == "POST":
            return await self.post(path, body, headers or {})
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        message = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}\r\n"
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(message.encode("latin-1"))
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass
class Tally:
    """What one kind of request saw while it was being measured."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # the first answer of each failure

    def fail(self, what: str, example: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1
        self.examples.setdefault(what, " ".join(example.split())[:300])


Check = Callable[[int, bytes], str | None]  # (status, body) -> what is wrong, or None
Call = Callable[[Client, int], Awaitable[tuple[int, bytes]]]


@dataclass
class Target:
    """The service under load and what the readers ask it for."""

    port: int
    clerk: str
    officer: str
    ids: list[str]
    seals: list[str]
    measuring: bool = False  # set for the measured window (warm-up answers are checked only)
    tallies: dict[str, Tally] = field(default_factory=dict)
    unmeasured_failures: Tally = field(default_factory=Tally)

    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())


def read_calls(target: Target) -> dict[str, tuple[Call, Check]]:
    office = {"Authorization": f"Bearer {target.clerk}"}

    async def download(c: Client, n: int) -> tuple[int, bytes]:
        cert_id = target.ids[n % len(target.ids)]
        return await c.send("GET", f"/api/v1/certificates/{cert_id}/pdf", headers=office)

    async def verify(c: Client, n: int) -> tuple[int, bytes]:
        body = json.dumps({"qr": target.seals[n % len(target.seals)]}).encode()
        return await c.send("POST", "/api/v1/verify", body,
                            {"Content-Type": "application/json"})

    async def status_list(c: Client, n: int) -> tuple[int, bytes]:
        return await c.send("GET", "/.well-known/pramaan/status-list.json")

    async def pulldoc(c: Client, n: int) -> tuple[int, bytes]:
        uri = f"in.gov.pmc-BTCER-{target.ids[n % len(target.ids)]}"
        raw = pull_doc_body(uri, n)
        return await c.send("POST", "/digilocker/pulldoc", raw, {
            "Content-Type": "application/xml", "x-digilocker-hmac": signature(raw)})

    def is_pdf(status: int, body: bytes) -> str | None:
        return None if body.startswith(b"%PDF-") else "not a PDF"

    def is_current(status: int, body: bytes) -> str | None:
        verdict = json.loads(body)
        return None if verdict.get("current") is True else f"not current: {verdict.get('status')}"

    def is_jws(status: int, body: bytes) -> str | None:
        document = json.loads(body)  # a JWS in its flattened JSON form (issuer/published.py)
        return None if {"protected", "payload", "signature"} <= set(document) else "not a JWS"

    def pulled(status: int, body: bytes) -> str | None:
        found = body[body.find(b'Status="') + 8:][:1].decode()
        return None if found == "1" else f"Pull Doc Status {found or '?'}"

    return {"download": (download, is_pdf), "verify": (verify, is_current),
            "status-list": (status_list, is_jws), "pulldoc": (pulldoc, pulled)}


async def timed(target: Target, kind: str, client: Client, call: Call, n: int,
                check: Check, started: float) -> bytes | None:
    """One request: its latency into the kind's tally when measuring, any failure counted
    (measured or not: a failure in the warm-up fails the run too). The body when it passed."""
    tally = target.tally(kind) if target.measuring else target.unmeasured_failures
    try:
        status, body = await asyncio.wait_for(call(client, n), TIMEOUT)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        await client.close()
        tally.fail(f"{kind} error {type(exc).__name__}", repr(exc))
        return None
    if target.measuring:
        tally.latencies.append(time.monotonic() - started)
    if not 200 <= status < 300:
        tally.fail(f"{kind} HTTP {status}", body.decode("utf-8", "replace"))
        return None
    try:
        wrong = check(status, body)
    except ValueError as exc:  # an unreadable JSON answer
        wrong = f"unreadable: {exc}"
    if wrong:
        tally.fail(f"{kind} {wrong}", body[:200].decode("utf-8", "replace"))
        return None
    return body


async def reader(target: Target, kind: str, until: float, first: int,
                 interval: float, offset: float) -> None:
    """One client of `kind`: a closed loop (interval 0), or an open loop sending every
    `interval` seconds, its latency counted from when each request was due."""
    call, check = read_calls(target)[kind]
    client = Client("127.0.0.1", target.port)
    n, due = first, time.monotonic() + offset
    try:
        while time.monotonic() < until:
            n += 1
            if interval:
                if due >= until:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                started, due = due, due + interval
            else:
                started = time.monotonic()
            await timed(target, kind, client, call, n, check, started)
    finally:
        await client.close()


async def issuer(target: Target, until: float, interval: float, offset: float, first: int,
                 made: list[str]) -> None:
    """Submit one birth certificate as the clerk and approve it as the officer every
    `interval` seconds (open loop: a slow server does not slow the offered rate down)."""
    client = Client("127.0.0.1", target.port)
    n, due = first, time.monotonic() + offset
    try:
        while time.monotonic() < until:
            n += 1
            if due >= until:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            started, due = due, due + interval
            body = json.dumps(birth_request(n)).encode()

            async def submit(c: Client, _: int, body: bytes = body) -> tuple[int, bytes]:
                return await c.send("POST", "/api/v1/certificates", body, {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {target.clerk}"})

            answer = await timed(target, "submit", client, submit, n,
                                 lambda s, b: None if s == 202 else f"HTTP {s}", started)
            if answer is None:
                continue
            cert_id = json.loads(answer)["id"]

            async def approve(c: Client, _: int, cert_id: str = cert_id) -> tuple[int, bytes]:
                return await c.send("POST", f"/api/v1/certificates/{cert_id}/approve", b"", {
                    "Authorization": f"Bearer {target.officer}"})

            def approved(status: int, body: bytes) -> str | None:
                state = json.loads(body)["state"]
                return None if state in ("approved", "signing", "issued") else f"state {state}"

            if await timed(target, "approve", client, approve, n, approved,
                           time.monotonic()) is not None:
                made.append(cert_id)
    finally:
        await client.close()


def count_issued(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Certificate).where(
            Certificate.department_id == OFFICE, Certificate.state == "issued")) or 0


def unfinished(runtime: Runtime, ids: list[str]) -> tuple[int, list[str]]:
    """(how many of `ids` are not issued yet, the errors of those that failed an attempt)."""
    with runtime.sessions() as session:
        rows = session.execute(sa.select(Certificate.id, Certificate.state,
                                         Certificate.attempts, Certificate.last_error).where(
            Certificate.department_id == OFFICE)).all()
    wanted = set(ids)
    waiting = sum(1 for r in rows if r.id in wanted and r.state != "issued")
    errors = [f"{r.id} {r.state}: {r.last_error}" for r in rows
              if r.id in wanted and (r.attempts or r.state == "failed")]
    return waiting, errors


@dataclass
class Processes:
    """The server and the workers, each in its own process group, stopped however we end."""

    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                       start_new_session=True)
        self.running.append(process)
        return process

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.running.clear()


def environment(home: Path, keys: Path, database_url: str, port: int,
                args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_", "REDIS_", "DIGILOCKER_"))}
    env.update({"PRAMAAN_HOME": str(home), "PRAMAAN_KEYS_DIR": str(keys),
                "DATABASE_URL": database_url, "REDIS_URL": REDIS, "PRAMAAN_TSA_URL": "none",
                "HOST": "127.0.0.1", "PORT": str(port), "DIGILOCKER_API_KEY": KEY,
                "PRAMAAN_VERIFY_BASE_URL": f"http://127.0.0.1:{port}",
                "PRAMAAN_VERIFY_CLIENT_LIMIT": "1000000/minute",
                "PRAMAAN_WEB_WORKERS": str(args.web_workers),
                "PRAMAAN_WEB_THREADS": str(args.web_threads),
                "PRAMAAN_WORKER_PROCESSES": "1", "PRAMAAN_WORKER_THREADS": "1"})
    return env


def prepare(runtime: Runtime) -> tuple[str, str]:
    """The schema, the births office (officer approval) and its clerk's and officer's tokens."""
    initialise(runtime)
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE) or add_department(
            session, OFFICE, "Births office", "जन्म नोंदणी कार्यालय", approval="officer",
            types=["birth"], actor="bench")
        return (create_token(session, department, "load-clerk", "clerk"),
                create_token(session, department, "load-officer", "officer"))


def wait_for(what: str, done: Callable[[], bool], seconds: float,
             processes: Processes) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {seconds:.0f} s")
        if any(p.poll() is not None for p in processes.running):
            raise SystemExit(f"{what}: a process exited")
        time.sleep(0.2)


def cpu_of(pids: list[int]) -> float:
    return sum(_ticks(p) for pid in pids for p in _tree(pid)) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the machine has been busy: /proc/stat's user to steal, less idle and iowait
    (guest time is counted in user already)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def seed(target: Target, count: int) -> list[str]:
    """`count` certificates submitted and approved (not timed), their ids."""
    made: list[str] = []
    client = Client("127.0.0.1", target.port)
    try:
        for n in range(count):
            status, body = await client.send(
                "POST", "/api/v1/certificates", json.dumps(birth_request(n)).encode(),
                {"Content-Type": "application/json", "Authorization": f"Bearer {target.clerk}"})
            if status != 202:
                raise SystemExit(f"seeding: submit answered {status}: {body[:300]!r}")
            cert_id = json.loads(body)["id"]
            status, body = await client.send(
                "POST", f"/api/v1/certificates/{cert_id}/approve", b"",
                {"Authorization": f"Bearer {target.officer}"})
            if status != 200:
                raise SystemExit(f"seeding: approve answered {status}: {body[:300]!r}")
            made.append(cert_id)
    finally:
        await client.close()
    return made


async def run_load(target: Target, args: argparse.Namespace, runtime: Runtime,
                   mark: Callable[[], None]) -> tuple[float, int, list[str]]:
    """Warm-up, then the measured window, `mark` called at its start and end: (its seconds,
    certificates issued in it, the ids submitted and approved over the whole run)."""
    start = time.monotonic()
    end = start + args.warmup + args.seconds
    interval = args.concurrency / args.rate if args.rate else 0.0
    made: list[str] = []
    tasks = [asyncio.create_task(reader(target, kind, end, 10**9 * (k * 100 + i),
                                        interval, i * interval / args.concurrency))
             for k, kind in enumerate(READS) for i in range(args.concurrency)]
    # Connections the issuer spreads its certificates over, each submitting and approving one
    # at a time: enough that the client never holds the offered rate back (a pair takes
    # 0.3-1 s under load).
    issuers = max(4, round(2 * args.issue_rate))
    if args.issue_rate > 0:
        every = issuers / args.issue_rate
        tasks += [asyncio.create_task(issuer(target, end, every, i * every / issuers,
                                             2_000_000 + i * 1_000_000, made))
                  for i in range(issuers)]
    await asyncio.sleep(max(0.0, start + args.warmup - time.monotonic()))
    issued_before = await asyncio.to_thread(count_issued, runtime)
    mark()
    target.measuring = True
    window_start = time.monotonic()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    window = time.monotonic() - window_start
    mark()
    issued_after = await asyncio.to_thread(count_issued, runtime)
    target.measuring = False  # requests still in flight finish, counted as warm-up
    await asyncio.gather(*tasks)
    return window, issued_after - issued_before, made


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def report(target: Target, args: argparse.Namespace, window: float, issued: int,
           cpu: dict[str, float], busy: float, load_before: float) -> None:
    mode = (f"open loop, {args.rate:g}/s offered per kind" if args.rate else "closed loop")
    print(f"Load on loopback: {args.concurrency} clients per read kind ({mode}), issuing "
          f"{args.issue_rate:g}/s offered, {window:.1f} s measured after {args.warmup:g} s "
          f"warm-up, {os.cpu_count()} CPUs; gunicorn {args.web_workers} x {args.web_threads}, "
          f"{args.workers} RQ workers, PostgreSQL, Redis; B-B")
    print(f"  {'kind':<12} {'requests':>9} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'failed':>7}")
    for kind in (*READS, "submit", "approve"):
        tally = target.tally(kind)
        lat = tally.latencies
        print(f"  {kind:<12} {len(lat):>9} {len(lat) / window:>8.1f} "
              f"{percentile(lat, 0.5):>8.1f} {percentile(lat, 0.99):>8.1f} "
              f"{max(lat, default=0) * 1000:>8.1f} {sum(tally.failures.values()):>7}")
    reads = sum(len(target.tally(kind).latencies) for kind in READS)
    print(f"  {'all reads':<12} {reads:>9} {reads / window:>8.1f}")
    approved = len(target.tally("approve").latencies)
    print(f"  issuing      {issued} certificates issued in the window, {issued / window:.2f} per "
          f"second ({approved / window:.2f}/s submitted and approved)")
    requests = reads + len(target.tally("submit").latencies) + approved
    print(f"  CPU          server {cpu['server'] * 1000 / max(1, requests):.2f} ms per request "
          f"(reads and issuing's), workers {cpu['workers'] * 1000 / max(1, issued):.1f} ms per "
          "certificate issued")
    print("  CPU s        " + "  ".join(f"{who} {s:.1f}" for who, s in cpu.items())
          + f"  (the machine busy {busy:.1f} of {window * (os.cpu_count() or 1):.1f}, "
          "PostgreSQL, Redis and anything else running included)")
    print(f"  load average {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} at the end "
          "(1 min; above 0 before: others were using the cores)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=5, help="clients per read kind")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: requests/s offered per read kind (0: closed loop)")
    parser.add_argument("--issue-rate", type=float, default=4.0,
                        help="certificates/s submitted and approved while the reads run")
    parser.add_argument("--seed", type=int, default=20,
                        help="certificates issued before the reads start (what they read)")
    parser.add_argument("--drain", type=float, default=180.0,
                        help="seconds the certificates submitted may take to be issued after")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="PRAMAAN_WEB_WORKERS")
    parser.add_argument("--web-threads", type=int, default=4, help="PRAMAAN_WEB_THREADS")
    args = parser.parse_args()
    if args.seed < 1 or args.concurrency < 1 or args.seconds <= 0:
        parser.error("--seed and --concurrency must be at least 1, --seconds above 0")

    from redis import Redis
    from rq import Worker

    load_before = os.getloadavg()[0]
    processes = Processes()
    atexit.register(processes.stop)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below runs
    schema, database_url = fresh_schema()
    home = Path(tempfile.mkdtemp(prefix="pramaan-bench-load-"))
    keys = home / "keys"
    ensure_dev_pki(keys)
    port = free_port()
    env = environment(home, keys, database_url, port, args)
    redis = Redis.from_url(REDIS)
    redis.flushdb()
    runtime = Runtime(Settings.from_env(env=env))
    failed = False
    try:
        clerk, officer = prepare(runtime)
        server = processes.start(["-m", "cli", "serve"], env, home / "server.log")
        workers = [processes.start([str(ROOT / "worker.py"), "--rts-every", "0"], env,
                                   home / f"worker-{n}.log") for n in range(args.workers)]
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        wait_for("the workers", lambda: Worker.count(connection=redis) >= args.workers, 180,
                 processes)
        target = Target(port, clerk, officer, [], [])
        target.ids = asyncio.run(seed(target, args.seed))
        wait_for("the seed certificates", lambda: unfinished(runtime, target.ids)[0] == 0,
                 60 + 5 * args.seed, processes)
        with runtime.sessions() as session:
            target.seals = [s for s in session.scalars(sa.select(Certificate.seal_text).where(
                Certificate.id.in_(target.ids))) if s]
        pids = {"server": [server.pid], "workers": [w.pid for w in workers]}
        cpu: list[dict[str, float]] = []  # at the window's start and end

        def mark() -> None:
            cpu.append({**{who: cpu_of(p) for who, p in pids.items()},
                        "bench": sum(os.times()[:2]), "machine": machine_busy()})

        window, issued, made = asyncio.run(run_load(target, args, runtime, mark))
        spent = {who: cpu[1][who] - cpu[0][who] for who in cpu[0]}
        busy = spent.pop("machine")
        drained = time.monotonic()
        deadline = drained + args.drain
        waiting, errors = unfinished(runtime, made)
        while waiting and not errors and time.monotonic() < deadline:
            time.sleep(1)
            waiting, errors = unfinished(runtime, made)
        report(target, args, window, issued, spent, busy, load_before)
        print(f"  after        {len(made)} submitted in the run; all issued "
              f"{time.monotonic() - drained:.0f} s after the load stopped" if not waiting else
              f"  after        {waiting} of {len(made)} not issued {args.drain:.0f} s after the "
              "load stopped")
        outside = target.unmeasured_failures  # in the warm-up, or answered after the window
        problems = [f"{what}: {count}" for t in target.tallies.values()
                    for what, count in t.failures.items()]
        problems += [f"{what}: {count} (outside the window)"
                     for what, count in outside.failures.items()]
        problems += [f"not issued: {e}" for e in errors]
        if waiting:
            problems.append(f"not issued: {waiting} certificates within {args.drain:.0f} s")
        if problems:
            failed = True
            print("FAILURES:")
            for line in problems:
                print(f"  {line}")
            examples = {what: example for t in (outside, *target.tallies.values())
                        for what, example in t.examples.items()}
            for what, example in examples.items():
                print(f"    first {what}: {example}")
        else:
            print("  failures     none (every answer 2xx and checked)")
    finally:
        processes.stop()
        runtime.close()
        redis.flushdb()
        redis.close()
        drop_schema(schema)
    if failed:
        print(f"(the logs are kept in {home})")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
