"""The issue job, recovery (retry/cancel), the department checks of submit and verification,
called directly (no HTTP) on a real database with the real dev PKI, typst and PAdES signing:
what the seal's verdict reports, what a failure records and logs, what retry and cancel reset
and audit, what a 409 reveals, and the races behind the database's unique index. Written to
kill mutants that survived `make mutation` (issue 5 item 7)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from api import create_app
from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.certtypes import cert_type
from issuer.db import as_utc
from issuer.errors import (
    DuplicateCertificate,
    FieldError,
    InvalidTransition,
    IssuanceFailed,
    NotFound,
    ValidationFailed,
)
from issuer.fields import today_ist
from issuer.issue import (
    MAX_ATTEMPTS,
    RESUME_AFTER,
    certified_fields,
    fields_digest,
    issue_certificate,
    record_failure,
    record_intent,
)
from issuer.models import AuditEvent, Certificate, Department
from issuer.recovery import MAX_REASON, cancel, retry
from issuer.rts_calendar import due_at, shipped_calendar
from issuer.runtime import Runtime
from issuer.settings import Settings
from issuer.submit import _duplicate, find_active, submit
from issuer.tokens import create_token
from issuer.verify import Verdict, is_our_verify_link, verify_pdf, verify_qr
from issuer.workflow import request_digest
from tests.conftest import make_settings, sample


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[Runtime]:
    built = Runtime(make_settings(tmp_path, database_url, keys_dir))
    initialise(built)
    yield built
    built.close()


def approved(runtime: Runtime, name: str = "birth-1") -> str:
    """A record submitted and approved (nothing enqueued: no job runs by itself here)."""
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return submit(session, department, "test:clerk", sample(name)).id


def record_of(runtime: Runtime, cert_id: str) -> Certificate:
    with runtime.sessions() as session:
        found = session.get(Certificate, cert_id)
        assert found is not None
        return found


def audited(runtime: Runtime, cert_id: str, action: str) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        return [dict(e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.certificate_id == cert_id,
                                     AuditEvent.action == action).order_by(AuditEvent.seq))]


def failed(runtime: Runtime, name: str = "birth-1", error: str = "template bug") -> str:
    """A record sealed (an intent recorded) whose issue failed MAX_ATTEMPTS times."""
    cert_id = approved(runtime, name)
    with runtime.sessions() as session, session.begin():
        record = session.get(Certificate, cert_id)
        assert record is not None
        record.state = "signing"
        record.seal_text, record.seal_kid = "https://example.invalid/v#123", "ab" * 8
        record.fields_sha256, record.template_version = "cd" * 32, "birth/1"
    for _ in range(MAX_ATTEMPTS):
        record_failure(runtime, cert_id, RuntimeError(error))
    assert record_of(runtime, cert_id).state == "failed"
    return cert_id


# --- verification: what the verdict says about the certificate -------------------------------

def test_the_verdict_names_what_the_seal_certifies(runtime: Runtime) -> None:
    cert_id = approved(runtime)
    assert issue_certificate(runtime, cert_id) is True
    record = record_of(runtime, cert_id)
    verdict = verify_qr(runtime, record.seal_text or "")
    assert verdict.current
    assert record.issued_at is not None and record.seal_kid is not None
    data = sample("birth-1")
    assert verdict.certificate == {
        "id": cert_id,
        "type": "birth",
        "number": record.number,
        "holder": data["child"]["name"],
        "dates": {"birth": data["child"]["date_of_birth"]},
        "registration_number": data["registration_number"],
        "ward": data["ward_office"]["en"],
        "issuer": runtime.settings.issuer_id,
        "issued_at": int(as_utc(record.issued_at).timestamp()),
        "seal_kid": record.seal_kid,
        # Online, what the paper prints, from the record: all but the applicant's contact.
        "particulars": {k: v for k, v in data.items() if k != "applicant"},
    }
    assert verdict.as_dict() == {
        "genuine": True, "status": "current", "current": True, "reason": None,
        "checks": [{"name": name, "ok": True, "reason": None}
                   for name in ("link", "seal", "record", "issued")],
        "certificate": verdict.certificate,
    }
    # The intent and the issue are audited with what was sealed and what was signed.
    assert audited(runtime, cert_id, "seal") == [{
        "number": record.number, "seal_kid": record.seal_kid,
        "iat": int(as_utc(record.issued_at).timestamp()),
        "fields_sha256": record.fields_sha256, "template_version": record.template_version,
    }]
    assert audited(runtime, cert_id, "sign") == [
        {"number": record.number, "pdf_sha256": record.pdf_sha256, "level": "PAdES-B-T"}]


def test_the_pdf_verdict_runs_every_check_and_names_a_superseding_certificate(
    runtime: Runtime
) -> None:
    cert_id = approved(runtime)
    assert issue_certificate(runtime, cert_id) is True
    record = record_of(runtime, cert_id)
    assert record.pdf_path and record.pdf_sha256
    pdf = runtime.store.get(record.pdf_path, record.pdf_sha256)
    shown = verify_pdf(runtime, pdf).as_dict()
    assert shown["current"] is True and shown["certificate"]["id"] == cert_id
    assert shown["checks"] == [{"name": name, "ok": True, "reason": None} for name in (
        "pdf_signature", "seal", "record", "issued", "issued_file")]
    broken = verify_pdf(runtime, pdf[:-200]).as_dict()
    assert broken["checks"][0]["name"] == "pdf_signature" and not broken["checks"][0]["ok"]
    assert broken["reason"] == f"pdf_signature: {broken['checks'][0]['reason']}"
    # Superseded by a corrected certificate: still genuine, not current, and says by which.
    newer = approved(runtime, "birth-2")
    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id)
                        .values(state="superseded", superseded_by=newer))
    verdict = verify_pdf(runtime, pdf)
    assert verdict.genuine and not verdict.current and verdict.status == "superseded"
    assert verdict.certificate is not None
    assert verdict.certificate["superseded_by"] == newer


def test_a_verdict_without_checks_is_not_genuine_and_a_failed_one_says_why(
    runtime: Runtime
) -> None:
    assert not Verdict().genuine and not Verdict().current
    assert Verdict().as_dict()["status"] == "invalid"
    cert_id = approved(runtime)
    record_intent(runtime, cert_id)  # sealed, never signed
    record = record_of(runtime, cert_id)
    verdict = verify_qr(runtime, record.seal_text or "")
    assert verdict.status == "signing" and not verdict.genuine and not verdict.current
    shown = verdict.as_dict()
    assert (shown["genuine"], shown["status"], shown["current"], shown["reason"]) == (
        False, "invalid", False, "issued: not_issued")
    assert shown["checks"][-1] == {"name": "issued", "ok": False, "reason": "not_issued"}
    assert verify_qr(runtime, "12345").as_dict()["reason"].startswith("seal: ")


def test_development_loopback_links_are_http_or_https_on_v_only() -> None:
    dev = Settings.from_env(env={"PORT": "8123"})
    assert is_our_verify_link(dev, "https://localhost:8443/v")
    assert is_our_verify_link(dev, "https://[::1]/v")
    for foreign in ("ftp://127.0.0.1/v", "https://localhost/verify", "http://evil.example/v",
                    "/v", "http:///v", "v", ""):
        assert not is_our_verify_link(dev, foreign), foreign


# --- the issue job ---------------------------------------------------------------------------

def test_the_fields_digest_is_sha256_over_canonical_cbor() -> None:
    # A verifier recomputes it from the printed facts: keys ordered length-first (RFC 7049
    # section 3.9), whatever order the mapping was built in. Written out byte by byte: {"b": 1,
    # "aa": 2} is a2, then 61 62 01, then 62 61 61 02.
    expected = hashlib.sha256(bytes.fromhex("a2" "616201" "62616102")).digest()
    assert fields_digest({"aa": 2, "b": 1}) == expected
    assert fields_digest({"b": 1, "aa": 2}) == expected


def test_applicant_contact_details_are_not_certified(runtime: Runtime) -> None:
    cert_id = approved(runtime)
    record = record_of(runtime, cert_id)
    fields = certified_fields(record, date(2026, 3, 5))
    assert "applicant" not in fields["request"]
    assert fields["number"] == record.number and fields["issued_on"] == "2026-03-05"
    other = Certificate(request={**record.request, "applicant": {
        "name": "Someone Else", "mobile": "+919800000099", "email": "x@example.in"}},
        number=record.number)
    assert fields_digest(certified_fields(other, date(2026, 3, 5))) == fields_digest(fields)


def test_each_failure_is_counted_logged_and_the_last_one_fails_the_record(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    cert_id = approved(runtime)
    caplog.set_level(logging.INFO, logger="issuer.issue")
    long_error = "x" * 3000
    for attempt in range(1, MAX_ATTEMPTS + 1):
        record_failure(runtime, cert_id, ValueError(long_error))
        record = record_of(runtime, cert_id)
        assert record.attempts == attempt
        # The error is kept, cut to 1000 characters, with the exception's type in front.
        assert record.last_error == ("ValueError: " + long_error)[:1000]
        assert record.state == ("failed" if attempt == MAX_ATTEMPTS else "approved")
    messages = [r.getMessage() for r in caplog.records]
    assert f"issue {cert_id} failed (attempt 1 of {MAX_ATTEMPTS}): ValueError: x" in messages[0]
    assert messages[-1].startswith(f"issue {cert_id} failed {MAX_ATTEMPTS} times, now failed: "
                                   "ValueError: xxx")
    assert caplog.records[-1].levelno == logging.ERROR
    (fail,) = audited(runtime, cert_id, "fail")
    assert fail == {"attempts": MAX_ATTEMPTS, "error": ("ValueError: " + long_error)[:1000]}
    # A failed (or issued, or unknown) record is not counted again.
    record_failure(runtime, cert_id, ValueError("later"))
    record_failure(runtime, "00000000-0000-4000-8000-000000000000", ValueError("unknown"))
    assert record_of(runtime, cert_id).attempts == MAX_ATTEMPTS
    assert len(audited(runtime, cert_id, "fail")) == 1


def test_a_run_with_nothing_to_do_says_why(runtime: Runtime,
                                           caplog: pytest.LogCaptureFixture) -> None:
    cert_id = approved(runtime)
    assert issue_certificate(runtime, cert_id) is True
    waiting = approved(runtime, "birth-2")  # another record, workable: it claims nothing here
    caplog.set_level(logging.INFO, logger="issuer.issue")
    assert issue_certificate(runtime, cert_id) is False
    assert len(audited(runtime, cert_id, "sign")) == 1
    assert record_of(runtime, waiting).state == "approved"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert issue_certificate(runtime, unknown) is False
    messages = [r.getMessage() for r in caplog.records]
    assert f"issue {cert_id}: nothing to do (issued)" in messages
    assert f"issue {unknown}: nothing to do (unknown id)" in messages


def test_an_approved_record_without_a_number_or_known_type_is_not_sealed(
    runtime: Runtime,
) -> None:
    # Only a damaged row looks like this: the job refuses it by name instead of sealing it.
    for change in ({"number": None}, {"cert_type": "marriage"}):
        cert_id = approved(runtime)
        with runtime.sessions() as session, session.begin():
            session.execute(update(Certificate).where(Certificate.id == cert_id).values(**change))
        with pytest.raises(IssuanceFailed) as refused:
            record_intent(runtime, cert_id)
        assert str(refused.value) == f"certificate {cert_id} lacks a number or template"
        assert record_of(runtime, cert_id).seal_text is None
        with runtime.sessions() as session, session.begin():
            session.execute(update(Certificate).where(Certificate.id == cert_id)
                            .values(state="cancelled"))


def test_each_stage_of_the_issue_job_is_timed(runtime: Runtime) -> None:
    """`make bench` reports these stages from the timings the job fills in."""
    timings: dict[str, float] = {}
    assert issue_certificate(runtime, approved(runtime), timings=timings) is True
    assert set(timings) == {"seal", "qr", "render", "sign", "store"}
    assert all(seconds > 0 for seconds in timings.values())


def test_a_failure_that_cannot_be_recorded_is_logged_not_raised(
    tmp_path: Path, keys_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """record_failure runs while the caller is handling the real error: a database it cannot
    reach must not replace that error."""
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'pramaan.db'}"
    broken = Runtime(make_settings(tmp_path, unreachable, keys_dir))
    try:
        record_failure(broken, "00000000-0000-4000-8000-000000000000", RuntimeError("boom"))
    finally:
        broken.close()
    (logged,) = [r for r in caplog.records if r.name == "issuer.issue"]
    assert logged.levelno == logging.ERROR and logged.exc_info is not None
    assert logged.getMessage() == (
        "could not record the failure of 00000000-0000-4000-8000-000000000000")


def test_issuing_and_resuming_are_logged(runtime: Runtime,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="issuer.issue")
    first = approved(runtime)
    assert issue_certificate(runtime, first) is True
    assert f"issued {first} as {record_of(runtime, first).number}" in caplog.messages
    second = approved(runtime, "birth-2")
    intent = record_intent(runtime, second)  # a worker recorded the intent, then died
    assert intent is not None and record_of(runtime, second).state == "signing"
    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == second).values(
            updated_at=record_of(runtime, second).updated_at - RESUME_AFTER - timedelta(seconds=5)))
    caplog.clear()
    assert issue_certificate(runtime, second) is True
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.messages[0] == (
        f"issue {second}: resuming an abandoned signing from its recorded intent")


# --- recovery: retry and cancel --------------------------------------------------------------

def test_retry_drops_the_stale_intent_and_audits_the_previous_error(runtime: Runtime) -> None:
    cert_id = failed(runtime, error="template bug: cannot lay out")
    with runtime.sessions() as session, session.begin():
        retry(session, cert_id, "cli:operator")
    record = record_of(runtime, cert_id)
    assert record.state == "approved" and record.attempts == 0 and record.last_error is None
    assert (record.issued_at, record.seal_text, record.seal_kid, record.fields_sha256,
            record.template_version) == (None, None, None, None, None)
    assert audited(runtime, cert_id, "retry") == [
        {"previous_error": "RuntimeError: template bug: cannot lay out"}]


def test_retry_and_cancel_of_an_unknown_id_say_which(runtime: Runtime) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for act in (lambda s: retry(s, unknown, "cli:operator"),
                lambda s: cancel(s, unknown, "cli:operator", "typo")):
        with runtime.sessions() as session, session.begin(), pytest.raises(
                NotFound) as refused:
            act(session)
        assert refused.value.detail == f"no certificate {unknown}"


def test_retry_and_cancel_read_the_record_afresh(runtime: Runtime) -> None:
    """The caller's session may hold an older copy of the record (read before another process
    changed it): the decision is taken on the row as it is now."""
    cert_id = approved(runtime)
    with runtime.sessions() as session, session.begin():
        stale = session.get(Certificate, cert_id)
        assert stale is not None and stale.state == "approved"
        with runtime.sessions() as other, other.begin():  # meanwhile: it failed for good
            other.execute(update(Certificate).where(Certificate.id == cert_id)
                          .values(state="failed", last_error="RuntimeError: boom"))
        assert retry(session, cert_id, "cli:operator") is stale
    assert audited(runtime, cert_id, "retry") == [{"previous_error": "RuntimeError: boom"}]
    with runtime.sessions() as session, session.begin():
        stale = session.get(Certificate, cert_id)
        assert stale is not None and stale.state == "approved"
        with runtime.sessions() as other, other.begin():  # meanwhile: issued
            other.execute(update(Certificate).where(Certificate.id == cert_id)
                          .values(state="issued"))
        with pytest.raises(InvalidTransition):
            cancel(session, cert_id, "cli:operator", "too late")
    assert record_of(runtime, cert_id).state == "issued"


def test_cancel_audits_reason_previous_state_and_error(runtime: Runtime) -> None:
    cert_id = failed(runtime, error="disk full")
    with runtime.sessions() as session, session.begin():
        cancel(session, cert_id, "cli:operator", "  wrong ward  ")
    stored = record_of(runtime, cert_id)
    assert (stored.state, stored.decided_by, stored.decision_reason) == (
        "cancelled", "cli:operator", "wrong ward")
    year = today_ist().year
    assert audited(runtime, cert_id, "cancel") == [
        {"reason": "wrong ward", "from": "failed", "error": "RuntimeError: disk full",
         "released_number": f"PMC/B/{year}/KB/000001"}]
    submitted = approved(runtime, "birth-2")
    with runtime.sessions() as session, session.begin():
        cancel(session, submitted, "cli:operator", "duplicate request")
    assert audited(runtime, submitted, "cancel") == [
        {"reason": "duplicate request", "from": "approved", "error": None,
         "released_number": f"PMC/B/{year}/HM/000001"}]


def test_refused_retry_and_cancel_name_the_state(runtime: Runtime) -> None:
    cert_id = approved(runtime)
    with runtime.sessions() as session, session.begin(), pytest.raises(
            InvalidTransition) as refused:
        retry(session, cert_id, "cli:operator")
    assert refused.value.detail == (f"certificate {cert_id} is approved; only a failed "
                                    "certificate can be retried")
    assert refused.value.extra == {"state": "approved"}
    assert issue_certificate(runtime, cert_id) is True
    with runtime.sessions() as session, session.begin(), pytest.raises(
            InvalidTransition) as refused:
        cancel(session, cert_id, "cli:operator", "changed my mind")
    assert refused.value.detail == f"certificate {cert_id} is issued and cannot be cancelled"
    assert refused.value.extra == {"state": "issued"}


@pytest.mark.parametrize("reason", ["", "   ", "x" * (MAX_REASON + 1)])
def test_cancel_needs_a_reason_of_bounded_length(runtime: Runtime, reason: str) -> None:
    cert_id = approved(runtime)
    with runtime.sessions() as session, session.begin(), pytest.raises(
        InvalidTransition) as refused:
        cancel(session, cert_id, "cli:operator", reason)
    assert refused.value.detail == f"give a reason of 1 to {MAX_REASON} characters"
    assert record_of(runtime, cert_id).state == "approved"
    with runtime.sessions() as session, session.begin():
        cancel(session, cert_id, "cli:operator", "y" * MAX_REASON)  # the longest allowed
    assert record_of(runtime, cert_id).state == "cancelled"


def test_retry_refused_by_its_check_leaves_the_transaction_usable(runtime: Runtime) -> None:
    """The registration is taken by a corrected resubmission: the check refuses the retry before
    anything is written (not the unique index, whose failure would end the transaction), so the
    operator can cancel the old record in the same transaction."""
    cert_id = failed(runtime)
    newer = approved(runtime)
    with runtime.sessions() as session, session.begin():
        with pytest.raises(InvalidTransition) as refused:
            retry(session, cert_id, "cli:operator")
        assert refused.value.detail.endswith("cancel this one instead")
        cancel(session, cert_id, "cli:operator", "superseded by a corrected request")
    assert record_of(runtime, cert_id).state == "cancelled"
    assert record_of(runtime, newer).state == "approved"


def _while_flushing(session: Session, act: Any) -> None:
    """Run `act` once, just before `session` writes: as another request that commits between
    our check and our write would."""
    done: list[bool] = []

    def once(*_args: Any) -> None:
        if not done:
            done.append(True)
            act()
    event.listen(session, "before_flush", once)


def test_retry_refused_when_a_resubmission_commits_between_check_and_write(
    runtime: Runtime
) -> None:
    cert_id = failed(runtime)
    taken: list[str] = []
    with pytest.raises(InvalidTransition) as refused:
        with runtime.sessions() as session, session.begin():
            _while_flushing(session, lambda: taken.append(approved(runtime)))
            retry(session, cert_id, "cli:operator")
    # Before the fix the refusal itself failed: the record was read after the failed write
    # had closed the transaction (InvalidRequestError instead of this explanation).
    assert refused.value.detail == ("registration B-2026-PMC-004512 already has a newer "
                                    "certificate in progress or issued; cancel this one instead")
    assert refused.value.extra == {"state": "failed"}
    assert taken and record_of(runtime, taken[0]).state == "approved"
    assert record_of(runtime, cert_id).state == "failed"
    assert audited(runtime, cert_id, "retry") == []


# --- department checks -----------------------------------------------------------------------

def test_a_409_reveals_the_record_only_to_its_own_department(runtime: Runtime) -> None:
    cert_id = approved(runtime)
    record = record_of(runtime, cert_id)
    own = _duplicate(record, DEV_DEPARTMENT)
    assert own.detail == (f"registration B-2026-PMC-004512 already has certificate {cert_id} "
                          "(approved)")
    assert own.extra == {"certificate_id": cert_id, "href": f"/api/v1/certificates/{cert_id}",
                         "state": "approved"}
    for other in (_duplicate(record, "pmc-ward-kothrud-births"), _duplicate(None, DEV_DEPARTMENT)):
        assert other.detail == "a current certificate exists for this registration number"
        assert other.extra == {}


def test_a_duplicate_refused_by_the_check_leaves_the_transaction_usable(
    runtime: Runtime
) -> None:
    """find_active refuses a duplicate before anything is written (not the unique index, whose
    failure rolls the transaction back), so the caller's other work in it survives."""
    first = approved(runtime)
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        with pytest.raises(DuplicateCertificate) as refused:
            submit(session, department, "test:clerk", sample("birth-1"))
        assert refused.value.extra["certificate_id"] == first
        second = submit(session, department, "test:clerk", sample("birth-2")).id
    assert record_of(runtime, second).state == "approved"


def test_submit_race_lost_to_a_commit_between_check_and_insert_is_a_409(
    runtime: Runtime
) -> None:
    winner: list[str] = []
    with runtime.sessions() as session:
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        _while_flushing(session, lambda: winner.append(approved(runtime)))
        with pytest.raises(DuplicateCertificate) as refused:
            submit(session, department, "test:clerk", sample("birth-1"))
    assert winner
    assert refused.value.extra["certificate_id"] == winner[0]
    with runtime.sessions() as session:
        found = find_active(session, DEV_DEPARTMENT, "birth", "B-2026-PMC-004512")
        assert found is not None and found.id == winner[0]


def test_find_active_is_per_department_type_registration_and_active_state(
    runtime: Runtime
) -> None:
    cert_id = approved(runtime)
    with runtime.sessions() as session, session.begin():
        session.add(Department(id="water", name_en="Water", name_mr="पाणी",
                               cert_types=["birth", "death"]))
    with runtime.sessions() as session:
        found = find_active(session, DEV_DEPARTMENT, "birth", "B-2026-PMC-004512")
        assert found is not None and found.id == cert_id
        assert find_active(session, "water", "birth", "B-2026-PMC-004512") is None
        assert find_active(session, DEV_DEPARTMENT, "death", "B-2026-PMC-004512") is None
        assert find_active(session, DEV_DEPARTMENT, "birth", "B-2026-PMC-000000") is None
    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id)
                        .values(state="cancelled"))
    with runtime.sessions() as session:
        assert find_active(session, DEV_DEPARTMENT, "birth", "B-2026-PMC-004512") is None


# --- who is calling (api.principal), through the app in-process ------------------------------

MISSING = "/api/v1/certificates/00000000-0000-4000-8000-000000000000"


@pytest.fixture
def client_and_token(tmp_path: Path, database_url: str,
                     keys_dir: Path) -> Iterator[tuple[FlaskClient, str]]:
    app = create_app(make_settings(tmp_path, database_url, keys_dir))
    report = initialise(app.extensions["pramaan"])
    assert report.clerk_token is not None
    yield app.test_client(), report.clerk_token
    app.extensions["pramaan"].close()


def test_the_bearer_scheme_is_case_insensitive_and_takes_one_or_more_spaces(
    client_and_token: tuple[FlaskClient, str]
) -> None:
    client, token = client_and_token
    # RFC 6750 section 2.1: "Bearer" 1*SP b64token; auth schemes are case-insensitive (RFC 9110).
    for header in (f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer  {token}"):
        response = client.get(MISSING, headers={"Authorization": header})
        assert response.status_code == 404, (header, response.json)  # authenticated


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Bearer    ", "Basic abc", "Token pmn_x",
    "Basic {token}", "Token {token}", "{token}", "Bearer{token}",
])
def test_anything_but_a_bearer_token_is_refused_with_how_to_send_one(
    client_and_token: tuple[FlaskClient, str], header: str | None
) -> None:
    client, token = client_and_token
    headers = {} if header is None else {"Authorization": header.format(token=token)}
    response = client.get(MISSING, headers=headers)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["code"] == "unauthorized"
    assert response.json["detail"] == "send 'Authorization: Bearer <token>'"


def test_a_bearer_token_that_is_not_ours_is_refused_as_unknown(
    client_and_token: tuple[FlaskClient, str]
) -> None:
    client, token = client_and_token
    for wrong in (token + "x", f"{token} {token}"):
        response = client.get(MISSING, headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 401 and response.json is not None
        assert response.json["detail"] == "the bearer token is unknown or revoked"


def test_submit_refuses_a_type_the_department_does_not_issue_and_audits_what_it_took(
    runtime: Runtime
) -> None:
    with runtime.sessions() as session, session.begin():
        water = Department(id="water", name_en="Water", name_mr="पाणी", cert_types=["property"])
        session.add(water)
        session.flush()
        with pytest.raises(ValidationFailed) as refused:
            submit(session, water, "test:clerk", sample("birth-1"))
    assert refused.value.errors == [
        FieldError("type", "not_allowed", "department water does not issue birth")]
    cert_id = approved(runtime)
    assert audited(runtime, cert_id, "submit") == [
        {"type": "birth", "registration_number": "B-2026-PMC-004512", "ward": "KB",
         "corrects": None}]
    record = record_of(runtime, cert_id)
    assert audited(runtime, cert_id, "approve") == [
        {"number": record.number, "rule": "automatic",
         "fields_digest": request_digest(record)}]
    assert (record.department_id, record.cert_type, record.submitted_by, record.approved_by) == (
        DEV_DEPARTMENT, "birth", "test:clerk", "system:auto-approve")
    # The right-to-service deadline counts working days from the day the request was recorded.
    kind = cert_type("birth")
    assert kind is not None
    assert as_utc(record.due_at) == due_at(shipped_calendar(), as_utc(record.created_at),
                                           kind.rts_days)


def test_a_second_token_of_the_same_name_is_refused_with_the_reason(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        create_token(session, department, "clerk-1", "clerk")
        with pytest.raises(ValueError) as refused:
            create_token(session, department, "clerk-1", "clerk")
    assert str(refused.value) == (
        f"department {DEV_DEPARTMENT} already has a token named 'clerk-1' "
        "(names are unique per department: each is an audit actor)")
