"""Escalating overdue requests to the appellate officers (Maharashtra Right to Public Services
Act, 2015, section 9).

The Act lets the citizen appeal to the first appellate officer within 30 days of the time limit
running out; that officer decides within 30 days; then a second appeal lies to the second
appellate officer. We do not wait for the citizen: a request still not served when it falls due
is escalated to the first appellate officer of its ward office (level 1) at once, and to the
second appellate officer (level 2) when the first has had SECOND_AFTER (30 calendar days, the
first appellate officer's time to decide) since the level-1 escalation and it is still not
served.

Each escalation is one transaction: a row in rts_escalations (unique per certificate and level),
Certificate.escalation_level, and an audit event "rts_escalate" naming the officer and the days
late. Two runs at once (two workers, a worker and cron) escalate each request once: the
certificate row is locked and re-read, and the unique row is the last word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from issuer import audit
from issuer.db import as_utc
from issuer.models import Certificate, RtsEscalation, WardOffice
from issuer.rts import OPEN_STATES
from issuer.rts_calendar import WorkingCalendar, lateness

log = logging.getLogger(__name__)

SECOND_AFTER = timedelta(days=30)
ACTOR = "system:rts-escalation"
LEVELS = {1: "first_appellate", 2: "second_appellate"}


@dataclass(frozen=True)
class Escalation:
    certificate_id: str
    level: int
    officer: str | None
    working_days_late: int
    calendar_days_late: int


def candidates(session: Session, now: datetime, second_after: timedelta = SECOND_AFTER,
               department_id: str | None = None) -> list[str]:
    """Ids of open, overdue requests that have a level to reach: none yet, or level 1 reached
    at least `second_after` ago."""
    level_one_aged = exists().where(RtsEscalation.certificate_id == Certificate.id,
                                    RtsEscalation.level == 1,
                                    RtsEscalation.at <= as_utc(now) - second_after)
    query = (
        select(Certificate.id)
        .where(Certificate.state.in_([s.value for s in OPEN_STATES]),
               Certificate.due_at < as_utc(now),
               or_(Certificate.escalation_level == 0,
                   and_(Certificate.escalation_level == 1, level_one_aged)))
        .order_by(Certificate.due_at, Certificate.id)
    )
    if department_id is not None:
        query = query.where(Certificate.department_id == department_id)
    return list(session.scalars(query))


def escalate_one(session: Session, calendar: WorkingCalendar, certificate_id: str,
                 now: datetime, second_after: timedelta = SECOND_AFTER,
                 actor: str = ACTOR) -> Escalation | None:
    """Escalate one request by one level if it is (still) due, in the caller's transaction.
    None when there is nothing to do: served meanwhile, or another run got there first."""
    record = session.get(Certificate, certificate_id, with_for_update=True,
                         populate_existing=True)
    if record is None or record.state not in {s.value for s in OPEN_STATES}:
        return None
    late = lateness(calendar, as_utc(record.due_at), now)
    level = _next_level(session, record, now, second_after) if late.overdue else None
    if level is None:
        return None
    office = session.get(WardOffice, (record.department_id, record.ward_code))
    officer = getattr(office, LEVELS[level]) if office is not None else None
    session.add(RtsEscalation(certificate_id=record.id, level=level, officer=officer,
                              days_late=late.working_days, at=as_utc(now)))
    session.flush()  # the unique (certificate, level) row: a concurrent run stops here
    record.escalation_level = level
    audit.record(session, actor=actor, action="rts_escalate", certificate_id=record.id,
                 details={"level": level, "officer": officer, "ward": record.ward_code,
                          "department": record.department_id,
                          "working_days_late": late.working_days,
                          "calendar_days_late": late.calendar_days,
                          "due_at": as_utc(record.due_at).isoformat()})
    return Escalation(record.id, level, officer, late.working_days, late.calendar_days)


def _next_level(session: Session, record: Certificate, now: datetime,
                second_after: timedelta) -> int | None:
    if (record.escalation_level or 0) == 0:
        return 1
    if record.escalation_level != 1:
        return None
    first = session.scalars(select(RtsEscalation.at).where(
        RtsEscalation.certificate_id == record.id, RtsEscalation.level == 1)).first()
    if first is None or as_utc(first) + second_after > as_utc(now):
        return None
    return 2


def escalate_all(sessions: Callable[[], Session], calendar: WorkingCalendar, now: datetime,
                 second_after: timedelta = SECOND_AFTER, *, actor: str = ACTOR,
                 department_id: str | None = None) -> list[Escalation]:
    """Every escalation due at `now`, one transaction per certificate (one level per run: a
    request first seen long overdue reaches level 2 on a run `second_after` later)."""
    with sessions() as session:
        ids = candidates(session, now, second_after, department_id)
    done: list[Escalation] = []
    for certificate_id in ids:
        with sessions() as session:
            try:
                with session.begin():
                    result = escalate_one(session, calendar, certificate_id, now, second_after,
                                          actor)
            except IntegrityError:
                log.info("certificate %s was escalated by another run", certificate_id)
                continue
        if result is not None:
            log.info("RTS escalation: %s level %d to %s (%d working days late)",
                     result.certificate_id, result.level, result.officer or "no officer named",
                     result.working_days_late)
            done.append(result)
    return done
