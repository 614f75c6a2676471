"""The group issue job (issuer/issue_group.py): a batch's certificates issued a group at a time
with two transactions for the group, each record still issued once with its own `seal` and
`sign` events, and what does not fit the group issued alone. Real database (SQLite and
PostgreSQL), real rendering and signing, real Redis for the dispatch."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import event, func, select, update

import issuer.issue_group as issue_group
from issuer.audit import verify_chain
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import as_utc, utcnow
from issuer.issue import RESUME_AFTER, Intent, issue_certificate
from issuer.issue_group import GROUP, GROUP_TIMES, issue_certificates
from issuer.jobs import (
    ISSUE_GROUP_JOB,
    RQDispatcher,
    group_key,
    issue_group_job_id,
    issue_job_id,
)
from issuer.models import AuditEvent, Certificate, Delivery, Department, DigiLockerAccount
from issuer.runtime import Runtime
from issuer.submit import submit
from tests.conftest import Live
from tests.test_batches import births
from tests.test_issue_once import events


def approved(runtime: Runtime, count: int, first: int = 1) -> list[str]:
    """Records submitted and approved (the development department approves at once), nothing
    enqueued."""
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return [submit(session, department, "test:clerk", row).id
                for row in births(count, first)]


def states(runtime: Runtime, ids: list[str]) -> list[str]:
    with runtime.sessions() as session:
        found = dict(session.execute(select(Certificate.id, Certificate.state)
                                     .where(Certificate.id.in_(ids))).all())
    return [found.get(i, "missing") for i in ids]


def commits_while(runtime: Runtime) -> list[int]:
    """A counter of the engine's commits (appended to from now on)."""
    seen: list[int] = []
    event.listen(runtime.engine, "commit", lambda _conn: seen.append(1))
    return seen


def set_record(runtime: Runtime, cert_id: str, **values: object) -> None:
    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id).values(**values))


def test_a_group_is_issued_in_two_transactions_each_record_once_with_its_events(
        live: Live) -> None:
    runtime = live.runtime
    ids = approved(runtime, 5)
    commits = commits_while(runtime)

    assert issue_certificates(runtime, ids) == 5

    assert len(commits) == 2, "one transaction records the intents, one marks them issued"
    assert states(runtime, ids) == ["issued"] * 5
    for cert_id in ids:
        assert events(runtime, cert_id, "seal") == 1
        assert events(runtime, cert_id, "sign") == 1
    with runtime.sessions() as session:
        assert verify_chain(session).ok
        signed = session.get(Certificate, ids[0])
        assert signed is not None
        sign = session.scalars(select(AuditEvent).where(
            AuditEvent.certificate_id == ids[0], AuditEvent.action == "sign")).one()
        assert sign.details == {"number": signed.number, "pdf_sha256": signed.pdf_sha256,
                                "level": "PAdES-B-T"}
        pdfs = session.scalars(select(Certificate.pdf_sha256).where(
            Certificate.id.in_(ids))).all()
    assert len(set(pdfs)) == 5, "each record its own PDF"
    pdf = live.get(f"/api/v1/certificates/{ids[2]}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    assert issue_certificates(runtime, ids) == 0, "a second run finds them issued"
    assert sum(events(runtime, cert_id, "sign") for cert_id in ids) == 5


def test_a_group_passes_over_what_is_not_workable_and_resumes_what_was_abandoned(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = live.runtime
    fresh, abandoned, busy, done = approved(runtime, 4)
    assert issue_certificate(runtime, done)
    for cert_id in (abandoned, busy):  # both got as far as their intent, then their run died
        with runtime.sessions() as session, session.begin():
            record = session.get(Certificate, cert_id)
            assert record is not None
            record.state = "signing"
            record.issued_at = utcnow().replace(microsecond=0)
            record.seal_text = "https://verify.example/v#not-a-real-seal"
            record.template_version = "birth/1"
    set_record(runtime, abandoned, updated_at=utcnow() - RESUME_AFTER - timedelta(seconds=5))
    set_record(runtime, busy, updated_at=utcnow())  # still being signed by its worker
    real_produce = issue_group.produce
    touched: list[bool] = []

    def produce_and_look(rt: Runtime, intent: Intent, *args: object) -> bytes:
        if intent.id == abandoned:  # resuming touched it: no third run takes it meanwhile
            with rt.sessions() as session:
                record = session.get(Certificate, abandoned)
                assert record is not None
                touched.append(as_utc(record.updated_at) > utcnow() - RESUME_AFTER)
        return real_produce(rt, intent, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(issue_group, "produce", produce_and_look)
    issued = issue_certificates(runtime, [fresh, abandoned, busy, done, "no-such-id"])
    assert touched == [True]

    assert issued == 2
    assert states(runtime, [fresh, abandoned, busy, done]) == [
        "issued", "issued", "signing", "issued"]
    assert events(runtime, abandoned, "seal") == 0, "resumed from its recorded intent"
    assert events(runtime, abandoned, "sign") == 1
    assert events(runtime, busy, "sign") == 0
    assert events(runtime, done, "sign") == 1, "the issued one is not signed again"


def test_a_record_whose_pdf_cannot_be_made_fails_alone_and_the_group_goes_on(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    good, bad, other = approved(runtime, 3)
    set_record(runtime, bad, state="signing", issued_at=utcnow().replace(microsecond=0),
               seal_text="https://verify.example/v#x", template_version="birth/99",
               updated_at=utcnow() - RESUME_AFTER - timedelta(seconds=5))

    with caplog.at_level(logging.INFO, logger="issuer.issue_group"), \
            pytest.raises(ValueError, match="birth/99"):
        issue_certificates(runtime, [good, bad, other])

    assert f"group of 3: 2 issued; {GROUP_TIMES}" in caplog.text

    assert states(runtime, [good, bad, other]) == ["issued", "signing", "issued"]
    with runtime.sessions() as session:
        failed = session.get(Certificate, bad)
        assert failed is not None
        assert failed.attempts == 1 and "birth/99" in (failed.last_error or "")
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "sign")) == 2


def test_a_record_without_a_number_goes_alone_and_fails_there_with_its_reason(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    unnumbered, good = approved(runtime, 2)
    set_record(runtime, unnumbered, number=None)

    with pytest.raises(Exception, match="lacks a number"):  # first: the rest still go on
        issue_certificates(runtime, [unnumbered, good])

    assert "one at a time" not in caplog.text, "the group itself went on without it"

    assert states(runtime, [good, unnumbered]) == ["issued", "approved"]
    with runtime.sessions() as session:
        failed = session.get(Certificate, unnumbered)
        assert failed is not None and failed.attempts == 1


def test_a_correction_in_a_group_supersedes_the_certificate_it_corrects(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    (original,) = approved(runtime, 1)
    assert issue_certificate(runtime, original)
    corrected = {**births(1)[0], "corrects": original}
    corrected["child"]["name"]["en"] = "Corrected Name"
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        correction = submit(session, department, "test:clerk", corrected).id
    (plain,) = approved(runtime, 1, first=50)

    assert issue_certificates(runtime, [correction, plain]) == 2

    assert states(runtime, [original, correction, plain]) == ["superseded", "issued", "issued"]
    assert "one at a time" not in caplog.text, "the correction went alone, the group on"
    for cert_id in (correction, plain):  # each with its own signed PDF, stored and recorded
        assert events(runtime, cert_id, "sign") == 1
        pdf = live.get(f"/api/v1/certificates/{cert_id}/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert events(runtime, original, "supersede") == 1
    with runtime.sessions() as session:
        assert verify_chain(session).ok


def test_a_chunk_is_queued_as_group_jobs_and_the_sweeper_leaves_a_queued_group_alone(
        redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    dispatcher = RQDispatcher(redis_url)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(GROUP + 3)]

    dispatcher.enqueue_issues(ids)

    jobs = dispatcher.queue.get_jobs()
    assert [job.id for job in jobs] == [issue_group_job_id(ids[:GROUP]),
                                        issue_group_job_id(ids[GROUP:])]
    assert jobs[0].func_name == ISSUE_GROUP_JOB and jobs[1].args == (ids[GROUP:],)
    assert redis.get(group_key(ids[-1])) == issue_group_job_id(ids[GROUP:]).encode()

    dispatcher.enqueue_issue(ids[-1])  # what the sweeper does for a record it finds waiting
    assert dispatcher.queue.count == 2, "its group is queued: no job of its own"

    jobs[1].delete()  # the group ran (or was lost) and the record is still waiting
    dispatcher.enqueue_issue(ids[-1])
    assert [job.id for job in dispatcher.queue.get_jobs()][-1] == issue_job_id(ids[-1])
    redis.flushdb()


def test_a_record_cancelled_while_its_pdf_was_made_is_not_marked_issued(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    real_produce = issue_group.produce

    def produce_while_an_operator_cancels(rt: Runtime, intent: Intent, *args: object) -> bytes:
        if intent.id == ids[1]:
            set_record(rt, intent.id, state="cancelled")
        return real_produce(rt, intent, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(issue_group, "produce", produce_while_an_operator_cancels)

    assert issue_certificates(runtime, ids) == 2

    assert states(runtime, ids) == ["issued", "cancelled", "issued"]
    with runtime.sessions() as session:
        cancelled = session.get(Certificate, ids[1])
        assert cancelled is not None and cancelled.pdf_sha256 is None
    assert [events(runtime, cert_id, "sign") for cert_id in ids] == [1, 0, 1]


def test_a_record_linked_to_a_locker_gets_its_push_planned_and_the_others_none(
        live: Live) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    with runtime.sessions() as session, session.begin():
        account = DigiLockerAccount(digilockerid="group-test-locker", name="A Citizen")
        session.add(account)
        session.flush()
        linked = session.get(Certificate, ids[2])
        assert linked is not None
        linked.digilocker_account_id = account.id

    assert issue_certificates(runtime, ids) == 3

    with runtime.sessions() as session:
        planned = session.execute(select(Delivery.certificate_id, Delivery.action)).all()
    assert [tuple(row) for row in planned] == [(ids[2], "A")]


def test_a_group_reports_its_stage_times_to_the_caller_and_the_log(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    timings: dict[str, float] = {"qr": 1.0}  # added to, not replaced

    with caplog.at_level(logging.INFO, logger="issuer.issue_group"):
        assert issue_certificates(runtime, ids, timings=timings) == 3

    assert set(timings) == {"intents", "seal", "qr", "render", "sign", "store", "mark"}
    assert timings["qr"] > 1.0 and all(seconds > 0 for seconds in timings.values())
    assert timings["intents"] > timings["seal"], "the seal is recorded within the intents"
    (line,) = [r.getMessage() for r in caplog.records if GROUP_TIMES in r.getMessage()]
    head, figures = line.split(f" {GROUP_TIMES} ")
    assert head == "group of 3: 3 issued;"
    logged = json.loads(figures)
    assert set(logged) == set(timings)
    assert logged["render"] == pytest.approx(timings["render"] * 1000, abs=0.01)
