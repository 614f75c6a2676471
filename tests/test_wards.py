"""Ward offices and their RTS officers: `pramaan ward add|list|set`, audited; resolve() keeps
matching requests to configured offices."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cli import main
from issuer import wards
from issuer.audit import verify_chain
from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.errors import NotFound, ValidationFailed
from issuer.models import AuditEvent, Department, WardOffice
from issuer.runtime import Runtime
from issuer.settings import Settings


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    initialise(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def cli_env(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """`pramaan` in this process, on the test's database."""
    s = rt.settings
    for name, value in {"PRAMAAN_HOME": str(s.home), "DATABASE_URL": s.database_url,
                        "PRAMAAN_KEYS_DIR": str(s.keys_dir),
                        "PRAMAAN_STORE_DIR": str(s.store_dir)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("PRAMAAN_HOLIDAYS_FILE", raising=False)
    return rt


def pramaan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.seq)))


def test_add_list_and_set_officers_from_the_command_line(
        cli_env: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    rt = cli_env
    code, out, err = pramaan(capsys, "ward", "add", "KB", "--department", DEV_DEPARTMENT,
                             "--name-en", "Kothrud-Bavdhan Ward Office",
                             "--name-mr", "कोथरूड-बावधन क्षेत्रीय कार्यालय",
                             "--officer", "A. Patil", "--first-appellate", "S. Kulkarni",
                             "--actor", "tester")
    assert code == 0, err
    added = json.loads(out)
    assert added == [{"department": DEV_DEPARTMENT, "code": "KB",
                      "name_en": "Kothrud-Bavdhan Ward Office",
                      "name_mr": "कोथरूड-बावधन क्षेत्रीय कार्यालय",
                      "designated_officer": "A. Patil", "first_appellate": "S. Kulkarni",
                      "second_appellate": None}]
    [event] = events(rt, "ward_add")
    assert event.actor == "cli:tester" and event.details["department"] == DEV_DEPARTMENT
    assert event.details["designated_officer"] == "A. Patil"

    # Without --department: the code is found in the one department that has it. An officer
    # named again as they are is no change.
    code, out, err = pramaan(capsys, "ward", "set", "KB", "--second-appellate", "Dy. Commissioner",
                             "--officer", "", "--first-appellate", "S. Kulkarni",
                             "--actor", "tester")
    assert code == 0, err
    assert json.loads(out)[0]["second_appellate"] == "Dy. Commissioner"
    assert json.loads(out)[0]["designated_officer"] is None  # '' clears
    [change] = events(rt, "ward_set")
    assert change.details["changes"] == {"second_appellate": [None, "Dy. Commissioner"],
                                         "designated_officer": ["A. Patil", None]}

    code, out, _ = pramaan(capsys, "ward", "list", "--department", DEV_DEPARTMENT)
    assert code == 0 and [o["code"] for o in json.loads(out)] == ["KB"]
    with rt.sessions() as session:
        assert verify_chain(session).ok


def test_refusals_name_the_field_and_change_nothing(
        cli_env: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    rt = cli_env
    assert pramaan(capsys, "ward", "add", "KB", "--department", DEV_DEPARTMENT,
                   "--name-en", "Kothrud Ward Office", "--name-mr", "कोथरूड")[0] == 0
    for argv, field in (
        (("ward", "add", "kb", "--department", DEV_DEPARTMENT, "--name-en", "X",
          "--name-mr", "क"), "code"),
        (("ward", "add", "KB", "--department", DEV_DEPARTMENT, "--name-en", "Other",
          "--name-mr", "क"), "code"),
        (("ward", "add", "K2", "--department", DEV_DEPARTMENT, "--name-en",
          "  kothrud   ward office ", "--name-mr", "क"), "name_en"),
        (("ward", "add", "K3", "--department", DEV_DEPARTMENT, "--name-en", "Aundh",
          "--name-mr", "औंध", "--officer", "x" * 101), "designated_officer"),
        (("ward", "set", "KB"), "officers"),
    ):
        code, _, err = pramaan(capsys, *argv)
        assert code == 2, argv
        assert json.loads(err)["errors"][0]["field"] == field, err
    code, _, err = pramaan(capsys, "ward", "set", "ZZ", "--officer", "A")
    assert code == 2 and json.loads(err)["code"] == "not_found"
    code, _, err = pramaan(capsys, "ward", "add", "AU", "--department", "nope",
                           "--name-en", "Aundh", "--name-mr", "औंध")
    assert code == 2 and json.loads(err)["code"] == "not_found"
    with rt.sessions() as session:
        assert [o.code for o in wards.list_offices(session)] == ["KB"]
    assert len(events(rt, "ward_add")) == 1 and events(rt, "ward_set") == []


def test_set_needs_the_department_when_two_have_the_code(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        session.add(Department(id="pmc-aundh", name_en="Aundh", name_mr="औंध",
                               cert_types=["birth"]))
        for department in (DEV_DEPARTMENT, "pmc-aundh"):
            wards.add_office(session, department, "AU", "Aundh Ward Office", "औंध", {},
                             actor="test")
    with rt.sessions() as session:
        assert wards.departments_with(session, "AU") == ["pmc-aundh", DEV_DEPARTMENT]
        with pytest.raises(NotFound):
            wards.set_officers(session, DEV_DEPARTMENT, "XX", {"first_appellate": "A"},
                               actor="test")
    with rt.sessions() as session, session.begin():
        wards.set_officers(session, "pmc-aundh", "AU", {"first_appellate": "B. Joshi"},
                           actor="test")
    with rt.sessions() as session:
        theirs = session.get(WardOffice, ("pmc-aundh", "AU"))
        ours = session.get(WardOffice, (DEV_DEPARTMENT, "AU"))
        assert theirs is not None and theirs.first_appellate == "B. Joshi"
        assert ours is not None and ours.first_appellate is None


def test_resolve_matches_configured_offices_or_derives_a_code(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        assert wards.resolve(session, DEV_DEPARTMENT, "Kothrud-Bavdhan Ward Office") == "KB"
        wards.add_office(session, DEV_DEPARTMENT, "KOTHRUD", "Kothrud-Bavdhan Ward Office",
                         "कोथरूड", {"designated_officer": " A. Patil "}, actor="test")
        office = wards.resolve(session, DEV_DEPARTMENT, "KOTHRUD-BAVDHAN  ward office")
        assert isinstance(office, WardOffice) and office.code == "KOTHRUD"
        assert office.designated_officer == "A. Patil"
        assert wards.resolve(session, DEV_DEPARTMENT, "Aundh Ward Office") is None


def test_unknown_officer_fields_are_refused(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        with pytest.raises(ValidationFailed) as caught:
            wards.add_office(session, DEV_DEPARTMENT, "KB", "Kothrud", "कोथरूड",
                             {"commissioner": "X"}, actor="test")
    assert caught.value.errors[0].field == "commissioner"
