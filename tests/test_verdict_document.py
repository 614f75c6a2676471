"""The verdict document that `/api/v1/verify`, the `/v` page and `pramaan verify` show: every check
with its name, a boolean `ok` and its reason, exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from issuer.runtime import Runtime
from issuer.verify import verify_qr
from tests.conftest import make_settings


@pytest.fixture
def runtime(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[Runtime]:
    runtime = Runtime(make_settings(tmp_path, sqlite_url, keys_dir))
    yield runtime
    runtime.close()


def test_a_foreign_link_to_a_broken_seal_lists_both_failed_checks(runtime: Runtime) -> None:
    verdict = verify_qr(runtime, "https://pmc-verify.example.net/v#0123").as_dict()

    assert verdict == {
        "genuine": False,
        "status": "invalid",
        "current": False,
        "reason": "link: foreign_link",
        "checks": [
            {"name": "link", "ok": False, "reason": "foreign_link"},
            {"name": "seal", "ok": False, "reason": "malformed"},
        ],
        "certificate": None,
    }
