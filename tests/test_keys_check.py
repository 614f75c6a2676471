"""`pramaan keys check` and `pramaan keys init`: every check of the signing keys on a line of
its own, problems weeks ahead (expiry), and the configured TSA asked for a real timestamp."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from signing.config import SignerConfig
from signing.devpki import DevPki, ensure_dev_pki
from signing.file_backend import load_pem_certificate
from signing.key_check import KeyCheck, check_keys
from signing.timestamps import tsa_wsgi_app
from tests.fixture_scope import shared
from tests.test_signing_timestamps import authority_of
from tests.test_signing_timestamps import serve as serve_wsgi

ROOT = Path(__file__).resolve().parents[1]


def by_name(checks: list[KeyCheck]) -> dict[str, KeyCheck]:
    return {check.name: check for check in checks}


@pytest.fixture
def keys(tmp_path: Path, pki: DevPki) -> DevPki:
    """A copy of the module's dev PKI that a test may damage."""
    shutil.copytree(pki.keys_dir, tmp_path / "keys")
    return DevPki.at(tmp_path / "keys")


@pytest.fixture(scope=shared("module"))
def tsa_url(pki: DevPki) -> Iterator[str]:
    yield from serve_wsgi(tsa_wsgi_app(authority_of(pki)))


def test_a_sound_set_passes_every_check(pki: DevPki) -> None:
    checks = check_keys(SignerConfig.from_keys_dir(pki.keys_dir))
    assert [c.name for c in checks] == [
        "document signer", "document signer certificate validity", "signer chain",
        "seal key", "seal certificate validity", "chain certificate ca.crt",
        "chain certificate ca.crt validity", "trust root root.crt",
        "trust root root.crt validity", "trust store", "test signature"]
    assert all(c.ok for c in checks), checks
    named = by_name(checks)
    assert named["document signer"].detail.startswith("CN=Pramaan Dev Document Signer")
    assert named["document signer"].detail.endswith("(RSA-2048)")
    assert named["seal key"].detail.endswith("(EC secp256r1)")
    assert named["signer chain"].detail == "chains to a configured trust root"
    assert named["chain certificate ca.crt"].detail == "1 certificate(s)"
    assert named["trust root root.crt"].detail == "1 certificate(s)"
    assert named["test signature"].detail == (
        "a PAdES B-B signature validates against the trust roots")
    signer = load_pem_certificate(pki.signer_cert)
    assert named["document signer certificate validity"].detail.startswith(
        f"valid until {signer.not_valid_after_utc:%Y-%m-%d} (")


def test_the_development_tsa_s_certificates_are_checked_too(pki: DevPki) -> None:
    config = replace(SignerConfig.from_keys_dir(pki.keys_dir), dev_tsa=True)
    checks = check_keys(config)
    assert all(c.ok for c in checks), checks
    named = by_name(checks)
    assert named["trust store"].detail == (
        "1 seal certificate(s) trusted (current, staged and retired)")
    assert named["TSA certificate tsa.crt"].detail == "1 certificate(s)"
    assert named["TSA chain certificate tsa-ca.crt"].detail == "1 certificate(s)"
    tsa = load_pem_certificate(pki.tsa_cert)
    assert named["TSA certificate tsa.crt validity"].detail.startswith(
        f"valid until {tsa.not_valid_after_utc:%Y-%m-%d} (")
    assert named["TSA chain certificate tsa-ca.crt validity"].ok
    assert named["time-stamping authority"].detail.startswith(
        "the development TSA (in process) answered (its time: ")
    # Ten years on the TSA's certificate has expired: a problem, named.
    later = by_name(check_keys(config, now=tsa.not_valid_after_utc + dt.timedelta(days=1)))
    assert not later["TSA certificate tsa.crt validity"].ok


def test_a_damaged_development_tsa_certificate_is_named(keys: DevPki) -> None:
    keys.tsa_cert.write_bytes(b"not a certificate")
    keys.tsa_ca_cert.unlink()
    named = by_name(check_keys(replace(SignerConfig.from_keys_dir(keys.keys_dir), dev_tsa=True)))
    assert named["TSA certificate tsa.crt"] == KeyCheck(
        "TSA certificate tsa.crt", False,
        f"TSA certificate {keys.tsa_cert} holds no valid PEM certificate [key_material_missing]")
    assert named["TSA chain certificate tsa-ca.crt"] == KeyCheck(
        "TSA chain certificate tsa-ca.crt", False,
        f"cannot read TSA chain certificate {keys.tsa_ca_cert}: No such file or directory "
        "[key_material_missing]")
    assert not named["time-stamping authority"].ok


def test_certificates_expiring_within_the_margin_are_problems(pki: DevPki) -> None:
    signer = load_pem_certificate(pki.signer_cert)
    config = SignerConfig.from_keys_dir(pki.keys_dir)
    ten_days_before = signer.not_valid_after_utc - dt.timedelta(days=10, hours=1)
    named = by_name(check_keys(config, now=ten_days_before))
    for name in ("document signer certificate validity", "seal certificate validity"):
        assert not named[name].ok
        assert named[name].detail == (f"expires in 10 day(s) "
                                      f"({signer.not_valid_after_utc:%Y-%m-%d}): renew it "
                                      "before then")
    assert named["trust root root.crt validity"].ok
    # A smaller margin lets the same day pass; a moment past the end says expired.
    assert by_name(check_keys(config, now=ten_days_before, margin=dt.timedelta(days=5)))[
        "seal certificate validity"].ok
    after = signer.not_valid_after_utc + dt.timedelta(days=1)
    assert by_name(check_keys(config, now=after))["seal certificate validity"].detail.startswith(
        "expired (")
    before = signer.not_valid_before_utc - dt.timedelta(days=1)
    assert by_name(check_keys(config, now=before))["seal certificate validity"].detail == (
        f"not valid before {signer.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


def test_each_problem_is_reported_and_the_rest_still_checked(keys: DevPki,
                                                             stranger: DevPki) -> None:
    ca = keys.ca_cert.read_bytes()
    keys.ca_cert.unlink()
    named = by_name(check_keys(SignerConfig.from_keys_dir(keys.keys_dir)))
    assert not named["document signer"].ok
    assert named["document signer"].detail.endswith("[key_material_missing]")
    assert named["chain certificate ca.crt"] == KeyCheck(
        "chain certificate ca.crt", False,
        f"cannot read chain certificate {keys.ca_cert}: No such file or directory "
        "[key_material_missing]")
    assert named["seal key"].ok and named["trust root root.crt"].ok
    assert "signer chain" not in named  # nothing to chain without a signer
    keys.ca_cert.write_bytes(ca)
    shutil.copy(stranger.signer_key, keys.signer_key)  # a key of another certificate
    named = by_name(check_keys(SignerConfig.from_keys_dir(keys.keys_dir)))
    assert named["document signer"].detail.endswith("[key_cert_mismatch]")
    assert named["chain certificate ca.crt"].ok


def test_a_signer_of_another_root_fails_the_chain_check(keys: DevPki, stranger: DevPki) -> None:
    for name in ("signer.key", "signer.crt", "ca.crt"):
        shutil.copy(stranger.keys_dir / name, keys.keys_dir / name)
    named = by_name(check_keys(SignerConfig.from_keys_dir(keys.keys_dir)))
    assert named["document signer"].ok
    assert not named["signer chain"].ok
    assert named["signer chain"].detail.endswith("[signer_untrusted]")


def test_the_configured_tsa_is_asked_for_a_timestamp(pki: DevPki, tsa_url: str) -> None:
    config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), tsa_url=tsa_url)
    named = by_name(check_keys(config))
    assert named["time-stamping authority"].ok
    assert named["time-stamping authority"].detail.startswith(f"{tsa_url} answered (its time: ")
    assert named["test signature"].detail == (
        "a PAdES B-T signature validates against the trust roots")
    closed = dataclasses.replace(config, tsa_url="http://127.0.0.1:9/tsa", tsa_timeout=2)
    down = by_name(check_keys(closed))["time-stamping authority"]
    assert not down.ok and down.detail.endswith("[tsa_unavailable]")
    assert down.detail.startswith("no timestamp from the TSA: ")  # and the client's reason


def _pramaan(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PRAMAAN_", "DATABASE"))}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**clean, "PRAMAAN_HOME": str(home), **env})


def test_the_commands_make_a_set_check_it_and_exit_by_the_result(tmp_path: Path) -> None:
    made = _pramaan(tmp_path, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"development PKI in {tmp_path / 'keys'}"
    ensure_dev_pki(tmp_path / "keys")  # complete: nothing to add
    good = _pramaan(tmp_path, "keys", "check")
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert all(line.startswith("ok   ") for line in lines), good.stdout
    # In development the dev TSA of keys/ timestamps, in process: checked like any other.
    assert lines[-2].startswith("ok   time-stamping authority: the development TSA (in "
                                "process) answered (its time: ")
    assert lines[-1] == ("ok   test signature: a PAdES B-T signature validates against the "
                         "trust roots")
    assert "ok   trust store: 1 seal certificate(s) trusted (current, staged and retired)" in lines
    assert any(line.startswith("ok   TSA certificate tsa.crt validity: valid until")
               for line in lines)
    assert any(line.startswith("ok   TSA chain certificate tsa-ca.crt validity: valid until")
               for line in lines)
    soon = _pramaan(tmp_path, "keys", "check", "--days", "4000")
    assert soon.returncode == 1
    assert "BAD  document signer certificate validity: expires in" in soon.stdout
    refused = _pramaan(tmp_path, "keys", "init", PRAMAAN_ENV="production",
                       PRAMAAN_VERIFY_BASE_URL="https://verify.pmc.gov.in")
    assert refused.returncode == 2
    assert "never made in production" in refused.stderr


def test_the_test_signature_catches_an_untrusted_tsa_and_a_reservation_too_small(
    pki: DevPki, stranger: DevPki,
) -> None:
    # A TSA that answers, under a root our verifiers do not know: every certificate would be
    # refused as bad_timestamp, although the TSA check alone is fine.
    for url in serve_wsgi(tsa_wsgi_app(authority_of(stranger))):
        config = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), tsa_url=url)
        named = by_name(check_keys(config))
        assert named["time-stamping authority"].ok
        assert not named["test signature"].ok
        assert named["test signature"].detail == (
            "the test signature does not validate: bad_timestamp [test_signature_invalid]")
    small = dataclasses.replace(SignerConfig.from_keys_dir(pki.keys_dir), bytes_reserved=4096)
    test = by_name(check_keys(small))["test signature"]
    assert not test.ok and test.detail.endswith("[signature_too_large]")


def test_a_certificate_s_validity_is_judged_exactly_at_its_edges(pki: DevPki) -> None:
    from signing.key_check import _lifetime

    cert = load_pem_certificate(pki.signer_cert)
    start, until = cert.not_valid_before_utc, cert.not_valid_after_utc
    margin = dt.timedelta(days=30)
    second = dt.timedelta(seconds=1)
    day = f"({until:%Y-%m-%d}): renew it before then"
    assert _lifetime("x", cert, start - second, margin) == KeyCheck(
        "x validity", False, f"not valid before {start:%Y-%m-%d %H:%M} UTC")
    assert _lifetime("x", cert, start, margin).ok  # valid from its first moment
    # Within the margin from its last second of it; expired at its end, and after.
    assert _lifetime("x", cert, until - margin - second, margin).ok
    assert _lifetime("x", cert, until - margin, margin) == KeyCheck(
        "x validity", False, f"expires in 30 day(s) {day}")
    assert _lifetime("x", cert, until - second, margin).detail == f"expires in 0 day(s) {day}"
    assert _lifetime("x", cert, until, margin).detail == f"expired {day}"
    assert _lifetime("x", cert, until + dt.timedelta(days=3), margin).detail == f"expired {day}"


def test_a_staged_folder_without_its_activation_time_is_no_staged_rotation(keys: DevPki) -> None:
    from signing import rotation

    config = SignerConfig.from_keys_dir(keys.keys_dir)
    rotation.stage(keys.keys_dir, dt.datetime.now(dt.UTC) + dt.timedelta(days=1), config=config,
                   verify_base_url="http://127.0.0.1:8000")
    staged = SignerConfig.from_keys_dir(keys.keys_dir)
    assert staged.pending_dir == keys.keys_dir / "next"
    # Withdrawn after the configuration was read: the folder stays, but nothing is staged.
    (keys.keys_dir / "next" / "activate-at").unlink()
    named = by_name(check_keys(staged))
    assert named["staged rotation"] == KeyCheck("staged rotation", True, "none")


def test_a_key_neither_rsa_nor_ec_is_described_by_its_type() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    from signing.key_check import _describe

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Edwards")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, None))
    assert _describe(cert) == "CN=Edwards (Ed25519PublicKey)"
