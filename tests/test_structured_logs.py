"""Structured logs (issue 12), from the real processes: `pramaan serve` under gunicorn and an RQ
worker (`worker.py`), each a subprocess writing PRAMAAN_LOG_FORMAT=json. Every line is one JSON
object with a request_id and job_id field; a request's lines carry its id (a sane incoming
X-Request-Id, else a new one, echoed in the response); a job's lines carry its RQ job id and
certificate id; and nothing of the people on the certificates (names, addresses, dates of
birth, the Aadhaar number) or the bearer token is in any line. Served by two gunicorn workers,
/metrics adds up both workers' render and sign histograms (multiprocess mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api_request_ids import incoming_or_new
from issuer.bootstrap import initialise
from issuer.runtime import Runtime
from tests.conftest import ROOT, make_settings, sample
from tests.test_batches import wait_until
from tests.test_digilocker_e2e import free_port
from tests.test_metrics import parse, value
from tests.test_personal_data import KEY_HEX, NEEDLES, NUMBER, SPACED, with_aadhaar
from tests.test_share_nothing import stop

KEYS = ("time", "level", "logger", "message", "request_id", "job_id")


class Service:
    """A database made ready, and the environment its processes run with."""

    def __init__(self, home: Path, keys_dir: Path, redis_url: str | None) -> None:
        settings = make_settings(home, f"sqlite:///{home / 'p.db'}", keys_dir)
        runtime = Runtime(settings)
        try:
            report = initialise(runtime)
        finally:
            runtime.close()
        assert report.clerk_token is not None
        self.token = report.clerk_token
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PRAMAAN_", "PROMETHEUS_", "REDIS_URL", "DATABASE_"))}
        self.env.update({
            "PRAMAAN_HOME": str(home), "DATABASE_URL": settings.database_url,
            "PRAMAAN_KEYS_DIR": str(keys_dir), "PRAMAAN_LOG_FORMAT": "json",
            "PRAMAAN_AADHAAR_HMAC_KEY": KEY_HEX, "PRAMAAN_SIGNATURE_LEVEL": "B-B",
            "PORT": str(self.port), "PRAMAAN_WEB_WORKERS": "2", "PRAMAAN_WEB_THREADS": "4",
            **({"REDIS_URL": redis_url} if redis_url else {})})
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def run(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen([sys.executable, *args], env=self.env, cwd=ROOT,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)

    def serve(self, log: Path) -> subprocess.Popen[bytes]:
        process = self.run(["-m", "cli", "serve"], log)

        def answers() -> bool:
            try:
                return requests.get(self.base + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return process.poll() is not None

        wait_until(answers, 60, f"the API did not start: {log.read_text()[-2000:]}")
        assert process.poll() is None, log.read_text()[-2000:]
        return process

    def submit(self, body: dict[str, Any], request_id: str | None = None) -> requests.Response:
        headers = {"X-Request-Id": request_id} if request_id is not None else {}
        response = self.http.post(self.base + "/api/v1/certificates", json=body,
                                  headers=headers, timeout=120)
        assert response.status_code == 202, response.text
        return response


def personal(body: dict[str, Any]) -> list[str]:
    """What of a person a request carries: names, addresses, dates, the Aadhaar number."""
    found: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k if k not in ("en", "mr") else key)
        elif isinstance(value, str) and key not in ("type", "sex", "remarks"):
            found.append(value)

    walk(body)
    return found


def lines_of(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    for entry in parsed:
        assert all(key in entry for key in KEYS), entry
    return parsed


def assert_nothing_personal(log: Path, bodies: list[dict[str, Any]], token: str) -> None:
    text = log.read_text(encoding="utf-8")
    secrets = {s for body in bodies for s in personal(body)} | set(NEEDLES) | {token}
    secrets |= {json.dumps(s)[1:-1] for s in list(secrets)}  # as JSON escapes them
    leaked = sorted(s for s in secrets if len(s) >= 4 and s in text)
    assert not leaked, leaked


@pytest.fixture
def service(tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    yield Service(tmp_path, keys_dir, None)


def test_api_lines_are_json_with_the_request_id_and_nothing_personal(
        service: Service, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    server = service.serve(log)
    bodies = [with_aadhaar("birth-1", SPACED), with_aadhaar("death-1", NUMBER)]
    try:
        first = service.submit(bodies[0], "req-0001-abcdef")
        assert first.headers["X-Request-Id"] == "req-0001-abcdef"
        second = service.submit(bodies[1], 'bad id"\\{}')  # not sane: replaced
        new_id = second.headers["X-Request-Id"]
        assert new_id != 'bad id"\\{}' and len(new_id) == 32
        ids = {first.json()["id"]: "req-0001-abcdef", second.json()["id"]: new_id}
        for cert_id in ids:
            shown = service.http.get(f"{service.base}/api/v1/certificates/{cert_id}", timeout=60)
            assert shown.json()["state"] == "issued"
        # Two gunicorn workers: whichever answers, the histograms count both certificates.
        for _ in range(6):
            samples = parse(requests.get(service.base + "/metrics", timeout=60).text)
            for stage in ("render", "sign"):
                for cert_type in ("birth", "death"):
                    assert value(samples, f"pramaan_{stage}_seconds_count",
                                 type=cert_type) == 1, (stage, cert_type)
    finally:
        stop(server)
    entries = lines_of(log)
    issued = {e["message"].split()[1]: e for e in entries
              if e["logger"] == "issuer.issue" and e["message"].startswith("issued ")}
    assert {cert_id: e["request_id"] for cert_id, e in issued.items()} == ids
    posts = [e for e in entries if e["logger"] == "gunicorn.access" and e.get("method") == "POST"]
    assert sorted(e["request_id"] for e in posts) == sorted(ids.values())
    assert all(e["status"] == 202 and e["path"] == "/api/v1/certificates" for e in posts)
    assert_nothing_personal(log, bodies, service.token)


def test_worker_lines_carry_the_job_and_certificate_and_nothing_personal(
        tmp_path: Path, keys_dir: Path, redis_url: str) -> None:
    service = Service(tmp_path, keys_dir, redis_url)
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    server = service.serve(api_log)
    body = with_aadhaar("birth-2", SPACED)
    try:
        created = service.submit(body, f"req-{uuid.uuid4().hex}")
        cert_id = created.json()["id"]
        worker = service.run(["worker.py", "--burst"], worker_log)
        assert worker.wait(timeout=300) == 0, worker_log.read_text()[-3000:]
        shown = service.http.get(f"{service.base}/api/v1/certificates/{cert_id}", timeout=60)
        assert shown.json()["state"] == "issued", shown.text
    finally:
        stop(server)
    entries = lines_of(worker_log)
    job_lines = [e for e in entries if e["logger"].startswith("issuer.")
                 and cert_id in e["message"]]
    assert job_lines, entries
    (done,) = [e for e in entries if "Job OK" in e["message"]]  # RQ's own line, in the job
    for entry in [*job_lines, done]:
        assert entry["job_id"] == f"issue-{cert_id}", entry
        assert entry["certificate_id"] == cert_id, entry
    lines_of(api_log)
    for log in (api_log, worker_log):
        assert_nothing_personal(log, [body, sample("birth-2")], service.token)


def test_an_incoming_request_id_is_kept_only_when_sane() -> None:
    assert incoming_or_new("0af7651916cd43dd8448eb211c80319c") == (
        "0af7651916cd43dd8448eb211c80319c")
    assert incoming_or_new("req:01HZX.trace-7") == "req:01HZX.trace-7"
    for insane in (None, "", "short", "x" * 129, "has space in it", "line\nbreak-here",
                   "864297531049", '{"json":1}'):
        made = incoming_or_new(insane)
        assert made != insane and len(made) == 32 and int(made, 16) >= 0


def test_worker_processes_serve_their_histograms_on_the_metrics_port(
        tmp_path: Path, keys_dir: Path, redis_url: str) -> None:
    """`worker.py --processes 2 --metrics-port P`: the parent serves both children's render
    and sign histograms (multiprocess mode), whichever child signed what."""
    service = Service(tmp_path, keys_dir, redis_url)
    server = service.serve(tmp_path / "api.log")
    port = free_port()
    worker = service.run(["worker.py", "--processes", "2", "--metrics-port", str(port)],
                         tmp_path / "worker.log")
    try:
        ids = [service.submit(sample(name)).json()["id"]
               for name in ("birth-1", "birth-2", "death-1")]

        def all_issued() -> bool:
            return all(service.http.get(f"{service.base}/api/v1/certificates/{cert_id}",
                                        timeout=60).json()["state"] == "issued"
                       for cert_id in ids)

        wait_until(all_issued, 120, (tmp_path / "worker.log").read_text()[-3000:])
        samples = parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text)
        for stage in ("render", "sign"):
            assert value(samples, f"pramaan_{stage}_seconds_count", type="birth") == 2
            assert value(samples, f"pramaan_{stage}_seconds_count", type="death") == 1
        lines_of(tmp_path / "worker.log")
    finally:
        stop(worker)
        stop(server)
