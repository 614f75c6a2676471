"""What the emulator is told about the world: the partners registered with it, its test users, the
protocol variants it speaks (PROTOCOL.md's UNCONFIRMED items are switches here) and its faults.

Frozen dataclasses, validated on construction, so a typo in a test's configuration fails at once
instead of silently emulating something else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# x-digilocker-hmac on the pull calls the emulator makes (PROTOCOL.md §4.1): Base64 of the lowercase
# hex HMAC (what tested issuers accept, the default) or Base64 of the raw 32 bytes.
PULL_HMAC_ENCODINGS = ("hex-base64", "raw-base64")
# Push URI `hmac` (§6): which fields enter SHA-256, in order. "full" is the endpoint sequence of the
# Assam comment and [S15] with v2.4's doccontent/datacontent appended when sent; "full-no-content"
# never includes those two; "generic" is [S2]'s client_secret + clientid + ts.
PUSH_HMAC_SEQUENCES = ("full", "full-no-content", "generic")
# How that digest is written: lowercase hex (Assam; compared case-insensitively), Base64 of the raw
# digest, Base64 of the hex string.
PUSH_HMAC_ENCODINGS = ("hex", "base64", "base64-hex")
FAULT_KINDS = ("error", "drop", "lost_reply", "slow")
DOWN_MODES = ("503", "drop")
PULL_FORMATS = ("pdf", "xml", "both", "absent")


class ConfigError(ValueError):
    """A configuration value the emulator cannot honour."""


@dataclass(frozen=True)
class TestUser:
    """A DigiLocker account that exists in the emulator and can approve consent automatically."""

    __test__ = False  # not a pytest test class, despite the name

    digilockerid: str
    name: str
    dob: str  # DDMMYYYY, as /oauth2/1/user returns it (§8.5)
    gender: str = "M"
    eaadhaar: str = "Y"
    mobile: str = "9999999999"
    username: str = ""  # a short handle for ?dl_test_user=; the digilockerid works too
    uid: str = ""  # Aadhaar number sent as UID in an opted-in search; empty: not sent


@dataclass(frozen=True)
class Partner:
    """A registered partner: an OAuth client that is also an issuer (it pushes URIs into lockers
    and serves the two pull APIs the emulator calls with `api_key`)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    org_id: str = "in.gov.pmc"
    api_key: str | None = None
    pull_uri_url: str | None = None
    pull_doc_url: str | None = None
    scope: str = ""


@dataclass(frozen=True)
class Faults:
    """Failures injected in front of the partner API. Each targeted request draws one number from a
    generator seeded with `seed`: below drop_rate the connection is closed unanswered; below
    drop_rate + error_rate it is answered with `error_status` unprocessed; below that plus
    lost_reply_rate it is processed and then the connection is closed (the caller cannot know it
    succeeded). A second draw below slow_rate sleeps `delay` seconds first. `fail_next` answers the
    next N targeted requests with `error_status` regardless of the draw. `down` refuses every
    /public/ request (`down_mode` 503 or a dropped connection)."""

    seed: int = 0
    error_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    lost_reply_rate: float = 0.0
    slow_rate: float = 0.0
    delay: float = 0.0
    fail_next: int = 0
    down: bool = False
    down_mode: str = "503"
    paths: tuple[str, ...] = ("/public/account/1/pushuri",)

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "lost_reply_rate", "slow_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], not {value}")
        if self.error_rate + self.drop_rate + self.lost_reply_rate > 1.0:
            raise ConfigError("error_rate + drop_rate + lost_reply_rate exceeds 1")
        if not 400 <= self.error_status <= 599:
            raise ConfigError(f"error_status must be an HTTP error status, not {self.error_status}")
        if self.delay < 0 or self.fail_next < 0:
            raise ConfigError("delay and fail_next cannot be negative")
        if self.down_mode not in DOWN_MODES:
            raise ConfigError(f"down_mode must be one of {DOWN_MODES}")

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with `changes` applied; unknown names and wrong types are refused."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(f"unknown fault setting {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} must be true or false")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"{name} must be a number")
                value = float(value)
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{name} must be an integer")
            elif isinstance(current, tuple):
                if not isinstance(value, list | tuple) or not all(
                        isinstance(v, str) for v in value):
                    raise ConfigError(f"{name} must be a list of strings")
                value = tuple(value)
            elif not isinstance(value, str):
                raise ConfigError(f"{name} must be a string")
            clean[name] = value
        return replace(self, **clean)


def default_users() -> tuple[TestUser, ...]:
    return (
        TestUser("123e4567-e89b-12d3-a456-426655440000", "Asha Kulkarni", "14032024", "F",
                 username="asha"),
        TestUser("9b2f7c1e-5d4a-4f3b-8e6d-0a1b2c3d4e5f", "Ravi Deshmukh", "02111988", "M",
                 username="ravi"),
    )


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything one emulator instance needs. `default_user` approves consent when an authorize
    request names none (?dl_test_user=); None shows a page to pick one instead."""

    partners: tuple[Partner, ...] = ()
    users: tuple[TestUser, ...] = field(default_factory=default_users)
    default_user: str | None = "asha"
    faults: Faults = field(default_factory=Faults)
    pull_hmac_encoding: str = "hex-base64"
    pull_send_keyhash: bool = False
    pull_format: str = "both"
    pull_on_push: bool = True
    pull_timeout: float = 30.0
    push_hmac_sequences: tuple[str, ...] = PUSH_HMAC_SEQUENCES
    push_hmac_encodings: tuple[str, ...] = PUSH_HMAC_ENCODINGS
    push_ts_window: int = 1800
    push_ts_future: int = 300
    push_ts_ist_shifted: bool = False  # also accept a ts of "IST epoch" seconds (+19800, §11.5)
    push_requires_consent: bool = True
    pkce_accept_hex: bool = False
    token_expires_in: int = 3600
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if self.pull_hmac_encoding not in PULL_HMAC_ENCODINGS:
            raise ConfigError(f"pull_hmac_encoding must be one of {PULL_HMAC_ENCODINGS}")
        if self.pull_format not in PULL_FORMATS:
            raise ConfigError(f"pull_format must be one of {PULL_FORMATS}")
        if not self.push_hmac_sequences or not set(self.push_hmac_sequences) <= set(
                PUSH_HMAC_SEQUENCES):
            raise ConfigError(f"push_hmac_sequences must be a subset of {PUSH_HMAC_SEQUENCES}")
        if not self.push_hmac_encodings or not set(self.push_hmac_encodings) <= set(
                PUSH_HMAC_ENCODINGS):
            raise ConfigError(f"push_hmac_encodings must be a subset of {PUSH_HMAC_ENCODINGS}")
        ids = [p.client_id for p in self.partners]
        if len(ids) != len(set(ids)):
            raise ConfigError("two partners share a client_id")
        handles = [u.digilockerid for u in self.users] + [u.username for u in self.users
                                                           if u.username]
        if len(handles) != len(set(handles)):
            raise ConfigError("two test users share a digilockerid or username")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmulatorConfig:
        """The configuration `pramaan digilocker-emulator` runs with: one partner described by the
        same variables our issuer reads (DIGILOCKER_CLIENT_ID/SECRET/REDIRECT_URI,
        DIGILOCKER_API_KEY, DIGILOCKER_ISSUER_ID) plus where its pull endpoints live
        (DIGILOCKER_EMULATOR_ISSUER_URL, default http://127.0.0.1:8000)."""
        env = os.environ if env is None else env
        base = (env.get("DIGILOCKER_EMULATOR_ISSUER_URL") or "http://127.0.0.1:8000").rstrip("/")
        redirect = env.get("DIGILOCKER_REDIRECT_URI") or f"{base}/digilocker/callback"
        partner = Partner(
            client_id=env.get("DIGILOCKER_CLIENT_ID") or "pramaan-dev",
            client_secret=env.get("DIGILOCKER_CLIENT_SECRET") or "pramaan-dev-secret",
            redirect_uris=(redirect,),
            org_id=env.get("DIGILOCKER_ISSUER_ID") or "in.gov.pmc",
            api_key=env.get("DIGILOCKER_API_KEY") or None,
            pull_uri_url=f"{base}/digilocker/pulluri",
            pull_doc_url=f"{base}/digilocker/pulldoc",
        )
        encoding = env.get("DIGILOCKER_EMULATOR_HMAC_ENCODING") or "hex-base64"
        return cls(partners=(partner,), pull_hmac_encoding=encoding,
                   pull_send_keyhash=env.get("DIGILOCKER_EMULATOR_KEYHASH", "") == "1",
                   admin_token=env.get("DIGILOCKER_EMULATOR_ADMIN_TOKEN") or None)

    def partner(self, client_id: str) -> Partner | None:
        return next((p for p in self.partners if p.client_id == client_id), None)

    def partner_for_org(self, org_id: str) -> Partner | None:
        return next((p for p in self.partners if p.org_id == org_id), None)

    def user(self, handle: str) -> TestUser | None:
        return next((u for u in self.users if handle in (u.digilockerid, u.username)), None)
