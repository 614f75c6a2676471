"""The RTS report and escalation on a simulated clock (every `now` is passed in; nothing
sleeps), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from issuer.audit import verify_chain
from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.fields import IST
from issuer.models import AuditEvent, Certificate, RtsEscalation, State
from issuer.rts import DUE_SOON, OVERDUE, csv_rows, rts_report, text_table
from issuer.rts_calendar import WorkingCalendar, load_calendar
from issuer.rts_escalation import SECOND_AFTER, escalate_all, escalate_one
from issuer.runtime import Runtime
from issuer.settings import Settings
from tests.rts_records import department, office, request


def ist(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=IST)


def due(day: date) -> datetime:
    """A deadline as due_at() writes it: the end of the day in IST."""
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=IST).astimezone(UTC)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    initialise(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def calendar(settings: Settings) -> WorkingCalendar:
    return load_calendar(settings)  # the shipped one: second and fourth Saturdays, 2026 list


def report(rt: Runtime, calendar: WorkingCalendar, now: datetime, *,
           department_id: str | None = None, ward: str | None = None,
           due_within: int = 2) -> dict[str, Any]:
    with rt.sessions() as session:
        return rts_report(session, calendar, now, department_id=department_id, ward=ward,
                          due_within=due_within).as_dict()


def test_due_soon_and_overdue_per_office_and_officer(rt: Runtime,
                                                     calendar: WorkingCalendar) -> None:
    office(rt, "KB")
    department(rt, "pmc-aundh")
    now = ist(2026, 1, 12)  # Monday; Saturday 10 January was the second Saturday
    overdue = request(rt, due(date(2026, 1, 8)))  # Thursday
    today = request(rt, due(date(2026, 1, 12)))
    in_two = request(rt, due(date(2026, 1, 14)))
    in_three = request(rt, due(date(2026, 1, 15)))
    failed = request(rt, due(date(2026, 1, 9)), state=State.FAILED)
    request(rt, due(date(2026, 1, 8)), state=State.ISSUED)
    request(rt, due(date(2026, 1, 9)), state=State.REJECTED)
    request(rt, due(date(2026, 1, 9)), state=State.CANCELLED)
    unconfigured = request(rt, due(date(2026, 1, 9)), ward="HD")
    theirs = request(rt, due(date(2026, 1, 9)), department="pmc-aundh")

    body = report(rt, calendar, now, department_id=DEV_DEPARTMENT)
    assert body["totals"] == {OVERDUE: 3, DUE_SOON: 2}
    assert body["horizon"] == due(date(2026, 1, 14)).isoformat()
    [hd, kb] = body["offices"]
    assert (hd["ward_code"], hd["designated_officer"], hd["ward_name_en"]) == ("HD", None, None)
    assert (kb["ward_code"], kb["designated_officer"]) == ("KB", "A. Patil")
    assert (kb["first_appellate"], kb["overdue"], kb["due_soon"]) == ("S. Kulkarni", 2, 2)
    listed = {r["certificate_id"]: r for r in kb["requests"]}
    assert list(listed) == [overdue, failed, today, in_two]  # by due date
    assert in_three not in listed and theirs not in str(body)
    late = listed[overdue]
    # Friday 9 (1), Saturday 10 off, Sunday 11, Monday 12 (2): two working days, four calendar.
    assert (late["status"], late["working_days_late"], late["calendar_days_late"]) == \
        (OVERDUE, 2, 4)
    assert (listed[failed]["working_days_late"], listed[failed]["calendar_days_late"]) == (1, 3)
    assert listed[failed]["state"] == "failed"
    assert (listed[today]["status"], listed[today]["working_days_late"]) == (DUE_SOON, 0)
    assert listed[today]["due_date"] == "2026-01-12"
    assert listed[overdue]["type"] == "birth"
    assert listed[overdue]["registration_number"] == f"REG-{overdue[:8]}"
    assert hd["requests"][0]["certificate_id"] == unconfigured

    wider = report(rt, calendar, now, department_id=DEV_DEPARTMENT, due_within=3)
    assert in_three in str(wider)
    everyone = report(rt, calendar, now)
    assert theirs in str(everyone) and everyone["totals"][OVERDUE] == 4
    just_kb = report(rt, calendar, now, department_id=DEV_DEPARTMENT, ward="KB")
    assert [o["ward_code"] for o in just_kb["offices"]] == ["KB"]


def test_due_within_counts_working_days_over_the_weekend(rt: Runtime,
                                                         calendar: WorkingCalendar) -> None:
    friday = ist(2026, 1, 9, 17, 0)
    on_monday = request(rt, due(date(2026, 1, 12)))
    on_tuesday = request(rt, due(date(2026, 1, 13)))
    tonight = request(rt, due(date(2026, 1, 9)))
    one = str(report(rt, calendar, friday, due_within=1))
    assert on_monday in one and tonight in one and on_tuesday not in one
    zero = str(report(rt, calendar, friday, due_within=0))
    assert tonight in zero and on_monday not in zero
    # Friday 9 January 2026 at 23:59:59 IST it is still due, one second later overdue.
    assert report(rt, calendar, due(date(2026, 1, 9)))["totals"][OVERDUE] == 0
    later = report(rt, calendar, due(date(2026, 1, 9)) + timedelta(seconds=1))
    assert later["totals"][OVERDUE] == 1


def test_csv_rows_and_text_table(rt: Runtime, calendar: WorkingCalendar) -> None:
    office(rt, "KB")
    late = request(rt, due(date(2026, 1, 8)), submitted=ist(2025, 12, 30, 11, 15))
    with rt.sessions() as session:
        result = rts_report(session, calendar, ist(2026, 1, 12))
    [row] = csv_rows(result)
    assert row["certificate_id"] == late and row["designated_officer"] == "A. Patil"
    assert row["submitted_at"] == "2025-12-30T11:15+05:30"
    assert row["due_at"] == "2026-01-08T23:59+05:30"
    assert (row["working_days_late"], row["calendar_days_late"]) == (2, 4)
    table = text_table(result)
    assert "designated officer: A. Patil" in table and late in table
    assert "2 working (4 calendar) days late" in table


def escalations(rt: Runtime, certificate_id: str) -> list[tuple[int, str | None, int]]:
    with rt.sessions() as session:
        return [(e.level, e.officer, e.days_late) for e in session.scalars(
            select(RtsEscalation).where(RtsEscalation.certificate_id == certificate_id)
            .order_by(RtsEscalation.level))]


def escalate_events(rt: Runtime) -> list[AuditEvent]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.action == "rts_escalate").order_by(AuditEvent.seq)))


def level_of(rt: Runtime, certificate_id: str) -> int:
    with rt.sessions() as session:
        record = session.get(Certificate, certificate_id)
        assert record is not None
        return record.escalation_level


def test_escalation_to_the_first_then_the_second_appellate_officer_once_each(
        rt: Runtime, calendar: WorkingCalendar) -> None:
    office(rt, "KB")
    deadline = due(date(2026, 1, 8))
    late = request(rt, deadline)
    not_yet = request(rt, due(date(2026, 1, 13)))
    served = request(rt, deadline, state=State.ISSUED)
    stray = request(rt, deadline, ward="HD")  # no configured office: no officer to name

    assert escalate_all(rt.sessions, calendar, deadline) == []  # due, not overdue
    first_run = ist(2026, 1, 12)
    done = escalate_all(rt.sessions, calendar, first_run)
    assert sorted((e.certificate_id, e.level, e.officer) for e in done) == sorted(
        [(late, 1, "S. Kulkarni"), (stray, 1, None)])
    assert escalations(rt, late) == [(1, "S. Kulkarni", 2)]
    assert level_of(rt, late) == 1 and level_of(rt, not_yet) == 0 and level_of(rt, served) == 0
    [event] = [e for e in escalate_events(rt) if e.certificate_id == late]
    assert event.actor == "system:rts-escalation"
    assert {k: event.details[k] for k in ("level", "officer", "working_days_late",
                                          "calendar_days_late", "ward")} == \
        {"level": 1, "officer": "S. Kulkarni", "working_days_late": 2,
         "calendar_days_late": 4, "ward": "KB"}

    serve(rt, not_yet)  # served on its last day: never escalated
    # Again, and again a day later: nothing new. The first appellate officer has 30 days.
    assert escalate_all(rt.sessions, calendar, first_run) == []
    assert escalate_all(rt.sessions, calendar, first_run + SECOND_AFTER
                        - timedelta(seconds=1)) == []
    second_run = first_run + SECOND_AFTER
    done = escalate_all(rt.sessions, calendar, second_run)
    assert sorted((e.certificate_id, e.level, e.officer) for e in done) == sorted(
        [(late, 2, "Dy. Commissioner (Zone 2)"), (stray, 2, None)])
    # Wednesday 11 February: Jan 9, 12-17 (Saturday 17 is the third), 19-23, 27-31 (26 is
    # Republic Day, 24 the fourth Saturday, 31 the fifth), Feb 2-7, 9-11: 26 working days.
    assert escalations(rt, late) == [(1, "S. Kulkarni", 2),
                                     (2, "Dy. Commissioner (Zone 2)", 26)]
    assert level_of(rt, late) == 2
    assert escalate_all(rt.sessions, calendar, second_run + timedelta(days=400)) == []
    assert len(escalate_events(rt)) == 4
    with rt.sessions() as session:
        assert verify_chain(session).ok


def serve(rt: Runtime, certificate_id: str) -> None:
    with rt.sessions() as session, session.begin():
        record = session.get(Certificate, certificate_id)
        assert record is not None
        record.state = State.ISSUED.value


def test_a_request_served_after_the_first_escalation_goes_no_further(
        rt: Runtime, calendar: WorkingCalendar) -> None:
    late = request(rt, due(date(2026, 1, 8)))
    assert len(escalate_all(rt.sessions, calendar, ist(2026, 1, 12))) == 1
    serve(rt, late)
    assert escalate_all(rt.sessions, calendar, ist(2026, 3, 1)) == []
    assert level_of(rt, late) == 1


def test_escalate_one_decides_on_the_row_as_it_is_now(rt: Runtime,
                                                      calendar: WorkingCalendar) -> None:
    late = request(rt, due(date(2026, 1, 8)))
    now = ist(2026, 1, 12)
    with rt.sessions() as session, session.begin():
        assert escalate_one(session, calendar, late, now) is not None
    # A run that listed it before the first one committed finds it done.
    with rt.sessions() as session, session.begin():
        assert escalate_one(session, calendar, late, now) is None
    assert escalations(rt, late) == [(1, None, 2)]


def test_two_runs_at_once_escalate_each_request_once(rt: Runtime,
                                                     calendar: WorkingCalendar) -> None:
    office(rt, "KB")
    ids = [request(rt, due(date(2026, 1, 8))) for _ in range(30)]
    now = ist(2026, 1, 12)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(len(escalate_all(rt.sessions, calendar, now)))
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(results) == len(ids)
    with rt.sessions() as session:
        rows = session.scalar(select(func.count()).select_from(RtsEscalation))
        levels = set(session.scalars(select(Certificate.escalation_level)
                                     .where(Certificate.id.in_(ids))))
        assert verify_chain(session).ok
    assert rows == len(ids) and levels == {1}
    assert len(escalate_events(rt)) == len(ids)
