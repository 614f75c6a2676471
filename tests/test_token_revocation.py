"""Bearer tokens over real HTTP: a revoked or expired token is refused (401) at once for every
call, other tokens keep working, and near-miss tokens never authenticate."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from issuer.bootstrap import DEV_DEPARTMENT
from issuer.db import utcnow
from issuer.errors import Unauthorized
from issuer.models import ApiToken, Certificate, Department
from issuer.tokens import authenticate, create_token
from tests.conftest import Live, sample

MISSING = "/api/v1/certificates/00000000-0000-4000-8000-000000000000"


def new_token(live: Live, name: str, role: str = "clerk") -> str:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return create_token(session, department, name, role)


def revoke(live: Live, name: str) -> None:
    with live.runtime.sessions() as session, session.begin():
        done = session.execute(update(ApiToken).where(ApiToken.name == name)
                               .values(revoked_at=utcnow()))
        assert done.rowcount == 1  # type: ignore[attr-defined]


def call(live: Live, token: str, method: str = "GET", path: str = MISSING,
         **kwargs: object) -> requests.Response:
    return requests.request(method, live.url(path), headers={"Authorization": f"Bearer {token}"},
                            timeout=60, **kwargs)  # type: ignore[arg-type]


def assert_401(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"


def test_a_revoked_token_is_refused_everywhere_and_others_keep_working(live: Live) -> None:
    token = new_token(live, "clerk-leaving")
    created = call(live, token, "POST", "/api/v1/certificates", json=sample("birth-1"))
    assert created.status_code == 202, created.text
    mine = created.json()["links"]["self"]
    assert call(live, token, path=mine).status_code == 200
    assert call(live, token).status_code == 404  # authenticated: "no such certificate"

    revoke(live, "clerk-leaving")

    assert_401(call(live, token, path=mine))
    assert_401(call(live, token, path=mine + "/pdf"))
    assert_401(call(live, token))
    with live.runtime.sessions() as session:
        before = session.scalar(select(func.count()).select_from(Certificate))
    assert_401(call(live, token, "POST", "/api/v1/certificates", json=sample("birth-2")))
    with live.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Certificate)) == before
    # Revoking one token leaves the department's other tokens alone.
    assert live.get(mine).status_code == 200
    with live.runtime.sessions() as session, pytest.raises(Unauthorized):
        authenticate(session, token)


def test_authenticate_names_the_caller_and_refuses_near_misses(live: Live) -> None:
    token = new_token(live, "officer-1", "officer")
    with live.runtime.sessions() as session:
        who = authenticate(session, token)
        assert (who.department.id, who.token_name, who.role) == (DEV_DEPARTMENT, "officer-1",
                                                                 "officer")
        assert who.actor == f"token:{DEV_DEPARTMENT}/officer-1"
        for wrong in (token[:-1], token + "x", token.upper(), token.replace("pmn_", ""), ""):
            with pytest.raises(Unauthorized):
                authenticate(session, wrong)
    assert call(live, token).status_code == 404
    for wrong in (token[:-1], token + "A", token[::-1]):
        assert_401(call(live, wrong))


def test_tokens_are_stored_only_as_a_hash(live: Live) -> None:
    token = new_token(live, "clerk-2")
    with live.runtime.sessions() as session:
        stored = session.scalars(select(ApiToken).where(ApiToken.name == "clerk-2")).one()
    assert token.startswith("pmn_") and len(token) > 40
    assert token not in (stored.token_sha256, stored.name)
    assert len(stored.token_sha256) == 64 and stored.revoked_at is None
    assert stored.role == "clerk" and stored.department_id == DEV_DEPARTMENT


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token pmn_x"])
def test_missing_or_malformed_authorization_is_401(live: Live, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_401(requests.get(live.url(MISSING), headers=headers, timeout=60))


def test_token_creation_rules(live: Live) -> None:
    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        one, thirty = create_token(session, department, "a"), create_token(session, department,
                                                                            "b" * 30)
        for token in (one, thirty):
            # "pmn_" + 32 random bytes in URL-safe base64 (43 characters).
            assert token.startswith("pmn_") and len(token) == 4 + 43
            assert authenticate(session, token).role == "admin"  # the default role
        assert one != thirty
        with pytest.raises(ValueError, match="1 to 30 characters"):
            create_token(session, department, "")
        with pytest.raises(ValueError, match="1 to 30 characters"):
            create_token(session, department, "c" * 31)
        with pytest.raises(ValueError, match="role must be one of"):
            create_token(session, department, "d", role="root")


def test_the_401_for_a_revoked_token_says_so(live: Live) -> None:
    token = new_token(live, "clerk-3")
    revoke(live, "clerk-3")
    response = call(live, token)
    assert_401(response)
    assert response.json()["detail"] == "the bearer token is unknown or revoked"


def test_an_expired_token_is_refused_at_once(live: Live) -> None:
    token = new_token(live, "clerk-temp")
    assert call(live, token).status_code == 404  # authenticated: "no such certificate"
    with live.runtime.sessions() as session, session.begin():
        session.execute(update(ApiToken).where(ApiToken.name == "clerk-temp")
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    for response in (call(live, token), call(live, token, "POST", "/api/v1/certificates",
                                             json=sample("birth-2"))):
        assert_401(response)
        assert response.json()["detail"] == ("the bearer token has expired; ask an "
                                             "administrator for a new one")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert live.get(MISSING).status_code == 404  # the department's other tokens still work
