"""Every failure has a way out: canonical requests, bounded attempts, `failed`, retry, cancel;
a seal of a record that is not issued never verifies."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from digilocker.deliveries import plan_issued
from issuer.certtypes import cert_type
from issuer.db import as_utc
from issuer.errors import InvalidTransition
from issuer.issue import MAX_ATTEMPTS, RESUME_AFTER, issue_certificate
from issuer.models import AuditEvent, Certificate
from issuer.recovery import cancel, retry
from issuer.render import Renderer
from issuer.sweep import sweep
from issuer.verify import verify_pdf, verify_qr
from signing.validate import validate_pdf
from templates import fonts_dir, templates_dir
from tests.conftest import Live, sample, wait_for_a_blocked_backend


def record_of(live: Live, cert_id: str) -> Certificate:
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        return record


def events(live: Live, cert_id: str, action: str) -> int:
    with live.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.certificate_id == cert_id, AuditEvent.action == action)) or 0


def make_stale(live: Live, cert_id: str) -> None:
    """As if the last touch was long ago: the sweeper and the resume rule may take it."""
    stale = record_of(live, cert_id).updated_at - RESUME_AFTER - timedelta(seconds=5)
    with live.runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id)
                        .values(updated_at=stale))


@pytest.fixture
def broken_renderer(live: Live, tmp_path: Path) -> Renderer:
    """A real typst renderer whose birth template panics, as a template bug would."""
    root = tmp_path / "broken-templates"
    shutil.copytree(templates_dir(), root, ignore=shutil.ignore_patterns("fonts", "web"))
    current = cert_type("birth")
    assert current is not None
    (root / f"{current.template_version}.typ").write_text(
        '#panic("template bug: cannot lay out this record")\n', encoding="utf-8")
    renderer = Renderer(templates_root=root, fonts=fonts_dir())
    live.runtime.__dict__["renderer"] = renderer
    return renderer


def test_null_optional_field_is_stored_canonical_and_issues(live: Live) -> None:
    data = sample("birth-1")
    data["father"] = None
    data["remarks"] = None
    response = live.post_json("/api/v1/certificates", data)
    assert response.status_code == 202, response.text
    record = record_of(live, response.json()["id"])
    assert record.state == "issued", record.last_error
    assert "father" not in record.request and "remarks" not in record.request
    assert None not in record.request.values()


def test_a_record_stored_with_null_before_the_fix_still_renders(live: Live) -> None:
    """Records stored by earlier versions kept the null; they render from the canonical form."""
    cert_id = live.post_json("/api/v1/certificates", sample("birth-2")).json()["id"]
    with live.runtime.sessions() as session, session.begin():
        record = session.get(Certificate, cert_id)
        assert record is not None
        record.request = {**record.request, "father": None}
        record.state, record.pdf_path, record.pdf_sha256 = "approved", None, None
        record.seal_text = record.fields_sha256 = None
    assert issue_certificate(live.runtime, cert_id) is True
    assert record_of(live, cert_id).state == "issued"


def test_failures_are_counted_then_failed_visible_audited_and_left_alone(
    live: Live, broken_renderer: Renderer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="issuer.issue")
    response = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert response.status_code == 202  # accepted: the request itself was valid
    cert_id = response.json()["id"]
    first = live.get(f"/api/v1/certificates/{cert_id}").json()
    assert first["state"] == "signing" and first["attempts"] == 1
    assert "template bug" in first["last_error"]
    assert any(r.getMessage().startswith(f"issue {cert_id} failed (attempt 1 of {MAX_ATTEMPTS}): "
                                         "TypstError") for r in caplog.records)
    for attempt in range(2, MAX_ATTEMPTS + 1):
        make_stale(live, cert_id)
        assert sweep(live.runtime, older_than_seconds=0) == 1  # inline: runs the job now
        assert record_of(live, cert_id).attempts == attempt
    shown = live.get(f"/api/v1/certificates/{cert_id}").json()
    assert shown["state"] == "failed" and shown["attempts"] == MAX_ATTEMPTS
    assert "template bug" in shown["last_error"]
    assert events(live, cert_id, "fail") == 1
    make_stale(live, cert_id)
    assert sweep(live.runtime, older_than_seconds=0) == 0, "failed records are not retried forever"
    assert issue_certificate(live.runtime, cert_id) is False  # a late job does nothing
    assert record_of(live, cert_id).state == "failed"


def fail_record(live: Live, data_name: str = "birth-1") -> str:
    cert_id = live.post_json("/api/v1/certificates", sample(data_name)).json()["id"]
    for _ in range(MAX_ATTEMPTS - 1):
        make_stale(live, cert_id)
        sweep(live.runtime, older_than_seconds=0)
    assert record_of(live, cert_id).state == "failed"
    return cert_id


def test_retry_after_the_fix_issues_with_a_fresh_seal(live: Live,
                                                      broken_renderer: Renderer) -> None:
    cert_id = fail_record(live)
    stale_seal = record_of(live, cert_id).seal_text
    assert stale_seal is not None
    live.runtime.__dict__["renderer"] = Renderer()  # the template is fixed
    with live.runtime.sessions() as session, session.begin():
        retry(session, cert_id, "cli:operator")
    live.runtime.dispatcher.enqueue_issue(cert_id)
    done = record_of(live, cert_id)
    assert done.state == "issued" and done.attempts == 0 and done.last_error is None
    assert events(live, cert_id, "retry") == 1 and events(live, cert_id, "sign") == 1
    assert verify_qr(live.runtime, done.seal_text or "").current
    with live.runtime.sessions() as session, session.begin(), pytest.raises(InvalidTransition):
        retry(session, cert_id, "cli:operator")  # only failed records are retried


def test_failed_or_cancelled_never_blocks_a_corrected_resubmission(
    live: Live, broken_renderer: Renderer
) -> None:
    failed_id = fail_record(live)
    live.runtime.__dict__["renderer"] = Renderer()
    again = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert again.status_code == 202, again.text
    assert record_of(live, again.json()["id"]).state == "issued"
    with live.runtime.sessions() as session, session.begin(), pytest.raises(
        InvalidTransition, match="cancel this one"
    ):
        retry(session, failed_id, "cli:operator")  # the registration is taken by the new one
    assert record_of(live, failed_id).state == "failed"
    with live.runtime.sessions() as session, session.begin():
        cancel(session, failed_id, "cli:operator", "superseded by a corrected request")
    assert record_of(live, failed_id).state == "cancelled"
    assert events(live, failed_id, "cancel") == 1


def test_cancel_frees_the_registration_and_a_late_job_cannot_issue(live: Live,
                                                                   broken_renderer: Renderer
                                                                   ) -> None:
    cert_id = live.post_json("/api/v1/certificates", sample("birth-2")).json()["id"]
    assert record_of(live, cert_id).state == "signing"
    with live.runtime.sessions() as session, session.begin():
        cancel(session, cert_id, "cli:operator", "wrong ward")
    live.runtime.__dict__["renderer"] = Renderer()
    make_stale(live, cert_id)
    assert issue_certificate(live.runtime, cert_id) is False
    assert record_of(live, cert_id).state == "cancelled"
    assert live.post_json("/api/v1/certificates", sample("birth-2")).status_code == 202
    with live.runtime.sessions() as session, session.begin(), pytest.raises(InvalidTransition):
        cancel(session, cert_id, "cli:operator", "again")


# PostgreSQL only: SQLite's writer locks the whole database, no row locks to tell apart.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_cancel_while_the_job_marks_the_record_issued_waits_and_is_refused(
    live: Live, broken_renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job's transaction has marked the record issued (row locked, not yet committed) when
    # an operator cancels it: the cancel must wait and then see it issued. Read without the
    # lock, it would cancel an issued certificate and release its number for another.
    cert_id = live.post_json("/api/v1/certificates", sample("birth-2")).json()["id"]
    sealed = record_of(live, cert_id)
    assert sealed.state == "signing" and sealed.number
    live.runtime.__dict__["renderer"] = Renderer()
    make_stale(live, cert_id)
    outcome: list[str] = []

    def operator() -> None:
        try:
            with live.runtime.sessions() as session, session.begin():
                cancel(session, cert_id, "cli:operator", "wrong ward")
            outcome.append("cancelled")
        except InvalidTransition as exc:
            outcome.append(str(exc))

    cancelling = threading.Thread(target=operator)

    def plan_issued_while_cancelled(session: Session, certificate_id: str) -> object:
        cancelling.start()
        wait_for_a_blocked_backend(live, "the cancel")
        return plan_issued(session, certificate_id)

    monkeypatch.setattr("issuer.issue.plan_issued", plan_issued_while_cancelled)
    assert issue_certificate(live.runtime, cert_id) is True
    cancelling.join(timeout=60)
    assert outcome == [f"certificate {cert_id} is issued and cannot be cancelled"]
    record = record_of(live, cert_id)
    assert (record.state, record.number) == ("issued", sealed.number)
    assert events(live, cert_id, "cancel") == 0


def test_issued_certificates_cannot_be_cancelled(live: Live) -> None:
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    with live.runtime.sessions() as session, session.begin(), pytest.raises(InvalidTransition):
        cancel(session, cert_id, "cli:operator", "changed my mind")
    assert record_of(live, cert_id).state == "issued"


def test_seal_of_a_record_that_is_not_issued_is_not_genuine(live: Live,
                                                             broken_renderer: Renderer) -> None:
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    record = record_of(live, cert_id)
    assert record.state == "signing" and record.seal_text
    verdict = verify_qr(live.runtime, record.seal_text).as_dict()
    assert verdict["genuine"] is False and verdict["reason"] == "issued: not_issued"
    fail_record_id = fail_record(live, "birth-2")
    failed = record_of(live, fail_record_id)
    assert verify_qr(live.runtime, failed.seal_text or "").as_dict()["reason"] == (
        "issued: not_issued")


def test_resumed_job_signs_with_the_recorded_issue_time(live: Live,
                                                        broken_renderer: Renderer) -> None:
    """The PDF's signing time is the intent's (the seal's iat), not the clock of the run that
    happens to finish the job."""
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    sealed = record_of(live, cert_id)  # the intent is recorded, then rendering failed
    assert sealed.state == "signing" and sealed.issued_at is not None
    issued_at = as_utc(sealed.issued_at)
    time.sleep(1.2)  # a later run: CMS signing time has whole seconds
    live.runtime.__dict__["renderer"] = Renderer()
    make_stale(live, cert_id)
    assert issue_certificate(live.runtime, cert_id) is True
    record = record_of(live, cert_id)
    assert record.pdf_path and record.pdf_sha256
    pdf = live.runtime.store.get(record.pdf_path, record.pdf_sha256)
    report = validate_pdf(pdf, live.runtime.trust.trust_root_paths)
    assert report.ok and report.signing_time == issued_at
    assert record.issued_at is not None and as_utc(record.issued_at) == issued_at
    assert verify_pdf(live.runtime, pdf).current


def test_cli_retry_and_cancel(tmp_path: Path) -> None:
    """`pramaan retry ID` and `pramaan cancel ID --reason` as an operator runs them."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_URL", "REDIS_URL"))}
    env["PRAMAAN_HOME"] = str(tmp_path)

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)

    assert pramaan("init").returncode == 0
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'pramaan.db'}")
    data = tmp_path / "birth.json"
    ids = []
    for name in ("birth-1", "birth-2"):
        data.write_text(json.dumps(sample(name)), encoding="utf-8")
        issued = pramaan("issue", "--data", str(data))
        assert issued.returncode == 0, issued.stderr
        ids.append(json.loads(issued.stdout)["id"])
    with engine.begin() as conn:  # as if both had failed MAX_ATTEMPTS times
        conn.execute(text("UPDATE certificates SET state = 'failed', attempts = 3, "
                          "last_error = 'TypstError: boom', pdf_path = NULL, pdf_sha256 = NULL"))
    engine.dispose()
    retried = pramaan("retry", ids[0], "--actor", "registrar-desk-2")
    assert retried.returncode == 0, retried.stderr
    report = json.loads(retried.stdout)
    assert report["state"] == "issued" and report["attempts"] == 0 and report["last_error"] is None
    assert pramaan("retry", ids[0]).returncode == 2  # issued now: nothing to retry
    no_reason = pramaan("cancel", ids[1])
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    cancelled = pramaan("cancel", ids[1], "--reason", "duplicate entry in the register")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["state"] == "cancelled"
    unknown = pramaan("retry", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 2 and "not_found" in unknown.stderr
    audit = pramaan("audit-verify")
    assert audit.returncode == 0, audit.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'pramaan.db'}")
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action, actor FROM audit_events WHERE action IN "
                                    "('retry', 'cancel') ORDER BY seq")).all()
    engine.dispose()
    assert [a for a, _ in actions] == ["retry", "cancel"]
    assert actions[0][1] == "cli:registrar-desk-2"
