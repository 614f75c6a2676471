"""DigiLocker end to end over real HTTP on 127.0.0.1: our app (SQLite and PostgreSQL) and the
emulator (tests/digilocker_emulator.py) talk only through the protocol. A citizen links their
locker through OAuth (code + PKCE, state, exact redirect_uri); issuing pushes A and the emulator
pulls the signed PDF from /digilocker/pulldoc with its HMAC; a correction pushes U, a revocation
D; the locker follows. Then DigiLocker fails half the pushes, loses answers, and goes down for a
while: every push ends up delivered, and the emulator counts each URI and action exactly once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from digilocker import deliveries, link
from digilocker.emulator import EmulatorConfig, create_emulator
from issuer.db import utcnow
from issuer.models import AuditEvent, Delivery, DigiLockerAccount
from tests.conftest import Live, make_settings, sample, serve
from tests.digilocker_emulator import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    RunningEmulator,
    test_partner,
)
from tests.test_workflow import Desk
from tests.tools import nss_db_with_root, pdfsig

ASHA = "123e4567-e89b-12d3-a456-426655440000"
RAVI = "9b2f7c1e-5d4a-4f3b-8e6d-0a1b2c3d4e5f"


def free_port() -> int:
    """A port free now, below the ephemeral range (Linux: 32768-60999): a server bound to port
    0 (our app's, started after this is chosen and before it is bound) never takes it."""
    import random

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


class World:
    """Our app, an officer-approving department desk, and the emulator, wired to each other."""

    def __init__(self, live: Live, dl: RunningEmulator) -> None:
        self.live, self.dl = live, dl
        self.desk = Desk(live)

    def link(self, cert_id: str, user: str = "asha") -> dict[str, Any]:
        """The applicant's journey: the clerk makes the link, the browser follows it to
        DigiLocker, approves, and comes back to our callback."""
        made = self.desk.call("clerk-1", "POST",
                              f"/api/v1/certificates/{cert_id}/digilocker-link")
        assert made.status_code == 200, made.text
        parts = urlsplit(made.json()["url"])
        started = requests.get(f"{self.live.base}{parts.path}?{parts.query}",
                               allow_redirects=False, timeout=60)
        assert started.status_code == 302, started.text
        back = urlsplit(self.dl.link(started.headers["Location"], user))
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
        done = requests.get(f"{self.live.base}/digilocker/callback?{back.query}", timeout=60)
        assert done.status_code == 200, done.text
        body: dict[str, Any] = done.json()
        return body

    def account(self, digilockerid: str) -> int:
        with self.live.runtime.sessions() as session:
            account_id = session.scalar(select(DigiLockerAccount.id).where(
                DigiLockerAccount.digilockerid == digilockerid))
            assert account_id is not None
            return int(account_id)

    def pdf(self, cert_id: str) -> bytes:
        response = self.desk.call("officer-1", "GET", f"/api/v1/certificates/{cert_id}/pdf")
        assert response.status_code == 200, response.text
        return response.content

    def from_locker(self, digilockerid: str, uri: str) -> requests.Response:
        """The file as the citizen's locker serves it, read with the account's own token."""
        client = link.account_client(self.live.runtime, self.account(digilockerid))
        return client.get(f"{self.dl.base}/oauth2/1/file/{uri}", timeout=60)

    def uri(self, cert_id: str) -> str:
        return f"in.gov.pmc-BTCER-{cert_id}"

    def settle(self, rounds: int = 200) -> None:
        """Let time pass (7 hours a round: past any backoff) and try every due push, until none
        is pending."""
        now = utcnow()
        for _ in range(rounds):
            with self.live.runtime.sessions() as session:
                ids = list(session.scalars(select(Delivery.id).where(
                    Delivery.state == deliveries.PENDING).order_by(Delivery.id)))
            if not ids:
                return
            now += timedelta(hours=7)
            for delivery_id in ids:
                deliveries.deliver(self.live.runtime, delivery_id, now=now)
        raise AssertionError("deliveries still pending")

    def rows(self) -> list[Delivery]:
        with self.live.runtime.sessions() as session:
            return list(session.scalars(select(Delivery).order_by(Delivery.id)))


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[World]:
    port = free_port()
    settings = make_settings(
        tmp_path, database_url, keys_dir,
        digilocker_base_url=f"http://127.0.0.1:{port}/public", digilocker_client_id=CLIENT_ID,
        digilocker_client_secret=CLIENT_SECRET, digilocker_redirect_uri=REDIRECT_URI,
        digilocker_api_key=API_KEY)
    for live in serve(settings):
        partner = test_partner(pull_uri_url=f"{live.base}/digilocker/pulluri",
                               pull_doc_url=f"{live.base}/digilocker/pulldoc")
        dl = RunningEmulator(create_emulator(EmulatorConfig(partners=(partner,))), port=port)
        dl.start()
        try:
            yield World(live, dl)
        finally:
            dl.stop()
            dl.http.close()


def push_counts(dl: RunningEmulator) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = dl.state()["pushes"]
    return counts


def test_a_linked_citizen_s_locker_follows_issue_correction_and_revocation(
        world: World, tmp_path: Path, keys_dir: Path) -> None:
    desk = world.desk
    request = desk.submit(sample("birth-1"))
    linked = world.link(request["id"])
    assert linked["digilockerid"] == ASHA and linked["delivery"] is None  # nothing issued yet
    assert [CLIENT_ID, ASHA] in world.dl.state()["linked"]

    desk.approve(request["id"]).raise_for_status()  # issued in process, then pushed
    issued = desk.show(request["id"])
    assert issued["state"] == "issued"
    assert issued["delivery"]["state"] == "delivered", issued["delivery"]
    assert (issued["delivery"]["action"], issued["delivery"]["attempts"]) == ("A", 1)
    uri = world.uri(request["id"])
    assert push_counts(world.dl) == {uri: {"A": 1, "U": 0, "D": 0}}
    state = world.dl.state()
    (pull,) = [p for p in state["pull_log"] if p["kind"] == "doc"]
    assert pull["ok"], pull
    # The emulator pulled the document with its HMAC: the locker holds our signed PDF, byte
    # for byte, and pdfsig finds the signature valid and trusted.
    ours = world.pdf(request["id"])
    served = world.from_locker(ASHA, uri)
    assert served.status_code == 200 and served.content == ours
    path = tmp_path / "from-locker.pdf"
    path.write_bytes(served.content)
    out = pdfsig(path, nss_db_with_root(tmp_path / "nss", keys_dir / "root.crt"))
    assert "Signature is Valid" in out and "Certificate is Trusted" in out, out
    listed = link.issued_documents(world.live.runtime, world.account(ASHA))
    assert [(i["uri"], i["doctype"], i["issuerid"]) for i in listed] == [
        (uri, "BTCER", "in.gov.pmc")]

    # A correction: the same locker entry is updated (U) and now serves the corrected PDF.
    fixed = sample("birth-1")
    fixed["mother"]["name"] = {"en": "Shraddha Sandip Kulkarni", "mr": "श्रद्धा संदीप कुलकर्णी"}
    correction = desk.issued({**fixed, "corrects": request["id"]})
    assert correction["delivery"]["action"] == "U"
    assert correction["delivery"]["state"] == "delivered", correction["delivery"]
    assert push_counts(world.dl) == {uri: {"A": 1, "U": 1, "D": 0}}
    assert world.from_locker(ASHA, uri).content == world.pdf(correction["id"])
    assert world.pdf(correction["id"]) != ours

    # A revocation: the entry leaves the locker (D).
    revoked = desk.call("officer-1", "POST", f"/api/v1/certificates/{correction['id']}/revoke",
                        {"reason": "registered twice"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["delivery"]["action"] == "D"
    assert revoked.json()["delivery"]["state"] == "delivered", revoked.json()["delivery"]
    assert push_counts(world.dl) == {uri: {"A": 1, "U": 1, "D": 1}}
    assert world.from_locker(ASHA, uri).status_code == 404
    assert link.issued_documents(world.live.runtime, world.account(ASHA)) == []

    # Each push is an audit event.
    with world.live.runtime.sessions() as session:
        pushes = [(e.certificate_id, e.details["action"], e.details["outcome"]) for e in
                  session.scalars(select(AuditEvent).where(
                      AuditEvent.action == "digilocker_push").order_by(AuditEvent.seq))]
    assert pushes == [(request["id"], "A", "delivered"), (correction["id"], "U", "delivered"),
                      (correction["id"], "D", "delivered")]


def test_failures_lost_answers_and_an_outage_lose_nothing_and_duplicate_nothing(
        world: World) -> None:
    desk, dl = world.desk, world.dl
    # Half the pushes fail (HTTP 500, unprocessed).
    dl.faults(error_rate=0.5, seed=11)
    first = desk.submit(sample("birth-1"))
    second = desk.submit(sample("birth-2"))
    world.link(first["id"], "asha")
    world.link(second["id"], "ravi")
    for record in (first, second):
        desk.approve(record["id"]).raise_for_status()
    fixed = sample("birth-1")
    fixed["remarks"] = {"en": "Corrected.", "mr": "दुरुस्त केले."}
    correction = desk.issued({**fixed, "corrects": first["id"]})
    revoked = desk.call("officer-1", "POST", f"/api/v1/certificates/{second['id']}/revoke",
                        {"reason": "issued in error"})
    assert revoked.status_code == 200, revoked.text
    world.settle()
    assert dl.state()["injected"].get("error", 0) > 0

    # DigiLocker down for a while: a correction and a revocation wait, attempts mount, nothing
    # is lost; when it is back, they go, in order.
    dl.faults(error_rate=0.0)
    dl.stop()
    again = sample("birth-1")
    again["remarks"] = {"en": "Corrected again.", "mr": "पुन्हा दुरुस्त केले."}
    third = desk.issued({**again, "corrects": correction["id"]})
    revoked = desk.call("officer-1", "POST", f"/api/v1/certificates/{third['id']}/revoke",
                        {"reason": "wrong ward"})
    assert revoked.status_code == 200, revoked.text
    pending = desk.show(third["id"])["delivery"]
    assert pending["state"] == "pending" and pending["action"] == "D"
    assert pending["next_try_at"] is not None
    with pytest.raises(AssertionError, match="still pending"):
        world.settle(rounds=5)  # an outage of 35 hours
    waiting = desk.show(third["id"])["delivery"]["pushes"]
    assert [(p["action"], p["state"]) for p in waiting] == [("U", "pending"), ("D", "pending")]
    assert waiting[0]["attempts"] >= 5 and waiting[1]["attempts"] == 0  # D waits for the U
    dl.start()
    world.settle()

    rows = world.rows()
    assert [r.state for r in rows] == ["delivered"] * len(rows)
    assert sorted((r.certificate_id, r.action) for r in rows) == sorted([
        (first["id"], "A"), (second["id"], "A"), (correction["id"], "U"), (second["id"], "D"),
        (third["id"], "U"), (third["id"], "D")])
    assert push_counts(dl) == {world.uri(first["id"]): {"A": 1, "U": 2, "D": 1},
                               world.uri(second["id"]): {"A": 1, "U": 0, "D": 1}}
    assert dl.state()["documents"] == {ASHA: [], RAVI: []}


def test_a_lost_answer_costs_one_repeat_never_a_duplicate(world: World) -> None:
    """DigiLocker applies the push and the answer never arrives: the repeat of an A is answered
    "URI already exists in this account", of a D with the URI gone; both count as delivered."""
    desk, dl = world.desk, world.dl
    request = desk.submit(sample("birth-1"))
    world.link(request["id"])
    dl.faults(lost_reply_rate=1.0)
    desk.approve(request["id"]).raise_for_status()
    shown = desk.show(request["id"])["delivery"]
    assert (shown["state"], shown["attempts"]) == ("pending", 1)
    assert shown["last_error"].startswith("network:")
    dl.faults(lost_reply_rate=0.0)
    world.settle()
    shown = desk.show(request["id"])["delivery"]
    assert (shown["state"], shown["attempts"]) == ("delivered", 2)
    assert "already exists in this account" in shown["last_error"]
    dl.faults(lost_reply_rate=1.0)
    desk.call("officer-1", "POST", f"/api/v1/certificates/{request['id']}/revoke",
              {"reason": "registered twice"}).raise_for_status()
    dl.faults(lost_reply_rate=0.0)
    world.settle()
    shown = desk.show(request["id"])["delivery"]
    assert (shown["action"], shown["state"], shown["attempts"]) == ("D", "delivered", 2)
    assert push_counts(dl) == {world.uri(request["id"]): {"A": 1, "U": 0, "D": 1}}
