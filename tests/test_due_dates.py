"""Every request gets its RTS deadline at submission: the type's time limit (or the configured
one) in working days of the configured holiday calendar, not calendar days."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from issuer.db import as_utc, utcnow
from issuer.models import Certificate
from issuer.rts_calendar import due_at, ist_date, read_calendar
from issuer.settings import Settings
from tests.conftest import ROOT, Live, make_settings, sample, serve


def created(live: Live, name: str = "birth-1") -> Certificate:
    response = live.post_json("/api/v1/certificates", sample(name))
    assert response.status_code == 202, response.text
    with live.runtime.sessions() as session:
        record = session.get(Certificate, response.json()["id"])
        assert record is not None
        return record


def holidays_after_today(path: Path, days: int) -> Path:
    """A calendar in which every one of the next `days` days is a holiday."""
    start = ist_date(utcnow())
    lines = ["saturdays: none"] + [f"{start + timedelta(days=i)}  closure"
                                   for i in range(1, days + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_deadline_skips_configured_holidays_and_uses_the_configured_limit(
    tmp_path: Path, database_url: str, keys_dir: Path
) -> None:
    calendar_file = holidays_after_today(tmp_path / "holidays.txt", 20)
    settings: Settings = make_settings(tmp_path, database_url, keys_dir,
                                       holidays_file=calendar_file,
                                       rts_days={"death": 3})
    for live in serve(settings):
        birth = created(live, "birth-1")
        death = created(live, "death-1")
    calendar = read_calendar(calendar_file)
    for record, days in ((birth, 7), (death, 3)):
        submitted = as_utc(record.created_at)
        assert as_utc(record.due_at) == due_at(calendar, submitted, days)
        # Twenty closed days first: the deadline lies beyond them.
        assert ist_date(record.due_at) > ist_date(submitted) + timedelta(days=20)


def test_the_shipped_calendar_gives_working_days_not_calendar_days(live: Live) -> None:
    record = created(live)
    submitted = as_utc(record.created_at)
    working = due_at(read_calendar(ROOT / "issuer" / "data" / "holidays.txt"), submitted, 7)
    assert as_utc(record.due_at) == working
    # Seven working days always span at least one Sunday: never 7 calendar days.
    assert ist_date(record.due_at) > ist_date(submitted) + timedelta(days=7)
