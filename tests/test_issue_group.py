"""The group issue job (issuer/issue_group.py): a batch's certificates issued a group at a time
with two transactions for the group, each record still issued once with its own `seal` and
`sign` events, and what does not fit the group issued alone. Real database (SQLite and
PostgreSQL), real rendering and signing, real Redis for the dispatch."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Connection, event, func, select, update
from sqlalchemy.exc import DBAPIError

import issuer.issue_group as issue_group
from issuer.audit import verify_chain
from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.db import as_utc, lost_connection, utcnow
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
from signing.errors import ServiceUnavailable
from tests.conftest import Live, make_settings
from tests.test_batches import births
from tests.test_digilocker_e2e import free_port
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


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


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
        live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
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
    with caplog.at_level(logging.WARNING, logger="issuer.issue_group"):
        issued = issue_certificates(runtime, [fresh, abandoned, busy, done, "no-such-id"])
    assert touched == [True]
    assert messages(caplog, "issuer.issue_group") == [
        f"issue {abandoned}: resuming an abandoned signing from its recorded intent"]

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
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
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

    assert "one at a time" not in caplog.text, "planned in the group's own transaction"
    with runtime.sessions() as session:
        planned = session.execute(
            select(Delivery.certificate_id, Delivery.action, Delivery.attempts)).all()
    # Handed on after the commit: the inline dispatcher of a process without Redis tries it at
    # once (DigiLocker is not configured here: the row waits for its next try).
    assert [tuple(row) for row in planned] == [(ids[2], "A", 1)]


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
    assert list(logged) == sorted(logged), "in one order, run after run"
    assert all(round(ms, 2) == ms for ms in logged.values()), "to the hundredth of a ms"
    issued = [m for m in messages(caplog, "issuer.issue_group") if m.startswith("issued ")]
    assert issued == [f"issued {cert_id}" for cert_id in ids], "one line per record issued"


# --- faults: the database lost under a statement, or refusing one --------------------------

def fault(runtime: Runtime, hits: Callable[[str], bool], *, times: int = 1,
          refuse: bool = False) -> list[str]:
    """From now on, the next `times` statements that `hits` fail: the connection closed under
    them (an outage, as a job sees one: `lost_connection`), or, with `refuse`, sent to a table
    that does not exist (the statement's own error: not waited for). The statements hit."""
    hit: list[str] = []

    def before(conn: Connection, _cursor: object, statement: str, parameters: object,
               _context: object, _many: bool) -> tuple[str, object]:
        if len(hit) < times and hits(statement):
            hit.append(statement)
            if refuse:
                return statement.replace("UPDATE certificates", "UPDATE no_such_table", 1), \
                    parameters
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            dbapi.close()
        return statement, parameters

    event.listen(runtime.engine, "before_cursor_execute", before, retval=True)
    return hit


def group_claim(sql: str) -> bool:
    return sql.startswith("UPDATE certificates SET updated_at") and " IN (" in sql


def single_claim(sql: str) -> bool:
    return sql.startswith("UPDATE certificates SET updated_at") and " IN (" not in sql


def group_mark(sql: str) -> bool:
    return sql.startswith("UPDATE certificates SET state") and "CASE" in sql


def supersession(sql: str) -> bool:
    return sql.startswith("UPDATE certificates SET state") and "superseded_by" in sql


def correction_of_one(runtime: Runtime, *, locker: bool = False) -> tuple[str, str]:
    """A certificate issued alone (linked to a locker, its push delivered, if `locker`), and an
    approved correction of it: (original, correction)."""
    (original,) = approved(runtime, 1, first=80)
    if locker:
        with runtime.sessions() as session, session.begin():
            account = DigiLockerAccount(digilockerid="group-correction-locker", name="A Citizen")
            session.add(account)
            session.flush()
            session.execute(update(Certificate).where(Certificate.id == original)
                            .values(digilocker_account_id=account.id))
    assert issue_certificate(runtime, original)
    if locker:
        with runtime.sessions() as session, session.begin():
            session.execute(update(Delivery).where(Delivery.certificate_id == original)
                            .values(state="delivered"))
    corrected = {**births(1, 80)[0], "corrects": original}
    corrected["child"]["name"]["en"] = "Corrected Name"
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return original, submit(session, department, "test:clerk", corrected).id


def failures(runtime: Runtime, ids: list[str]) -> list[tuple[int, str]]:
    """(attempts counted, error kept) of each record."""
    with runtime.sessions() as session:
        found = {r.id: (r.attempts or 0, r.last_error or "") for r in session.scalars(
            select(Certificate).where(Certificate.id.in_(ids)))}
    return [found[i] for i in ids]


def test_an_outage_recording_a_groups_intents_is_raised_and_counted_on_no_record(
        live: Live) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    fault(runtime, group_claim)  # once: a job that waited at all would find it back

    with pytest.raises(DBAPIError) as raised:
        issue_certificates(runtime, ids)  # the default patience waits for nothing

    assert lost_connection(raised.value)
    assert states(runtime, ids) == ["approved"] * 3, "nothing issued alone either"
    error = type(raised.value).__name__
    for attempts, last_error in failures(runtime, ids):
        assert attempts == 0 and last_error.startswith(f"{error}: "), "kept, not counted"


def test_an_outage_marking_a_group_issued_is_raised_and_counted_on_no_record(
        live: Live) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    fault(runtime, group_mark)

    with pytest.raises(DBAPIError) as raised:
        issue_certificates(runtime, ids)

    assert lost_connection(raised.value)
    assert states(runtime, ids) == ["signing"] * 3, "none marked alone: the sweeper resumes them"
    assert [events(runtime, cert_id, "sign") for cert_id in ids] == [0, 0, 0]
    error = type(raised.value).__name__
    for attempts, last_error in failures(runtime, ids):
        assert attempts == 0 and last_error.startswith(f"{error}: ")


def test_an_outage_marking_a_correction_issued_is_raised_and_counted_on_it_alone(
        live: Live) -> None:
    runtime = live.runtime
    original, correction = correction_of_one(runtime)
    (plain,) = approved(runtime, 1, first=50)
    fault(runtime, supersession)

    with pytest.raises(DBAPIError) as raised:
        issue_certificates(runtime, [correction, plain])

    assert lost_connection(raised.value)
    assert states(runtime, [original, correction, plain]) == ["issued", "signing", "issued"]
    (attempts, last_error), = failures(runtime, [correction])
    assert attempts == 0 and last_error.startswith(f"{type(raised.value).__name__}: ")


def single_mark(sql: str) -> bool:
    return sql.startswith("UPDATE certificates SET state") and "pdf_sha256" in sql \
        and "CASE" not in sql


def test_an_outage_marking_a_certificate_issued_alone_is_raised_kept_and_not_counted(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    (cert_id,) = approved(runtime, 1)
    fault(runtime, single_mark)

    with caplog.at_level(logging.WARNING), pytest.raises(DBAPIError) as raised:
        issue_certificate(runtime, cert_id)  # the default patience waits for nothing

    assert lost_connection(raised.value)
    assert states(runtime, [cert_id]) == ["signing"], "the sweeper resumes it"
    ((attempts, last_error),) = failures(runtime, [cert_id])
    assert attempts == 0 and last_error.startswith(f"{type(raised.value).__name__}: ")
    assert messages(caplog, "issuer.issue") == [f"issue {cert_id} waits: {last_error}"]


def test_a_group_waits_out_short_outages_for_its_patience_and_says_what_it_waited_for(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    original, correction = correction_of_one(runtime)
    ids = [correction, *approved(runtime, 2, first=50)]
    lost = [fault(runtime, hits) for hits in (group_claim, group_mark, supersession)]

    with caplog.at_level(logging.INFO):
        assert issue_certificates(runtime, ids, db_patience=30) == 3

    assert [len(statements) for statements in lost] == [1, 1, 1]
    assert states(runtime, [original, *ids]) == ["superseded", "issued", "issued", "issued"]
    assert [failures(runtime, [cert_id])[0][0] for cert_id in ids] == [0, 0, 0]
    waited = "\n".join(messages(caplog, "issuer.db"))
    for what in ("recording the intents to issue 3 certificates",
                 "marking 3 certificates issued",  # the correction among them, then alone:
                 f"marking {correction} issued"):
        assert f"the database is out of reach while {what} (" in waited
        assert f"; {what} done" in waited


def test_a_group_whose_intents_the_database_refuses_is_issued_one_at_a_time(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    refused = fault(runtime, group_claim, refuse=True)
    lost = fault(runtime, single_claim)  # and alone, each job waits for its patience
    timings: dict[str, float] = {}

    with caplog.at_level(logging.INFO):
        assert issue_certificates(runtime, ids, timings=timings, db_patience=30) == 3

    assert len(refused) == 1 and len(lost) == 1
    assert states(runtime, ids) == ["issued"] * 3
    assert [events(runtime, cert_id, "sign") for cert_id in ids] == [1, 1, 1]
    (warning,) = [m for m in messages(caplog, "issuer.issue_group") if "one at a time" in m]
    assert warning.startswith("recording a group's intents failed (") and "no_such_table" in warning
    assert warning.endswith("); issuing its 3 certificates one at a time")
    # The single jobs' stage times reach the caller too.
    assert {"seal", "qr", "render", "sign", "store"} <= set(timings)


def test_a_group_whose_marking_the_database_refuses_is_marked_one_at_a_time(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    ids = approved(runtime, 3)
    refused = fault(runtime, group_mark, refuse=True)

    with caplog.at_level(logging.INFO):
        assert issue_certificates(runtime, ids) == 3

    assert len(refused) == 1
    assert states(runtime, ids) == ["issued"] * 3
    assert [events(runtime, cert_id, "sign") for cert_id in ids] == [1, 1, 1]
    (warning,) = [m for m in messages(caplog, "issuer.issue_group") if "one at a time" in m]
    assert warning.startswith("marking a group issued failed (") and "no_such_table" in warning
    assert warning.endswith("); marking its 3 certificates one at a time")


def test_a_correction_whose_marking_the_database_refuses_fails_counted_and_the_rest_go_on(
        live: Live) -> None:
    runtime = live.runtime
    original, correction = correction_of_one(runtime)
    (plain,) = approved(runtime, 1, first=50)
    fault(runtime, supersession, refuse=True)

    with pytest.raises(DBAPIError, match="no_such_table") as raised:
        issue_certificates(runtime, [correction, plain])

    assert not lost_connection(raised.value)
    assert states(runtime, [original, correction, plain]) == ["issued", "signing", "issued"]
    (attempts, last_error), = failures(runtime, [correction])
    assert attempts == 1 and "no_such_table" in last_error, "the record's own failure: counted"


def test_a_group_of_corrections_alone_marks_each_in_its_own_transaction_and_hands_on_its_push(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    runtime = live.runtime
    original, correction = correction_of_one(runtime, locker=True)

    with caplog.at_level(logging.INFO):
        assert issue_certificates(runtime, [correction]) == 1

    assert "one at a time" not in caplog.text, "nothing left for the group's compare-and-set"
    assert states(runtime, [original, correction]) == ["superseded", "issued"]
    with runtime.sessions() as session:
        pushes = session.execute(select(Delivery.attempts).where(
            Delivery.certificate_id == correction)).scalars().all()
    assert pushes == [1], "the correction inherits the locker; its push is tried at once"


def test_a_record_marked_issued_is_stamped_with_the_time_it_was_marked(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = live.runtime
    ids = approved(runtime, 2)
    real_produce = issue_group.produce
    made_at = []

    def produce_and_note(rt: Runtime, intent: Intent, *args: object) -> bytes:
        pdf = real_produce(rt, intent, *args)  # type: ignore[arg-type]
        made_at.append(utcnow())
        return pdf

    monkeypatch.setattr(issue_group, "produce", produce_and_note)

    assert issue_certificates(runtime, ids) == 2

    with runtime.sessions() as session:
        stamped = session.scalars(select(Certificate.updated_at).where(
            Certificate.id.in_(ids))).all()
    assert len(made_at) == 2
    assert all(as_utc(t) >= made_at[-1] for t in stamped), "not when its intent was recorded"


def test_a_tsa_out_of_reach_fails_the_group_counting_against_no_record(
        tmp_path: Path, database_url: str, keys_dir: Path) -> None:
    runtime = Runtime(make_settings(tmp_path, database_url, keys_dir, signature_level="B-T",
                                    tsa_url=f"http://127.0.0.1:{free_port()}", tsa_timeout=5))
    try:
        initialise(runtime)
        ids = approved(runtime, 2)

        with pytest.raises(ServiceUnavailable):
            issue_certificates(runtime, ids)

        assert states(runtime, ids) == ["signing"] * 2, "the sweeper tries them again"
        for attempts, last_error in failures(runtime, ids):
            assert attempts == 0 and "TSA" in last_error, last_error
    finally:
        runtime.close()


# PostgreSQL only: SQLite's writer locks the whole database, no row locks to tell apart.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_group_locks_only_its_own_records(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = live.runtime
    *ids, other = approved(runtime, 3)
    real_seal = issue_group.seal_record
    free: list[bool] = []

    def seal_and_look(rt: Runtime, *args: object) -> None:
        if not free:  # within the group's transaction: is a record outside it locked?
            with rt.engine.connect() as conn:
                try:
                    conn.execute(select(Certificate.id).where(Certificate.id == other)
                                 .with_for_update(nowait=True))
                    free.append(True)
                except DBAPIError:
                    free.append(False)
        real_seal(rt, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(issue_group, "seal_record", seal_and_look)

    assert issue_certificates(runtime, ids) == 2

    assert free == [True], "another job may take a record of no group of ours meanwhile"
    assert states(runtime, [*ids, other]) == ["issued", "issued", "approved"]
