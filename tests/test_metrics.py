"""GET /metrics (issue 12): the database's facts counted at scrape time (certificates issued
and failed by type, RTS overdue, DigiLocker push outcomes), queue depths from a real Redis,
and this process's render and sign histograms, parsed with prometheus_client's own parser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue

from api import create_app
from issuer.db import utcnow
from issuer.jobs import DELIVER_QUEUE, SIGN_QUEUE
from issuer.models import State
from issuer.settings import Settings
from tests import rts_records
from tests.conftest import ROOT, Live, make_settings, sample, serve
from tests.test_digilocker_e2e import ASHA, World, world_fixture  # noqa: F401 - the fixture

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(live: Live, **headers: str) -> Samples:
    response = live.http.get(live.url("/metrics"), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def issue(live: Live, name: str) -> str:
    created = live.post_json("/api/v1/certificates", sample(name))
    assert created.status_code == 202, created.text
    shown = live.get(created.json()["status_url"]).json()
    assert shown["state"] == "issued", shown  # inline jobs: issued within the request
    return str(shown["id"])


def test_counts_by_type_failed_overdue_and_the_histograms_move_by_what_was_done(
        live: Live) -> None:
    before = scrape(live)
    for name in ("birth-1", "birth-2", "death-1"):
        issue(live, name)
    rt = live.runtime
    now = utcnow()
    rts_records.request(rt, now + timedelta(days=5), state=State.FAILED, cert_type="death")
    rts_records.request(rt, now - timedelta(days=2), cert_type="birth")  # overdue
    rts_records.request(rt, now + timedelta(days=2), cert_type="birth")  # not yet
    after = scrape(live)

    assert value(after, "pramaan_certificates_issued_total", type="birth") == 2
    assert value(after, "pramaan_certificates_issued_total", type="death") == 1
    assert value(after, "pramaan_certificates_issued_total", type="property") == 0
    assert value(after, "pramaan_certificates", type="birth", state="issued") == 2
    assert value(after, "pramaan_certificates", type="death", state="issued") == 1
    assert value(after, "pramaan_certificates", type="death", state="failed") == 1
    assert value(after, "pramaan_certificates", type="birth", state="failed") == 0
    assert value(after, "pramaan_certificates", type="birth", state="submitted") == 2
    assert value(after, "pramaan_rts_overdue", type="birth") == 1
    assert value(after, "pramaan_rts_overdue", type="death") == 0
    # The histograms are this process's (the app is served in it): one observation per
    # certificate rendered and signed, by type.
    for stage in ("render", "sign"):
        for cert_type, count in (("birth", 2), ("death", 1), ("property", 0)):
            name = f"pramaan_{stage}_seconds_count"
            moved = value(after, name, type=cert_type) - value(before, name, type=cert_type)
            assert moved == count, (stage, cert_type)
        inf = value(after, f"pramaan_{stage}_seconds_bucket", type="birth", le="+Inf")
        assert inf == value(after, f"pramaan_{stage}_seconds_count", type="birth")
        assert value(after, f"pramaan_{stage}_seconds_sum", type="birth") > 0


def test_nothing_about_a_person_is_in_the_metrics(live: Live) -> None:
    issue(live, "birth-1")
    text = live.http.get(live.url("/metrics"), timeout=60).text
    data = sample("birth-1")
    for secret in (data["child"]["name"]["en"], data["mother"]["name"]["en"],
                   data["registration_number"], data["child"]["date_of_birth"],
                   data["applicant"]["mobile"], "Kothrud", live.token):
        assert secret not in text
    labels = {key for s in parse(text) for key, _ in s[1]}
    assert labels <= {"type", "state", "queue", "action", "le", "quantile", "generation",
                      "implementation", "major", "minor", "patchlevel", "version"}, labels


@pytest.fixture
def queued(tmp_path: Path, keys_dir: Path, redis_url: str) -> Iterator[Live]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir,
                             redis_url=redis_url)
    yield from serve(settings)


def test_queue_depths_are_read_from_redis(queued: Live, redis_url: str) -> None:
    with Redis.from_url(redis_url) as connection:
        sign = Queue(SIGN_QUEUE, connection=connection)
        for n in range(3):
            sign.enqueue_call("worker.issue_job", args=(f"not-a-record-{n}",))
        Queue(DELIVER_QUEUE, connection=connection).enqueue_call("worker.deliver_job",
                                                                 args=(1,))
        samples = scrape(queued)
        assert value(samples, "pramaan_queue_jobs", queue="sign", state="queued") == 3
        assert value(samples, "pramaan_queue_jobs", queue="deliver", state="queued") == 1
        assert value(samples, "pramaan_queue_jobs", queue="sign", state="failed") == 0
        sign.empty()
        samples = scrape(queued)
        assert value(samples, "pramaan_queue_jobs", queue="sign", state="queued") == 0
    assert value(samples, "pramaan_redis_up") == 1 and value(samples, "pramaan_database_up") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_source_that_does_not_answer_is_a_zero_not_a_failed_scrape(
        tmp_path: Path, database_url: str, keys_dir: Path) -> None:
    settings = make_settings(tmp_path, database_url, keys_dir, redis_url="redis://127.0.0.1:9/0")
    for live in serve(settings):
        samples = scrape(live)
        assert value(samples, "pramaan_redis_up") == 0
        assert value(samples, "pramaan_database_up") == 1
        assert not any(name == "pramaan_queue_jobs" for name, _ in samples)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_push_outcomes_after_pushes_to_the_emulator(world: World) -> None:
    desk = world.desk
    request = desk.submit(sample("birth-1"))
    world.link(request["id"])
    desk.approve(request["id"]).raise_for_status()  # issued, then pushed (A): delivered
    assert desk.show(request["id"])["delivery"]["state"] == "delivered"
    world.dl.faults(error_rate=1.0, seed=1)  # every push now answered 500: retried later
    revoked = desk.call("officer-1", "POST", f"/api/v1/certificates/{request['id']}/revoke",
                        {"reason": "registered twice"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["delivery"]["state"] == "pending"
    samples = scrape(world.live)
    assert value(samples, "pramaan_digilocker_deliveries", action="A", state="delivered") == 1
    assert value(samples, "pramaan_digilocker_deliveries", action="D", state="pending") == 1
    assert value(samples, "pramaan_digilocker_deliveries", action="D", state="delivered") == 0
    assert value(samples, "pramaan_digilocker_push_attempts_total", action="A",
                 state="delivered") == 1
    assert value(samples, "pramaan_digilocker_push_attempts_total", action="D",
                 state="pending") == 1
    assert ASHA not in repr(samples)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_token_only_a_loopback_client_not_behind_a_proxy_may_scrape(
        live: Live, settings: Settings) -> None:
    assert live.http.get(live.url("/metrics"), timeout=60).status_code == 200
    proxied = live.http.get(live.url("/metrics"), headers={"X-Forwarded-For": "203.0.113.9"},
                            timeout=60)
    assert proxied.status_code == 403 and proxied.json()["code"] == "forbidden"
    app = create_app(settings)
    try:
        remote = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert remote.status_code == 403
        assert remote.headers["Content-Type"] == "application/problem+json"
        local = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
        assert local.status_code == 200
    finally:
        app.extensions["pramaan"].close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_a_token_only_its_bearer_may_scrape(tmp_path: Path, database_url: str,
                                                   keys_dir: Path) -> None:
    token = "metrics-token-0123456789"
    settings = make_settings(tmp_path, database_url, keys_dir, metrics_token=token)
    for live in serve(settings):
        bare = live.url("/metrics")
        assert live.http.get(bare, timeout=60).status_code == 401  # the API token is not it
        wrong = live.http.get(bare, headers={"Authorization": "Bearer metrics-token-x"},
                              timeout=60)
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
        right = scrape(live, Authorization=f"Bearer {token}", **{"X-Forwarded-For": "1.2.3.4"})
        assert value(right, "pramaan_database_up") == 1


RACE = """
import threading
from issuer.metrics import stage_histograms
errors, start = [], threading.Barrier(8)
def first_use():
    start.wait()
    try:
        stage_histograms()
    except Exception as exc:
        errors.append(type(exc).__name__)
threads = [threading.Thread(target=first_use) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
"""


def test_worker_threads_rendering_at_once_register_the_histograms_once() -> None:
    """A fresh process (nothing registered yet) whose eight threads time their first render at
    the same moment, as `pramaan worker --threads 8` does."""
    for _ in range(3):
        ran = subprocess.run([sys.executable, "-c", RACE], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, check=True)
        assert ran.stdout.strip() == "[]", ran.stdout + ran.stderr
