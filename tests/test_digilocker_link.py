"""Linking a DigiLocker account: tokens sealed at rest and bound to their account, the applicant's
signed expiring link, one-time OAuth state, DigiLocker's refusal, token refresh through authlib's
update_token hook, and the operator commands (status, retry, unlink) run as the real `pramaan`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from digilocker import link
from digilocker.token_vault import SealBroken, Vault, master_key
from issuer.db import utcnow
from issuer.errors import ConfigError
from issuer.models import AuditEvent, Delivery, DigiLockerAccount
from tests.conftest import ROOT, make_settings, sample
from tests.digilocker_emulator import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from tests.test_digilocker_e2e import ASHA, World, world_fixture  # noqa: F401 - a fixture

TOKEN = {"access_token": "at-1", "refresh_token": "rt-1", "token_type": "Bearer",
         "expires_in": 3600, "expires_at": 1773003600}


def test_a_sealed_token_opens_only_for_its_account_under_its_key() -> None:
    vault = Vault.from_master(b"k" * 32)
    sealed = vault.seal(TOKEN, ASHA)
    assert "at-1" not in sealed and "rt-1" not in sealed
    assert vault.open(sealed, ASHA) == TOKEN
    assert vault.seal(TOKEN, ASHA) != sealed  # a fresh nonce each time
    with pytest.raises(SealBroken):
        vault.open(sealed, "9b2f7c1e-5d4a-4f3b-8e6d-0a1b2c3d4e5f")  # moved to another account
    with pytest.raises(SealBroken):
        Vault.from_master(b"x" * 32).open(sealed, ASHA)
    head, _, body = sealed.partition(".")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(SealBroken):
        vault.open(f"{head}.{flipped}", ASHA)
    with pytest.raises(SealBroken):
        vault.open("v2." + body, ASHA)


def test_a_link_token_works_for_its_certificate_until_it_expires() -> None:
    vault = Vault.from_master(b"k" * 32)
    token = vault.link_token("cert-1", 2000)
    assert vault.check_link_token("cert-1", token, 1999)
    assert not vault.check_link_token("cert-1", token, 2000)  # expired
    assert not vault.check_link_token("cert-2", token, 1000)  # another request
    assert not Vault.from_master(b"x" * 32).check_link_token("cert-1", token, 1000)
    later = vault.link_token("cert-1", 9999)
    forged = later.split(".")[0] + "." + token.split(".")[1]  # a later expiry, the old MAC
    assert not vault.check_link_token("cert-1", forged, 3000)
    for junk in ("", ".", "abc", "a.b.c", "!!!.???"):
        assert not vault.check_link_token("cert-1", junk, 0)


def test_the_key_is_required_in_production_and_generated_once_in_development(
        tmp_path: Path, sqlite_url: str, keys_dir: Path) -> None:
    production = replace(make_settings(tmp_path, sqlite_url, tmp_path / "k1"),
                         environment="production")
    with pytest.raises(ConfigError, match="PRAMAAN_DIGILOCKER_TOKEN_KEY"):
        master_key(production)
    development = make_settings(tmp_path, sqlite_url, tmp_path / "k2")
    first = master_key(development)
    assert len(first) == 32 and master_key(development) == first
    key_file = tmp_path / "k2" / "digilocker-token.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    configured = make_settings(tmp_path, sqlite_url, tmp_path / "k3",
                               digilocker_token_key="ab" * 32)
    assert master_key(configured) == bytes.fromhex("ab" * 32)


def _start(world: World, cert_id: str) -> str:
    made = world.desk.call("clerk-1", "POST", f"/api/v1/certificates/{cert_id}/digilocker-link")
    assert made.status_code == 200, made.text
    parts = urlsplit(made.json()["url"])
    started = requests.get(f"{world.live.base}{parts.path}?{parts.query}", allow_redirects=False,
                           timeout=60)
    assert started.status_code == 302, started.text
    location: str = started.headers["Location"]
    return location


def _events(world: World, action: str) -> int:
    with world.live.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action)) or 0)


def test_the_authorization_request_uses_pkce_s256_state_and_the_exact_redirect(
        world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    authorize = urlsplit(_start(world, request["id"]))
    query = dict(p.split("=", 1) for p in authorize.query.split("&"))
    assert authorize.path == "/public/oauth2/1/authorize"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert requests.utils.unquote(query["redirect_uri"]) == REDIRECT_URI
    assert len(query["state"]) >= 32


def test_a_wrong_or_foreign_link_is_refused_and_starts_nothing(world: World) -> None:
    first = world.desk.submit(sample("birth-1"))
    second = world.desk.submit(sample("birth-2"))
    made = world.desk.call("clerk-1", "POST",
                           f"/api/v1/certificates/{first['id']}/digilocker-link").json()
    token = made["url"].split("?t=")[1]
    for path in (f"/digilocker/link/{second['id']}?t={token}",  # another request's link
                 f"/digilocker/link/{first['id']}?t={token[:-2]}xx",
                 f"/digilocker/link/{first['id']}",
                 f"/digilocker/link/not-a-uuid?t={token}"):
        refused = requests.get(world.live.url(path), allow_redirects=False, timeout=60)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "digilocker_link_invalid"
    # A rejected request can no longer be linked, even with its own link.
    world.desk.call("officer-1", "POST", f"/api/v1/certificates/{first['id']}/reject",
                    {"reason": "duplicate"}).raise_for_status()
    refused = requests.get(world.live.url(f"/digilocker/link/{first['id']}?t={token}"),
                           allow_redirects=False, timeout=60)
    assert refused.status_code == 403
    # Without a bearer token no link is made.
    anonymous = requests.post(world.live.url(f"/api/v1/certificates/{first['id']}/"
                                             "digilocker-link"), timeout=60)
    assert anonymous.status_code == 401


def test_a_callback_is_used_once_and_a_refusal_links_nothing(world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    back = urlsplit(world.dl.link(_start(world, request["id"])))
    callback = f"{world.live.base}/digilocker/callback?{back.query}"
    assert requests.get(callback, timeout=60).status_code == 200
    replay = requests.get(callback, timeout=60)
    assert replay.status_code == 400 and replay.json()["code"] == "digilocker_state_invalid"
    assert _events(world, "digilocker_link") == 1
    unknown = requests.get(f"{world.live.base}/digilocker/callback?code=x&state=nope",
                           timeout=60)
    assert unknown.status_code == 400 and unknown.json()["code"] == "digilocker_state_invalid"
    # The citizen says no at DigiLocker: the state is spent, nothing is linked.
    state = dict(p.split("=", 1) for p in urlsplit(_start(world, request["id"])).query.split(
        "&"))["state"]
    denied = requests.get(f"{world.live.base}/digilocker/callback",
                          params={"error": "access_denied", "state": state}, timeout=60)
    assert denied.status_code == 400 and denied.json()["code"] == "digilocker_denied"
    assert _events(world, "digilocker_link") == 1


def test_tokens_are_sealed_at_rest_and_refreshed_through_the_update_hook(world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    world.link(request["id"])
    runtime = world.live.runtime
    vault = Vault.from_settings(runtime.settings)
    with runtime.sessions() as session:
        account = session.scalar(select(DigiLockerAccount))
        assert account is not None and account.token_encrypted
        token = vault.open(account.token_encrypted, account.digilockerid)
        assert token["access_token"] not in account.token_encrypted
        account_id = account.id
    # Let the stored token expire: the next call refreshes it and the hook seals the new one.
    with runtime.sessions() as session, session.begin():
        row = session.get(DigiLockerAccount, account_id)
        assert row is not None
        row.token_encrypted = vault.seal({**token, "expires_at": 1}, ASHA)
    assert link.user_details(runtime, account_id)["digilockerid"] == ASHA
    with runtime.sessions() as session:
        row = session.get(DigiLockerAccount, account_id)
        assert row is not None and row.token_encrypted
        fresh = vault.open(row.token_encrypted, ASHA)
    assert fresh["access_token"] != token["access_token"]
    assert fresh["refresh_token"] != token["refresh_token"]  # DigiLocker rotates it (v2.4)
    assert fresh["expires_at"] > token["expires_at"] - 3600
    new = requests.get(f"{world.dl.base}/oauth2/1/user", timeout=60,
                       headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert new.status_code == 200, new.text


def pramaan(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    settings = world.live.runtime.settings
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({
        "PRAMAAN_HOME": str(settings.home), "DATABASE_URL": settings.database_url,
        "PRAMAAN_KEYS_DIR": str(settings.keys_dir), "PRAMAAN_STORE_DIR": str(settings.store_dir),
        "DIGILOCKER_BASE_URL": settings.digilocker_base_url or "",
        "DIGILOCKER_CLIENT_ID": CLIENT_ID, "DIGILOCKER_CLIENT_SECRET": CLIENT_SECRET,
        "DIGILOCKER_REDIRECT_URI": REDIRECT_URI,
    })
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_operators_see_retry_and_unlink(world: World) -> None:
    request = world.desk.submit(sample("birth-1"))
    world.link(request["id"])
    world.dl.stop()  # DigiLocker down when the certificate is issued
    world.desk.approve(request["id"]).raise_for_status()
    status = pramaan(world, "digilocker", "status")
    assert status.returncode == 0, status.stderr
    report = _json(status)
    assert report["counts"] == {"pending": 1, "delivered": 0, "failed": 0}
    (row,) = report["deliveries"]
    assert (row["certificate"], row["action"], row["attempts"]) == (request["id"], "A", 1)
    assert row["last_error"].startswith("network:") and row["next_try_at"]
    # The first backoff is a minute; a slow machine may spend that on the commands above, so
    # the row is made to wait an hour before asking cron's sweep, which must leave it alone.
    with world.live.runtime.sessions() as session, session.begin():
        delivery = session.scalar(select(Delivery))
        assert delivery is not None and delivery.next_try_at is not None
        assert delivery.attempts == 1
        delivery.next_try_at = utcnow() + timedelta(hours=1)
    due = pramaan(world, "digilocker", "retry", "--due")  # cron's sweep: not due yet
    assert due.returncode == 0, due.stderr
    assert [r["attempts"] for r in _json(due)["deliveries"]] == [1]
    world.dl.start()
    retried = pramaan(world, "digilocker", "retry", request["id"], "--actor", "ops")
    assert retried.returncode == 0, retried.stderr
    (row,) = _json(retried)["deliveries"]
    assert (row["state"], row["attempts"]) == ("delivered", 2)
    assert _json(pramaan(world, "digilocker", "status"))["counts"]["delivered"] == 1

    with world.live.runtime.sessions() as session:
        account = session.scalar(select(DigiLockerAccount))
        assert account is not None and account.token_encrypted
        token = Vault.from_settings(world.live.runtime.settings).open(
            account.token_encrypted, ASHA)
    unlinked = pramaan(world, "digilocker", "unlink", ASHA, "--actor", "ops")
    assert unlinked.returncode == 0, unlinked.stderr
    assert _json(unlinked)["revoked_at_digilocker"] is True
    with world.live.runtime.sessions() as session:
        account = session.scalar(select(DigiLockerAccount))
        assert account is not None
        assert account.token_encrypted is None and account.revoked_at is not None
    gone = requests.get(f"{world.dl.base}/oauth2/1/user", timeout=60,
                        headers={"Authorization": f"Bearer {token['access_token']}"})
    assert gone.status_code == 401
    assert _events(world, "digilocker_unlink") == 1
    # After unlinking, a revocation still leaves the locker (D); a correction adds nothing.
    world.desk.call("officer-1", "POST", f"/api/v1/certificates/{request['id']}/revoke",
                    {"reason": "registered twice"}).raise_for_status()
    assert world.desk.show(request["id"])["delivery"]["action"] == "D"
    assert world.desk.show(request["id"])["delivery"]["state"] == "delivered"
    assert world.dl.state()["documents"]["123e4567-e89b-12d3-a456-426655440000"] == []
    unknown = pramaan(world, "digilocker", "unlink", "nobody")
    assert unknown.returncode == 2 and "digilocker_link_invalid" in unknown.stderr
