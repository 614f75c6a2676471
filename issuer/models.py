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
_ACTIVE_SQL = "state IN ('submitted', 'approved', 'signing', 'issued')"


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_mr: Mapped[str] = mapped_column(String(200))
    cert_types: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
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
