"""Typed SQLAlchemy 2.0 models: departments, tokens, certificates, counters, the audit chain."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from issuer.db import utcnow


class Base(DeclarativeBase):
    pass


class State(enum.StrEnum):
    """Certificate workflow states (see ARCHITECTURE.md)."""

    SUBMITTED = "submitted"
    APPROVED = "approved"
    SIGNING = "signing"  # the intent (issue time, field digest, seal) is recorded; PDF pending
    ISSUED = "issued"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS; the error is recorded; retry or cancel
    CANCELLED = "cancelled"  # an operator gave up on it; its number stays used, never reissued


# States in which a registration already "has" a certificate in a department's registry: a second
# request is a conflict. Failed and cancelled records never block a corrected resubmission.
ACTIVE_STATES = (State.SUBMITTED, State.APPROVED, State.SIGNING, State.ISSUED)
PENDING_STATES = (State.SUBMITTED, State.APPROVED, State.SIGNING)
# The registry holds one certificate per registration: the issued one, or the request on its way.
# A correction in progress does not count until it is issued (the certificate it corrects is
# superseded in the same transaction, first). One live correction per certificate.
ACTIVE_SQL = ("state = 'issued' OR (state IN ('submitted', 'approved', 'signing') "
              "AND corrects IS NULL)")
LIVE_CORRECTION_SQL = ("corrects IS NOT NULL AND "
                       "state IN ('submitted', 'approved', 'signing', 'issued')")


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_mr: Mapped[str] = mapped_column(String(200))
    cert_types: Mapped[list[str]] = mapped_column(JSON)
    # Who approves submitted requests: "officer" (maker-checker, the default) or "automatic"
    # (the development department of `pramaan init`; the audit log names the rule).
    approval: Mapped[str] = mapped_column(String(16), default="officer",
                                          server_default="officer")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A person with an account (the web console): same roles and permissions as tokens."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    # Unique across the corporation: the audit actor is user:<username>.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the password
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed sign-ins since the last success or lock; a lock refuses every sign-in until then.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A person signed in to the console. The cookie holds a random value; only its SHA-256 is
    kept, so a copy of the database opens no session. Kept in the database, not in a process:
    any API process serves any request of the session."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))  # the forms' token of this session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # however active
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # signed out


class WardOffice(Base):
    """A ward office of a department, with its Right to Public Services officers (usernames or
    names as the department designates them)."""

    __tablename__ = "ward_offices"
    __table_args__ = (UniqueConstraint("department_id", "name_en",
                                       name="uq_ward_offices_department_name"),)

    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_mr: Mapped[str] = mapped_column(String(200))
    designated_officer: Mapped[str | None] = mapped_column(String(100))
    first_appellate: Mapped[str | None] = mapped_column(String(100))
    second_appellate: Mapped[str | None] = mapped_column(String(100))


class ApiToken(Base):
    __tablename__ = "api_tokens"
    # The audit actor is token:<department>/<name>, so two tokens never share a name.
    __table_args__ = (UniqueConstraint("department_id", "name",
                                       name="uq_api_tokens_department_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    # Only a SHA-256 of the token is stored; the token itself is shown once at creation.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        Index(
            "uq_certificates_active_registration",
            "department_id",
            "cert_type",
            "registration_number",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index(
            "uq_certificates_live_correction",
            "corrects",
            unique=True,
            sqlite_where=text(LIVE_CORRECTION_SQL),
            postgresql_where=text(LIVE_CORRECTION_SQL),
        ),
        Index("ix_certificates_state_updated", "state", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    cert_type: Mapped[str] = mapped_column(String(32))
    registration_number: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_by: Mapped[str] = mapped_column(String(100))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    number: Mapped[str | None] = mapped_column(String(40), unique=True)
    status_index: Mapped[int | None] = mapped_column(Integer, unique=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    template_version: Mapped[str | None] = mapped_column(String(32))
    seal_kid: Mapped[str | None] = mapped_column(String(16))
    seal_text: Mapped[str | None] = mapped_column(Text)
    fields_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    pdf_path: Mapped[str | None] = mapped_column(String(300))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_by: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    # A correction names the certificate it corrects; when it is issued that one is superseded.
    corrects: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    # The ward office whose numbering series and RTS officers the request belongs to.
    ward_code: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Why a request was rejected or a certificate revoked, by whom and when.
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Aadhaar: never in clear. The last four digits for display, an HMAC for matching.
    aadhaar_last4: Mapped[str | None] = mapped_column(String(4))
    aadhaar_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    # RTS escalation reached: 0 none, 1 first appellate officer, 2 second appellate officer.
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The applicant's linked DigiLocker account, if they linked one (pushes go there).
    digilocker_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("digilocker_accounts.id"))
    # Issue attempts that failed (not counting the one that succeeded), and the last error.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Counter(Base):
    """Named monotonic counters (certificate numbers per type and year, status-list indices)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class ReleasedNumber(Base):
    """A certificate number drawn for a request that was then cancelled before it was issued:
    the next approval in the same series takes it, so the series stays gapless."""

    __tablename__ = "released_numbers"

    series: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    serial: Mapped[int] = mapped_column(Integer)


class PublishedDocument(Base):
    """A signed document published for offline verifiers (issuer/published.py), as last signed:
    the seal trust list or the status list. `refresh_after` is when it is signed afresh (set to
    now by a revocation or a correction, so the next turn publishes the change)."""

    __tablename__ = "published_documents"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refresh_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PdfRevision(Base):
    """An earlier signed file of a certificate, replaced by one with an archival timestamp
    (issuer/ltv.py). Its bytes stay in the store: copies citizens hold keep verifying."""

    __tablename__ = "pdf_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(300))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RtsEscalation(Base):
    """One escalation of an overdue request to an appellate officer (RTS Act)."""

    __tablename__ = "rts_escalations"
    __table_args__ = (UniqueConstraint("certificate_id", "level",
                                       name="uq_rts_escalations_level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)  # 1 first appellate, 2 second appellate
    officer: Mapped[str | None] = mapped_column(String(100))
    days_late: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DigiLockerReplay(Base):
    """A Pull URI / Pull Doc `txn` seen within the freshness window: a second request with the
    same txn inside the window is a replay and is refused."""

    __tablename__ = "digilocker_replays"

    txn: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                              index=True)


class DigiLockerAccount(Base):
    """A citizen's DigiLocker account linked over OAuth (authorization code + PKCE). Tokens are
    stored encrypted (never in clear); revoking the link forgets them."""

    __tablename__ = "digilocker_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digilockerid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    token_encrypted: Mapped[str | None] = mapped_column(Text)  # the authlib token dict, sealed
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DigiLockerLinkRequest(Base):
    """One OAuth round trip in flight: the `state` we sent, the PKCE verifier, and the request
    whose applicant is linking. Used once."""

    __tablename__ = "digilocker_link_requests"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    code_verifier: Mapped[str] = mapped_column(String(200))
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One push of a certificate's URI to a linked locker: action A (issued), U (corrected),
    D (revoked). Retried with backoff until delivered; never two of one action."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("certificate_id", "action", name="uq_deliveries_action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("digilocker_accounts.id"))
    action: Mapped[str] = mapped_column(String(1))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending/delivered/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Batch(Base):
    """An uploaded file of certificate requests (issuer/batches.py), approved as a whole.

    `state`: awaiting_approval, refused (nothing to issue: every row bad, or one bad row with
    mode all_or_nothing), rejected (by an officer), approved (certificates being made from its
    rows), issuing (every row has its certificate, or its reason for having none)."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("department_id", "content_sha256", name="uq_batches_content"),
        UniqueConstraint("department_id", "idempotency_key", name="uq_batches_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    cert_type: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(200))
    file_format: Mapped[str] = mapped_column(String(8))
    content_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(20))
    total_rows: Mapped[int] = mapped_column(Integer)
    valid_rows: Mapped[int] = mapped_column(Integer)
    # The bad rows: [{"line": n, "errors": [{"field", "code", "message"}]}], in file order.
    row_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Who opened a specimen of its rows (issuer/batch_sample.py): an officer approves only
    # after seeing one.
    sample_seen_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchRow(Base):
    """A valid row of a batch, kept as prepared (Aadhaar already out of it) until approval makes
    its certificate; `error` says why it got none (a duplicate that came in meanwhile)."""

    __tablename__ = "batch_rows"
    __table_args__ = (UniqueConstraint("batch_id", "line", name="uq_batch_rows_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    registration_number: Mapped[str] = mapped_column(String(64))
    ward_code: Mapped[str] = mapped_column(String(16))
    aadhaar_last4: Mapped[str | None] = mapped_column(String(4))
    aadhaar_hmac: Mapped[str | None] = mapped_column(String(64))
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"),
                                                       unique=True)
    error: Mapped[str | None] = mapped_column(Text)


class AuditHead(Base):
    """The single row locked while appending to the audit chain, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    certificate_id: Mapped[str | None] = mapped_column(String(36), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
