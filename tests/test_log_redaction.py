"""Defence in depth: whatever logs an Aadhaar-looking number, the record keeps the last four."""

from __future__ import annotations

import io
import logging
import random
import uuid

import pytest

from issuer.log_redaction import AadhaarFilter, install, redact

NUMBER = "864297531049"
SPACED = "8642 9753 1049"


@pytest.mark.parametrize(("text", "shown"), [
    (f"aadhaar {NUMBER}", "aadhaar XXXX XXXX 1049"),
    (f"aadhaar {SPACED}.", "aadhaar XXXX XXXX 1049."),
    ("aadhaar 8642-9753-1049", "aadhaar XXXX XXXX 1049"),
    (f"{{'aadhaar': '{NUMBER}'}}", "{'aadhaar': 'XXXX XXXX 1049'}"),
    (f"a={NUMBER},b={SPACED}", "a=XXXX XXXX 1049,b=XXXX XXXX 1049"),
    (f"mobile +91{NUMBER[2:]}", "mobile +XXXX XXXX 1049"),  # twelve digits after +: hidden too
    (f"_{NUMBER}_", "_XXXX XXXX 1049_"),
])
def test_aadhaar_looking_numbers_are_redacted(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize("text", [
    "1234 5678 9012",  # an Aadhaar number never starts with 0 or 1
    "0864297531049",  # thirteen digits
    "8642975310491",
    f"sha256 ab{NUMBER}cd",  # inside a hex digest
    f"x{NUMBER}",
    "2026-03-02T10:00:00 PMC/B/2026/000001",
    "certificate 3f2a9c1e-7b4d-4e21-9a0b-864297531049",  # a UUID's last group
    "uuid 3f2a9c1e-2222-3333-4444-864297531049",
    "86429 7531049",
])
def test_other_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_uuid_is_never_touched_even_when_all_digits() -> None:
    rng = random.Random(6)
    for _ in range(500):
        # The worst case: every hex digit a decimal digit, so any 12 in a row could match.
        text = f"issued {uuid.UUID(''.join(rng.choice('0123456789') for _ in range(32)))}."
        assert redact(text) == text
    for _ in range(500):
        text = f"issued {uuid.UUID(int=rng.getrandbits(128))}"
        assert redact(text) == text


@pytest.fixture
def redacting() -> None:
    install()
    factory = logging.getLogRecordFactory()
    install()  # idempotent: one wrapper, not two
    assert logging.getLogRecordFactory() is factory
    assert getattr(factory, "pramaan_redacts_aadhaar", False)


@pytest.mark.usefixtures("redacting")
@pytest.mark.parametrize("name", ["issuer.submit", "issuer.a.b.c", "api", "sqlalchemy.engine",
                                  "werkzeug", "rq.worker"])
def test_every_logger_is_redacted(caplog: pytest.LogCaptureFixture, name: str) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=name)  # SQLAlchemy sets its loggers' own levels
    logging.getLogger(name).debug("request %s from %s", {"aadhaar": SPACED}, NUMBER)
    logging.getLogger(name).warning("aadhaar %(n)s", {"n": NUMBER})
    assert NUMBER not in caplog.text and SPACED not in caplog.text
    assert caplog.text.count("XXXX XXXX 1049") == 3


@pytest.mark.usefixtures("redacting")
def test_tracebacks_and_stacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("issuer.anything")
    try:
        raise ValueError(f"bad request {NUMBER}")
    except ValueError:
        log.exception("failed")
    log.info("here", stack_info=True)  # the stack shows this line: 8642 9753 1049
    assert NUMBER not in caplog.text and SPACED not in caplog.text
    assert "bad request XXXX XXXX 1049" in caplog.text
    assert "the stack shows this line: XXXX XXXX 1049" in caplog.text
    assert "ValueError" in caplog.text and "Stack (most recent call last)" in caplog.text


@pytest.mark.usefixtures("redacting")
def test_a_broken_format_string_is_still_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    # logging reports the broken call (message and arguments) on stderr: redacted too.
    log = logging.getLogger("issuer.broken")
    handler = logging.StreamHandler(io.StringIO())
    log.addHandler(handler)
    log.propagate = False  # pytest's own capture handler fails the test on a broken call
    try:
        log.error("%d and %d", NUMBER)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and NUMBER not in err
    assert "XXXX XXXX 1049" in err


def test_the_handler_filter_redacts_without_the_factory() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(AadhaarFilter())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "aadhaar %s", (SPACED,), None)
    handler.handle(record)
    assert out.getvalue() == "aadhaar XXXX XXXX 1049\n"
