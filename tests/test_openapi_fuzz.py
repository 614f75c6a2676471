"""Schemathesis over the whole API (tests/openapi_fuzz.py), quick form: a few generated cases
per operation and mode, against a live server with a token for each role. `make schemathesis`
runs the full form."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Live, make_settings, sample, serve
from tests.openapi_fuzz import fuzz

# Per operation and generation mode; `make schemathesis` sets PRAMAAN_FUZZ_EXAMPLES higher.
QUICK_EXAMPLES = 6


def role_tokens(live: Live) -> dict[str, str]:
    from issuer.bootstrap import DEV_DEPARTMENT
    from issuer.models import Department
    from issuer.tokens import create_token

    with live.runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return {role: create_token(session, department, f"fuzz-{role}-{uuid.uuid4().hex[:6]}",
                                   role) for role in ("clerk", "officer", "auditor", "admin")}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_failure_over_the_whole_api(live: Live) -> None:
    tokens = role_tokens(live)
    made = live.post_json("/api/v1/certificates", sample("birth-1"),
                          headers={"Authorization": f"Bearer {tokens['clerk']}"})
    assert made.status_code == 202, made.text
    examples = int(os.environ.get("PRAMAAN_FUZZ_EXAMPLES", QUICK_EXAMPLES))
    report = fuzz(live.base, tokens, examples, ids={"cert_id": [made.json()["id"]]})
    print(f"schemathesis: {report.cases} generated cases ({examples} per operation and mode), "
          f"{len(report.failures)} failures; answers by status: "
          f"{dict(sorted(report.statuses.items()))}; nothing to generate: {report.skipped}")
    if os.environ.get("PRAMAAN_FUZZ_REPORT"):  # the whole list, to read
        Path(os.environ["PRAMAAN_FUZZ_REPORT"]).write_text("\n".join(report.failures))
    assert report.cases > 300
    assert report.failures == [], "\n".join(report.failures[:40])


@pytest.fixture
def digilocker_live(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[Live]:
    """The app with DigiLocker set up (pull key, OAuth client; DigiLocker itself unreachable)."""
    yield from serve(make_settings(
        tmp_path, sqlite_url, keys_dir, digilocker_api_key="k" * 32,
        digilocker_base_url="http://127.0.0.1:9", digilocker_client_id="pramaan",
        digilocker_client_secret="s" * 32, digilocker_token_key="ab" * 32))


def test_schemathesis_finds_no_failure_where_digilocker_is_set_up(
        digilocker_live: Live) -> None:
    live = digilocker_live
    tokens = role_tokens(live)
    made = live.post_json("/api/v1/certificates", sample("birth-1"),
                          headers={"Authorization": f"Bearer {tokens['clerk']}"})
    assert made.status_code == 202, made.text
    report = fuzz(live.base, tokens, QUICK_EXAMPLES * 3, ids={"cert_id": [made.json()["id"]]},
                  only=lambda path: "digilocker" in path)
    if os.environ.get("PRAMAAN_FUZZ_REPORT"):
        Path(os.environ["PRAMAAN_FUZZ_REPORT"]).write_text("\n".join(report.failures))
    assert report.cases > 50
    assert report.failures == [], "\n".join(report.failures[:40])
