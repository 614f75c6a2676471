"""Push URI (PROTOCOL.md §6) fields and digest, and how DigiLocker's answers are read; the
backoff schedule. The digest is checked against a pinned vector and against the emulator's own,
independent implementation of every variant §6 leaves open."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from digilocker.deliveries import BACKOFF_CAP, HORIZON, backoff
from digilocker.emulator import EmulatorConfig
from digilocker.emulator.pushuri import match_hmac
from digilocker.push import PushDocument, classify, push_fields

DOC = PushDocument(
    digilockerid="123e4567-e89b-12d3-a456-426655440000",
    uri="in.gov.pmc-BTCER-0b8e3d1c-1111-4c2e-9f00-1234567890ab",
    doctype="BTCER",
    description="Birth certificate PMC/B/2026/KB/000001",
    docid="0b8e3d1c-1111-4c2e-9f00-1234567890ab",
    issued_on=date(2026, 3, 9),
    action="A",
)


def test_fields_carry_the_document_in_ddmmyyyy_and_leave_out_an_empty_validto() -> None:
    fields = push_fields(DOC, "pramaan-test", "secret", 1773000000)
    assert fields == {
        "clientid": "pramaan-test", "digilockerid": DOC.digilockerid, "uri": DOC.uri,
        "doctype": "BTCER", "description": DOC.description, "docid": DOC.docid,
        "issuedate": "09032026", "validfrom": "09032026", "action": "A", "ts": "1773000000",
        # sha256 over secret, clientid, digilockerid, uri, doctype, description, docid,
        # issuedate, validfrom, validto (empty), action, ts: computed once with sha256sum.
        "hmac": "d792e3d5c4231717873b906fa082b75a1163e953414734f4f89e06910988d11c",
    }


def test_the_emulator_accepts_our_digest_as_the_full_sequence_in_lowercase_hex() -> None:
    for action in ("A", "U", "D"):
        fields = push_fields(PushDocument(**{**DOC.__dict__, "action": action}),
                             "pramaan-test", "secret", 1773000000)
        assert match_hmac(fields, fields["hmac"], "secret", EmulatorConfig()) == "full/hex"
        assert match_hmac(fields, fields["hmac"], "other", EmulatorConfig()) is None
        tampered = {**fields, "uri": DOC.uri + "0"}
        assert match_hmac(tampered, fields["hmac"], "secret", EmulatorConfig()) is None


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError):
        push_fields(PushDocument(**{**DOC.__dict__, "action": "X"}), "c", "s", 1)


@pytest.mark.parametrize(("status", "body", "action", "repeat", "expected"), [
    (200, "{}", "A", False, (True, False)),
    (400, '{"error":"invalid_parameter","error_description":"URI already exists in this '
          'account"}', "A", False, (True, False)),
    (400, '{"error":"invalid_parameter","error_description":"URI already exists in another '
          'account"}', "A", True, (False, False)),
    (400, '{"error":"invalid_parameter","error_description":"URI parameter is missing or '
          'invalid"}', "D", True, (True, False)),
    (400, '{"error":"invalid_parameter","error_description":"URI parameter is missing or '
          'invalid"}', "D", False, (False, False)),
    (400, '{"error":"invalid_parameter","error_description":"HMAC parameter is missing or '
          'invalid"}', "A", False, (False, False)),
    (401, '{"error":"invalid_client_id"}', "A", False, (False, False)),
    (404, '{"error":"invalid_digilocker_id"}', "U", False, (False, False)),
    (500, '{"error":"unexpected_error"}', "A", False, (False, True)),
    (503, "", "D", False, (False, True)),
    (530, "", "U", False, (False, True)),
    (429, "", "A", False, (False, True)),
])
def test_answers_are_delivered_retried_or_refused(
        status: int, body: str, action: str, repeat: bool,
        expected: tuple[bool, bool]) -> None:
    outcome = classify(status, body, action, repeat)
    assert (outcome.delivered, outcome.retry) == expected
    if status != 200:
        assert outcome.error and outcome.error.startswith(f"HTTP {status}")


def test_backoff_doubles_from_a_minute_to_six_hours_and_keeps_trying_for_a_week() -> None:
    waits = [backoff(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[-1] == BACKOFF_CAP == timedelta(hours=6)
    assert all(a <= b for a, b in pairwise(waits))
    elapsed, attempts = timedelta(0), 0
    while elapsed < HORIZON:
        attempts += 1
        elapsed += backoff(attempts)
    assert 30 <= attempts <= 40  # about 9 fast tries, then four a day for the rest of the week
