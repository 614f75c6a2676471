"""RTS working-day calendar: due dates across weekends, off Saturdays, holidays and year end,
computed in IST, on a simulated clock (every moment is passed in)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from issuer.errors import ConfigError
from issuer.fields import IST
from issuer.rts_calendar import (
    ALL_SATURDAYS,
    WorkingCalendar,
    due_at,
    lateness,
    load_calendar,
    parse_calendar,
)
from issuer.settings import Settings


def ist(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=IST)


def end_of_day_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=IST).astimezone(UTC)


@pytest.fixture
def shipped() -> WorkingCalendar:
    return load_calendar(Settings.from_env(env={}, overrides={"home": Path("/nonexistent")}))


def test_the_shipped_calendar_has_the_published_2026_list(shipped: WorkingCalendar) -> None:
    assert date(2026, 1, 26) in shipped.holidays  # Republic Day
    assert date(2026, 11, 11) in shipped.holidays  # Bhaubeej, the additional 2026 holiday
    assert date(2026, 4, 1) not in shipped.holidays  # banks only
    # 25 entries; 1 May and 15 August each carry two.
    assert len({d for d in shipped.holidays if d.year == 2026}) == 23
    assert shipped.off_saturdays == frozenset({2, 4})
    assert shipped.covers(date(2026, 6, 1))
    assert not shipped.covers(date(2027, 6, 1))  # provisional until the 2027 list is out


def test_second_and_fourth_saturdays_and_sundays_are_off(shipped: WorkingCalendar) -> None:
    # January 2026: Saturdays 3, 10, 17, 24, 31.
    working = {d: shipped.is_working_day(date(2026, 1, d)) for d in (3, 10, 17, 24, 31, 4, 5)}
    assert working == {3: True, 10: False, 17: True, 24: False, 31: True, 4: False, 5: True}


def test_a_request_submitted_on_friday_evening_ist(shipped: WorkingCalendar) -> None:
    # Friday 9 January 2026, 20:00 IST (14:30 UTC). Sat 10 is the second Saturday, Sun 11 off;
    # Mon 12 .. Fri 16 are days 1-5, Sat 17 (third) is day 6, Mon 19 day 7.
    due = due_at(shipped, ist(2026, 1, 9, 20, 0), 7)
    assert due == end_of_day_utc(date(2026, 1, 19))
    assert due.tzinfo == UTC
    # 23:59 IST Friday is still Friday in India though it is Friday in UTC too; 00:30 IST
    # Saturday is Friday 19:00 UTC: it counts from Saturday, an off day, so the same deadline.
    assert due_at(shipped, ist(2026, 1, 9, 23, 59), 7) == due
    saturday_utc_friday = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
    assert due_at(shipped, saturday_utc_friday, 7) == due


def test_the_ist_day_decides_not_the_utc_day() -> None:
    weekdays_only = WorkingCalendar(off_saturdays=ALL_SATURDAYS)
    # Thursday 1 Jan 2026 20:00 UTC is Friday 2 Jan 01:30 IST: day 1 is Monday 5 Jan.
    assert due_at(weekdays_only, datetime(2026, 1, 1, 20, 0, tzinfo=UTC), 1) == \
        end_of_day_utc(date(2026, 1, 5))
    # Thursday 1 Jan 2026 18:00 UTC is 23:30 IST Thursday: day 1 is Friday 2 Jan.
    assert due_at(weekdays_only, datetime(2026, 1, 1, 18, 0, tzinfo=UTC), 1) == \
        end_of_day_utc(date(2026, 1, 2))


def test_holidays_are_skipped(shipped: WorkingCalendar) -> None:
    # Wednesday 18 March 2026: Thu 19 Gudhi Padwa, Fri 20 (1), Sat 21 Ramzan-Id (and the third
    # Saturday, so it would have been a working day), Mon 23 (2) .. Wed 25 (4), Thu 26 Ram
    # Navami, Fri 27 (5), Sat 28 (fourth Saturday) off, Mon 30 (6), Tue 31 Mahavir
    # Janmakalyanak, Wed 1 April (7).
    assert due_at(shipped, ist(2026, 3, 18), 7) == end_of_day_utc(date(2026, 4, 1))
    without_holidays = WorkingCalendar()
    assert due_at(without_holidays, ist(2026, 3, 18), 7) == end_of_day_utc(date(2026, 3, 26))


def test_across_the_year_end(shipped: WorkingCalendar) -> None:
    # Thursday 24 Dec 2026: Fri 25 Christmas, Sat 26 fourth Saturday, Sun 27; Mon 28 .. Thu 31
    # (1-4), Fri 1 Jan 2027 (5), Sat 2 Jan first Saturday (6), Sun 3, Mon 4 Jan (7).
    assert due_at(shipped, ist(2026, 12, 24), 7) == end_of_day_utc(date(2027, 1, 4))


def test_a_five_day_week(shipped: WorkingCalendar) -> None:
    five_day = WorkingCalendar(shipped.holidays, ALL_SATURDAYS, shipped.years)
    # Friday 9 Jan 2026: Mon 12 .. Fri 16 (1-5), Mon 19 (6), Tue 20 (7).
    assert due_at(five_day, ist(2026, 1, 9), 7) == end_of_day_utc(date(2026, 1, 20))


def test_submission_on_a_holiday_counts_from_the_next_working_day(
        shipped: WorkingCalendar) -> None:
    # Republic Day, Monday 26 Jan 2026: Tue 27 is day 1, day 3 is Thu 29.
    assert due_at(shipped, ist(2026, 1, 26), 3) == end_of_day_utc(date(2026, 1, 29))


def test_days_late_in_working_and_calendar_days(shipped: WorkingCalendar) -> None:
    due = end_of_day_utc(date(2026, 1, 9))  # Friday
    assert lateness(shipped, due, ist(2026, 1, 9, 23, 59)).overdue is False
    assert lateness(shipped, due, due).overdue is False  # due at the end of the day: not yet
    saturday = lateness(shipped, due, ist(2026, 1, 10, 0, 0))  # second Saturday: off
    assert (saturday.overdue, saturday.working_days, saturday.calendar_days) == (True, 0, 1)
    monday = lateness(shipped, due, ist(2026, 1, 12, 9, 0))
    assert (monday.working_days, monday.calendar_days) == (1, 3)
    later = lateness(shipped, due, ist(2026, 1, 27, 9, 0))  # 26 Jan Republic Day, 24 fourth Sat
    # Working: 12-16 (5), 17 (6), 19-23 (11), 27 (12).
    assert (later.working_days, later.calendar_days) == (12, 18)


def test_add_working_days_zero_and_negative() -> None:
    calendar = WorkingCalendar()
    assert calendar.add_working_days(date(2026, 1, 10), 0) == date(2026, 1, 10)
    with pytest.raises(ValueError):
        calendar.add_working_days(date(2026, 1, 10), -1)


def test_a_holiday_file_of_our_own(tmp_path: Path) -> None:
    path = tmp_path / "holidays.txt"
    path.write_text("# our office\nsaturdays: all\n2026-01-12  Local festival  # a Monday\n"
                    "\n2028-01-03 Something\nprovisional: 2028\n", encoding="utf-8")
    settings = Settings.from_env(env={"PRAMAAN_HOLIDAYS_FILE": str(path)},
                                 overrides={"home": tmp_path})
    calendar = load_calendar(settings)
    assert calendar.holidays == frozenset({date(2026, 1, 12), date(2028, 1, 3)})
    assert calendar.off_saturdays == ALL_SATURDAYS
    assert calendar.years == frozenset({2026})
    # Friday 9 Jan: Sat/Sun off, Mon 12 holiday: day 1 is Tuesday 13.
    assert due_at(calendar, ist(2026, 1, 9), 1) == end_of_day_utc(date(2026, 1, 13))


@pytest.mark.parametrize("text, fragment", [
    ("2026-13-01 Bad month\n", "line:1"),
    ("26-01-2026 Indian order\n", "YYYY-MM-DD"),
    ("saturdays: 6\n", "ordinals 1-5"),
    ("saturdays: second\n", "ordinals 1-5"),
    ("saturdays:\n", "ordinals 1-5"),
    ("\nprovisional: next\n", "line:2"),
])
def test_a_bad_holiday_file_names_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_calendar(text.splitlines(), "line")
    assert fragment in caught.value.detail


def test_an_unreadable_holiday_file_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"PRAMAAN_HOLIDAYS_FILE": str(tmp_path / "missing.txt")},
                                 overrides={"home": tmp_path})
    with pytest.raises(ConfigError) as caught:
        load_calendar(settings)
    assert "missing.txt" in caught.value.detail


def test_a_deadline_in_an_unpublished_year_is_logged(
        shipped: WorkingCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="issuer.rts_calendar"):
        due_at(shipped, ist(2026, 6, 1), 7)
        assert caplog.records == []
        due_at(shipped, ist(2026, 12, 28), 7)
    assert "2027" in caplog.text


def test_every_working_day_count_lands_on_a_working_day(shipped: WorkingCalendar) -> None:
    start = date(2026, 1, 1)
    for offset in range(0, 366, 5):
        for days in (1, 7, 15):
            submitted = datetime.combine(start + timedelta(days=offset), datetime.min.time(),
                                         tzinfo=IST)
            last = due_at(shipped, submitted, days).astimezone(IST).date()
            assert shipped.is_working_day(last)
            assert shipped.working_days_between(submitted.date(), last) == days
