"""The lifecycle's decisions called in process (fast enough for mutation runs): what a refusal
writes to the audit chain and tells the client, the reasons' limits, and the verify host a
certificate prints."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.errors import Forbidden, InvalidTransition, IssuanceFailed, ValidationFailed
from issuer.issue import Intent, render_data
from issuer.models import AuditEvent, Certificate, Department
from issuer.permissions import Action, allowed, other_department, require
from issuer.runtime import Runtime
from issuer.submit import submit
from issuer.tokens import Principal
from issuer.workflow import MAX_REASON, amend, approve, reason_of, reject, request_digest, revoke
from tests.conftest import sample


@pytest.fixture
def runtime(sqlite_runtime: Runtime) -> Runtime:
    return sqlite_runtime  # tests/conftest.py


def who(runtime: Runtime, role: str) -> Principal:
    with runtime.sessions() as session:
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        session.expunge(department)
    return Principal(department, f"{role}-1", role)


def denied_events(runtime: Runtime) -> list[tuple[str, str | None, dict]]:
    with runtime.sessions() as session:
        return [(e.actor, e.certificate_id, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "denied").order_by(AuditEvent.seq))]


def test_a_role_refusal_is_audited_with_its_reason_and_told_to_the_client(
    runtime: Runtime,
) -> None:
    clerk = who(runtime, "clerk")
    target = "6f1c1a36-0000-4000-8000-000000000001"
    with pytest.raises(Forbidden) as refused:
        require(runtime.sessions, clerk, Action.APPROVE, target)
    assert str(refused.value) == "a clerk may not approve"
    assert refused.value.extra == {"action": "approve", "role": "clerk"}
    assert denied_events(runtime) == [
        (f"token:{DEV_DEPARTMENT}/clerk-1", target,
         {"attempted": "approve", "role": "clerk", "reason": "role",
          "department": DEV_DEPARTMENT})]
    require(runtime.sessions, clerk, Action.SUBMIT)  # allowed: nothing more written
    assert len(denied_events(runtime)) == 1


def test_another_department_s_record_is_not_found_and_audited(runtime: Runtime) -> None:
    officer = who(runtime, "officer")
    target = "6f1c1a36-0000-4000-8000-000000000002"
    error = other_department(runtime.sessions, officer, Action.REVOKE, target)
    assert str(error) == f"no certificate {target}"
    assert denied_events(runtime) == [
        (f"token:{DEV_DEPARTMENT}/officer-1", target,
         {"attempted": "revoke", "role": "officer", "reason": "other_department",
          "department": DEV_DEPARTMENT})]


def test_an_unknown_role_may_do_nothing() -> None:
    assert not any(allowed("root", action) for action in Action)
    assert allowed("auditor", Action.AUDIT_READ) and not allowed("auditor", Action.APPROVE)


def test_reasons_are_required_and_bounded() -> None:
    assert reason_of({"reason": "  wrong ward  "}) == "wrong ward"
    assert reason_of({"reason": "x" * MAX_REASON}) == "x" * MAX_REASON
    for body, code, message in (
            ({}, "required", "give the reason"), ({"reason": ""}, "required", "give the reason"),
            ([], "required", "give the reason"),
            ({"reason": "x" * (MAX_REASON + 1)}, "too_long",
             f"must be at most {MAX_REASON} characters")):
        with pytest.raises(ValidationFailed) as refused:
            reason_of(body)
        assert [(e.field, e.code, e.message) for e in refused.value.errors] == [
            ("reason", code, message)]


def test_wrong_state_refusals_name_the_state_and_the_decision(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        record = submit(session, department, "test:clerk", sample("birth-1"))  # approved
        for decide, verb in ((lambda r: reject(session, r, "test:officer", "no"), "rejected"),
                             (lambda r: approve(session, r, "test:officer"), "approved"),
                             (lambda r: revoke(session, r, "test:officer", "no"), "revoked")):
            with pytest.raises(InvalidTransition) as refused:
                decide(record)
            assert refused.value.extra == {"state": "approved"}
            wanted = "issued" if verb == "revoked" else "submitted"
            assert str(refused.value) == (f"certificate {record.id} is approved; only a {wanted} "
                                          f"certificate can be {verb}")


def test_the_printed_verify_host_is_the_seal_s_own(runtime: Runtime) -> None:
    intent = Intent("6f1c1a36-0000-4000-8000-000000000003", "birth", "PMC/B/2026/KB/000001",
                    sample("birth-1"), datetime(2026, 3, 2, 10, tzinfo=UTC),
                    "https://verify.pmc.example:8443/v#1234567", "birth/1")
    data = render_data(runtime.settings, intent)
    assert data["certificate"]["verify_host"] == "verify.pmc.example:8443"
    assert data["certificate"]["issued_at"] == "2026-03-02"
    # Everything after the scheme, however many "://" the address has after it.
    odd = replace(intent, seal_text="https://verify.pmc.example/a://b/c://d/v#1234567")
    assert render_data(runtime.settings, odd)["certificate"]["verify_host"] == (
        "verify.pmc.example/a://b/c://d")


def test_the_printed_date_of_issue_is_india_s_whatever_the_machine_s_zone(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """20:00 UTC is 01:30 the next morning in India: the paper says the Indian date, also on a
    server whose clock runs in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        intent = Intent("6f1c1a36-0000-4000-8000-000000000004", "birth", "PMC/B/2026/KB/000002",
                        sample("birth-1"), datetime(2026, 3, 2, 20, tzinfo=UTC),
                        "https://verify.pmc.example/v#1234567", "birth/1")
        assert render_data(runtime.settings, intent)["certificate"]["issued_at"] == "2026-03-03"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_an_intent_of_an_unknown_type_fails_naming_it(runtime: Runtime) -> None:
    intent = Intent("6f1c1a36-0000-4000-8000-000000000005", "passport", "X/1", {},
                    datetime(2026, 3, 2, 10, tzinfo=UTC), "https://v.example/v#1", "passport/1")
    with pytest.raises(IssuanceFailed) as failed:
        render_data(runtime.settings, intent)
    assert str(failed.value) == ("certificate 6f1c1a36-0000-4000-8000-000000000005 has an "
                                 "unknown type 'passport'")


def test_records_keep_the_decision(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        department.approval = "officer"
        record = submit(session, department, "test:clerk", sample("birth-1"))
        reject(session, record, "test:officer", "misspelt")
        cert_id = record.id
    with runtime.sessions() as session:
        stored = session.get(Certificate, cert_id)
        assert stored is not None
        assert (stored.state, stored.decided_by, stored.decision_reason, stored.number) == (
            "rejected", "test:officer", "misspelt", None)


def test_configured_ward_offices_give_the_code_and_refuse_other_offices(
    runtime: Runtime,
) -> None:
    from issuer.models import WardOffice

    with runtime.sessions() as session, session.begin():
        session.add(WardOffice(department_id=DEV_DEPARTMENT, code="W09",
                               name_en="Kothrud-Bavdhan Ward Office",
                               name_mr="कोथरूड-बावधन क्षेत्रीय कार्यालय"))
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        record = submit(session, department, "test:clerk", sample("birth-1"))
        assert record.ward_code == "W09"
        assert record.number is not None and "/W09/" in record.number
        with pytest.raises(ValidationFailed) as refused:
            submit(session, department, "test:clerk", sample("birth-2"))  # Hadapsar office
    assert [(e.field, e.code) for e in refused.value.errors] == [
        ("ward_office.en", "unknown_ward")]


def test_a_revocation_keeps_who_why_and_when(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        record = submit(session, department, "test:clerk", sample("birth-1"))
        record.state, record.number = "issued", "PMC/B/2026/KB/000009"  # as the job leaves it
        before = datetime.now(UTC)
        revoke(session, record, "test:officer", "registered twice")
        cert_id = record.id
    with runtime.sessions() as session:
        stored = session.get(Certificate, cert_id)
        assert stored is not None and stored.revoked_at is not None
        assert (stored.state, stored.decided_by, stored.decision_reason) == (
            "revoked", "test:officer", "registered twice")
        assert before <= stored.revoked_at.replace(tzinfo=UTC) <= datetime.now(UTC)
        events = [(e.actor, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "revoke"))]
    assert events == [("test:officer", {"reason": "registered twice",
                                        "number": "PMC/B/2026/KB/000009"})]


def test_an_amendment_is_audited_with_both_digests_and_only_while_submitted(
    runtime: Runtime,
) -> None:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        department.approval = "officer"
        record = submit(session, department, "test:clerk", sample("birth-1"))
        before = request_digest(record)
        changed = sample("birth-1")
        changed["child"]["name"]["en"] = "Aarav Kulkarni"
        amend(session, record, "test:clerk", changed)
        after = request_digest(record)
        assert after != before and record.request == changed
        reject(session, record, "test:officer", "misspelt")
        with pytest.raises(InvalidTransition) as refused:
            amend(session, record, "test:clerk", sample("birth-1"))
        assert str(refused.value) == (f"certificate {record.id} is rejected; only a submitted "
                                      "certificate can be amended")
    with runtime.sessions() as session:  # events join the chain as their transaction commits
        events = [(e.actor, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "amend"))]
    assert events == [("test:clerk", {"before": before, "after": after})]


def test_an_intent_is_only_read_from_a_record_with_number_issue_time_and_seal() -> None:
    record = Certificate(id="6f1c1a36-0000-4000-8000-000000000006", cert_type="birth",
                         number=None, issued_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
                         seal_text="https://v.example/v#1", template_version="birth/1",
                         request=sample("birth-1"))
    with pytest.raises(AssertionError):
        Intent.of(record)
