"""The operators' queue page (api_queues.py) against a real Redis and a real database: only
admins see it (an admin API token, or an admin's console session; a browser without one is sent
to the console's sign-in page), each department's admin sees and requeues only the failed jobs of
their own department (another's answers as an unknown job would), failed jobs show their error
redacted, "requeue" puts a failed job back with the session's CSRF token on a form's POST, and
the page speaks English or Marathi like the console.

Jobs are enqueued by our RQ dispatcher; where a test needs one failed without running our job
functions (which would need a worker's runtime), it is failed through RQ's own calls, as a
worker's failure handler makes it: the failed registry and a failure result with the trace."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job, JobStatus
from rq.results import Result
from sqlalchemy import select

from api_console import SESSION_COOKIE
from issuer import users, web_sessions
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.jobs import (
    DELIVER_QUEUE,
    SIGN_QUEUE,
    RQDispatcher,
    batch_job_id,
    delivery_job_id,
    issue_group_job_id,
    issue_job_id,
)
from issuer.models import AuditEvent, Batch, Delivery, Department, DigiLockerAccount, State
from issuer.tokens import create_token
from templates import web_dir
from tests import rts_records
from tests.conftest import Live, make_settings, serve

AADHAAR_LIKE = "2345 6789 0123"
OTHER = "ward-b"  # a second department beside the development one
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PASSWORD = "a long enough password 42"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def queued(tmp_path: Path, keys_dir: Path, redis_url: str, database_url: str) -> Iterator[Live]:
    settings = make_settings(tmp_path, database_url, keys_dir, redis_url=redis_url)
    yield from serve(settings)


def admin_token(live: Live, department: str = DEV_DEPARTMENT) -> str:
    with live.runtime.sessions() as session, session.begin():
        found = session.get(Department, department)
        assert found is not None
        return create_token(session, found, f"ops-{uuid.uuid4().hex[:6]}", "admin")


def bearer(live: Live, department: str = DEV_DEPARTMENT) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(live, department)}"}


def console_session(live: Live, role: str,
                    department: str = DEV_DEPARTMENT) -> tuple[str, str]:
    """A signed-in console session of a new `role` user: its cookie and CSRF token."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    with live.runtime.sessions() as session, session.begin():
        found = session.get(Department, department)
        assert found is not None
        users.add_user(session, found, name, "Test Person", role, PASSWORD, actor="test:setup")
    with live.runtime.sessions() as session, session.begin():
        signed = web_sessions.sign_in(session, name, PASSWORD)
    return signed.cookie, signed.csrf


def certificate(live: Live, department: str = DEV_DEPARTMENT) -> str:
    """An approved request of `department`, straight in the database."""
    return rts_records.request(live.runtime, datetime.now(UTC) + timedelta(days=5),
                               state=State.APPROVED, department=department)


def delivery(live: Live, certificate_id: str) -> int:
    with live.runtime.sessions() as session, session.begin():
        account = DigiLockerAccount(digilockerid=f"locker-{uuid.uuid4().hex[:8]}")
        session.add(account)
        session.flush()
        row = Delivery(certificate_id=certificate_id, account_id=account.id, action="A")
        session.add(row)
        session.flush()
        return row.id


def batch(live: Live, department: str = DEV_DEPARTMENT) -> str:
    batch_id = str(uuid.uuid4())
    with live.runtime.sessions() as session, session.begin():
        session.add(Batch(id=batch_id, department_id=department, cert_type="birth",
                          file_name="births.csv", file_format="csv",
                          content_sha256=uuid.uuid4().hex * 2, mode="valid_rows",
                          state="approved", total_rows=1, valid_rows=1, row_errors=[],
                          uploaded_by="test:clerk"))
    return batch_id


def fail(redis_url: str, queue_name: str, job_id: str,
         error: str = "RuntimeError: the TSA did not answer") -> str:
    """Fail queued job `job_id` as a worker's failure handler does: off its queue, marked
    failed, in the failed registry, with a failure result holding the trace."""
    with Redis.from_url(redis_url) as connection:
        queue = Queue(queue_name, connection=connection)
        job = Job.fetch(job_id, connection=connection)
        queue.remove(job)
        job.ended_at = datetime.now(UTC)
        trace = f"Traceback (most recent call last):\n  File \"worker.py\"\n{error}\n"
        with connection.pipeline() as pipe:
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            queue.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string=trace,
                                          pipeline=pipe)
            Result.create_failure(job, job.failure_ttl, exc_string=trace, pipeline=pipe)
            pipe.execute()
    return job_id


def failed_issue(live: Live, redis_url: str, department: str = DEV_DEPARTMENT,
                 error: str = "RuntimeError: the TSA did not answer") -> str:
    """A failed issue job of a new certificate of `department`."""
    certificate_id = certificate(live, department)
    RQDispatcher(redis_url).enqueue_issue(certificate_id)
    return fail(redis_url, SIGN_QUEUE, issue_job_id(certificate_id), error)


def failed_builtin(redis_url: str) -> str:
    """A job that really ran in an RQ worker and failed, not one of ours (no department)."""
    with Redis.from_url(redis_url) as connection:
        queue = Queue(SIGN_QUEUE, connection=connection)
        job = queue.enqueue_call("builtins.int", args=(f"not a number {AADHAAR_LIKE}",))
        SimpleWorker([queue], connection=connection).work(burst=True)
        assert job.get_status(refresh=True) == "failed"
        return str(job.id)


def anonymous(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=60, allow_redirects=False, **kwargs)


def post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, timeout=60, allow_redirects=False, **kwargs)


def shown(live: Live, headers: dict[str, str]) -> dict[str, Any]:
    answer = anonymous(live.url("/admin/rq/queues.json"), headers=headers)
    assert answer.status_code == 200, answer.text
    return {q["name"]: q for q in answer.json()["queues"]}


def failed_ids(queues: dict[str, Any], name: str) -> set[str]:
    return {job["id"] for job in queues[name]["failed"]}


def still_failed(redis_url: str, queue_name: str, job_id: str) -> bool:
    with Redis.from_url(redis_url) as connection:
        return job_id in Queue(queue_name, connection=connection).failed_job_registry


@SQLITE_ONLY
def test_anonymous_and_other_roles_are_refused(queued: Live) -> None:
    for path in ("/admin/rq/", "/admin/rq/queues.json", "/console/admin/rq/"):
        refused = anonymous(queued.url(path))  # a client's Accept: */*
        assert refused.status_code == 401, path
        assert refused.json()["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="pramaan"'
    clerk = queued.get("/admin/rq/queues.json")  # live's token is a clerk's
    assert clerk.status_code == 403 and clerk.json()["code"] == "forbidden"
    cookie, _ = console_session(queued, "officer")
    officer = anonymous(queued.url("/console/admin/rq/"), cookies={SESSION_COOKIE: cookie},
                        headers={"Accept": BROWSER_ACCEPT})
    assert officer.status_code == 403
    with queued.runtime.sessions() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
    assert len(denied) == 2


@SQLITE_ONLY
def test_an_anonymous_browser_is_sent_to_the_console_sign_in(queued: Live) -> None:
    browser = {"Accept": BROWSER_ACCEPT}
    for path in ("/admin/rq/", "/console/admin/rq/"):
        sent = anonymous(queued.url(path), headers=browser)
        assert sent.status_code == 303, (path, sent.text)
        assert sent.headers["Location"] == "/console/sign-in"
    ended = anonymous(queued.url("/console/admin/rq/"), headers=browser,
                      cookies={SESSION_COOKIE: "a-session-that-ended"})
    assert ended.status_code == 303 and ended.headers["Location"] == "/console/sign-in"
    sign_in = anonymous(queued.url("/console/sign-in"), headers=browser)
    assert sign_in.status_code == 200 and 'name="password"' in sign_in.text
    # The JSON endpoint, and a bearer client, get 401 and the challenge even from a browser.
    data = anonymous(queued.url("/admin/rq/queues.json"), headers=browser)
    assert data.status_code == 401 and data.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = anonymous(queued.url("/admin/rq/"),
                      headers={**browser, "Authorization": "Bearer pmn_not_a_token"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


def test_each_admin_sees_and_requeues_only_their_own_departments_failed_jobs(
        queued: Live, redis_url: str) -> None:
    rts_records.department(queued.runtime, OTHER)
    dispatcher = RQDispatcher(redis_url)
    mine = failed_issue(queued, redis_url)
    group_ids = [certificate(queued), certificate(queued)]
    dispatcher.enqueue_issues(group_ids)
    my_group = fail(redis_url, SIGN_QUEUE, issue_group_job_id(group_ids))
    my_batch = batch(queued)
    dispatcher.enqueue_batch(my_batch)
    fail(redis_url, SIGN_QUEUE, batch_job_id(my_batch))
    my_delivery = delivery(queued, certificate(queued))
    dispatcher.enqueue_delivery(my_delivery)
    fail(redis_url, DELIVER_QUEUE, delivery_job_id(my_delivery))
    theirs = failed_issue(queued, redis_url, OTHER)
    # Jobs of no department that can be told: a record gone, a group across two departments,
    # a group with one record gone, a function not ours.
    dispatcher.enqueue_issue("0e5b1c8e-0000-4000-8000-00000000dead")
    gone = fail(redis_url, SIGN_QUEUE, issue_job_id("0e5b1c8e-0000-4000-8000-00000000dead"))
    mixed_ids = [certificate(queued), certificate(queued, OTHER)]
    dispatcher.enqueue_issues(mixed_ids)
    mixed = fail(redis_url, SIGN_QUEUE, issue_group_job_id(mixed_ids))
    half_ids = [certificate(queued), "0e5b1c8e-0000-4000-8000-00000000beef"]
    dispatcher.enqueue_issues(half_ids)
    half = fail(redis_url, SIGN_QUEUE, issue_group_job_id(half_ids))
    builtin = failed_builtin(redis_url)

    a, b = bearer(queued), bearer(queued, OTHER)
    seen_by_a, seen_by_b = shown(queued, a), shown(queued, b)
    assert failed_ids(seen_by_a, "sign") == {mine, my_group, batch_job_id(my_batch)}
    assert failed_ids(seen_by_a, "deliver") == {delivery_job_id(my_delivery)}
    assert failed_ids(seen_by_b, "sign") == {theirs}
    assert failed_ids(seen_by_b, "deliver") == set()
    assert [seen_by_a["sign"]["yours"], seen_by_a["deliver"]["yours"]] == [{"failed": 3},
                                                                         {"failed": 1}]
    assert [seen_by_b["sign"]["yours"], seen_by_b["deliver"]["yours"]] == [{"failed": 1},
                                                                         {"failed": 0}]
    for seen in (seen_by_a, seen_by_b):  # the volume of all departments, the same for both
        assert seen["sign"]["counts"]["failed"] == 8 and seen["deliver"]["counts"]["failed"] == 1
    page_of_b = anonymous(queued.url("/admin/rq/"), headers=b)
    assert page_of_b.status_code == 200 and theirs in page_of_b.text
    for hidden in (mine, my_group, gone, mixed, half, builtin, batch_job_id(my_batch)):
        assert hidden not in page_of_b.text
    page_of_a = anonymous(queued.url("/admin/rq/"), headers=a)
    assert mine in page_of_a.text and theirs not in page_of_a.text
    for hidden in (gone, mixed, half, builtin):
        assert hidden not in page_of_a.text

    unknown = post(queued.url("/admin/rq/failed/sign/issue-no-such-job/requeue"), headers=b)
    assert unknown.status_code == 404
    for job_id in (mine, gone, mixed, half, builtin):
        refused = post(queued.url(f"/admin/rq/failed/sign/{job_id}/requeue"), headers=b)
        assert refused.status_code == 404, job_id
        assert refused.json() == {**unknown.json(), "detail": unknown.json()["detail"].replace(
            "issue-no-such-job", job_id)}
        assert still_failed(redis_url, SIGN_QUEUE, job_id)
    half_by_a = post(queued.url(f"/admin/rq/failed/sign/{half}/requeue"), headers=a)
    assert half_by_a.status_code == 404 and still_failed(redis_url, SIGN_QUEUE, half)
    with queued.runtime.sessions() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")
                                 .order_by(AuditEvent.seq)).all()
        requeued = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "job_requeued")).all()
    assert [(e.details["job"], e.details["reason"], e.details["department"]) for e in denied] \
        == [(job_id, "other_department", OTHER) for job_id in (mine, gone, mixed, half, builtin)] \
        + [(half, "other_department", DEV_DEPARTMENT)]
    assert requeued == []

    done = post(queued.url(f"/admin/rq/failed/sign/{theirs}/requeue"), headers=b)
    assert done.status_code == 200 and not still_failed(redis_url, SIGN_QUEUE, theirs)
    delivered = post(queued.url(f"/admin/rq/failed/deliver/{delivery_job_id(my_delivery)}"
                                "/requeue"), headers=a)
    assert delivered.status_code == 200, delivered.text
    assert shown(queued, a)["deliver"]["yours"] == {"failed": 0}


def test_a_workers_current_job_shows_only_to_its_departments_admin(queued: Live,
                                                                   redis_url: str) -> None:
    rts_records.department(queued.runtime, OTHER)
    certificate_id = certificate(queued)
    RQDispatcher(redis_url).enqueue_issue(certificate_id)
    with Redis.from_url(redis_url) as connection:
        worker = Worker([Queue(SIGN_QUEUE, connection=connection)], connection=connection,
                        name=f"w-{uuid.uuid4().hex[:6]}")
        worker.register_birth()
        worker.prepare_execution(Job.fetch(issue_job_id(certificate_id), connection=connection))
    for department, current in ((DEV_DEPARTMENT, issue_job_id(certificate_id)), (OTHER, None)):
        answer = anonymous(queued.url("/admin/rq/queues.json"),
                           headers=bearer(queued, department))
        (seen,) = answer.json()["workers"]
        assert seen["state"] == "busy" and seen["current_job"] == current, department


@SQLITE_ONLY
def test_an_admin_sees_the_queues_and_requeues_a_failed_job(queued: Live,
                                                             redis_url: str) -> None:
    job_id = failed_issue(queued, redis_url,
                          error=f"ValueError: invalid literal for int(): {AADHAAR_LIKE}")
    with Redis.from_url(redis_url) as connection:
        Queue("deliver", connection=connection).enqueue_call("worker.deliver_job", args=(7,))
    headers = bearer(queued)
    queues = shown(queued, headers)
    assert queues["sign"]["counts"]["failed"] == 1
    assert queues["deliver"]["counts"]["queued"] == 1
    (failed,) = queues["sign"]["failed"]
    assert failed["id"] == job_id and failed["function"] == "worker.issue_job"
    assert failed["error"].startswith("ValueError: invalid literal for int()")
    assert "XXXX XXXX 0123" in failed["error"]
    page = anonymous(queued.url("/admin/rq/"), headers=headers)
    assert page.status_code == 200 and job_id in page.text and "deliver" in page.text
    assert AADHAAR_LIKE not in page.text
    assert "<form" not in page.text  # a bearer token has no form to post

    requeued = post(queued.url(f"/admin/rq/failed/sign/{job_id}/requeue"), headers=headers)
    assert requeued.status_code == 200, requeued.text
    after = shown(queued, headers)
    assert after["sign"]["counts"] == {**queues["sign"]["counts"], "failed": 0, "queued": 1}
    again = post(queued.url(f"/admin/rq/failed/sign/{job_id}/requeue"), headers=headers)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    with queued.runtime.sessions() as session:
        (event,) = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "job_requeued")).all()
    assert event.details == {"queue": "sign", "job": job_id}


@SQLITE_ONLY
def test_a_console_admin_requeues_with_the_forms_csrf_token(queued: Live,
                                                            redis_url: str) -> None:
    job_id = failed_issue(queued, redis_url)
    cookie, csrf = console_session(queued, "admin")
    browser = requests.Session()
    browser.cookies.set(SESSION_COOKIE, cookie)
    page = browser.get(queued.url("/console/admin/rq/"), timeout=60)
    assert page.status_code == 200 and job_id in page.text
    assert f'value="{csrf}"' in page.text
    action = f"/console/admin/rq/failed/sign/{job_id}/requeue"
    assert f'action="{action}"' in page.text
    forged = browser.post(queued.url(action), data={"csrf": "guessed"}, timeout=60,
                          allow_redirects=False)
    assert forged.status_code == 403
    bare = browser.post(queued.url(action), timeout=60, allow_redirects=False)
    assert bare.status_code == 403
    posted = browser.post(queued.url(action), data={"csrf": csrf}, timeout=60,
                          allow_redirects=False)
    assert posted.status_code == 303, posted.text
    assert posted.headers["Location"].endswith("/console/admin/rq/")
    with Redis.from_url(redis_url) as connection:
        queue = Queue(SIGN_QUEUE, connection=connection)
        assert queue.failed_job_registry.count == 0 and queue.job_ids == [job_id]


@SQLITE_ONLY
def test_the_page_speaks_marathi_and_english(queued: Live, redis_url: str) -> None:
    rts_records.department(queued.runtime, OTHER)
    failed_issue(queued, redis_url)
    mr = text("mr")
    cookie, _ = console_session(queued, "admin")
    browser = requests.Session()
    browser.cookies.set(SESSION_COOKIE, cookie)
    page = browser.get(queued.url("/console/admin/rq/?lang=mr"), timeout=60)
    assert page.status_code == 200 and page.headers["Content-Language"] == "mr"
    assert '<html lang="mr">' in page.text
    for key in ("rq_title", "rq_scope", "rq_all_departments", "rq_count_failed",
                "rq_failed_yours", "rq_yours_count", "rq_job", "rq_function", "rq_error",
                "rq_action", "rq_requeue", "rq_workers", "rq_no_workers"):
        assert mr[key] in page.text, key
    english = browser.get(queued.url("/console/admin/rq/?lang=en"), timeout=60)
    assert text("en")["rq_requeue"] in english.text and mr["rq_requeue"] not in english.text
    cookie_b, _ = console_session(queued, "admin", OTHER)
    empty = requests.get(queued.url("/console/admin/rq/"), timeout=60,
                         cookies={SESSION_COOKIE: cookie_b}, headers={"Accept-Language": "mr"})
    assert mr["rq_no_failed"] in empty.text and mr["rq_requeue"] not in empty.text


def text(lang: str) -> dict[str, str]:
    words = json.loads((web_dir() / "queues_text.json").read_text(encoding="utf-8"))
    return {key: value[lang] for key, value in words.items()}


def test_every_word_of_the_page_is_in_both_languages_and_its_own() -> None:
    words = json.loads((web_dir() / "queues_text.json").read_text(encoding="utf-8"))
    console = json.loads((web_dir() / "console_text.json").read_text(encoding="utf-8"))
    assert all(set(value) == {"en", "mr"} and all(value.values()) for value in words.values())
    assert not set(words) & set(console)  # nothing of the console's frame is replaced
