"""The Right to Public Services report: requests not yet served that are due soon or overdue,
per ward office and designated officer, with how late each is in working and calendar days.

`now` is always passed in (the API and the CLI pass the clock; tests pass a simulated one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, TypedDict

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from issuer.db import as_utc
from issuer.errors import FieldError, ValidationFailed
from issuer.fields import IST
from issuer.models import Certificate, State, WardOffice
from issuer.plain_fields import TextParam, WholeParam
from issuer.rts_calendar import END_OF_DAY, WorkingCalendar, ist_date, lateness
from issuer.typeddict_schema import DATE_TIME, Keywords

# Not yet served: the citizen is still waiting. A failed issue waits for an operator, and the
# clock runs on it all the same. Rejected and cancelled requests are decided.
OPEN_STATES = (State.SUBMITTED, State.APPROVED, State.SIGNING, State.FAILED)
DEFAULT_DUE_WITHIN = 2  # working days
MAX_DUE_WITHIN = 60
# The report's query parameters, checked here and published from these objects (api_openapi.py).
DUE_WITHIN = WholeParam("due_within", 0, MAX_DUE_WITHIN, DEFAULT_DUE_WITHIN,
                        f"a whole number of working days, 0 to {MAX_DUE_WITHIN}")
WARD = TextParam("ward", "query", 1, 16, "length", "a ward office code, 1 to 16 characters",
                 strip=True)
OVERDUE: Final = "overdue"
DUE_SOON: Final = "due_soon"
NO_OFFICER = "(not designated)"
Status = Literal["overdue", "due_soon"]
Time = Annotated[str, DATE_TIME]


class ItemLinks(TypedDict):
    certificate: str


class ItemView(TypedDict):
    """A request on the report."""

    certificate_id: str
    type: str
    registration_number: str
    state: Annotated[str, Keywords(enum=[s.value for s in OPEN_STATES])]
    submitted_at: Time
    due_at: Time
    due_date: Annotated[str, Keywords(format="date", description="The day it is due, in IST")]
    status: Status
    working_days_late: int
    calendar_days_late: int
    escalation_level: int
    links: ItemLinks


class OfficeView(TypedDict):
    """The requests of one ward office and designated officer (the office's names and officers
    are null for a ward that is not a configured office)."""

    department: str
    ward_code: str
    ward_name_en: str | None
    ward_name_mr: str | None
    designated_officer: str | None
    first_appellate: str | None
    second_appellate: str | None
    overdue: int
    due_soon: int
    requests: list[ItemView]


class Totals(TypedDict):
    overdue: int
    due_soon: int


class ReportView(TypedDict):
    """GET /api/v1/rts: requests due within `due_within_working_days` (up to `horizon`) or
    overdue, per ward office and officer."""

    generated_at: Time
    due_within_working_days: int
    horizon: Time
    totals: Totals
    offices: list[OfficeView]


@dataclass(frozen=True)
class RtsItem:
    """One request on the report."""

    certificate_id: str
    cert_type: str
    registration_number: str
    state: str
    department: str
    ward_code: str
    submitted_at: datetime
    due_at: datetime
    status: Status
    working_days_late: int
    calendar_days_late: int
    escalation_level: int

    def as_dict(self) -> ItemView:
        return {
            "certificate_id": self.certificate_id,
            "type": self.cert_type,
            "registration_number": self.registration_number,
            "state": self.state,
            "submitted_at": self.submitted_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "due_date": self.due_at.astimezone(IST).date().isoformat(),
            "status": self.status,
            "working_days_late": self.working_days_late,
            "calendar_days_late": self.calendar_days_late,
            "escalation_level": self.escalation_level,
            "links": {"certificate": f"/api/v1/certificates/{self.certificate_id}"},
        }


@dataclass
class OfficeGroup:
    """The requests of one ward office and designated officer."""

    department: str
    ward_code: str
    office: WardOffice | None  # None: the request's ward is not a configured office
    items: list[RtsItem] = field(default_factory=list)

    @property
    def designated_officer(self) -> str | None:
        return self.office.designated_officer if self.office else None

    def count(self, status: str) -> int:
        return sum(item.status == status for item in self.items)

    def as_dict(self) -> OfficeView:
        office = self.office
        return {
            "department": self.department,
            "ward_code": self.ward_code,
            "ward_name_en": office.name_en if office else None,
            "ward_name_mr": office.name_mr if office else None,
            "designated_officer": self.designated_officer,
            "first_appellate": office.first_appellate if office else None,
            "second_appellate": office.second_appellate if office else None,
            "overdue": self.count(OVERDUE),
            "due_soon": self.count(DUE_SOON),
            "requests": [item.as_dict() for item in self.items],
        }


@dataclass(frozen=True)
class RtsReport:
    generated_at: datetime
    due_within: int  # working days
    horizon: datetime  # requests due up to here are listed
    offices: list[OfficeGroup]

    @property
    def items(self) -> list[RtsItem]:
        return [item for group in self.offices for item in group.items]

    def as_dict(self) -> ReportView:
        return {
            "generated_at": self.generated_at.isoformat(),
            "due_within_working_days": self.due_within,
            "horizon": self.horizon.isoformat(),
            "totals": {OVERDUE: sum(g.count(OVERDUE) for g in self.offices),
                       DUE_SOON: sum(g.count(DUE_SOON) for g in self.offices)},
            "offices": [group.as_dict() for group in self.offices],
        }


def horizon(calendar: WorkingCalendar, now: datetime, due_within: int) -> datetime:
    """The end (IST) of the `due_within`-th working day after today: 0 is the end of today."""
    last = calendar.add_working_days(ist_date(now), due_within)
    return datetime.combine(last, END_OF_DAY, tzinfo=IST).astimezone(UTC)


def rts_report(session: Session, calendar: WorkingCalendar, now: datetime, *,
               department_id: str | None = None, ward: str | None = None,
               due_within: int = DEFAULT_DUE_WITHIN) -> RtsReport:
    """Open requests due by the horizon, grouped by ward office and designated officer (the
    office's officer; requests of an unconfigured ward are grouped by their ward code)."""
    if not 0 <= due_within <= MAX_DUE_WITHIN:
        raise ValueError(f"due_within must be 0-{MAX_DUE_WITHIN} working days")
    until = horizon(calendar, now, due_within)
    query = (
        select(Certificate, WardOffice)
        .outerjoin(WardOffice, and_(WardOffice.department_id == Certificate.department_id,
                                    WardOffice.code == Certificate.ward_code))
        .where(Certificate.state.in_([s.value for s in OPEN_STATES]),
               Certificate.due_at <= until)
        .order_by(Certificate.department_id, Certificate.ward_code, Certificate.due_at,
                  Certificate.id)
    )
    if department_id is not None:
        query = query.where(Certificate.department_id == department_id)
    if ward is not None:
        query = query.where(Certificate.ward_code == ward)
    groups: dict[tuple[str, str, str | None], OfficeGroup] = {}
    for record, office in session.execute(query):
        key = (record.department_id, record.ward_code,
               office.designated_officer if office else None)
        group = groups.setdefault(key, OfficeGroup(record.department_id, record.ward_code,
                                                   office))
        group.items.append(_item(calendar, record, now))
    return RtsReport(as_utc(now), due_within, until, list(groups.values()))


def _item(calendar: WorkingCalendar, record: Certificate, now: datetime) -> RtsItem:
    due = as_utc(record.due_at)
    late = lateness(calendar, due, now)
    return RtsItem(
        certificate_id=record.id, cert_type=record.cert_type,
        registration_number=record.registration_number, state=record.state,
        department=record.department_id, ward_code=record.ward_code,
        submitted_at=as_utc(record.created_at), due_at=due,
        status=OVERDUE if late.overdue else DUE_SOON,
        working_days_late=late.working_days, calendar_days_late=late.calendar_days,
        escalation_level=record.escalation_level or 0,
    )


def report_query(args: Mapping[str, str]) -> tuple[int, str | None]:
    """`due_within` and `ward` from a query string, or ValidationFailed naming the field."""
    errors: list[FieldError] = []
    due_within = DUE_WITHIN.parse(args.get("due_within"), errors)
    if errors:
        raise ValidationFailed(errors)
    ward = WARD.parse(args.get("ward"), errors)
    if errors:
        raise ValidationFailed(errors)
    return due_within, ward.strip().upper() if ward is not None else None


CSV_COLUMNS = ("department", "ward_code", "ward_name", "designated_officer", "certificate_id",
               "type", "registration_number", "state", "submitted_at", "due_at", "status",
               "working_days_late", "calendar_days_late", "escalation_level")


def csv_rows(report: RtsReport) -> list[dict[str, str | int]]:
    """One row per request, times in IST (the people reading it are in India)."""
    rows: list[dict[str, str | int]] = []
    for group in report.offices:
        for item in group.items:
            rows.append({
                "department": group.department,
                "ward_code": group.ward_code,
                "ward_name": group.office.name_en if group.office else "",
                "designated_officer": group.designated_officer or NO_OFFICER,
                "certificate_id": item.certificate_id,
                "type": item.cert_type,
                "registration_number": item.registration_number,
                "state": item.state,
                "submitted_at": item.submitted_at.astimezone(IST).isoformat(timespec="minutes"),
                "due_at": item.due_at.astimezone(IST).isoformat(timespec="minutes"),
                "status": item.status,
                "working_days_late": item.working_days_late,
                "calendar_days_late": item.calendar_days_late,
                "escalation_level": item.escalation_level,
            })
    return rows


def text_table(report: RtsReport) -> str:
    """The report for a terminal: one block per ward office and officer, then the totals."""
    lines: list[str] = []
    for group in report.offices:
        name = f" {group.office.name_en}" if group.office else " (ward office not configured)"
        lines.append(f"{group.department} / {group.ward_code}{name} - designated officer: "
                     f"{group.designated_officer or NO_OFFICER} - overdue {group.count(OVERDUE)},"
                     f" due soon {group.count(DUE_SOON)}")
        for item in group.items:
            late = (f"{item.working_days_late} working ({item.calendar_days_late} calendar) "
                    "days late" if item.status == OVERDUE else "due soon")
            lines.append(f"  {item.certificate_id}  {item.cert_type:<10} "
                         f"{item.registration_number:<20} {item.state:<9} "
                         f"submitted {item.submitted_at.astimezone(IST):%Y-%m-%d %H:%M}  "
                         f"due {item.due_at.astimezone(IST):%Y-%m-%d}  {late}"
                         + (f"  escalated: level {item.escalation_level}"
                            if item.escalation_level else ""))
    totals = report.as_dict()["totals"]
    lines.append(f"overdue {totals[OVERDUE]}, due within {report.due_within} working day(s) "
                 f"{totals[DUE_SOON]} (times in IST)")
    return "\n".join(lines)
