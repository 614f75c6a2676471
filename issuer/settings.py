"""One frozen, validated settings object, read from the environment at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from issuer.errors import ConfigError
from issuer.verify_base import default_verify_base, verify_base_problem

DEFAULT_MAX_BODY_BYTES = 256 * 1024


SIGNATURE_LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Every field maps to one environment variable (see README)."""

    home: Path
    database_url: str
    redis_url: str | None
    store_dir: Path
    keys_dir: Path
    host: str
    port: int
    verify_base_url: str
    max_body_bytes: int
    issuer_id: str
    signer_backend: str = "file"
    # PAdES B-T: the RFC 3161 TSA every signature is timestamped by: an http(s) URL, "dev" (the
    # development TSA of keys/, in process), "none" (B-B), or None (unset: "dev" in development
    # when keys/ has a TSA, else "none"); and how long one request may take before the
    # certificate waits for the sweeper's next try.
    tsa_url: str | None = None
    tsa_timeout: int = 10
    dev_tsa_delay_ms: int = 0
    # The OCSP address a dev PKI made from now on names in its certificates below the root
    # (PRAMAAN_DEV_OCSP_URL; docker/dev_ocsp.py serves it): None, the status of long-term
    # signatures is made in process with the development TSA (signing/revocation.py).
    dev_ocsp_url: str | None = None
    # Hex digits reserved in each PDF for the CMS signature (None: 16384, or 24576 when
    # timestamping, which a TSA's token and certificates make larger).
    signature_reserve: int | None = None
    # PAdES level per certificate type (type -> B-B, B-T, B-LT or B-LTA); a type not named is
    # signed at B-T when a TSA is configured, else B-B: PRAMAAN_SIGNATURE_LEVELS="birth=B-LTA".
    signature_levels: Mapping[str, str] = field(default_factory=dict)
    # The level of a type PRAMAAN_SIGNATURE_LEVELS does not name (PRAMAAN_SIGNATURE_LEVEL);
    # None: B-LTA with the development TSA, B-T with a TSA's URL, else B-B.
    signature_level: str | None = None
    # PRAMAAN_SIGNER_BACKEND=pkcs11: the token's library, its label and the signer key's label;
    # the PIN stays in the environment (PRAMAAN_PKCS11_PIN), read only by signing/.
    pkcs11_module: str | None = None
    pkcs11_token_label: str = "pramaan"  # noqa: S105 - a label, not a secret
    pkcs11_key_label: str = "signer"
    pkcs11_seal_key_label: str | None = None
    # The key files when not keys/signer.key and keys/seal.key: a PKCS#12 file (.p12, .pfx;
    # for the signer it brings the certificate and chain) or a PEM file, either one protected
    # by the password in PRAMAAN_KEY_PASSWORD (read only by signing/, never stored here).
    signer_key_file: Path | None = None
    # The sweeper inside the workers (issuer/sweep.py): how often one of them looks (0: never),
    # and how long work must have been stuck (approved, signing, a batch half made) before.
    sweep_seconds: int = 60
    sweep_after_seconds: int = 300
    # The largest batch file (POST /api/v1/batches) in bytes; other bodies: max_body_bytes.
    max_batch_bytes: int = 64 * 1024 * 1024
    seal_key_file: Path | None = None
    issuer_name_en: str = "Pune Municipal Corporation"
    issuer_name_mr: str = "पुणे महानगरपालिका"
    signing_location: str = "Pune, Maharashtra, India"
    environment: str = "development"
    previous_verify_base_urls: tuple[str, ...] = ()
    verify_base_url_configured: bool = False
    web_workers: int = 2
    web_threads: int = 4
    web_timeout: int = 30
    # Per certificate type (type code -> value), overriding the type's own default:
    # PRAMAAN_DOCTYPE_CODES="birth=BTCER,death=DTCER", PRAMAAN_RTS_DAYS="property_no_dues=15".
    doc_type_codes: Mapping[str, str] = field(default_factory=dict)
    rts_days: Mapping[str, int] = field(default_factory=dict)
    # Holidays for RTS working days: a file of YYYY-MM-DD dates (one per line, '#' comments);
    # None: the calendar shipped in issuer/data/holidays.txt.
    holidays_file: Path | None = None
    # The key of the HMAC kept for matching Aadhaar numbers (never stored in clear).
    aadhaar_hmac_key: str | None = None
    # DigiLocker (digilocker/): the shared API key DigiLocker signs pull requests with, our issuer
    # id, pull search parameters per type (type -> element names inside DocDetails), the ts
    # freshness window (seconds), the partner API base and OAuth client for pushes, and the key
    # that seals linked accounts' OAuth tokens at rest.
    digilocker_api_key: str | None = None
    digilocker_issuer_id: str = "in.gov.pmc"
    digilocker_search: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    digilocker_ts_window: int = 300
    digilocker_base_url: str | None = None
    digilocker_client_id: str | None = None
    digilocker_client_secret: str | None = None
    digilocker_redirect_uri: str | None = None
    digilocker_token_key: str | None = None
    # Rate limits (Flask-Limiter's notation, "10/minute;100/day"), counted in Redis when
    # REDIS_URL is set (shared by every API process), else in this process's memory: the
    # citizen portal per client address and per registration number, and the public verify
    # API per client address. Behind a reverse proxy, `proxy_hops` is how many proxies append
    # to X-Forwarded-For (the client is the address that many hops back); 0 trusts no header.
    portal_client_limit: str = "10/minute;100/day"
    portal_number_limit: str = "10/hour;30/day"
    verify_client_limit: str = "600/minute"
    sign_in_limit: str = "10/minute;100/hour"  # the console's sign-in form, per client address
    proxy_hops: int = 0
    # Where signed PDFs are kept (PRAMAAN_STORE_URL): file:///absolute/path, or
    # s3://bucket/prefix with the standard AWS_* client settings in the environment. None:
    # the directory `store_dir` (PRAMAAN_STORE_DIR, default $PRAMAAN_HOME/var/store).
    store_url: str | None = None
    # GET /metrics (Prometheus): with a token, only `Authorization: Bearer <it>`; without one,
    # only a loopback client (README, Metrics). The log format: json (one object a line) or
    # text; unset, json in production and text in development.
    metrics_token: str | None = None
    log_format: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def store_location(self) -> str:
        """The store's URL: PRAMAAN_STORE_URL, else the local directory as a file:// URL."""
        return self.store_url or self.store_dir.resolve().as_uri()

    @property
    def logs_as_json(self) -> bool:
        """PRAMAAN_LOG_FORMAT, else json in production and text in development."""
        return (self.log_format or ("text" if self.development else "json")) == "json"

    @property
    def development(self) -> bool:
        """`PRAMAAN_ENV=development` (the default): a laptop, dev keys, loopback links allowed."""
        return self.environment == "development"

    @property
    def verify_base_urls(self) -> tuple[str, ...]:
        """Every verify base that is ours: the current one first, then earlier ones kept so
        that links on certificates printed before a move still count as ours."""
        return (self.verify_base_url, *self.previous_verify_base_urls)

    @property
    def jobs_inline(self) -> bool:
        """Jobs run in-process when no Redis is configured (the embedded default)."""
        return not self.redis_url

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Build settings from `env` (default: os.environ), then apply `overrides` by field name."""
        env = os.environ if env is None else env
        home = Path(env.get("PRAMAAN_HOME") or os.getcwd()).resolve()
        port = _int(env, "PORT", 8000)
        host = env.get("HOST", "127.0.0.1")
        configured_base = (env.get("PRAMAAN_VERIFY_BASE_URL") or "").strip()
        settings = cls(
            home=home,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{home / 'var' / 'pramaan.db'}",
            redis_url=env.get("REDIS_URL") or None,
            store_dir=Path(env.get("PRAMAAN_STORE_DIR") or home / "var" / "store"),
            keys_dir=Path(env.get("PRAMAAN_KEYS_DIR") or home / "keys"),
            host=host,
            port=port,
            verify_base_url=(configured_base or default_verify_base(host, port)).rstrip("/"),
            verify_base_url_configured=bool(configured_base),
            previous_verify_base_urls=tuple(
                url.rstrip("/")
                for url in (env.get("PRAMAAN_VERIFY_PREVIOUS_BASE_URLS") or "").replace(",", " ")
                .split()
            ),
            environment=env.get("PRAMAAN_ENV") or "development",
            max_body_bytes=_int(env, "PRAMAAN_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_batch_bytes=_int(env, "PRAMAAN_MAX_BATCH_BYTES", 64 * 1024 * 1024),
            sweep_seconds=_int(env, "PRAMAAN_SWEEP_SECONDS", 60),
            sweep_after_seconds=_int(env, "PRAMAAN_SWEEP_AFTER_SECONDS", 300),
            issuer_id=env.get("PRAMAAN_ISSUER_ID", "in.gov.pmc"),
            signer_backend=env.get("PRAMAAN_SIGNER_BACKEND", "file"),
            tsa_url=(env.get("PRAMAAN_TSA_URL") or "").strip() or None,
            tsa_timeout=_int(env, "PRAMAAN_TSA_TIMEOUT", 10),
            dev_tsa_delay_ms=_int(env, "PRAMAAN_DEV_TSA_DELAY_MS", 0),
            dev_ocsp_url=(env.get("PRAMAAN_DEV_OCSP_URL") or "").strip() or None,
            signature_reserve=(_int(env, "PRAMAAN_SIGNATURE_RESERVE", 0) or None),
            signature_levels=_pairs(env, "PRAMAAN_SIGNATURE_LEVELS", str),
            signature_level=(env.get("PRAMAAN_SIGNATURE_LEVEL") or "").strip() or None,
            pkcs11_module=env.get("PRAMAAN_PKCS11_MODULE") or None,
            pkcs11_token_label=env.get("PRAMAAN_PKCS11_TOKEN_LABEL") or "pramaan",
            pkcs11_key_label=env.get("PRAMAAN_PKCS11_KEY_LABEL") or "signer",
            pkcs11_seal_key_label=env.get("PRAMAAN_PKCS11_SEAL_KEY_LABEL") or None,
            signer_key_file=Path(env["PRAMAAN_SIGNER_KEY_FILE"])
            if env.get("PRAMAAN_SIGNER_KEY_FILE") else None,
            seal_key_file=Path(env["PRAMAAN_SEAL_KEY_FILE"])
            if env.get("PRAMAAN_SEAL_KEY_FILE") else None,
            web_workers=_int(env, "PRAMAAN_WEB_WORKERS", 2),
            web_threads=_int(env, "PRAMAAN_WEB_THREADS", 4),
            web_timeout=_int(env, "PRAMAAN_WEB_TIMEOUT", 30),
            doc_type_codes=_pairs(env, "PRAMAAN_DOCTYPE_CODES", str),
            rts_days=_pairs(env, "PRAMAAN_RTS_DAYS", int),
            holidays_file=Path(env["PRAMAAN_HOLIDAYS_FILE"])
            if env.get("PRAMAAN_HOLIDAYS_FILE") else None,
            aadhaar_hmac_key=env.get("PRAMAAN_AADHAAR_HMAC_KEY") or None,
            digilocker_api_key=env.get("DIGILOCKER_API_KEY") or None,
            digilocker_issuer_id=env.get("DIGILOCKER_ISSUER_ID") or "in.gov.pmc",
            digilocker_search={
                code: tuple(names.split("+"))
                for code, names in _pairs(env, "PRAMAAN_DIGILOCKER_SEARCH", str).items()
            },
            digilocker_ts_window=_int(env, "PRAMAAN_DIGILOCKER_TS_WINDOW", 300),
            digilocker_base_url=(env.get("DIGILOCKER_BASE_URL") or "").rstrip("/") or None,
            digilocker_client_id=env.get("DIGILOCKER_CLIENT_ID") or None,
            digilocker_client_secret=env.get("DIGILOCKER_CLIENT_SECRET") or None,
            digilocker_redirect_uri=env.get("DIGILOCKER_REDIRECT_URI") or None,
            digilocker_token_key=env.get("PRAMAAN_DIGILOCKER_TOKEN_KEY") or None,
            portal_client_limit=env.get("PRAMAAN_PORTAL_CLIENT_LIMIT") or "10/minute;100/day",
            portal_number_limit=env.get("PRAMAAN_PORTAL_NUMBER_LIMIT") or "10/hour;30/day",
            verify_client_limit=env.get("PRAMAAN_VERIFY_CLIENT_LIMIT") or "600/minute",
            sign_in_limit=env.get("PRAMAAN_SIGN_IN_LIMIT") or "10/minute;100/hour",
            proxy_hops=_int(env, "PRAMAAN_PROXY_HOPS", 0),
            store_url=(env.get("PRAMAAN_STORE_URL") or "").strip() or None,
            metrics_token=env.get("PRAMAAN_METRICS_TOKEN") or None,
            log_format=(env.get("PRAMAAN_LOG_FORMAT") or "").strip().lower() or None,
        )
        if overrides:
            known = {f.name for f in fields(cls)}
            unknown = set(overrides) - known
            if unknown:
                raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
            settings = replace(settings, **dict(overrides))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that cannot work, with a message that says which variable is wrong."""
        if self.environment not in ("development", "production"):
            raise ConfigError("PRAMAAN_ENV must be 'development' or 'production'")
        if self.log_format not in (None, "json", "text"):
            raise ConfigError("PRAMAAN_LOG_FORMAT must be 'json' or 'text'")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ConfigError("PRAMAAN_METRICS_TOKEN must be at least 16 characters")
        if not self.development and not self.verify_base_url_configured:
            raise ConfigError(
                "PRAMAAN_VERIFY_BASE_URL is not set: in production (PRAMAAN_ENV=production) QR "
                "links must point to the public https address of the verify page, not to "
                f"the listen address {self.host}:{self.port}"
            )
        problem = verify_base_problem(self.verify_base_url, production=not self.development)
        if problem:
            raise ConfigError(f"PRAMAAN_VERIFY_BASE_URL={self.verify_base_url!r}: {problem}")
        for previous in self.previous_verify_base_urls:
            problem = verify_base_problem(previous, production=False)
            if problem:
                raise ConfigError(f"PRAMAAN_VERIFY_PREVIOUS_BASE_URLS: {previous!r}: {problem}")
        if not 1 <= self.web_workers <= 64 or not 1 <= self.web_threads <= 256:
            raise ConfigError("PRAMAAN_WEB_WORKERS must be 1-64 and PRAMAAN_WEB_THREADS 1-256")
        if not 1 <= self.web_timeout <= 3600:
            raise ConfigError("PRAMAAN_WEB_TIMEOUT must be 1-3600 seconds")
        if not 1 <= self.port <= 65535:
            raise ConfigError("PORT must be between 1 and 65535")
        if self.max_body_bytes < 1024:
            raise ConfigError("PRAMAAN_MAX_BODY_BYTES must be at least 1024")
        if self.sweep_seconds < 0 or self.sweep_after_seconds < 0:
            raise ConfigError("PRAMAAN_SWEEP_SECONDS and PRAMAAN_SWEEP_AFTER_SECONDS must not "
                              "be negative")
        if self.max_batch_bytes < self.max_body_bytes:
            raise ConfigError("PRAMAAN_MAX_BATCH_BYTES must be at least PRAMAAN_MAX_BODY_BYTES")
        if self.tsa_url not in (None, "none", "dev") and not self.tsa_url.startswith(
                ("http://", "https://")):
            raise ConfigError(f"PRAMAAN_TSA_URL={self.tsa_url!r}: the http:// or https:// URL "
                              "of an RFC 3161 time-stamping authority, 'dev' or 'none'")
        if self.dev_ocsp_url is not None and not self.dev_ocsp_url.startswith(
                ("http://", "https://")):
            raise ConfigError(f"PRAMAAN_DEV_OCSP_URL={self.dev_ocsp_url!r}: the http:// or "
                              "https:// URL of the development OCSP responder")
        if self.tsa_url == "dev" and not self.development:
            raise ConfigError("PRAMAAN_TSA_URL=dev: the development TSA is never used in "
                              "production (PRAMAAN_ENV=production); give a licensed TSA's URL")
        if self.signature_reserve is not None and not (
                4096 <= self.signature_reserve <= 262144 and self.signature_reserve % 2 == 0):
            raise ConfigError("PRAMAAN_SIGNATURE_RESERVE must be an even number of hex digits "
                              "from 4096 to 262144")
        if self.signature_level is not None and self.signature_level not in SIGNATURE_LEVELS:
            raise ConfigError(f"PRAMAAN_SIGNATURE_LEVEL={self.signature_level}: the levels are "
                              f"{', '.join(SIGNATURE_LEVELS)}")
        if self.signature_level not in (None, "B-B") and self.tsa_url == "none":
            raise ConfigError(f"PRAMAAN_SIGNATURE_LEVEL={self.signature_level} needs a TSA, and "
                              "PRAMAAN_TSA_URL=none")
        for code, level in self.signature_levels.items():
            if level not in SIGNATURE_LEVELS:
                raise ConfigError(f"PRAMAAN_SIGNATURE_LEVELS: {code}={level}: the levels are "
                                  f"{', '.join(SIGNATURE_LEVELS)}")
            if level != "B-B" and self.tsa_url == "none":
                raise ConfigError(f"PRAMAAN_SIGNATURE_LEVELS: {code}={level} needs a TSA, and "
                                  "PRAMAAN_TSA_URL=none")
        if not 1 <= self.tsa_timeout <= 120:
            raise ConfigError("PRAMAAN_TSA_TIMEOUT must be 1-120 seconds")
        if not 0 <= self.dev_tsa_delay_ms <= 10_000:
            raise ConfigError("PRAMAAN_DEV_TSA_DELAY_MS must be 0-10000")
        if self.dev_tsa_delay_ms and not self.development:
            raise ConfigError("PRAMAAN_DEV_TSA_DELAY_MS simulates a distant TSA with the "
                              "development one: never in production")
        if self.signer_backend not in ("file", "pkcs11"):
            raise ConfigError(
                f"PRAMAAN_SIGNER_BACKEND={self.signer_backend!r}: 'file' or 'pkcs11'"
            )
        if self.signer_backend == "pkcs11" and not self.pkcs11_module:
            raise ConfigError("PRAMAAN_SIGNER_BACKEND=pkcs11 needs PRAMAAN_PKCS11_MODULE, the "
                              "path of the token's PKCS#11 library")
        if self.pkcs11_seal_key_label and not self.pkcs11_module:
            raise ConfigError("PRAMAAN_PKCS11_SEAL_KEY_LABEL needs PRAMAAN_PKCS11_MODULE, the "
                              "path of the token's PKCS#11 library")
        if self.signer_key_file and self.signer_backend != "file":
            raise ConfigError("PRAMAAN_SIGNER_KEY_FILE names the signer's key file: one key, "
                              "so not with PRAMAAN_SIGNER_BACKEND=pkcs11")
        for name, value in (("PRAMAAN_PORTAL_CLIENT_LIMIT", self.portal_client_limit),
                            ("PRAMAAN_PORTAL_NUMBER_LIMIT", self.portal_number_limit),
                            ("PRAMAAN_VERIFY_CLIENT_LIMIT", self.verify_client_limit),
                            ("PRAMAAN_SIGN_IN_LIMIT", self.sign_in_limit)):
            if not _rate_limit_ok(value):
                raise ConfigError(f"{name}={value!r}: rate limits are written like "
                                  "'10/minute;100/day'")
        if self.store_url is not None:
            from issuer.storage import open_store

            try:
                open_store(self.store_url)
            except ValueError as exc:
                raise ConfigError(f"PRAMAAN_STORE_URL: {exc}") from None
        if not 0 <= self.proxy_hops <= 5:
            raise ConfigError("PRAMAAN_PROXY_HOPS must be 0-5 (the reverse proxies in front)")
        if self.seal_key_file and self.pkcs11_seal_key_label:
            raise ConfigError("PRAMAAN_SEAL_KEY_FILE names the seal's key file: one key, so "
                              "not with PRAMAAN_PKCS11_SEAL_KEY_LABEL")


def _rate_limit_ok(value: str) -> bool:
    from limits import parse_many

    try:
        limits = parse_many(value)
    except ValueError:
        return False
    return bool(limits) and all(limit.amount >= 1 for limit in limits)


def _pairs(env: Mapping[str, str], name: str, kind: type[Any]) -> dict[str, Any]:
    """`a=1,b=2` (commas or blanks between pairs) as {"a": kind("1"), ...}."""
    pairs: dict[str, Any] = {}
    for item in (env.get(name) or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{name} must be written type=value, type=value; got {item!r}")
        try:
            pairs[key] = kind(value)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} has a value that is not {kind.__name__}") from None
    return pairs


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
