"""`pramaan serve` is gunicorn: a fixed pool of worker processes and threads, slow clients cut off
at PRAMAAN_WEB_TIMEOUT, no version banner, one Date header. Run as a real subprocess on a free
127.0.0.1 port; every wait below is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from issuer.bootstrap import initialise
from issuer.runtime import Runtime
from tests.conftest import ROOT, make_settings, sample
from tests.fixture_scope import shared

WORKERS, THREADS, TIMEOUT = 2, 2, 3  # small, so that a few dozen stalled clients exceed them
STALLED = 36


@dataclass
class Served:
    base: str
    port: int
    token: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    from tests.test_digilocker_e2e import free_port as below_the_ephemeral_range

    return below_the_ephemeral_range()


@pytest.fixture(scope=shared("module"))
def served(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    database = f"sqlite:///{home / 'pramaan.db'}"
    runtime = Runtime(make_settings(home, database, keys_dir))
    token = initialise(runtime).clerk_token
    runtime.close()
    assert token
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRAMAAN_") and k not in ("REDIS_URL", "HOST", "PORT")}
    env.update(PRAMAAN_HOME=str(home), DATABASE_URL=database, PRAMAAN_KEYS_DIR=str(keys_dir),
               HOST="127.0.0.1", PORT=str(port), PRAMAAN_WEB_WORKERS=str(WORKERS),
               PRAMAAN_WEB_THREADS=str(THREADS), PRAMAAN_WEB_TIMEOUT=str(TIMEOUT))
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "cli", "serve"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                # Up means every worker is: the first one answers while the others still boot
                # (on a loaded machine, seconds later).
                if (requests.get(base + "/healthz", timeout=2).status_code == 200
                        and len(children(process.pid)) == WORKERS
                        and log.read_text().count("Booting worker") == WORKERS):
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "pramaan serve did not come up\n" + log.read_text()
            time.sleep(0.2)
        yield Served(base, port, token, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


def test_serve_is_gunicorn_with_the_configured_workers(served: Served) -> None:
    workers = children(served.process.pid)
    assert len(workers) == WORKERS
    assert "Starting gunicorn" in served.log.read_text()
    response = requests.get(served.base + "/healthz", timeout=10)
    assert response.headers["Server"] == "gunicorn"  # gunicorn's, and without a version


def still_open(client: socket.socket) -> bool:
    timeout = client.gettimeout()
    client.setblocking(False)
    try:
        client.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True  # nothing to read, and not closed
    except OSError:
        return False
    finally:
        client.settimeout(timeout)
    return False  # end of stream: closed by the server


def test_stalled_clients_are_cut_off_and_others_still_served(served: Served) -> None:
    workers = children(served.process.pid)
    stalled = []
    try:
        for _ in range(STALLED):
            client = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            stalled.append(client)
        opened = time.monotonic()
        time.sleep(0.5)
        # No thread per connection: each worker keeps its fixed pool.
        for pid in workers:
            assert threads(pid) <= THREADS + 3, f"worker {pid}: {threads(pid)} threads"
        # (a) Normal requests are served while the stalled ones are still open: they hold no
        # thread (more of them than the server has threads).
        for _ in range(3):
            response = requests.get(served.base + "/healthz", timeout=TIMEOUT + 15)
            assert response.status_code == 200
        assert time.monotonic() - opened < TIMEOUT - 1
        assert all(still_open(client) for client in stalled)
        # (b) The server closes every stalled connection once its time is up.
        closed_after = []
        for client in stalled:
            client.settimeout(max(opened + TIMEOUT + 6 - time.monotonic(), 0.1))
            try:
                data = client.recv(65536)
            except ConnectionResetError:
                data = b""
            except TimeoutError:
                pytest.fail(f"a stalled connection was still open after {TIMEOUT + 6} s")
            assert data == b"", data[:200]  # no answer to half a request, just the close
            closed_after.append(time.monotonic() - opened)
        assert TIMEOUT - 1 <= min(closed_after) and max(closed_after) < TIMEOUT + 6
    finally:
        for client in stalled:
            client.close()
    # The workers survived and serve at once again.
    assert children(served.process.pid) == workers
    started = time.monotonic()
    assert requests.get(served.base + "/healthz", timeout=10).status_code == 200
    assert time.monotonic() - started < 2


def test_a_slow_body_is_cut_off_at_the_timeout(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT + 10) as client:
        client.sendall(b"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"qr\"")
        started = time.monotonic()
        try:
            data = client.recv(65536)
        except ConnectionResetError:
            data = b""
        assert b"200 OK" not in data
        assert time.monotonic() - started < TIMEOUT + 4


def test_pdf_and_pages_over_gunicorn_have_one_date_and_no_version(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    created = requests.post(served.base + "/api/v1/certificates", json=sample("birth-1"),
                            headers=auth, timeout=60)
    assert created.status_code == 202, created.text
    assert created.json()["state"] == "issued"
    pdf = requests.get(served.base + created.json()["links"]["self"] + "/pdf", headers=auth,
                       timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    page = requests.get(served.base + "/v", timeout=10)
    script = requests.get(served.base + "/v/assets/verify.js", timeout=10)
    refused = requests.get(served.base + created.json()["links"]["self"], timeout=10)
    for response in (pdf, page, script, created, refused):
        assert response.raw.headers.getlist("Date") == [response.headers["Date"]]
        assert response.raw.headers.getlist("Server") == ["gunicorn"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def read_responses(client: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"HTTP/1.1 200 OK") < count or not data.endswith(b"}\n"):
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_heads_in_pieces_bodies_and_pipelined_requests_are_served(served: Served) -> None:
    body = b'{"qr": "hello"}'
    post = (b"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT + 10) as client:
        for piece in (post[:7], post[7:30], post[30:], body[:5], body[5:]):
            client.sendall(piece)
            time.sleep(0.3)
        first = read_responses(client, 1)
        assert first.startswith(b"HTTP/1.1 200 OK") and b'"genuine":false' in first
        client.sendall(get + post + body + get)  # pipelined on the same kept-alive connection
        rest = read_responses(client, 3)
    assert rest.count(b"HTTP/1.1 200 OK") == 3, rest
    assert rest.count(b'{"status":"ok"}') == 2 and rest.count(b'"genuine":false') == 1


def test_the_pull_endpoints_answers_are_logged_once_by_the_app_not_again_by_gunicorn(
        served: Served) -> None:
    """A pull's answer has the app's own line (outcome and txn) and no second access line;
    anything else at that path (a 405) and every other request keep gunicorn's access line."""
    refused = requests.post(served.base + "/digilocker/pulldoc", data=b"<PullDocRequest/>",
                            timeout=10)  # no DIGILOCKER_API_KEY here: 401, logged by the app
    wrong_method = requests.get(served.base + "/digilocker/pulldoc", timeout=10)
    health = requests.get(served.base + "/healthz?after-pull", timeout=10)
    assert (refused.status_code, wrong_method.status_code, health.status_code) == (401, 405, 200)
    deadline = time.monotonic() + 10
    while "GET /healthz?after-pull" not in served.log.read_text():
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.1)
    log = served.log.read_text()
    assert "digilocker pulldoc refused: DIGILOCKER_API_KEY is not configured" in log
    assert '"GET /digilocker/pulldoc HTTP/1.1" 405' in log
    assert "POST /digilocker/pulldoc" not in log


def listeners_on(port: int) -> int:
    """Listening IPv4 TCP sockets on `port` (/proc/net/tcp: state 0A), whoever holds them."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows
               if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def test_each_worker_listens_on_its_own_socket_so_connections_spread_evenly(
        served: Served) -> None:
    assert listeners_on(served.port) == WORKERS


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path, keys_dir: Path) -> None:
    """SO_REUSEPORT would let the workers bind beside another server's SO_REUSEPORT socket and
    share its traffic silently: serve checks with a plain bind first and says so."""
    home = tmp_path / "home"
    database = f"sqlite:///{tmp_path / 'pramaan.db'}"
    runtime = Runtime(make_settings(home, database, keys_dir))
    initialise(runtime)
    runtime.close()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PRAMAAN_") and k not in ("REDIS_URL", "HOST", "PORT")}
        env.update(PRAMAAN_HOME=str(home), DATABASE_URL=database, PRAMAAN_KEYS_DIR=str(keys_dir),
                   HOST="127.0.0.1", PORT=str(port))
        done = subprocess.run([sys.executable, "-m", "cli", "serve"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "config_invalid" in done.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "another server is listening there" in done.stderr
