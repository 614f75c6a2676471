"""`pramaan rts report [--csv]` and `pramaan rts escalate` on the test's database (cli.main in
this process, on the real clock: the requests are placed around now)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cli import main
from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.db import utcnow
from issuer.fields import IST
from issuer.rts import CSV_COLUMNS
from issuer.rts_calendar import due_at, load_calendar
from issuer.runtime import Runtime
from issuer.settings import Settings
from tests.rts_records import department, office, request


@pytest.fixture
def rt(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    initialise(runtime)
    for name, value in {"PRAMAAN_HOME": str(settings.home), "DATABASE_URL": settings.database_url,
                        "PRAMAAN_KEYS_DIR": str(settings.keys_dir),
                        "PRAMAAN_STORE_DIR": str(settings.store_dir)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("PRAMAAN_HOLIDAYS_FILE", raising=False)
    yield runtime
    runtime.close()


def pramaan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_report_as_csv(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    now = utcnow()
    calendar = load_calendar(rt.settings)
    office(rt, "KB")
    department(rt, "pmc-aundh")
    overdue = request(rt, now - timedelta(days=3), submitted=now - timedelta(days=12))
    soon = request(rt, due_at(calendar, now, 1))
    request(rt, due_at(calendar, now, 6))
    theirs = request(rt, now - timedelta(days=3), department="pmc-aundh")

    code, out, err = pramaan(capsys, "rts", "report", "--department", DEV_DEPARTMENT, "--csv")
    assert code == 0, err
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = {row["certificate_id"]: row for row in reader}
    assert set(rows) == {overdue, soon}
    late = rows[overdue]
    assert (late["status"], late["calendar_days_late"]) == ("overdue", "3")
    assert late["designated_officer"] == "A. Patil" and late["ward_code"] == "KB"
    assert late["type"] == "birth" and late["state"] == "submitted"
    assert late["registration_number"] == f"REG-{overdue[:8]}"
    assert late["due_at"] == (now - timedelta(days=3)).astimezone(IST).isoformat(
        timespec="minutes")
    assert late["submitted_at"].endswith("+05:30")
    assert rows[soon]["status"] == "due_soon" and rows[soon]["working_days_late"] == "0"

    code, out, _ = pramaan(capsys, "rts", "report", "--csv")  # every department
    assert theirs in out
    code, out, _ = pramaan(capsys, "rts", "report", "--csv", "--ward", "hd")
    assert list(csv.DictReader(io.StringIO(out))) == []
    code, out, _ = pramaan(capsys, "rts", "report", "--department", DEV_DEPARTMENT)
    assert code == 0 and "designated officer: A. Patil" in out and overdue in out
    assert "overdue 1, due within 2 working day(s) 1" in out
    code, _, err = pramaan(capsys, "rts", "report", "--department", "nope")
    assert code == 2 and json.loads(err)["code"] == "not_found"


def test_escalate_for_cron(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    office(rt, "KB")
    late = request(rt, utcnow() - timedelta(days=3))
    code, out, err = pramaan(capsys, "rts", "escalate")
    assert code == 0, err
    [done] = json.loads(out)
    assert (done["certificate_id"], done["level"], done["officer"]) == (late, 1, "S. Kulkarni")
    assert done["calendar_days_late"] == 3
    # Cron runs it again: nothing more until the first appellate officer's 30 days are over.
    assert json.loads(pramaan(capsys, "rts", "escalate")[1]) == []
    code, out, _ = pramaan(capsys, "rts", "escalate", "--second-after-days", "0")
    assert [(e["level"], e["officer"]) for e in json.loads(out)] == [
        (2, "Dy. Commissioner (Zone 2)")]
    assert pramaan(capsys, "rts", "escalate", "--second-after-days", "-1")[0] == 2


def test_a_bad_holiday_file_stops_the_command(rt: Runtime, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "holidays.txt"
    bad.write_text("2026-02-30 No such day\n", encoding="utf-8")
    monkeypatch.setenv("PRAMAAN_HOLIDAYS_FILE", str(bad))
    code, _, err = pramaan(capsys, "rts", "report")
    assert code == 2
    assert json.loads(err)["code"] == "config_invalid" and "holidays.txt:1" in err
