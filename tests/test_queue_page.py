"""The operators' queue page (api_queues.py) against a real Redis: only admins see it (an
admin API token, or an admin's console session), failed jobs show their error redacted, and
"requeue" puts a failed job back, with the session's CSRF token on a form's POST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from api_console import SESSION_COOKIE
from issuer import users, web_sessions
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.jobs import SIGN_QUEUE
from issuer.models import AuditEvent, Department
from issuer.tokens import create_token
from tests.conftest import Live, make_settings, serve

AADHAAR_LIKE = "2345 6789 0123"


@pytest.fixture
def queued(tmp_path: Path, keys_dir: Path, redis_url: str) -> Iterator[Live]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir,
                             redis_url=redis_url)
    yield from serve(settings)


def admin_token(live: Live) -> str:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return create_token(session, department, f"ops-{uuid.uuid4().hex[:6]}", "admin")


def console_session(live: Live, role: str) -> tuple[str, str]:
    """A signed-in console session of a new `role` user: its cookie and CSRF token."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        users.add_user(session, department, name, "Test Person", role,
                       "a long enough password 42", actor="test:setup")
    with live.runtime.sessions() as session, session.begin():
        signed = web_sessions.sign_in(session, name, "a long enough password 42")
    return signed.cookie, signed.csrf


def failed_job(redis_url: str) -> str:
    """A job that really ran in an RQ worker and failed (int() of a non-number)."""
    with Redis.from_url(redis_url) as connection:
        queue = Queue(SIGN_QUEUE, connection=connection)
        job = queue.enqueue_call("builtins.int", args=(f"not a number {AADHAAR_LIKE}",))
        SimpleWorker([queue], connection=connection).work(burst=True)
        assert job.get_status(refresh=True) == "failed"
        return str(job.id)


def anonymous(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=60, **kwargs)


def test_anonymous_and_other_roles_are_refused(queued: Live) -> None:
    for path in ("/admin/rq/", "/admin/rq/queues.json", "/console/admin/rq/"):
        refused = anonymous(queued.url(path))
        assert refused.status_code == 401, path
        assert refused.json()["code"] == "unauthorized"
    clerk = queued.get("/admin/rq/queues.json")  # live's token is a clerk's
    assert clerk.status_code == 403 and clerk.json()["code"] == "forbidden"
    cookie, _ = console_session(queued, "officer")
    officer = anonymous(queued.url("/console/admin/rq/"), cookies={SESSION_COOKIE: cookie})
    assert officer.status_code == 403
    with queued.runtime.sessions() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "denied")).all()
    assert len(denied) == 2


def test_an_admin_sees_the_queues_and_requeues_a_failed_job(queued: Live,
                                                             redis_url: str) -> None:
    job_id = failed_job(redis_url)
    with Redis.from_url(redis_url) as connection:
        Queue("deliver", connection=connection).enqueue_call("worker.deliver_job", args=(7,))
    headers = {"Authorization": f"Bearer {admin_token(queued)}"}
    shown = anonymous(queued.url("/admin/rq/queues.json"), headers=headers)
    assert shown.status_code == 200, shown.text
    queues = {q["name"]: q for q in shown.json()["queues"]}
    assert queues["sign"]["counts"]["failed"] == 1
    assert queues["deliver"]["counts"]["queued"] == 1
    (failed,) = queues["sign"]["failed"]
    assert failed["id"] == job_id and failed["function"] == "builtins.int"
    assert failed["error"].startswith("ValueError: invalid literal for int()")
    assert AADHAAR_LIKE not in shown.text and "XXXX XXXX 0123" in failed["error"]
    page = anonymous(queued.url("/admin/rq/"), headers=headers)
    assert page.status_code == 200 and job_id in page.text and "deliver" in page.text
    assert "<form" not in page.text  # a bearer token has no form to post

    requeued = requests.post(queued.url(f"/admin/rq/failed/sign/{job_id}/requeue"),
                             headers=headers, timeout=60)
    assert requeued.status_code == 200, requeued.text
    after = {q["name"]: q for q in anonymous(queued.url("/admin/rq/queues.json"),
                                             headers=headers).json()["queues"]}
    assert after["sign"]["counts"] == {**queues["sign"]["counts"], "failed": 0, "queued": 1}
    again = requests.post(queued.url(f"/admin/rq/failed/sign/{job_id}/requeue"),
                          headers=headers, timeout=60)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    with queued.runtime.sessions() as session:
        (event,) = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "job_requeued")).all()
    assert event.details == {"queue": "sign", "job": job_id}


def test_a_console_admin_requeues_with_the_forms_csrf_token(queued: Live,
                                                            redis_url: str) -> None:
    job_id = failed_job(redis_url)
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
