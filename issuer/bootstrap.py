"""`pramaan init`: the set-up step of `make run`. Idempotent: run it as often as you like."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from issuer import migrate
from issuer.models import ApiToken, Department
from issuer.runtime import Runtime
from issuer.tokens import create_token

DEV_DEPARTMENT = "pmc-births-deaths"


@dataclass(frozen=True)
class InitReport:
    created_pki: bool
    department_created: bool
    admin_token: str | None  # only when it was created by this call


def initialise(runtime: Runtime) -> InitReport:
    """Folders, dev PKI (if absent), schema migration, dev department, first admin token."""
    from signing.devpki import ensure_dev_pki

    settings = runtime.settings
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.store_dir.mkdir(parents=True, exist_ok=True)
    had_pki = (settings.keys_dir / "signer.key").exists()
    ensure_dev_pki(settings.keys_dir)
    migrate.upgrade(runtime.engine)
    token = None
    created = False
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        if department is None:
            department = Department(
                id=DEV_DEPARTMENT,
                name_en="Registrar of Births and Deaths (development)",
                name_mr="जन्म-मृत्यू निबंधक (विकास)",
                cert_types=["birth"],
            )
            session.add(department)
            session.flush()
            created = True
        has_token = session.scalars(
            select(ApiToken.id).where(ApiToken.department_id == department.id).limit(1)
        ).first()
        if has_token is None:
            token = create_token(session, department, "dev-admin", "admin")
    return InitReport(created_pki=not had_pki, department_created=created, admin_token=token)
