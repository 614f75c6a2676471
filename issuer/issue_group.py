"""The issue job for a group of certificates (a batch's): two transactions for the whole group.

`issue.issue_certificate` spends two transactions, two audited commits and an RQ job on each
certificate; at batch scale that bookkeeping costs more than rendering. Here one transaction
records the intents of a group (up to `GROUP` records claimed by one UPDATE), the PDFs are made
and stored with no transaction open, and one transaction marks them all issued. Each record goes
through the same states, audit events and compare-and-set as alone, so running a group twice, or
a group and a single job for one of its records at once, still issues each record once.

What does not fit the group goes alone, through `issue_certificate`: a record lacking a number
or a known type (it fails there, with its reason), a correction (its supersession has its own
transaction), and every record of a group whose shared transaction failed for a reason other
than a database outage. A record whose PDF could not be made has its failure counted as alone;
the others go on, and the first error is raised once all are done (the job is reported failed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from digilocker.deliveries import plan_issued
from issuer import audit
from issuer.certtypes import cert_type
from issuer.db import lost_connection, outlasting_outages, utcnow
from issuer.issue import (
    Intent,
    Timings,
    counts_against_record,
    enqueue_deliveries,
    issue_certificate,
    mark_issued,
    produce,
    record_failure,
    seal_record,
    signer_for,
    stage,
    workable,
    worker_name,
)
from issuer.models import Certificate, State
from issuer.runtime import Runtime
from issuer.storage import Stored

log = logging.getLogger(__name__)

# Certificates per group job: a batch's chunk is split into groups this size. Large enough that
# the bookkeeping is spread thin, small enough that a group is done in about a second at B-B and
# that a worker killed in the middle leaves few records for the sweeper.
GROUP: Final = 25
# The mark of the stage-time line each group logs (see `_log_group`).
GROUP_TIMES: Final = "stage ms:"


@dataclass
class _Outcome:
    issued: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def issue_certificates(runtime: Runtime, certificate_ids: Sequence[str], *,
                       timings: Timings | None = None, db_patience: float = 0.0) -> int:
    """Issue a group of approved (or interrupted `signing`) certificates: how many this call
    issued. Ids with nothing to do (issued, cancelled, unknown, being signed elsewhere) are
    passed over, as `issue_certificate` does."""
    ids = list(dict.fromkeys(certificate_ids))
    outcome = _Outcome()
    spent: dict[str, float] = {}  # this group's stage times, logged (and added to `timings`)
    try:
        with stage(spent, "intents"):
            intents, alone = outlasting_outages(
                f"recording the intents to issue {len(ids)} certificates",
                lambda: record_intents(runtime, ids, spent), patience=db_patience)
    except Exception as exc:
        if lost_connection(exc):  # an outage longer than our patience: nothing is counted
            for certificate_id in ids:
                # equivalent, next line: counted=None (falsy: kept, not counted, as with False)
                record_failure(runtime, certificate_id, exc, counted=False)  # equivalent
            raise
        log.warning("recording a group's intents failed (%s); issuing its %d certificates "
                    "one at a time", exc, len(ids))
        intents, alone = [], ids
    made = _produce_all(runtime, intents, spent, outcome)
    with stage(spent, "mark"):
        corrections = _mark_all(runtime, made, db_patience, outcome)
    _log_group(len(ids), len(outcome.issued), spent)
    if timings is not None:
        for name, seconds in spent.items():
            timings[name] = timings.get(name, 0.0) + seconds
    for intent, stored in corrections:
        _mark_alone(runtime, intent, stored, db_patience, outcome)
    for certificate_id in alone:
        try:
            if issue_certificate(runtime, certificate_id, timings=timings,
                                 db_patience=db_patience):
                # equivalent, next line: append(None) (outcome.issued is only counted)
                outcome.issued.append(certificate_id)  # equivalent
        except Exception as exc:  # noqa: BLE001 - counted on the record, raised at the end
            outcome.errors.append(exc)
    if outcome.errors:
        raise outcome.errors[0]
    return len(outcome.issued)


def _log_group(size: int, issued: int, spent: Timings) -> None:
    """One line per group: how many it issued, and the milliseconds its stages took (QR, render,
    sign, store: the stage floors' own work; seal, intents, mark: the bookkeeping). `make
    bench-bulk` reads these lines to set each run's pipeline against its own stage times."""
    log.info("group of %d: %d issued; %s %s", size, issued, GROUP_TIMES,
             json.dumps({name: round(seconds * 1000, 2) for name, seconds in spent.items()},
                        sort_keys=True))


def record_intents(runtime: Runtime, certificate_ids: Sequence[str],
                   timings: Timings | None = None) -> tuple[list[Intent], list[str]]:
    """Transaction 1 for the group: the intents of every record it could claim (approved ones
    sealed now, abandoned `signing` ones resumed), and the ids of claimed records that must go
    alone (no number, or an unknown type: `issue_certificate` fails them with the reason)."""
    with runtime.sessions() as session, session.begin():
        intents, alone = [], []
        for record in _claim_all(session, certificate_ids):
            if record.number is None or cert_type(record.cert_type) is None:
                alone.append(record.id)
                continue
            if record.state == State.APPROVED.value:
                seal_record(runtime, session, record, timings)
            else:
                log.warning("issue %s: resuming an abandoned signing from its recorded intent",
                            record.id)
                record.updated_at = utcnow()
            intents.append(Intent.of(record))
        return intents, alone


def _claim_all(session: Session, certificate_ids: Sequence[str]) -> list[Certificate]:
    """The records of the group that are workable (`issue._claim`), locked by one no-op UPDATE,
    in the group's order."""
    claimed = set(session.scalars(
        update(Certificate)
        .where(Certificate.id.in_(certificate_ids), workable())
        .values(updated_at=Certificate.updated_at)
        .returning(Certificate.id)
        # equivalent, next line: None, like False, skips synchronising the session (none loaded)
        .execution_options(synchronize_session=False)))  # equivalent
    if not claimed:
        return []
    records = {record.id: record for record in session.scalars(
        select(Certificate).where(Certificate.id.in_(claimed)))}
    return [records[i] for i in certificate_ids if i in records]


def _produce_all(runtime: Runtime, intents: Sequence[Intent], timings: Timings | None,
                 outcome: _Outcome) -> list[tuple[Intent, Stored]]:
    """Each intent's PDF made and stored; a failure is counted on its record (not counted when
    a service or the database is out of reach) and the others go on."""
    made = []
    for intent in intents:
        try:
            pdf = produce(runtime, intent, timings)
            with stage(timings, "store"):
                made.append((intent, runtime.store.put(pdf)))
        except Exception as exc:  # noqa: BLE001 - counted on the record, raised at the end
            record_failure(runtime, intent.id, exc, counted=counts_against_record(exc))
            outcome.errors.append(exc)
    return made


def _mark_all(runtime: Runtime, made: Sequence[tuple[Intent, Stored]], db_patience: float,
              outcome: _Outcome) -> list[tuple[Intent, Stored]]:
    """Transaction 2 for the group: signing -> issued for each, with its `sign` event and its
    DigiLocker push planned; the corrections, returned, are marked alone. A transaction that
    fails (not an outage) is tried again for each record alone."""
    if not made:
        return []
    try:
        issued, corrections, pushes = outlasting_outages(
            f"marking {len(made)} certificates issued",
            lambda: _mark_group(runtime, made), patience=db_patience)
    except Exception as exc:  # noqa: BLE001 - logged; each record is tried alone
        if lost_connection(exc):
            for intent, _ in made:
                # equivalent, next line: counted=None (falsy: kept, not counted, as with False)
                record_failure(runtime, intent.id, exc, counted=False)  # equivalent
            outcome.errors.append(exc)
            return []
        log.warning("marking a group issued failed (%s); marking its %d certificates one at "
                    "a time", exc, len(made))
        return list(made)
    outcome.issued.extend(issued)
    for certificate_id in issued:
        log.info("issued %s", certificate_id)
    for certificate_id in pushes:
        enqueue_deliveries(runtime, certificate_id)
    return corrections


def _mark_group(runtime: Runtime, made: Sequence[tuple[Intent, Stored]]
                ) -> tuple[list[str], list[tuple[Intent, Stored]], list[str]]:
    """(issued ids, corrections left for their own transaction, ids with a push planned)."""
    now = utcnow()
    ids = [intent.id for intent, _ in made]
    issued, corrections, pushes = [], [], []
    with runtime.sessions() as session, session.begin():
        linked = {row.id: row for row in session.execute(
            select(Certificate.id, Certificate.corrects, Certificate.digilocker_account_id)
            .where(Certificate.id.in_(ids)))}
        plain = {}
        for intent, stored in made:
            row = linked.get(intent.id)
            if row is not None and row.corrects is not None:
                corrections.append((intent, stored))
            else:
                plain[intent.id] = (intent, stored)
        # One compare-and-set for them all: a record no longer `signing` (another run issued
        # it, or an operator cancelled it) is not among those it returns.
        won = set(session.scalars(
            update(Certificate)
            .where(Certificate.id.in_(plain), Certificate.state == State.SIGNING.value)
            .values(state=State.ISSUED.value,
                    pdf_sha256=case({i: s.sha256 for i, (_, s) in plain.items()},
                                    value=Certificate.id),
                    pdf_path=case({i: s.path for i, (_, s) in plain.items()},
                                  value=Certificate.id),
                    updated_at=now)
            .returning(Certificate.id)
            # equivalent, next line: synchronize_session None, like False (nothing of it loaded)
            .execution_options(synchronize_session=False))) if plain else set()  # equivalent
        for certificate_id, (intent, stored) in plain.items():
            if certificate_id not in won:
                continue
            audit.record(session, actor=worker_name(), action="sign", certificate_id=intent.id,
                         details={"number": intent.number, "pdf_sha256": stored.sha256,
                                  "level": f"PAdES-{signer_for(runtime, intent).level}"})
            issued.append(intent.id)
            # Only a record linked to a locker has a push to plan (a correction, which may
            # inherit its target's link, went alone above).
            row = linked.get(intent.id)
            if row is not None and row.digilocker_account_id is not None and plan_issued(
                    session, intent.id) is not None:
                pushes.append(intent.id)
    return issued, corrections, pushes


def _mark_alone(runtime: Runtime, intent: Intent, stored: Stored, db_patience: float,
                outcome: _Outcome) -> None:
    try:
        done = outlasting_outages(f"marking {intent.id} issued",
                                  lambda: mark_issued(runtime, intent, stored.sha256,
                                                      stored.path),
                                  patience=db_patience)
    except Exception as exc:  # noqa: BLE001 - counted on the record, raised at the end
        record_failure(runtime, intent.id, exc, counted=not lost_connection(exc))
        outcome.errors.append(exc)
        return
    if done:
        outcome.issued.append(intent.id)  # equivalent: append(None) (outcome.issued: only counted)
        enqueue_deliveries(runtime, intent.id)

