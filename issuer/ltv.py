"""`pramaan ltv refresh` and the workers' daily turn: an archival timestamp for every issued
B-LTA certificate whose newest timestamp nears its TSA certificate's expiry
(signing/archival.py). The new file becomes the certificate's current one; the old bytes stay
in the store and in `pdf_revisions`, so copies citizens already hold keep verifying. Every round
is audited (`ltv_refresh`).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sqlalchemy import select

from issuer import audit
from issuer.db import utcnow
from issuer.models import Certificate, PdfRevision, State
from signing.errors import SigningError

if TYPE_CHECKING:
    from redis import Redis

    from issuer.runtime import Runtime

log = logging.getLogger(__name__)
ACTOR: Final = "system:ltv"
LTV_LOCK: Final = "pramaan:ltv-refresh"
LTV_EVERY: Final = dt.timedelta(days=1)


@dataclass
class RefreshReport:
    """What a refresh did: certificates refreshed, skipped (with why), failed (with why)."""

    refreshed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def refresh(runtime: Runtime, *, now: dt.datetime | None = None,
            horizon: dt.timedelta | None = None, limit: int | None = None) -> RefreshReport:
    """Give every issued certificate whose file is due an archival round (one transaction
    each, so an interruption loses nothing and a re-run goes on where it stopped)."""
    from signing.archival import DEFAULT_HORIZON, is_due

    moment = now or utcnow()
    report = RefreshReport()
    keys = runtime.keyring.active(moment)
    if keys.archival is None:
        report.skipped["*"] = ("no archival timestamps here: they need a TSA and revocation "
                               "information (the development TSA with the dev CAs' keys, or "
                               "PRAMAAN_TSA_URL)")
        return report
    try:  # a licensed TSA's certificate is learnt from a timestamp: it renews on its own
        tsa_certificate = keys.tsa_certificate or keys.archival.current_tsa_certificate()
    except SigningError as exc:
        report.failed["*"] = f"the TSA's current certificate is unknown: {exc}"
        return report
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Certificate.id).where(
            Certificate.state.in_([State.ISSUED.value, State.SUPERSEDED.value]),
            Certificate.pdf_path.is_not(None)).order_by(Certificate.id)))
    for cert_id in ids[:limit] if limit else ids:
        with runtime.sessions() as session, session.begin():
            record = session.get(Certificate, cert_id)
            if record is None or record.pdf_path is None or record.pdf_sha256 is None:
                continue
            at = now or utcnow()  # a long run stamps each file with its own time
            try:  # one unreadable file is reported, and never stops the others
                pdf = runtime.store.get(record.pdf_path, record.pdf_sha256)
                due = is_due(pdf, tsa_certificate, at, horizon or DEFAULT_HORIZON)
                if not due.due:
                    report.skipped[cert_id] = due.reason
                    continue
                refreshed = keys.archival.refresh(pdf, at)
            except Exception as exc:  # reported and logged; the next turn tries again
                log.exception("archival timestamp for %s failed", cert_id)
                report.failed[cert_id] = f"{type(exc).__name__}: {exc}"
                continue
            stored = runtime.store.put(refreshed)
            session.add(PdfRevision(certificate_id=cert_id, sha256=record.pdf_sha256,
                                    path=record.pdf_path, replaced_at=at))
            audit.record(session, actor=ACTOR, action="ltv_refresh", certificate_id=cert_id,
                         details={"number": record.number, "before": record.pdf_sha256,
                                  "after": stored.sha256,
                                  "expiring": due.expires.isoformat() if due.expires else None})
            record.pdf_path, record.pdf_sha256 = stored.path, stored.sha256
            record.updated_at = at
            report.refreshed.append(cert_id)
    return report


def refresh_if_due(runtime: Runtime, redis: Redis) -> RefreshReport | None:
    """A worker's turn: at most one refresh a day across all workers (a Redis key)."""
    if not redis.set(LTV_LOCK, socket.gethostname(), nx=True,
                     ex=int(LTV_EVERY.total_seconds())):
        return None
    return refresh(runtime)
