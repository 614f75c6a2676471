"""`pramaan ltv refresh`: an archival document timestamp for B-LTA certificates whose newest
timestamp's TSA certificate nears expiry, from a TSA whose certificate lasts longer. The new file
becomes the current one, the old one stays in the store and keeps verifying, and each round is
audited. Real dev PKI, real signing, SQLite."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from issuer.bootstrap import initialise
from issuer.ltv import refresh
from issuer.models import AuditEvent, Certificate, PdfRevision
from issuer.runtime import Runtime
from issuer.verify import verify_pdf
from signing.archival import DEFAULT_HORIZON, Due, is_due, newest_timestamp_expiry
from signing.devpki import DevPki, ensure_dev_pki
from signing.sample_pdf import minimal_pdf
from signing.validate import validate_pdf
from tests.conftest import make_settings
from tests.test_issue_timestamped import _issued_as

YEAR = dt.timedelta(days=365)


def tsa_identity(keys: DevPki, start: dt.datetime,
                 years: float) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new key and certificate for the dev TSA, under its CA, valid from `start` for
    `years`: what a TSA does before its certificate expires."""
    old = x509.load_pem_x509_certificate(keys.tsa_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(keys.tsa_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(keys.tsa_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start - dt.timedelta(minutes=5))
               .not_valid_after(start + years * YEAR))
    for extension in old.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectKeyIdentifier):
            value = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(value, extension.critical)
    return key, builder.sign(ca_key, hashes.SHA256())


def renew_tsa(keys: DevPki, years: int) -> None:
    """Install a new TSA key and certificate lasting `years` from now in the keys folder."""
    key, cert = tsa_identity(keys, dt.datetime.now(dt.UTC), years)
    keys.tsa_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keys.tsa_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def runtime_of(home: Path, keys: Path) -> Runtime:
    built = Runtime(make_settings(home, f"sqlite:///{home / 'db.sqlite'}", keys, tsa_url="dev",
                                  signature_levels={"birth": "B-LTA"}))
    initialise(built)
    return built


def record(runtime: Runtime, cert_id: str) -> Certificate:
    with runtime.sessions() as session:
        found = session.get(Certificate, cert_id)
        assert found is not None
        return found


@pytest.fixture
def keys(tmp_path: Path) -> DevPki:
    return ensure_dev_pki(tmp_path / "keys")


def test_a_round_is_added_only_when_due_and_only_with_a_longer_lasting_tsa(
        tmp_path: Path, keys: DevPki) -> None:
    first = runtime_of(tmp_path, keys.keys_dir)
    try:
        original = _issued_as(first, "birth-1")
        cert_id = first.sessions().scalars(select(Certificate.id)).one()
        # The dev TSA's certificate lasts ten years: not due within a year.
        with first.sessions() as session:
            signed = session.scalars(select(AuditEvent).where(AuditEvent.action == "sign")).one()
        assert signed.details["level"] == "PAdES-B-LTA"  # what was signed, as configured
        report = refresh(first)
        assert report.refreshed == [] and "beyond the horizon" in report.skipped[cert_id]
        # Due within eleven years, but the same TSA certificate would gain nothing.
        report = refresh(first, horizon=11 * YEAR)
        assert report.refreshed == [] and "renew the TSA first" in report.skipped[cert_id]
    finally:
        first.close()

    first_tsa = x509.load_pem_x509_certificate(keys.tsa_cert.read_bytes())
    renew_tsa(keys, years=12)
    second = runtime_of(tmp_path, keys.keys_dir)
    try:
        report = refresh(second, horizon=11 * YEAR)
        assert report.refreshed == [cert_id] and report.failed == {}
        after = record(second, cert_id)
        assert after.pdf_path is not None and after.pdf_sha256 is not None
        refreshed = second.store.get(after.pdf_path, after.pdf_sha256)
        assert refreshed.startswith(original) and len(refreshed) > len(original)
        reader = PdfFileReader(BytesIO(refreshed))
        assert len(reader.embedded_timestamp_signatures) == 2
        assert validate_pdf(refreshed, [keys.root_cert]).level == "B-LTA"
        # Both the new file and the copy the citizen already had verify as current.
        assert verify_pdf(second, refreshed).current
        assert verify_pdf(second, original).current
        with second.sessions() as session:
            kept = session.scalars(select(PdfRevision)).one()
            event = session.scalars(select(AuditEvent).where(
                AuditEvent.action == "ltv_refresh")).one()
        assert (kept.certificate_id, kept.sha256) == (cert_id, _sha(original))
        assert second.store.get(kept.path, kept.sha256) == original
        assert event.certificate_id == cert_id and event.details["after"] == after.pdf_sha256
        # The new timestamp holds for twelve years: nothing is due again.
        again = refresh(second, horizon=11 * YEAR)
        assert again.refreshed == [] and "beyond the horizon" in again.skipped[cert_id]
        # As of nine and a half years on, with the service's current CRLs and OCSP answers.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=int(9.5 * 365))
        assert validate_pdf(refreshed, [keys.root_cert], at=later,
                            fresh_revinfo=second.fresh_revinfo).ok
        # After the first TSA certificate has expired, only the refreshed file holds.
        past = first_tsa.not_valid_after_utc + dt.timedelta(days=30)
        assert validate_pdf(refreshed, [keys.root_cert], at=past,
                            fresh_revinfo=second.fresh_revinfo).ok
        assert validate_pdf(original, [keys.root_cert], at=past,
                            fresh_revinfo=second.fresh_revinfo).reason == "untrusted"
    finally:
        second.close()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_file_that_is_not_the_issued_one_or_an_earlier_revision_is_refused(
        tmp_path: Path, keys: DevPki) -> None:
    built = runtime_of(tmp_path, keys.keys_dir)
    try:
        pdf = _issued_as(built, "birth-1")
        # The same certificate, signed again by our key but never issued as such: a revision
        # only counts when it was recorded.
        cert_id = built.sessions().scalars(select(Certificate.id)).one()
        with built.sessions() as session, session.begin():
            session.add(PdfRevision(certificate_id=cert_id, sha256="0" * 64, path="x",
                                    replaced_at=dt.datetime.now(dt.UTC)))
        assert verify_pdf(built, pdf).current
        resigned = built.keyring.pades_at("B-B").sign(
            _unsigned_copy(pdf), reason="r", location="l",
            info={"PramaanSeal": record(built, cert_id).seal_text or ""})
        verdict = verify_pdf(built, resigned).as_dict()
        assert verdict["genuine"] is False and verdict["reason"] == (
            "issued_file: not_the_issued_file")
    finally:
        built.close()


def _unsigned_copy(pdf: bytes) -> bytes:
    # The first revision: the rendered page before anything was signed.
    reader = PdfFileReader(BytesIO(pdf))
    start = reader.embedded_regular_signatures[0].byte_range[1]
    head = pdf[:start]
    return head[:head.rindex(b"%%EOF") + 5] + b"\n" if b"%%EOF" in head else pdf


def test_pramaan_ltv_refresh_reports_what_it_did(tmp_path: Path, keys: DevPki) -> None:
    import os

    built = runtime_of(tmp_path, keys.keys_dir)
    try:
        _issued_as(built, "birth-1")
    finally:
        built.close()
    shutil.copytree(keys.keys_dir, tmp_path / "keys-copy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRAMAAN_", "DATABASE_"))}
    env.update(PRAMAAN_HOME=str(tmp_path), PRAMAAN_KEYS_DIR=str(keys.keys_dir),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
               PRAMAAN_STORE_DIR=str(tmp_path / "var" / "store"),
               PRAMAAN_SIGNATURE_LEVELS="birth=B-LTA")
    done = subprocess.run([sys.executable, "-m", "cli", "ltv", "refresh"], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert '"refreshed": []' in done.stdout and "beyond the horizon" in done.stdout


def test_one_unreadable_file_is_reported_and_the_others_are_refreshed(
        tmp_path: Path, keys: DevPki) -> None:
    first = runtime_of(tmp_path, keys.keys_dir)
    try:
        _issued_as(first, "birth-1")
        _issued_as(first, "birth-2")
    finally:
        first.close()
    renew_tsa(keys, years=12)
    second = runtime_of(tmp_path, keys.keys_dir)
    try:
        with second.sessions() as session:
            damaged, intact = list(session.scalars(select(Certificate).order_by(Certificate.id)))
        assert damaged.pdf_path is not None
        path = second.store.root / damaged.pdf_path
        path.write_bytes(path.read_bytes()[:-10])  # no longer its recorded SHA-256
        report = refresh(second, horizon=11 * YEAR)
        assert list(report.failed) == [damaged.id] and "SHA-256" in report.failed[damaged.id]
        assert report.refreshed == [intact.id]
    finally:
        second.close()


def test_a_round_is_due_from_the_horizon_on_and_only_with_a_longer_lasting_tsa(
        tmp_path: Path, keys: DevPki) -> None:
    runtime = runtime_of(tmp_path, keys.keys_dir)
    try:
        pdf = _issued_as(runtime, "birth-1")
    finally:
        runtime.close()
    tsa = x509.load_pem_x509_certificate(keys.tsa_cert.read_bytes())
    expires = newest_timestamp_expiry(pdf)
    assert expires == tsa.not_valid_after_utc
    second = dt.timedelta(seconds=1)
    later = tsa_identity(keys, expires + second - YEAR, 1)[1]  # lasts one second longer
    assert later.not_valid_after_utc == expires + second
    due = Due(True, "its newest timestamp's TSA certificate expires within the horizon", expires)
    early = Due(False, "its newest timestamp holds beyond the horizon", expires)
    for horizon in (dt.timedelta(days=30), DEFAULT_HORIZON):
        assert is_due(pdf, later, expires - horizon, horizon) == due  # from the horizon on
        assert is_due(pdf, later, expires - horizon - second, horizon) == early
    assert is_due(pdf, later, expires - DEFAULT_HORIZON) == due  # the default horizon
    assert is_due(pdf, later, expires - DEFAULT_HORIZON - second) == early
    # The same TSA certificate (or one expiring no later) would gain nothing.
    assert is_due(pdf, tsa, expires, DEFAULT_HORIZON) == Due(
        False, "the TSA's certificate expires no later than the newest timestamp's: renew the "
        "TSA first", expires)
    # A file without a document timestamp has nothing to refresh.
    assert is_due(minimal_pdf(), later, expires) == Due(False, "no document timestamp (not B-LTA)")
    assert newest_timestamp_expiry(minimal_pdf()) is None


def test_a_stored_file_is_read_leniently_as_the_round_reads_it() -> None:
    from pyhanko.pdf_utils.misc import PdfReadError

    # An xref table larger than the trailer's /Size: a strict reader refuses the file.
    pdf = minimal_pdf().replace(b"/Size 4 /Root", b"/Size 3 /Root")
    with pytest.raises(PdfReadError, match="Xref table size mismatch"):
        PdfFileReader(BytesIO(pdf))
    assert newest_timestamp_expiry(pdf) is None  # read, not refused: nothing to refresh
