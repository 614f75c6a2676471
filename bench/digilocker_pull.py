"""`make bench-digilocker`: Pull Doc throughput and latency under concurrent DigiLocker requests.

The real app under gunicorn (`pramaan serve`, PRAMAAN_WEB_* workers/threads) on PostgreSQL (a
fresh schema), a few birth certificates issued through the API, then CONCURRENCY clients on
loopback sending signed Pull Doc requests (x-digilocker-hmac, a new txn each, format pdf) for
DURATION seconds. Prints requests/second, latency percentiles, the answers seen and the machine's
load, since the client shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loopback_http import Connection  # noqa: E402
from issuer.bootstrap import initialise  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from signing.devpki import ensure_dev_pki  # noqa: E402

KEY = "bench-api-key"
IST = timezone(timedelta(hours=5, minutes=30))
POSTGRES = os.environ.get("PRAMAAN_BENCH_POSTGRES") or os.environ.get(
    "PRAMAAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SAMPLE = ROOT / "tests" / "data" / "samples" / "birth-1.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pull_doc_body(uri: str, serial: int) -> bytes:
    ts = datetime.now(IST).isoformat(timespec="seconds")
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><PullDocRequest '
            f'xmlns:ns2="http://tempuri.org/" ver="1.0" ts="{ts}" txn="{serial}{uuid.uuid4().hex}"'
            f' orgId="in.gov.pmc" format="pdf"><DocDetails><URI>{uri}</URI><DigiLockerId>'
            f"{uuid.uuid4()}</DigiLockerId></DocDetails></PullDocRequest>").encode()


def signature(raw: bytes) -> str:
    return base64.b64encode(hmac.new(KEY.encode(), raw, hashlib.sha256).hexdigest().encode()
                            ).decode()


Post = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


async def client(post: Post, uris: list[str], until: float, first: int, latencies: list[float],
                 outcomes: dict[str, int], interval: float = 0.0, offset: float = 0.0) -> None:
    """Closed loop (interval 0): the next request as soon as the last answer is read. Open loop
    (interval > 0): requests at fixed times, the latency counted from the time the request was
    due, so a server that falls behind is charged for the wait (no coordinated omission)."""
    serial = first
    due = time.monotonic() + offset
    while time.monotonic() < until:
        serial += 1
        raw = pull_doc_body(uris[serial % len(uris)], serial)
        headers = {"Content-Type": "application/xml", "x-digilocker-hmac": signature(raw)}
        if interval:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            started = due
            due += interval
        else:
            started = time.monotonic()
        status_code, body = await post(raw, headers)
        latencies.append(time.monotonic() - started)
        status = body[body.find(b'Status="') + 8:][:1].decode() if status_code == 200 else ""
        key = f"HTTP {status_code} Status {status or '-'}"
        outcomes[key] = outcomes.get(key, 0) + 1


def raw_posts(host: str, port: int, path: str, count: int) -> list[Post]:
    """One keep-alive connection per client (bench/loopback_http.py)."""
    posts: list[Post] = []
    for _ in range(count):
        connection = Connection(host, port)
        posts.append(lambda raw, headers, c=connection: c.post(path, raw, headers))
    return posts


def aiohttp_posts(session: aiohttp.ClientSession, url: str, count: int) -> list[Post]:
    async def post(raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async with session.post(url, data=raw, headers=headers) as reply:
            return reply.status, await reply.read()
    return [post] * count


async def load(host: str, port: int, uris: list[str], concurrency: int, seconds: float,
               warmup: float, rate: float = 0.0,
               client_kind: str = "raw", mark: Callable[[], None] = lambda: None,
               ) -> tuple[list[float], dict[str, int], float]:
    # Open loop at `rate` requests/s: each of the clients sends every concurrency/rate seconds,
    # the clients evenly staggered.
    interval = concurrency / rate if rate else 0.0
    path = "/digilocker/pulldoc"
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        posts = (raw_posts(host, port, path, concurrency) if client_kind == "raw"
                 else aiohttp_posts(session, f"http://{host}:{port}{path}", concurrency))
        ignored: list[float] = []
        await asyncio.gather(*(client(post, uris, time.monotonic() + warmup, 10**9 * (i + 1),
                                      ignored, {}, interval, i * interval / concurrency)
                               for i, post in enumerate(posts)))
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        mark()
        started = time.monotonic()
        await asyncio.gather(*(client(post, uris, started + seconds, 10**9 * (i + 100),
                                      latencies, outcomes, interval,
                                      i * interval / concurrency)
                               for i, post in enumerate(posts)))
        return latencies, outcomes, time.monotonic() - started


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in _tree(int(child)))]


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server (gunicorn and its workers), every PostgreSQL
    process on the machine, and this load client: who spends the shared cores."""
    tick = os.sysconf("SC_CLK_TCK")
    postgres = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _comm(p) == "postgres"]
    own = os.times()
    return {"server": sum(map(_ticks, _tree(server_pid))) / tick,
            "postgres": sum(map(_ticks, postgres)) / tick,
            "client": own.user + own.system}


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def fresh_schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in POSTGRES else "?"
    return schema, f"{POSTGRES}{sep}options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not come up")


def issue(base: str, token: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
        data["registration_number"] = f"B-2026-PMC-{700000 + i}"
        created = requests.post(f"{base}/api/v1/certificates", json=data, timeout=120,
                                headers={"Authorization": f"Bearer {token}"})
        created.raise_for_status()
        ids.append(created.json()["id"])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--certificates", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="PRAMAAN_WEB_WORKERS (2, as served)")
    parser.add_argument("--threads", type=int, default=4, help="PRAMAAN_WEB_THREADS (4, as served)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: offer this many requests/s (0: closed loop, each "
                             "client sends again as soon as it has its answer)")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="raw: bench/loopback_http.py, a few hundred microseconds of CPU "
                             "per request; aiohttp: about a millisecond, taken from the server")
    args = parser.parse_args()

    schema, database_url = fresh_schema()
    home = Path(tempfile.mkdtemp(prefix="pramaan-bench-dl-"))
    keys = home / "keys"
    ensure_dev_pki(keys)
    port = free_port()
    env = {**os.environ, "PRAMAAN_HOME": str(home), "DATABASE_URL": database_url,
           "PRAMAAN_KEYS_DIR": str(keys), "PORT": str(port), "HOST": "127.0.0.1",
           "DIGILOCKER_API_KEY": KEY, "PRAMAAN_WEB_WORKERS": str(args.workers),
           "PRAMAAN_WEB_THREADS": str(args.threads), "REDIS_URL": ""}
    settings = Settings.from_env(env=env)
    runtime = Runtime(settings)
    token = initialise(runtime).clerk_token
    runtime.close()
    assert token is not None
    server = subprocess.Popen([sys.executable, "-c", "import cli; cli.main(['serve'])"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        ids = issue(base, token, args.certificates)
        uris = [f"in.gov.pmc-BTCER-{cert_id}" for cert_id in ids]
        load_before = os.getloadavg()
        cpu_before: dict[str, float] = {}
        latencies, outcomes, elapsed = asyncio.run(load(
            "127.0.0.1", port, uris, args.concurrency, args.seconds, args.warmup, args.rate,
            args.client, lambda: cpu_before.update(cpu_seconds(server.pid))))
        load_after = os.getloadavg()
        cpu_after = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
        drop_schema(schema)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    mode = (f"open loop at {args.rate:.0f}/s offered, latency from the due time"
            if args.rate else "closed loop")
    print(f"Pull Doc, {args.concurrency} concurrent clients ({mode}), {elapsed:.1f} s on "
          f"{os.cpu_count()} CPUs, {args.client} client (gunicorn {args.workers} workers x "
          f"{args.threads} threads, PostgreSQL; the client runs on the same machine)")
    print(f"  requests      {len(latencies)}  ({len(latencies) / elapsed:.0f} per second)")
    print(f"  latency ms    p50 {pct(0.50):.1f}  p90 {pct(0.90):.1f}  p99 {pct(0.99):.1f}  "
          f"max {latencies[-1] * 1000:.1f}  mean {statistics.mean(latencies) * 1000:.1f}")
    print(f"  answers       {outcomes}")
    spent = {who: (cpu_after[who] - cpu_before[who]) * 1000 / len(latencies)
             for who in cpu_after}
    print("  CPU ms/request " + "  ".join(f"{who} {ms:.2f}" for who, ms in spent.items())
          + "  (of the 2 cores' "
          f"{2000 * elapsed / len(latencies):.2f} ms per request at this rate)")
    print(f"  load average  before {load_before[0]:.2f}  after {load_after[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
