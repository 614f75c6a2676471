"""`pramaan doctor`'s TSA probe (signing/tsa_probe.py), in this process: a real RFC 3161 request
to the dev PKI's TSA served over HTTP on 127.0.0.1 gives the TSA's time; a TSA that is down or
never answers is named within the timeout (tests/test_doctor.py checks the doctor's lines)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from signing.devpki import DevPki
from signing.timestamps import DevTimeStampAuthority, TsaUnavailable, tsa_wsgi_app
from signing.tsa_probe import probe_tsa
from tests.fixture_scope import shared
from tests.test_signing_timestamps import serve

# Whole seconds in UTC, as the dev TSA writes its times.
WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


@pytest.fixture(scope=shared("module"))
def tsa_url(pki: DevPki) -> Iterator[str]:
    authority = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert],
                                           clock=lambda: WHEN)
    yield from serve(tsa_wsgi_app(authority))


@pytest.fixture
def silent_url() -> Iterator[str]:
    """An address that takes the connection (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/tsa"


def test_a_tsa_that_answers_gives_its_time(tsa_url: str) -> None:
    assert probe_tsa(tsa_url, timeout=10) == WHEN


def test_a_tsa_that_is_down_is_named(tsa_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}/tsa"  # bound, not listening
    with pytest.raises(TsaUnavailable) as raised:
        probe_tsa(down, timeout=10)
    assert str(raised.value).startswith(
        f"no timestamp from the TSA at {down}: cannot reach the TSA at {down}"), raised.value
    assert isinstance(raised.value.__cause__, OSError)


def test_a_tsa_that_never_answers_gives_up_at_the_timeout(silent_url: str) -> None:
    outcome: list[BaseException | dt.datetime] = []

    def ask() -> None:
        try:
            outcome.append(probe_tsa(silent_url, timeout=0.5))
        except TsaUnavailable as exc:
            outcome.append(exc)

    started = time.monotonic()
    # A thread of its own: were the timeout lost, the probe would wait (for ever, or pyHanko's
    # 10 s) and this test fails here instead of hanging.
    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    asking.join(timeout=8)
    assert not asking.is_alive(), "the probe did not give up"
    assert time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], TsaUnavailable), outcome
    assert f"no timestamp from the TSA at {silent_url}:" in str(outcome[0])
