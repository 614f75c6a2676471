"""Who may do what: one table of roles and actions for API tokens and people alike.

A refusal is an audit event of its own (written in its own transaction, so the refused request
changes nothing else) and a Forbidden error; a record of another department is reported as not
found, so its existence does not leak.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from issuer import audit
from issuer.errors import Forbidden, NotFound
from issuer.tokens import Principal


class Action(enum.StrEnum):
    SUBMIT = "submit"  # a new request
    CORRECT = "correct"  # a request correcting an issued certificate
    READ = "read"  # a record, its PDF, lists
    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"
    RETRY = "retry"  # a failed issue, or cancel it
    RTS_READ = "rts_read"  # the Right to Public Services report
    AUDIT_READ = "audit_read"
    MANAGE_USERS = "manage_users"
    MANAGE_TOKENS = "manage_tokens"


ROLES = ("clerk", "officer", "auditor", "admin")

ALLOWED: dict[str, frozenset[Action]] = {
    # A clerk submits and corrects; never decides.
    "clerk": frozenset({Action.SUBMIT, Action.CORRECT, Action.READ}),
    # An officer decides (never on what they submitted: see workflow.approve).
    "officer": frozenset({Action.APPROVE, Action.REJECT, Action.REVOKE, Action.RETRY,
                          Action.READ, Action.RTS_READ}),
    # An auditor reads everything of the department and changes nothing.
    "auditor": frozenset({Action.READ, Action.RTS_READ, Action.AUDIT_READ}),
    # An administrator manages people and tokens, and issues nothing.
    "admin": frozenset({Action.MANAGE_USERS, Action.MANAGE_TOKENS, Action.READ}),
}


def allowed(role: str, action: Action) -> bool:
    return action in ALLOWED.get(role, frozenset())


def require(sessions: Callable[[], Session], who: Principal, action: Action,
            certificate_id: str | None = None) -> None:
    """Raise Forbidden (after auditing the refusal) unless `who`'s role may do `action`."""
    if allowed(who.role, action):
        return
    deny(sessions, who, action, "role", certificate_id)
    raise Forbidden(f"a {who.role} may not {action.value.replace('_', ' ')}",
                    action=action.value, role=who.role)


def deny(sessions: Callable[[], Session], who: Principal, action: Action, reason: str,
         certificate_id: str | None = None, **details: Any) -> None:
    """Write the refusal to the audit chain in its own transaction."""
    with sessions() as session, session.begin():
        audit.record(session, actor=who.actor, action="denied", certificate_id=certificate_id,
                     details={"attempted": action.value, "role": who.role, "reason": reason,
                              "department": who.department.id, **details})


def other_department(sessions: Callable[[], Session], who: Principal, action: Action,
                     certificate_id: str) -> NotFound:
    """Audit an attempt on another department's record; the caller raises the NotFound."""
    deny(sessions, who, action, "other_department", certificate_id)
    return NotFound(f"no certificate {certificate_id}")
