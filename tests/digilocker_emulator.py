"""The DigiLocker emulator on a real HTTP server on 127.0.0.1, for any test that needs DigiLocker.

Use the `emulator` fixture (import it into your test module: `from tests.digilocker_emulator
import emulator, run_emulator`), or call `run_emulator(config)` as a context manager to choose the
partner, users and faults yourself, e.g. with a partner whose pull URLs point at the live app:

    with run_emulator(EmulatorConfig(partners=(Partner(
            client_id="pramaan", client_secret="s", redirect_uris=(f"{live.base}/cb",),
            org_id="in.gov.pmc", api_key="k",
            pull_uri_url=f"{live.base}/digilocker/pulluri",
            pull_doc_url=f"{live.base}/digilocker/pulldoc"),))) as dl:
        dl.base      # http://127.0.0.1:<port>/public  (the partner base URL)
        dl.state()   # GET /emulator/state as a dict
        dl.faults(error_rate=0.5, seed=7)   # change faults at run time
        dl.search(digilockerid, "BTCER", {"RegistrationNumber": ...})
        dl.stop(); dl.start()  # a real outage: connection refused, then back on the same port

`dl.link(authorize_url)` follows an authorize URL our app made to the partner's redirect_uri and
returns that redirect URL (code and state), as a browser would after the citizen approves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from digilocker.emulator import EmulatorConfig, Partner, create_emulator

CLIENT_ID = "pramaan-test"
CLIENT_SECRET = "pramaan-test-secret"
API_KEY = "test-api-key"
REDIRECT_URI = "http://127.0.0.1:9/digilocker/callback"


def test_partner(**changes: Any) -> Partner:
    """A partner with the test credentials; pass pull_uri_url/pull_doc_url/redirect_uris."""
    fields: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "redirect_uris": (REDIRECT_URI,), "org_id": "in.gov.pmc",
                              "api_key": API_KEY}
    fields.update(changes)
    return Partner(**fields)


test_partner.__test__ = False  # type: ignore[attr-defined]  # a factory, not a pytest test


class RunningEmulator:
    """An emulator app served on 127.0.0.1 by Werkzeug's threaded server."""

    def __init__(self, app: Flask, port: int = 0) -> None:
        self.app = app
        self.port = port
        self.server: BaseWSGIServer | None = None
        self.thread: threading.Thread | None = None
        self.http = requests.Session()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        """The partner API base URL (DIGILOCKER_BASE_URL)."""
        return self.root + "/public"

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Close the listening socket: callers get connection refused until start()."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            assert self.thread is not None
            self.thread.join(timeout=10)
            self.server = None

    def state(self) -> dict[str, Any]:
        response = self.http.get(self.root + "/emulator/state", timeout=30)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def faults(self, **changes: Any) -> dict[str, Any]:
        response = self.http.put(self.root + "/emulator/faults", json=changes, timeout=30)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def search(self, digilockerid: str, doctype: str, params: dict[str, str],
               **extra: Any) -> dict[str, Any]:
        body = {"digilockerid": digilockerid, "doctype": doctype, "params": params, **extra}
        response = self.http.post(self.root + "/emulator/search", json=body, timeout=60)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def link(self, authorize_url: str, user: str | None = None) -> str:
        """The redirect the emulator answers an authorize URL with (auto-consent)."""
        params = {"dl_test_user": user} if user else None
        response = self.http.get(authorize_url, params=params, allow_redirects=False, timeout=30)
        assert response.status_code == 302, (response.status_code, response.text)
        location: str = response.headers["Location"]
        return location


@contextmanager
def run_emulator(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    running = RunningEmulator(create_emulator(config or EmulatorConfig(
        partners=(test_partner(),))))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        running.http.close()


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An emulator with the test partner (no pull URLs) and the default test users."""
    with run_emulator() as running:
        yield running
