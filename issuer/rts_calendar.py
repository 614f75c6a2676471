"""Working days for Right to Public Services deadlines (Maharashtra Right to Public Services
Act, 2015): which days an office works, and when a request falls due.

A time limit is counted in working days after the day the request was received, in India
(IST): a request received at 23:00 IST on a Friday counts from Friday, not from the UTC date.
The deadline is the end (23:59:59 IST) of the last working day, so a request is overdue from
the first moment of the next day.

Off days are every Sunday, the Saturdays the calendar names, and the listed holidays. Which
Saturdays: Maharashtra's state government offices had the second and fourth Saturday of the
month off until 29 February 2020, and every Saturday since (the five-day week, cabinet decision
of 12 February 2020). A municipal corporation decides its own week, so this is configuration:
the default is the second and fourth Saturday, which errs on the side of the citizen (more
working days, earlier deadlines); an office on the five-day week writes `saturdays: all` in its
holiday file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from issuer.db import as_utc
from issuer.errors import ConfigError
from issuer.fields import IST

if TYPE_CHECKING:
    from issuer.settings import Settings

log = logging.getLogger(__name__)

SECOND_AND_FOURTH = frozenset({2, 4})
ALL_SATURDAYS = frozenset({1, 2, 3, 4, 5})
END_OF_DAY = time(23, 59, 59)
SUNDAY, SATURDAY = 6, 5
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class WorkingCalendar:
    """An office's working days: not Sunday, not an off Saturday, not a listed holiday."""

    holidays: frozenset[date] = frozenset()
    # Which Saturdays of a month (1st..5th) are off: {2, 4} second and fourth, 1-5 all.
    off_saturdays: frozenset[int] = SECOND_AND_FOURTH
    # The years the holiday list was published for; outside them only weekends are known.
    years: frozenset[int] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day.weekday() == SUNDAY or day in self.holidays:
            return False
        return not (day.weekday() == SATURDAY and saturday_of_month(day) in self.off_saturdays)

    def add_working_days(self, start: date, count: int) -> date:
        """The `count`-th working day after `start` (`start` itself never counts); `start`
        for a count of 0."""
        if count < 0:
            raise ValueError("a number of working days is never negative")
        day = start
        while count:
            day += timedelta(days=1)
            count -= self.is_working_day(day)
        return day

    def working_days_between(self, after: date, through: date) -> int:
        """Working days d with after < d <= through (0 when through is not after `after`)."""
        days = (through - after).days
        return sum(self.is_working_day(after + timedelta(days=i)) for i in range(1, days + 1))

    def covers(self, day: date) -> bool:
        return day.year in self.years


def saturday_of_month(day: date) -> int:
    """1 for the first Saturday (or any weekday) of its month, 2 for the second, ..."""
    return (day.day - 1) // 7 + 1


def ist_date(moment: datetime) -> date:
    """The Indian calendar date of a moment (naive values are UTC, as SQLite returns them)."""
    return as_utc(moment).astimezone(IST).date()


def due_at(calendar: WorkingCalendar, submitted_at: datetime, working_days: int) -> datetime:
    """The deadline: the end, in IST, of the `working_days`-th working day after the IST day of
    submission; aware UTC (the database stores UTC)."""
    received = ist_date(submitted_at)
    last = calendar.add_working_days(received, working_days)
    missing = sorted({d.year for d in (received, last)} - set(calendar.years))
    if missing:
        log.warning("the holiday calendar has no published holiday list for %s: the deadline "
                    "may fall on a holiday (add the year's list; see PRAMAAN_HOLIDAYS_FILE)",
                    ", ".join(map(str, missing)))
    return datetime.combine(last, END_OF_DAY, tzinfo=IST).astimezone(UTC)


@dataclass(frozen=True)
class Lateness:
    """How late a request is at a moment: working days and calendar days after its due day."""

    overdue: bool
    working_days: int
    calendar_days: int


def lateness(calendar: WorkingCalendar, due: datetime, now: datetime) -> Lateness:
    """Days late counts the days after the due day up to and including today (IST): a request
    due Friday is 1 calendar day late on Saturday, and 1 working day late on Monday when that
    Saturday is off."""
    overdue = as_utc(now) > as_utc(due)
    due_day, today = ist_date(due), ist_date(now)
    if not overdue:
        return Lateness(False, 0, 0)
    return Lateness(True, calendar.working_days_between(due_day, today), (today - due_day).days)


def parse_calendar(lines: Iterable[str], source: str = "holidays") -> WorkingCalendar:
    """A calendar from the holiday file format (see README, "RTS deadlines"):

        # comments and blank lines are ignored
        saturdays: 2 4          # off Saturdays: ordinals 1-5, or "all", or "none"
        provisional: 2027       # years listed before their official list was published
        2026-01-26  Republic Day

    A year counts as covered when it has holidays and is not provisional.
    """
    holidays: set[date] = set()
    provisional: set[int] = set()
    off_saturdays = SECOND_AND_FOURTH
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        directive, _, value = line.partition(":")
        if directive.strip().lower() == "saturdays":
            off_saturdays = _saturdays(value, where)
        elif directive.strip().lower() == "provisional":
            provisional |= _years(value, where)
        else:
            holidays.add(_holiday(line, where))
    years = frozenset(d.year for d in holidays) - provisional
    return WorkingCalendar(frozenset(holidays), off_saturdays, years)


def _years(value: str, where: str) -> set[int]:
    words = value.replace(",", " ").split()
    if not words or not all(w.isdigit() and len(w) == 4 for w in words):
        raise ConfigError(f"{where}: 'provisional:' takes years (say '2027'), "
                          f"not {value.strip()!r}")
    return {int(w) for w in words}


def _saturdays(value: str, where: str) -> frozenset[int]:
    words = value.replace(",", " ").lower().split()
    if words == ["all"]:
        return ALL_SATURDAYS
    if words == ["none"]:
        return frozenset()
    try:
        ordinals = frozenset(int(w) for w in words)
    except ValueError:
        ordinals = frozenset()
    if not ordinals or not ordinals <= ALL_SATURDAYS:
        raise ConfigError(f"{where}: 'saturdays:' takes 'all', 'none' or ordinals 1-5 "
                          f"(say '2 4'), not {value.strip()!r}")
    return ordinals


def _holiday(line: str, where: str) -> date:
    text = line.split(None, 1)[0]
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected a date YYYY-MM-DD (then the holiday's name), "
                      f"not {text!r}")


def read_calendar(path: Path) -> WorkingCalendar:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the holiday calendar {path}: {exc.strerror}") from None
    return parse_calendar(text.splitlines(), str(path))


def load_calendar(settings: Settings) -> WorkingCalendar:
    """The configured calendar (PRAMAAN_HOLIDAYS_FILE), else the one shipped with Pramaan."""
    if settings.holidays_file is not None:
        return read_calendar(settings.holidays_file)
    return shipped_calendar()


def shipped_calendar() -> WorkingCalendar:
    """The calendar shipped with Pramaan (issuer/data/holidays.txt)."""
    shipped = resources.files("issuer") / "data" / "holidays.txt"
    return parse_calendar(shipped.read_text(encoding="utf-8").splitlines(),
                          "issuer/data/holidays.txt")
