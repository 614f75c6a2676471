"""Small factories for the RTS tests: requests with the due date and state a test needs,
written straight to the database (the submission path has its own tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from issuer import wards
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import utcnow
from issuer.models import Certificate, Department, State
from issuer.runtime import Runtime


def request(rt: Runtime, due: datetime, *, state: State = State.SUBMITTED, ward: str = "KB",
            department: str = DEV_DEPARTMENT, submitted: datetime | None = None,
            cert_type: str = "birth") -> str:
    """A request of `department` in ward office `ward`, due at `due`; its id."""
    record_id = str(uuid.uuid4())
    # Stored in UTC, as the service stores every time (SQLite would keep an IST wall clock).
    due = due.astimezone(UTC)
    created = (submitted or due - timedelta(days=9)).astimezone(UTC)
    with rt.sessions() as session, session.begin():
        session.add(Certificate(
            id=record_id, department_id=department, cert_type=cert_type,
            registration_number=f"REG-{record_id[:8]}", state=state.value, request={},
            submitted_by="test:clerk", due_at=due, created_at=created,
            updated_at=created, ward_code=ward,
        ))
    return record_id


def office(rt: Runtime, code: str = "KB", *, department: str = DEV_DEPARTMENT,
           officer: str | None = "A. Patil", first: str | None = "S. Kulkarni",
           second: str | None = "Dy. Commissioner (Zone 2)") -> None:
    with rt.sessions() as session, session.begin():
        wards.add_office(session, department, code, f"{code} Ward Office", f"{code} कार्यालय",
                         {"designated_officer": officer, "first_appellate": first,
                          "second_appellate": second}, actor="test:admin")


def department(rt: Runtime, code: str) -> None:
    with rt.sessions() as session, session.begin():
        session.add(Department(id=code, name_en=f"{code} registrar", name_mr="निबंधक",
                               cert_types=["birth"], created_at=utcnow()))
