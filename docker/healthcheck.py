"""The image's HEALTHCHECK: one image runs several processes, so this looks at which one.

- `pramaan serve`: GET /healthz on its own port answers 200;
- `pramaan worker`: Redis answers, and an RQ worker of this host (the container) is registered;
- anything else that listens (`pramaan digilocker-emulator --port N`, docker/dev_tsa.py): its
  port answers HTTP at all;
- one-off commands (`pramaan init`, `migrate`, `sweep`): healthy while they run.

The slim image has no curl; this uses the standard library (and redis, which the image has).
Exit 0: healthy, 1: not (the reason on stderr).
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = 5.0


def commands() -> list[list[str]]:
    """The command lines of every process in the container."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                found.append([part.decode(errors="replace") for part in raw.split(b"\0") if part])
    return found


def answers(url: str, *, ok_only: bool) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:  # noqa: S310 - loopback
            return bool(reply.status == 200 or not ok_only)
    except urllib.error.HTTPError as exc:
        return not ok_only and exc.code < 500
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return False


def serve_healthy() -> bool:
    host = os.environ.get("HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared
    return answers(f"http://{host}:{os.environ.get('PORT', '8000')}/healthz", ok_only=True)


def worker_healthy() -> bool:
    from redis import Redis
    from rq import Worker

    url = os.environ.get("REDIS_URL")
    if not url:
        print("healthcheck: REDIS_URL is not set", file=sys.stderr)
        return False
    with Redis.from_url(url, socket_timeout=TIMEOUT) as redis:
        redis.ping()
        here = socket.gethostname()
        if any(worker.hostname == here for worker in Worker.all(connection=redis)):
            return True
    print(f"healthcheck: no RQ worker of {here} is registered", file=sys.stderr)
    return False


def port_of(argv: list[str]) -> str | None:
    for flag, value in itertools.pairwise(argv):
        if flag == "--port":
            return value
    return None


def healthy() -> bool:
    lines = commands()
    if any("serve" in argv for argv in lines):
        return serve_healthy()
    if any("worker" in argv for argv in lines):
        return worker_healthy()
    for argv in lines:
        port = port_of(argv)
        if port:
            return answers(f"http://127.0.0.1:{port}/", ok_only=False)
    return True


if __name__ == "__main__":
    try:
        sys.exit(0 if healthy() else 1)
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said on stderr
        print(f"healthcheck: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
