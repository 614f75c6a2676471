"""The compare-and-set that marks a record issued: when two runs of the issue job both produce a
PDF for one record (the second resumed it while the first was still signing), exactly one marks
it issued and writes the `sign` audit event; the other changes nothing. Real database, real
rendering and signing; the second run is started from inside the first's slow part."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

import issuer.issue as issue_job
from issuer.audit import verify_chain
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.issue import RESUME_AFTER, Intent, issue_certificate
from issuer.models import AuditEvent, Certificate, Department
from issuer.runtime import Runtime
from issuer.submit import submit
from tests.conftest import Live, sample


def approved(runtime: Runtime, name: str = "birth-1") -> str:
    """A record submitted and approved but not yet issued (nothing enqueued)."""
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return submit(session, department, "test:factory", sample(name)).id


def events(runtime: Runtime, cert_id: str, action: str) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.certificate_id == cert_id, AuditEvent.action == action)) or 0


def record(runtime: Runtime, cert_id: str) -> Certificate:
    with runtime.sessions() as session:
        found = session.get(Certificate, cert_id)
        assert found is not None
        return found


def test_of_two_runs_that_both_signed_only_the_first_to_finish_marks_it_issued(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = live.runtime
    cert_id = approved(runtime)
    real_produce = issue_job.produce
    produced: list[bytes] = []
    results: list[bool] = []

    def produce_while_a_rival_finishes(rt: Runtime, intent: Intent, *args: object) -> bytes:
        pdf = real_produce(rt, intent, *args)  # type: ignore[arg-type]
        produced.append(pdf)
        if len(produced) == 1:
            # The first run is slow; meanwhile the record looks abandoned, so a second run
            # resumes it from the recorded intent and finishes first.
            stale = record(rt, intent.id).updated_at - RESUME_AFTER - timedelta(seconds=5)
            with rt.sessions() as session, session.begin():
                session.execute(update(Certificate).where(Certificate.id == intent.id)
                                .values(updated_at=stale))
            results.append(issue_certificate(rt, intent.id))
        return pdf

    monkeypatch.setattr(issue_job, "produce", produce_while_a_rival_finishes)
    first = issue_certificate(runtime, cert_id)

    assert results == [True], "the rival resumed and issued"
    assert first is False, "the slow run lost the compare-and-set"
    assert len(produced) == 2
    done = record(runtime, cert_id)
    assert done.state == "issued"
    assert done.pdf_sha256 == hashlib.sha256(produced[1]).hexdigest()
    assert events(runtime, cert_id, "seal") == 1, "the rival signed the recorded intent"
    assert events(runtime, cert_id, "sign") == 1
    pdf = live.get(f"/api/v1/certificates/{cert_id}/pdf")
    assert pdf.status_code == 200 and pdf.content == produced[1]
    with runtime.sessions() as session:
        assert verify_chain(session).ok


def test_a_run_after_the_issue_does_nothing(live: Live) -> None:
    runtime = live.runtime
    cert_id = approved(runtime, "birth-2")
    assert issue_certificate(runtime, cert_id) is True
    issued = record(runtime, cert_id)
    assert issued.state == "issued" and issued.pdf_sha256 and issued.seal_text
    stored = sorted(runtime.settings.store_dir.rglob("*"))

    waiting = approved(runtime, "birth-1")  # another record's being workable claims nothing here
    assert issue_certificate(runtime, cert_id) is False
    assert record(runtime, waiting).state == "approved"
    assert sorted(runtime.settings.store_dir.rglob("*")) == stored  # nothing signed again

    again = record(runtime, cert_id)
    assert (again.pdf_sha256, again.seal_text, again.issued_at, again.updated_at) == (
        issued.pdf_sha256, issued.seal_text, issued.issued_at, issued.updated_at)
    assert events(runtime, cert_id, "sign") == 1 and events(runtime, cert_id, "seal") == 1


def test_a_signing_record_still_in_progress_is_left_to_its_worker(live: Live) -> None:
    runtime = live.runtime
    cert_id = approved(runtime)
    intent = issue_job.record_intent(runtime, cert_id)
    assert intent is not None and record(runtime, cert_id).state == "signing"

    assert issue_certificate(runtime, cert_id) is False  # fresh: another worker may be on it

    assert record(runtime, cert_id).state == "signing"
    assert events(runtime, cert_id, "sign") == 0 and events(runtime, cert_id, "seal") == 1


def test_marking_one_issued_touches_no_other_record_being_signed(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare-and-set names the record: another one in `signing` at the same moment stays
    as it is; the issued one's updated_at is the moment it was issued, not its intent's."""
    runtime = live.runtime
    other = approved(runtime, "birth-2")
    assert issue_job.record_intent(runtime, other) is not None  # left in `signing`
    mine = approved(runtime)
    real_produce = issue_job.produce
    at_intent = []

    def produce(rt: Runtime, intent: Intent, *args: object) -> bytes:
        at_intent.append(record(rt, intent.id).updated_at)
        return real_produce(rt, intent, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(issue_job, "produce", produce)
    assert issue_certificate(runtime, mine) is True
    untouched = record(runtime, other)
    assert (untouched.state, untouched.pdf_sha256, untouched.pdf_path) == ("signing", None, None)
    done = record(runtime, mine)
    assert done.state == "issued" and done.updated_at > at_intent[0]


def correct(runtime: Runtime, target: str, name: str = "birth-1") -> str:
    """A correction of `target` (same registration), approved, not yet issued."""
    data = {**sample(name), "corrects": target}
    data["child"]["name"]["en"] = "Corrected Name"
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return submit(session, department, "test:factory", data).id


def supersede_events(runtime: Runtime) -> list[tuple[str | None, dict]]:
    with runtime.sessions() as session:
        return [(e.certificate_id, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "supersede").order_by(AuditEvent.seq))]


def test_a_correction_supersedes_exactly_the_certificate_it_corrects(live: Live) -> None:
    runtime = live.runtime
    bystander = approved(runtime, "birth-2")
    assert issue_certificate(runtime, bystander)
    original = approved(runtime)
    assert issue_certificate(runtime, original)
    before = record(runtime, original).updated_at
    # Another correction in `signing` at the same moment must not lend us its target.
    fixed = correct(runtime, original)
    assert issue_certificate(runtime, fixed)
    old, new = record(runtime, original), record(runtime, fixed)
    assert (old.state, old.superseded_by, new.state) == ("superseded", fixed, "issued")
    assert old.updated_at > before
    assert record(runtime, bystander).state == "issued"
    assert supersede_events(runtime) == [(original, {
        "number": old.number, "superseded_by": fixed, "by_number": new.number})]


def test_a_correction_of_a_revoked_certificate_leaves_it_revoked(live: Live) -> None:
    from issuer.workflow import revoke

    runtime = live.runtime
    original = approved(runtime)
    assert issue_certificate(runtime, original)
    fixed = correct(runtime, original)  # submitted while the original still stood
    with runtime.sessions() as session, session.begin():
        target = session.get(Certificate, original)
        assert target is not None
        revoke(session, target, "test:officer", "registered in error")
    assert issue_certificate(runtime, fixed)
    old = record(runtime, original)
    assert (old.state, old.superseded_by) == ("revoked", None)
    assert record(runtime, fixed).state == "issued"
    assert supersede_events(runtime) == []


def test_issuing_a_new_request_supersedes_nothing_while_a_correction_is_being_signed(
    live: Live,
) -> None:
    runtime = live.runtime
    original = approved(runtime)
    assert issue_certificate(runtime, original)
    pending = correct(runtime, original)
    assert issue_job.record_intent(runtime, pending) is not None  # the correction: `signing`
    unrelated = approved(runtime, "birth-2")
    assert issue_certificate(runtime, unrelated)
    assert record(runtime, original).state == "issued"
    assert supersede_events(runtime) == []
