"""`pramaan doctor`: is this installation able to work? Configuration, the store, the database,
Redis and its workers, the keys, the TSA and DigiLocker, each checked for real (a connection, a
request, a key opened) and reported as one line in plain words: ok, or the problem and what to
do about it. Never a traceback, never a secret (every configured secret is masked in the text).

The checks of one area are in a module of their own: doctor_database.py, doctor_services.py
(Redis, DigiLocker), doctor_keys.py (keys, TSA); this module runs them in turn and reports."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from issuer.errors import ConfigError
from issuer.settings import Settings

DEFAULT_DAYS = 30
# What any reader may see of a secret that somehow reached a message.
MASK = "***"
# Environment variables holding secrets (or URLs whose password is one): masked in the output.
SECRET_VARIABLES = ("DIGILOCKER_CLIENT_SECRET", "DIGILOCKER_API_KEY",
                    "PRAMAAN_DIGILOCKER_TOKEN_KEY", "PRAMAAN_AADHAAR_HMAC_KEY",
                    "PRAMAAN_PKCS11_PIN", "PRAMAAN_KEY_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                    "AWS_SESSION_TOKEN", "PRAMAAN_API_TOKEN", "PRAMAAN_METRICS_TOKEN")
SECRET_URLS = ("DATABASE_URL", "REDIS_URL")
# Shorter values are not masked: they would blank out ordinary words and numbers.
MIN_SECRET = 4


@dataclass(frozen=True)
class Check:
    """One check: its area (configuration, store, database, Redis, keys, TSA, DigiLocker), what
    was checked, whether it passed, what was found, and, for a problem, what to do."""

    area: str
    name: str
    ok: bool
    detail: str
    fix: str = ""


def diagnose(env: Mapping[str, str] | None = None, *, days: int = DEFAULT_DAYS) -> list[Check]:
    """Every check, in order, for the settings `env` (default: the environment) gives; with
    certificates expiring within `days` reported as problems."""
    from issuer.doctor_database import database_checks
    from issuer.doctor_keys import key_checks
    from issuer.doctor_services import digilocker_checks, redis_checks

    env = os.environ if env is None else env
    checks, settings = configuration_checks(env)
    if settings is not None:
        sections: list[tuple[str, Callable[[Settings], list[Check]]]] = [
            ("store", store_checks), ("database", database_checks), ("Redis", redis_checks),
            ("keys", lambda s: key_checks(s, days)), ("DigiLocker", digilocker_checks)]
        for area, run in sections:
            checks += _guarded(area, run, settings)
    return masked(checks, env)


def configuration_checks(env: Mapping[str, str]) -> tuple[list[Check], Settings | None]:
    """The settings as every process reads them at startup, and the keys a process checks before
    it serves (the Aadhaar HMAC key, the DigiLocker token key)."""
    from digilocker.token_vault import check_at_startup as check_token_key
    from issuer.aadhaar import check_at_startup as check_aadhaar_key

    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        return [Check("configuration", "settings", False, exc.detail,
                      "correct that variable in the environment (see the README, "
                      "Configuration); nothing else was checked"),
                ], None
    checks = [Check("configuration", "settings", True,
                    f"read from the environment ({settings.environment}, "
                    f"home {settings.home})")]
    where = ("the public https address" if not settings.development
             else "development: fine on this machine, not for printed certificates")
    checks.append(Check("configuration", "verify address", True,
                        f"QR links point to {settings.verify_base_url} ({where})"))
    for name, value, check_key in (
            ("Aadhaar HMAC key", settings.aadhaar_hmac_key, check_aadhaar_key),
            ("DigiLocker token key", settings.digilocker_token_key, check_token_key)):
        if not value:
            continue  # a missing key is a problem only where it is needed: said below
        try:
            check_key(settings)
        except ConfigError as exc:
            checks.append(Check("configuration", name, False, exc.detail,
                                "set it to a random key: `openssl rand -hex 32`"))
    if not settings.development and not settings.aadhaar_hmac_key:
        checks.append(Check("configuration", "Aadhaar HMAC key", False,
                            "PRAMAAN_AADHAAR_HMAC_KEY is not set: requests carrying an Aadhaar "
                            "number are refused", "set it to a random key kept for good: "
                            "`openssl rand -hex 32`"))
    return checks, settings


def store_checks(settings: Settings) -> list[Check]:
    """The store of signed PDFs: a directory this process can write to, or a bucket it can
    reach with the AWS_* settings of the environment."""
    url = settings.store_location
    if url.startswith("s3://"):
        return [_bucket_check(url)]
    from issuer.storage import FileStore

    root = FileStore.of(url).root
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        return [Check("store", "store", False, f"{existing} is not a directory",
                      "point PRAMAAN_STORE_URL (or PRAMAAN_STORE_DIR) at a directory")]
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return [Check("store", "store", False,
                      f"cannot write in {existing}: {exc.strerror or exc}",
                      "give the service's user write access there, or point "
                      "PRAMAAN_STORE_URL at a directory it can write")]
    state = "writable" if existing == root else f"not made yet; {existing} is writable"
    return [Check("store", "store", True, f"{url} ({state})")]


def _bucket_check(url: str) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    from issuer.storage_s3 import S3Store

    store = S3Store(url, client=_quick_s3_client())
    try:
        # Listing (one key at most) is signed and needs the bucket and the right to read it;
        # a HEAD of the bucket is answered by some servers whatever the credentials.
        store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return Check("store", "store", False, f"{url}: the object store answered {code} for "
                     f"bucket {store.bucket}", "create the bucket, or check AWS_ACCESS_KEY_ID "
                     "and AWS_SECRET_ACCESS_KEY and the bucket's permissions")
    except BotoCoreError as exc:
        return Check("store", "store", False, f"{url}: {exc}",
                     "check AWS_ENDPOINT_URL and that this machine reaches the object store")
    return Check("store", "store", True, f"{url} (the bucket answers)")


def _quick_s3_client() -> object:
    import boto3
    from botocore.config import Config

    # One attempt and short waits: the doctor reports a slow store, it does not wait it out.
    # A session of its own reads the AWS_* settings as they are now (boto3's default session
    # keeps the credentials it read first).
    return boto3.session.Session().client("s3", config=Config(connect_timeout=3, read_timeout=10,
                                            retries={"max_attempts": 1, "mode": "standard"},
                                            s3={"addressing_style": "path"}))


def _guarded(area: str, run: Callable[[Settings], list[Check]],
             settings: Settings) -> list[Check]:
    try:
        return run(settings)
    except Exception as exc:  # noqa: BLE001 - the doctor reports what breaks a check, in words
        return [Check(area, "check", False, f"the check failed: {type(exc).__name__}: {exc}",
                      "this is unexpected: report it with this line")]


def secrets_of(env: Mapping[str, str]) -> list[str]:
    """The secret values `env` holds (passwords in DATABASE_URL and REDIS_URL included)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    found = [env.get(name) or "" for name in SECRET_VARIABLES]
    found += [os.environ.get(name) or "" for name in SECRET_VARIABLES]  # read by signing/
    for name in SECRET_URLS:
        try:
            found.append(make_url(env.get(name) or "").password or "")
        except (ArgumentError, ValueError):
            pass  # not a URL: nothing to mask in it beyond what the checks show
    return sorted({value for value in found if len(value) >= MIN_SECRET}, key=len, reverse=True)


def masked(checks: list[Check], env: Mapping[str, str]) -> list[Check]:
    """`checks` with every secret of `env` (and of this process's environment) masked: what
    a check says comes from libraries and servers too, and none of it may show a secret."""
    hidden = secrets_of(env)

    def mask(text: str) -> str:
        for value in hidden:
            text = text.replace(value, MASK)
        return text

    return [replace(check, detail=mask(check.detail), fix=mask(check.fix)) for check in checks]


def safe_url(url: str) -> str:
    """`url` with any password masked, for showing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url.split("@", 1)[-1] if "@" in url else url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def as_text(checks: list[Check]) -> str:
    """One line per check, then a summary line."""
    lines = []
    for check in checks:
        head = "ok     " if check.ok else "PROBLEM"
        tail = f" -> {check.fix}" if check.fix and not check.ok else ""
        lines.append(f"{head} {check.area} / {check.name}: {check.detail}{tail}")
    problems = sum(not check.ok for check in checks)
    lines.append(f"all {len(checks)} checks ok" if not problems
                 else f"{problems} problem(s) in {len(checks)} checks")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    """{"ok": bool, "problems": N, "checks": [{area, name, ok, detail, fix}, ...]}."""
    return json.dumps({"ok": all(check.ok for check in checks),
                       "problems": sum(not check.ok for check in checks),
                       "checks": [asdict(check) for check in checks]},
                      indent=2, ensure_ascii=False)
