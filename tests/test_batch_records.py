"""A batch chunk's records written at once (issuer/batch_records.py) are the records, numbers
and audit events that recording and approving them one at a time gives. Real database (SQLite
and PostgreSQL)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from issuer import counters
from issuer.audit import verify_chain
from issuer.batch_records import Origin, record_approved
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import as_utc, utcnow
from issuer.models import AuditEvent, Certificate, Department
from issuer.rts_calendar import due_at, load_calendar
from issuer.submit import Prepared, prepare, record_request
from issuer.workflow import AUTO_APPROVER, approve, request_digest
from tests.conftest import Live, sample
from tests.test_batches import OFFICE, births, ensure_department

AUNDH = {"en": "Aundh-Baner Ward Office", "mr": "औंध-बाणेर क्षेत्रीय कार्यालय"}
ORIGIN = Origin("batch-1", "clerk-1", "officer-1")


def prepared(live: Live, rows: list[dict[str, Any]]) -> list[Prepared]:
    with live.runtime.sessions() as session:
        department = session.get(Department, OFFICE)
        assert department is not None
        return [prepare(session, department, row, live.runtime.settings) for row in rows]


def in_aundh(row: dict[str, Any]) -> dict[str, Any]:
    moved = copy.deepcopy(row)
    moved["ward_office"] = AUNDH
    return moved


def events_of(live: Live, cert_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    with live.runtime.sessions() as session:
        return [(e.action, e.actor, e.details) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.certificate_id == cert_id)
            .order_by(AuditEvent.seq))]


SAME = ("department_id", "cert_type", "state", "request", "submitted_by", "approved_by",
        "ward_code", "aadhaar_last4", "aadhaar_hmac", "corrects", "due_at")


def test_records_written_at_once_are_those_recorded_and_approved_one_at_a_time(
        live: Live) -> None:
    ensure_department(live)
    rows = births(3, first=700)
    rows[1] = in_aundh(rows[1])
    rows[1]["applicant"]["aadhaar"] = "234123412346"  # kept only as its last four and HMAC
    ready = prepared(live, [*rows, in_aundh(births(1, first=800)[0])])
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE)
        assert department is not None
        one = record_request(session, department, "clerk-1", ready[3], live.runtime.settings)
        approve(session, one, "officer-1", rule="batch")
        reference = one.id
        ids = record_approved(session, department, ORIGIN,
                              [(2, ready[0]), (3, ready[1]), (4, ready[2])],
                              live.runtime.settings)
    with live.runtime.sessions() as session:
        made = [session.get(Certificate, cert_id) for cert_id in ids]
        alone = session.get(Certificate, reference)
        assert alone is not None and all(made)
        for record, row in zip(made, ready[:3], strict=True):
            assert record is not None
            for name in SAME:
                if name not in ("request", "ward_code", "aadhaar_last4", "aadhaar_hmac"):
                    assert getattr(record, name) == getattr(alone, name), name
            assert (record.request, record.ward_code, record.registration_number,
                    record.aadhaar_last4, record.aadhaar_hmac) == (
                row.clean, row.ward, row.registration, row.aadhaar_last4, row.aadhaar_hmac)
        assert made[1] is not None and made[1].aadhaar_last4 == "2346"
        numbers = [record.number for record in made if record is not None]
        indices = [record.status_index for record in made if record is not None]
        # Kothrud's series goes on from its first number; Aundh's went first with one alone.
        kothrud, aundh = numbers[0] or "", alone.number or ""
        assert numbers[2] == kothrud[:-6] + f"{int(kothrud[-6:]) + 1:06d}"
        assert numbers[1] == aundh[:-6] + f"{int(aundh[-6:]) + 1:06d}"
        assert indices == [alone.status_index + 1, alone.status_index + 2,
                           alone.status_index + 3]
        assert verify_chain(session).ok
        digests = [request_digest(record) for record in made if record is not None]
    for cert_id, line, digest, number, row in zip(ids, (2, 3, 4), digests, numbers, ready,
                                                   strict=False):
        assert events_of(live, cert_id) == [
            ("submit", "clerk-1", {"type": "birth", "registration_number": row.registration,
                                   "ward": row.ward, "corrects": None, "batch": "batch-1",
                                   "line": line}),
            ("approve", "officer-1", {"number": number, "rule": "batch",
                                      "fields_digest": digest})]


def test_released_numbers_are_taken_first_then_the_series_goes_on(live: Live) -> None:
    ensure_department(live)
    ready = prepared(live, births(5, first=900))
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE)
        assert department is not None
        first = record_approved(session, department, ORIGIN, [(2, ready[0])], None)
        number = session.get(Certificate, first[0]).number  # type: ignore[union-attr]
        assert number is not None
        base, serial = number[:-6], int(number[-6:])
        released = f"{base}{serial + 40:06d}"  # a request that drew it was cancelled
        counters.release(session, released)
        session.flush()
        ids = record_approved(session, department, ORIGIN,
                              [(3, ready[1]), (4, ready[2]), (5, ready[3])], None)
        numbers = [session.get(Certificate, i).number for i in ids]  # type: ignore[union-attr]
        # The released number drew no serial: the series goes on without a gap.
        (later,) = record_approved(session, department, ORIGIN, [(6, ready[4])], None)
        numbers.append(session.get(Certificate, later).number)  # type: ignore[union-attr]
    assert numbers == [released, f"{base}{serial + 1:06d}", f"{base}{serial + 2:06d}",
                       f"{base}{serial + 3:06d}"]


def test_a_department_that_approves_automatically_approves_the_batch_rows_itself(
        live: Live) -> None:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None and department.approval == "automatic"
        ready = [prepare(session, department, row) for row in births(2, first=950)]
        ids = record_approved(session, department, ORIGIN, [(2, ready[0]), (3, ready[1])],
                              None)
        approvers = [session.get(Certificate, i).approved_by  # type: ignore[union-attr]
                     for i in ids]
    assert approvers == [AUTO_APPROVER, AUTO_APPROVER]
    for cert_id in ids:
        action, actor, details = events_of(live, cert_id)[1]
        assert (action, actor, details["rule"]) == ("approve", AUTO_APPROVER, "automatic")


def test_the_configured_time_limit_counts_from_the_moment_the_records_are_made(
        live: Live) -> None:
    """PRAMAAN_RTS_DAYS sets a batch row's deadline as it does a single request's; the record is
    created (and last updated) at the moment its deadline counts from, before its submit
    event."""
    ensure_department(live)
    settings = replace(live.runtime.settings, rts_days={"birth": 30})
    ready = prepared(live, births(2, first=980))
    before = utcnow()
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, OFFICE)
        assert department is not None
        ids = record_approved(session, department, ORIGIN, [(2, ready[0]), (3, ready[1])],
                              settings)
    calendar = load_calendar(settings)
    with live.runtime.sessions() as session:
        for cert_id in ids:
            record = session.get(Certificate, cert_id)
            assert record is not None
            created = as_utc(record.created_at)
            submitted = min(as_utc(at) for at in session.scalars(
                select(AuditEvent.at).where(AuditEvent.certificate_id == cert_id)))
            assert before <= created == as_utc(record.updated_at) <= submitted
            assert as_utc(record.due_at) == due_at(calendar, created, 30)
    assert due_at(calendar, before, 30) != due_at(calendar, before, 7)  # birth's own limit


def test_a_chunk_is_of_one_certificate_type(live: Live) -> None:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        birth, death = (prepare(session, department, row)
                        for row in (births(1, first=990)[0], sample("death-1")))
        assert (birth.code, death.code) == ("birth", "death")
        with pytest.raises(AssertionError):  # not a birth certificate for a death
            record_approved(session, department, ORIGIN, [(2, birth), (3, death)], None)
