"""`pramaan init`: the set-up step of `make run`. Idempotent: run it as often as you like."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from issuer import migrate
from issuer.aadhaar import dev_key
from issuer.certtypes import known_types
from issuer.errors import ConfigError
from issuer.models import ApiToken, Department
from issuer.runtime import Runtime
from issuer.storage import FileStore
from issuer.tokens import create_token

DEV_DEPARTMENT = "pmc-births-deaths"


@dataclass(frozen=True)
class InitReport:
    created_pki: bool
    department_created: bool
    clerk_token: str | None  # submits certificates; only when it was created by this call
    admin_token: str | None  # manages users and tokens; only when created by this call


def initialise(runtime: Runtime, *, dev_pki: bool | None = None) -> InitReport:
    """Folders, dev PKI (if absent), schema migration, dev department, first admin token.

    A dev PKI is generated only when asked (`dev_pki=True`) or, by default, in development
    with a plain http verify URL (a laptop). A production set-up (PRAMAAN_ENV=production or an
    https verify URL) without keys is an error, never a silent fallback to development keys.
    """
    from signing.devpki import ensure_dev_pki

    settings = runtime.settings
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if settings.store_url is None or settings.store_url.startswith("file:"):
        FileStore.of(settings.store_location).root.mkdir(parents=True, exist_ok=True)
    key_files = (settings.keys_dir / "signer.key").exists()
    # With the signer's key in a PKCS#11 token only its certificate is a file here.
    had_pki = key_files or (settings.signer_backend == "pkcs11"
                            and (settings.keys_dir / "signer.crt").exists())
    if dev_pki is None:
        dev_pki = settings.development and settings.verify_base_url.startswith("http://")
    if key_files and dev_pki and (settings.keys_dir / "root.key").exists():
        # A development set (only they keep the root's key here) made before its dev TSA:
        # ensure_dev_pki adds what is missing and leaves the rest as it is.
        ensure_dev_pki(settings.keys_dir, ocsp_url=settings.dev_ocsp_url)
    if not had_pki:
        if not dev_pki:
            raise ConfigError(
                f"no document-signer key in {settings.keys_dir}: install the production keys "
                "there (signer.key/.crt, ca.crt, root.crt, seal.key/.crt), or run "
                "`pramaan init --dev-pki` to generate a development PKI"
            )
        ensure_dev_pki(settings.keys_dir, ocsp_url=settings.dev_ocsp_url)
    if settings.development and not settings.aadhaar_hmac_key:
        dev_key(settings.keys_dir)  # the Aadhaar HMAC key, made once (keys/ is git-ignored)
    migrate.upgrade(runtime.engine)
    tokens: dict[str, str | None] = {}
    created = False
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        if department is None:
            # Development only: every type, approved automatically (the audit log says so), so
            # that `make run` and `pramaan issue` work without a second person.
            department = Department(
                id=DEV_DEPARTMENT,
                name_en="Pune Municipal Corporation (development)",
                name_mr="पुणे महानगरपालिका (विकास)",
                cert_types=sorted(known_types()),
                approval="automatic",
            )
            session.add(department)
            session.flush()
            created = True
        for role in ("clerk", "admin"):
            has_token = session.scalars(
                select(ApiToken.id).where(ApiToken.department_id == department.id,
                                          ApiToken.role == role).limit(1)
            ).first()
            name = f"dev-{role}"
            taken = session.scalars(
                select(ApiToken.id).where(ApiToken.department_id == department.id,
                                          ApiToken.name == name)
            ).first()
            tokens[role] = (create_token(session, department, name, role)
                            if has_token is None and taken is None else None)
    return InitReport(created_pki=not had_pki, department_created=created,
                      clerk_token=tokens["clerk"], admin_token=tokens["admin"])
