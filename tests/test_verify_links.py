"""Links as phones deliver them, and verify bases that are configuration, not listen addresses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from issuer.errors import ConfigError
from issuer.models import Certificate
from issuer.settings import Settings
from issuer.verify import is_our_verify_link, verify_qr
from tests.conftest import ROOT, Live, sample


def issued_seal(live: Live) -> str:
    cert_id = live.post_json("/api/v1/certificates", sample("birth-1")).json()["id"]
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.state == "issued" and record.seal_text
        return record.seal_text


def test_messenger_query_parameters_are_ignored(live: Live) -> None:
    seal = issued_seal(live)
    link, digits = seal.split("#", 1)
    for variant in (f"{link}?fbclid=IwAR0abc#{digits}", f"{link}?utm_source=wa&x=1#{digits}",
                    f"{link.upper().replace('/V', '/v')}?#{digits}"):
        verdict = verify_qr(live.runtime, variant).as_dict()
        assert verdict["current"] is True, (variant[:60], verdict["reason"])
    page = live.http.post(live.url("/api/v1/verify"),
                          json={"qr": f"{link}?fbclid=x#{digits}"}, timeout=60).json()
    assert page["current"] is True


def test_other_paths_hosts_and_lookalikes_stay_foreign(live: Live) -> None:
    seal = issued_seal(live)
    link, digits = seal.split("#", 1)
    base = link[: -len("/v")]
    for forged in (f"{base}/verify", f"{base}/v/extra", "https://pmc-verify.example.net/v",
                   f"{base}.evil.example/v", f"http://user@{base.split('://')[1]}/v"):
        verdict = verify_qr(live.runtime, f"{forged}#{digits}").as_dict()
        assert verdict["reason"] == "link: foreign_link", forged


def settings_for(**env: str) -> Settings:
    return Settings.from_env(env=env)


def test_our_bases_are_configuration_current_and_previous() -> None:
    settings = settings_for(PRAMAAN_VERIFY_BASE_URL="https://verify.pmc.gov.in",
                            PRAMAAN_VERIFY_PREVIOUS_BASE_URLS="https://pmc.gov.in/cert, "
                            "http://old.pmc.gov.in:8080",
                            HOST="10.1.2.3", PORT="9000")
    assert is_our_verify_link(settings, "https://verify.pmc.gov.in/v")
    assert is_our_verify_link(settings, "https://VERIFY.pmc.gov.in:443/v?fbclid=1")
    assert is_our_verify_link(settings, "https://pmc.gov.in/cert/v")
    assert is_our_verify_link(settings, "http://old.pmc.gov.in:8080/v")
    assert not is_our_verify_link(settings, "http://10.1.2.3:9000/v"), "listen address"
    assert not is_our_verify_link(settings, "http://verify.pmc.gov.in/v"), "scheme matters"
    assert not is_our_verify_link(settings, "https://pmc.gov.in/v")
    assert not is_our_verify_link(settings, "http://127.0.0.1:8000/v"), "configured: no loopback"


def test_development_default_accepts_loopback_on_any_port() -> None:
    settings = settings_for(PORT="8123")
    assert settings.verify_base_url == "http://127.0.0.1:8123"
    assert is_our_verify_link(settings, "http://127.0.0.1:8000/v")
    assert is_our_verify_link(settings, "http://localhost:9999/v")
    assert not is_our_verify_link(settings, "http://192.168.1.5:8000/v")
    production = settings_for(PRAMAAN_ENV="production",
                              PRAMAAN_VERIFY_BASE_URL="https://verify.pmc.gov.in")
    assert not is_our_verify_link(production, "http://127.0.0.1:8000/v")


@pytest.mark.parametrize("env, needle", [
    ({"HOST": "0.0.0.0", "PRAMAAN_ENV": "production"}, "PRAMAAN_VERIFY_BASE_URL is not set"),
    ({"PRAMAAN_VERIFY_BASE_URL": "http://0.0.0.0:8000"}, "not an address a phone can open"),
    ({"PRAMAAN_VERIFY_BASE_URL": "http://[::]:8000"}, "not an address a phone can open"),
    ({"PRAMAAN_ENV": "production", "PRAMAAN_VERIFY_BASE_URL": "http://verify.pmc.gov.in"},
     "must be https"),
    ({"PRAMAAN_ENV": "production", "PRAMAAN_VERIFY_BASE_URL": "https://127.0.0.1"},
     "not a public address"),
    ({"PRAMAAN_ENV": "production", "PRAMAAN_VERIFY_BASE_URL": "https://10.0.0.7"},
     "not a public address"),
    ({"PRAMAAN_ENV": "production", "PRAMAAN_VERIFY_BASE_URL": "https://localhost"},
     "not a public address"),
    ({"PRAMAAN_VERIFY_BASE_URL": "https://verify.pmc.gov.in/?a=1"}, "query or fragment"),
    ({"PRAMAAN_VERIFY_BASE_URL": "https://u:p@verify.pmc.gov.in"}, "user info"),
    ({"PRAMAAN_VERIFY_BASE_URL": "ftp://verify.pmc.gov.in"}, "http(s) URL"),
    ({"PRAMAAN_VERIFY_PREVIOUS_BASE_URLS": "http://0.0.0.0"}, "PREVIOUS"),
    ({"PRAMAAN_ENV": "staging"}, "PRAMAAN_ENV"),
])
def test_unusable_verify_bases_are_refused_with_the_reason(env: dict[str, str],
                                                           needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        settings_for(**env)


def test_usable_bases_pass() -> None:
    assert settings_for(PRAMAAN_ENV="production",
                        PRAMAAN_VERIFY_BASE_URL="https://verify.pmc.gov.in/").verify_base_url == (
        "https://verify.pmc.gov.in")
    assert settings_for(HOST="0.0.0.0").verify_base_url == "http://127.0.0.1:8000"
    assert settings_for(PRAMAAN_VERIFY_BASE_URL="http://192.168.1.20:8000").verify_base_url


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PRAMAAN_", "DATABASE_URL", "REDIS_URL", "HOST", "PORT"))}
    return subprocess.run([sys.executable, "-m", "cli", *args],
                          env={**base, "PRAMAAN_HOME": str(home), **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_docker_like_production_env_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    for command in (["serve"], ["worker", "--burst"], ["issue", "--data", "x.json"]):
        result = cli(tmp_path, *command, HOST="0.0.0.0", PRAMAAN_ENV="production")
        assert result.returncode == 2, (command, result.stderr)
        assert "PRAMAAN_VERIFY_BASE_URL" in result.stderr and "config_invalid" in result.stderr


def test_cli_verify_qr_judges_links_by_configuration_not_listen_address(tmp_path: Path) -> None:
    env = {"PRAMAAN_VERIFY_BASE_URL": "https://verify.pmc.example.net"}
    assert cli(tmp_path, "init", "--dev-pki", **env).returncode == 0
    data = tmp_path / "birth.json"
    data.write_text(json.dumps(sample("birth-1")), encoding="utf-8")
    issued = cli(tmp_path, "issue", "--data", str(data), **env)
    assert issued.returncode == 0, issued.stderr
    cert_id = json.loads(issued.stdout)["id"]
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'pramaan.db'}")
    with engine.connect() as conn:
        seal = conn.execute(text("SELECT seal_text FROM certificates WHERE id = :i"),
                            {"i": cert_id}).scalar_one()
    engine.dispose()
    report: dict[str, Any]
    # Another listen address than the one that issued, same configured base: ours.
    result = cli(tmp_path, "verify", "--qr", seal + "\n", HOST="127.0.0.1", PORT="9999", **env)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["current"] is True, report
    # A later move of the verify host keeps the old base as "previous".
    moved = {"PRAMAAN_VERIFY_BASE_URL": "https://pramaan.pmc.gov.in",
             "PRAMAAN_VERIFY_PREVIOUS_BASE_URLS": env["PRAMAAN_VERIFY_BASE_URL"]}
    assert cli(tmp_path, "verify", "--qr", seal, **moved).returncode == 0
    forgotten = cli(tmp_path, "verify", "--qr", seal,
                    PRAMAAN_VERIFY_BASE_URL="https://pramaan.pmc.gov.in")
    assert json.loads(forgotten.stdout)["reason"] == "link: foreign_link"
