"""Issuing at PAdES B-T (PRAMAAN_TSA_URL set): certificates carry the TSA's timestamp, and a TSA
that is down or answers garbage signs nothing, loses nothing and never fails the record: the
certificate waits for the sweeper's next try. The TSA is the development one, served over HTTP
on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import update

from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.issue import MAX_ATTEMPTS, RESUME_AFTER, issue_certificate
from issuer.models import Certificate, Department
from issuer.runtime import Runtime
from issuer.submit import submit
from issuer.verify import verify_pdf
from signing.devpki import DevPki, ensure_dev_pki
from signing.errors import RevocationUnavailable
from signing.revocation import DevRevocationAuthority, offline_context
from signing.sample_pdf import minimal_pdf
from signing.timestamps import TsaUnavailable, tsa_wsgi_app
from signing.validate import validate_pdf
from tests.conftest import make_settings, sample, serve
from tests.test_signing_support import pdfsig_report
from tests.test_signing_timestamps import authority_of
from tests.test_signing_timestamps import serve as serve_wsgi


class SwitchableTsa:
    """The dev TSA, or, while `down` is set, a server answering what a broken TSA answers."""

    def __init__(self, pki: DevPki) -> None:
        self.tsa = tsa_wsgi_app(authority_of(pki))
        self.down: str | None = None

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.down is None:
            return self.tsa(environ, start_response)
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status, content_type, body = {
            "unavailable": ("503 Service Unavailable", "text/plain", b"maintenance"),
            "garbage": ("200 OK", "application/timestamp-reply", b"\x30\x80garbage"),
        }[self.down]
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def tsa(keys_dir: Path) -> Iterator[tuple[SwitchableTsa, str]]:
    switch = SwitchableTsa(ensure_dev_pki(keys_dir))
    for url in serve_wsgi(switch):
        yield switch, url


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, keys_dir: Path,
            tsa: tuple[SwitchableTsa, str]) -> Iterator[Runtime]:
    built = Runtime(make_settings(tmp_path, database_url, keys_dir, tsa_url=tsa[1],
                                  tsa_timeout=5))
    initialise(built)
    yield built
    built.close()


def approved(runtime: Runtime) -> str:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        return submit(session, department, "test:clerk", sample("birth-1")).id


def record_of(runtime: Runtime, cert_id: str) -> Certificate:
    with runtime.sessions() as session:
        found = session.get(Certificate, cert_id)
        assert found is not None
        return found


def resume_at_once(runtime: Runtime, cert_id: str) -> None:
    """Let the next run resume the recorded intent at once (the sweeper waits RESUME_AFTER)."""
    with runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.id == cert_id).values(
            updated_at=record_of(runtime, cert_id).updated_at - RESUME_AFTER
            - timedelta(seconds=5)))


@pytest.mark.parametrize("down", ["unavailable", "garbage"])
def test_a_tsa_outage_signs_nothing_and_the_certificate_waits_for_it(
    runtime: Runtime, tsa: tuple[SwitchableTsa, str], down: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    switch, _ = tsa
    switch.down = down
    cert_id = approved(runtime)
    caplog.set_level(logging.WARNING, logger="issuer.issue")
    for _ in range(MAX_ATTEMPTS + 1):  # more tries than would fail a record
        with pytest.raises(TsaUnavailable):
            issue_certificate(runtime, cert_id)
        resume_at_once(runtime, cert_id)
    record = record_of(runtime, cert_id)
    assert record.state == "signing" and record.attempts == 0  # never failed, intent kept
    assert record.pdf_sha256 is None  # nothing stored: not half-signed
    assert record.last_error is not None
    assert record.last_error.startswith("TsaUnavailable: no timestamp from the TSA: ")
    assert f"issue {cert_id} waits: TsaUnavailable" in caplog.messages[0]

    switch.down = None  # the TSA is back: the next try issues it
    assert issue_certificate(runtime, cert_id) is True
    record = record_of(runtime, cert_id)
    assert record.state == "issued" and record.number is not None
    assert record.pdf_path is not None and record.pdf_sha256 is not None
    pdf = runtime.store.get(record.pdf_path, record.pdf_sha256)
    report = validate_pdf(pdf, list(runtime.trust.trust_root_paths))
    assert report.ok and report.timestamp is not None
    assert verify_pdf(runtime, pdf).current


def test_no_revocation_information_signs_nothing_and_the_certificate_waits_for_it(
        tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The responders and CRL servers give nothing: pyHanko cannot validate the signer's chain
    # for want of revocation information, which is not the certificate's fault.
    built = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", keys_dir,
                                  tsa_url="dev", signature_levels={"birth": "B-LT"}))
    initialise(built)
    try:
        def nothing(self: DevRevocationAuthority, roots: Any, others: Any,
                    now: Any = None) -> ValidationContext:
            return offline_context(roots, others, [], [], now)

        monkeypatch.setattr(DevRevocationAuthority, "validation_context", nothing)
        cert_id = approved(built)
        for _ in range(MAX_ATTEMPTS + 1):
            with pytest.raises(RevocationUnavailable):
                issue_certificate(built, cert_id)
            resume_at_once(built, cert_id)
        record = record_of(built, cert_id)
        assert record.state == "signing" and record.attempts == 0 and record.pdf_sha256 is None
        assert record.last_error is not None and record.last_error.startswith(
            "RevocationUnavailable: no current revocation information")
        monkeypatch.undo()  # the servers answer again
        assert issue_certificate(built, cert_id) is True
    finally:
        built.close()


def test_an_ordinary_failure_still_counts_towards_failed(runtime: Runtime) -> None:
    cert_id = approved(runtime)
    with runtime.sessions() as session, session.begin():  # a record the job cannot render
        session.execute(update(Certificate).where(Certificate.id == cert_id)
                        .values(cert_type="marriage"))
    with pytest.raises(Exception) as failed:
        issue_certificate(runtime, cert_id)
    assert not isinstance(failed.value, TsaUnavailable)
    assert record_of(runtime, cert_id).attempts == 1


def test_a_certificate_issued_over_http_carries_the_tsa_s_timestamp(
    tmp_path: Path, keys_dir: Path, tsa: tuple[SwitchableTsa, str], database_url: str,
) -> None:
    settings = make_settings(tmp_path, database_url, keys_dir, tsa_url=tsa[1])
    for live in serve(settings):
        created = live.post_json("/api/v1/certificates", sample("birth-2"))
        assert created.status_code == 202, created.text
        pdf = live.get(f"/api/v1/certificates/{created.json()['id']}/pdf")
        assert pdf.status_code == 200, pdf.text
        report = validate_pdf(pdf.content, [keys_dir / "root.crt"])
        assert report.ok and report.timestamp is not None
        path = tmp_path / "bt.pdf"
        path.write_bytes(pdf.content)
        output = pdfsig_report(path, keys_dir / "root.crt", tmp_path / "nss")
        assert "Signature is Valid" in output and "Certificate is Trusted" in output, output
        assert verify_pdf(live.runtime, pdf.content).current


@pytest.mark.parametrize("url, timeout", [("ftp://tsa.example", 10), ("tsa.example", 10),
                                          ("http://tsa.example", 0), ("http://tsa.example", 121)])
def test_the_tsa_settings_are_checked(tmp_path: Path, keys_dir: Path, url: str,
                                      timeout: int) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError, match="PRAMAAN_TSA_"):
        make_settings(tmp_path, "sqlite://", keys_dir, tsa_url=url, tsa_timeout=timeout)


@pytest.mark.parametrize("delay, environment, says", [
    (-1, "development", "must be 0-10000"), (10_001, "development", "must be 0-10000"),
    (100, "production", "never in production")])
def test_the_development_tsa_s_delay_is_checked(tmp_path: Path, keys_dir: Path, delay: int,
                                                environment: str, says: str) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError, match=f"PRAMAAN_DEV_TSA_DELAY_MS.*{says}"):
        make_settings(tmp_path, "sqlite://", keys_dir, dev_tsa_delay_ms=delay,
                      environment=environment, tsa_url=None,
                      verify_base_url="https://verify.pmc.example.in",
                      verify_base_url_configured=True)


def test_the_development_tsa_waits_as_a_distant_one_would(tmp_path: Path,
                                                          keys_dir: Path) -> None:
    import time

    settings = make_settings(tmp_path, "sqlite://", keys_dir, tsa_url="dev",
                             dev_tsa_delay_ms=150)
    built = Runtime(settings)
    try:
        started = time.monotonic()
        signed = built.keyring.pades_at("B-T").sign(minimal_pdf(), reason="r", location="l")
        assert time.monotonic() - started >= 0.15  # it waited (a lower bound, not a speed)
        assert validate_pdf(signed, list(built.trust.trust_root_paths)).timestamp is not None
    finally:
        built.close()


def _issued_pdf(runtime: Runtime) -> bytes:
    cert_id = approved(runtime)
    assert issue_certificate(runtime, cert_id) is True
    record = record_of(runtime, cert_id)
    assert record.pdf_path is not None and record.pdf_sha256 is not None
    return runtime.store.get(record.pdf_path, record.pdf_sha256)


@pytest.mark.parametrize("tsa_url, stamped", [(None, True), ("dev", True), ("none", False)])
def test_development_timestamps_with_its_own_tsa_unless_told_not_to(
    tmp_path: Path, sqlite_url: str, tsa_url: str | None, stamped: bool,
) -> None:
    # A keys folder of its own, made by `pramaan init` (the session's has served other TSAs).
    built = Runtime(make_settings(tmp_path, sqlite_url, tmp_path / "keys", tsa_url=tsa_url))
    try:
        initialise(built)
        report = validate_pdf(_issued_pdf(built), [tmp_path / "keys" / "root.crt"])
    finally:
        built.close()
    assert report.ok
    assert (report.timestamp is not None) is stamped


def test_init_gives_a_development_set_made_before_the_dev_tsa_its_tsa(
    tmp_path: Path, sqlite_url: str,
) -> None:
    keys = tmp_path / "keys"
    ensure_dev_pki(keys)
    for name in ("tsa.key", "tsa.crt", "tsa-ca.key", "tsa-ca.crt"):
        (keys / name).unlink()
    signer = (keys / "signer.crt").read_bytes()
    built = Runtime(make_settings(tmp_path, sqlite_url, keys))
    try:
        initialise(built)
        assert (keys / "tsa.key").exists() and (keys / "signer.crt").read_bytes() == signer
        assert validate_pdf(_issued_pdf(built), [keys / "root.crt"]).timestamp is not None
    finally:
        built.close()


def test_the_development_tsa_is_refused_in_production(tmp_path: Path, keys_dir: Path) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError, match="PRAMAAN_TSA_URL=dev: the development TSA is never"):
        make_settings(tmp_path, "sqlite://", keys_dir, tsa_url="dev", environment="production",
                      verify_base_url="https://verify.pmc.gov.in",
                      verify_base_url_configured=True)


@pytest.mark.parametrize("tsa_url, reserve, expected", [
    ("none", None, 16384), ("dev", None, 24576), ("http://tsa.example/", None, 24576),
    ("none", 40000, 40000)])
def test_the_signature_s_room_grows_with_a_timestamp_and_can_be_set(
    tmp_path: Path, keys_dir: Path, tsa_url: str, reserve: int | None, expected: int,
) -> None:
    from issuer.runtime import signer_config

    settings = make_settings(tmp_path, "sqlite://", keys_dir, tsa_url=tsa_url,
                             signature_reserve=reserve)
    assert signer_config(settings).bytes_reserved == expected


@pytest.mark.parametrize("reserve", [4095, 4097, 262146, 2048])
def test_a_signature_reserve_out_of_bounds_or_odd_is_refused(
    tmp_path: Path, keys_dir: Path, reserve: int
) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError, match="PRAMAAN_SIGNATURE_RESERVE must be an even number"):
        make_settings(tmp_path, "sqlite://", keys_dir, signature_reserve=reserve)


def _issued_as(runtime: Runtime, name: str) -> bytes:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "test:clerk", sample(name)).id
    assert issue_certificate(runtime, cert_id) is True
    record = record_of(runtime, cert_id)
    assert record.pdf_path is not None and record.pdf_sha256 is not None
    return runtime.store.get(record.pdf_path, record.pdf_sha256)


def test_each_certificate_type_is_signed_at_its_own_level(
    tmp_path: Path, sqlite_url: str, keys_dir: Path, tsa: tuple[SwitchableTsa, str],
) -> None:
    built = Runtime(make_settings(tmp_path, sqlite_url, keys_dir, tsa_url=tsa[1],
                                  signature_levels={"property_no_dues": "B-B"}))
    try:
        initialise(built)
        roots = [keys_dir / "root.crt"]
        birth = validate_pdf(_issued_as(built, "birth-1"), roots)  # not named: B-T (a TSA)
        no_dues = validate_pdf(_issued_as(built, "property-1"), roots)
    finally:
        built.close()
    assert birth.ok and birth.timestamp is not None
    assert no_dues.ok and no_dues.timestamp is None


@pytest.mark.parametrize("levels, tsa_url, message", [
    ({"birth": "B-LTB"}, None, "birth=B-LTB: the levels are B-B, B-T, B-LT, B-LTA"),
    ({"birth": "B-T"}, "none", "birth=B-T needs a TSA, and PRAMAAN_TSA_URL=none"),
    ({"birth": "B-LTA"}, "none", "birth=B-LTA needs a TSA, and PRAMAAN_TSA_URL=none"),
])
def test_signature_levels_are_checked_with_the_settings(
    tmp_path: Path, keys_dir: Path, levels: dict[str, str], tsa_url: str | None, message: str,
) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        make_settings(tmp_path, "sqlite://", keys_dir, signature_levels=levels, tsa_url=tsa_url)
    assert str(refused.value) == f"PRAMAAN_SIGNATURE_LEVELS: {message}"


def test_signature_levels_name_known_types_and_b_t_only_with_a_tsa(
    tmp_path: Path, sqlite_url: str, keys_dir: Path,
) -> None:
    from issuer.errors import ConfigError

    for levels, tsa_url, message in (
            ({"brith": "B-B"}, None, "no certificate type brith"),
            ({"birth": "B-T"}, None, "birth timestamped, but no TSA is configured"),
            ({"death": "B-LT"}, None, "death timestamped, but no TSA is configured")):
        built = Runtime(make_settings(tmp_path, sqlite_url, keys_dir, signature_levels=levels,
                                      tsa_url=tsa_url, environment="production",
                                      verify_base_url="https://verify.pmc.gov.in",
                                      verify_base_url_configured=True))
        try:
            with pytest.raises(ConfigError, match=message):
                built.keyring  # noqa: B018
        finally:
            built.close()


@pytest.mark.parametrize("reserve", [4096, 262144])
def test_a_signature_reserve_at_its_bounds_is_taken(tmp_path: Path, keys_dir: Path,
                                                    reserve: int) -> None:
    from issuer.runtime import signer_config

    settings = make_settings(tmp_path, "sqlite://", keys_dir, signature_reserve=reserve)
    assert signer_config(settings).bytes_reserved == reserve


def test_the_default_level_is_checked_and_used(tmp_path: Path, keys_dir: Path,
                                               sqlite_url: str) -> None:
    from issuer.errors import ConfigError

    with pytest.raises(ConfigError, match="PRAMAAN_SIGNATURE_LEVEL=B-X: the levels are"):
        make_settings(tmp_path, "sqlite://", keys_dir, signature_level="B-X")
    with pytest.raises(ConfigError, match="PRAMAAN_SIGNATURE_LEVEL=B-LT needs a TSA"):
        make_settings(tmp_path, "sqlite://", keys_dir, signature_level="B-LT", tsa_url="none")
    # Unset in development with the dev TSA: B-LTA; PRAMAAN_SIGNATURE_LEVELS still wins per type.
    built = Runtime(make_settings(tmp_path, sqlite_url, keys_dir, signature_level=None,
                                  signature_levels={"property_no_dues": "B-B"}))
    try:
        initialise(built)
        roots = [keys_dir / "root.crt"]
        assert validate_pdf(_issued_as(built, "birth-1"), roots).level == "B-LTA"
        assert validate_pdf(_issued_as(built, "property-1"), roots).level == "B-B"
    finally:
        built.close()
