"""PRAMAAN_DIGILOCKER_TOKEN_KEY is checked when the app starts: a malformed key refuses to start
(without echoing it); production that links accounts without one starts, and says so."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from api import create_app
from digilocker.token_vault import VARIABLE
from issuer.errors import ConfigError
from issuer.settings import Settings
from tests.conftest import make_settings

BASE = "http://127.0.0.1:9/public"  # never called: only whether linking is configured counts


def production(tmp_path: Path, keys_dir: Path, **extra: Any) -> Settings:
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir,
                         environment="production",
                         verify_base_url="https://verify.pmc.example.in",
                         verify_base_url_configured=True, **extra)


@pytest.mark.parametrize(("written", "problem"), [
    ("ab" * 31, "at least 32 bytes, it holds 31"),
    ("not a key at all!", "hex or base64"),
])
def test_a_malformed_token_key_refuses_to_start(tmp_path: Path, keys_dir: Path, written: str,
                                               problem: str) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir,
                             digilocker_token_key=written)
    with pytest.raises(ConfigError, match=VARIABLE) as refused:
        create_app(settings)
    assert problem in refused.value.detail and written not in refused.value.detail


def test_production_linking_without_a_token_key_starts_and_warns(
    tmp_path: Path, keys_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="digilocker.token_vault"):
        create_app(production(tmp_path, keys_dir, digilocker_base_url=BASE))
    warned = [r for r in caplog.records if r.name == "digilocker.token_vault"]
    assert len(warned) == 1 and VARIABLE in warned[0].getMessage()
    assert warned[0].levelno == logging.WARNING


@pytest.mark.parametrize("extra", [{}, {"digilocker_token_key": "ab" * 32,
                                        "digilocker_base_url": BASE}])
def test_no_warning_without_linking_or_with_a_key(tmp_path: Path, keys_dir: Path,
                                                  caplog: pytest.LogCaptureFixture,
                                                  extra: dict[str, Any]) -> None:
    with caplog.at_level(logging.WARNING, logger="digilocker.token_vault"):
        create_app(production(tmp_path, keys_dir, **extra))
    assert not [r for r in caplog.records if r.name == "digilocker.token_vault"]
