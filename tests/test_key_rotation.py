"""Key rotation: new keys staged to take over at a given moment; certificates issued before a
rotation keep verifying after it (issue, rotate, issue, verify both, offline); a running
process switches on time; the old seal certificate stays trusted, the old private keys go."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from issuer.bootstrap import DEV_DEPARTMENT, initialise
from issuer.issue import issue_certificate
from issuer.models import AuditEvent, Certificate, Department
from issuer.runtime import Runtime
from issuer.submit import submit
from signing import rotation
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import KeyCertMismatch, KeyMaterialMissing, SigningError
from signing.seal import decode_seal
from signing.trust_store import TrustStore
from signing.validate import validate_pdf
from tests.conftest import SAMPLES, make_settings, sample

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keys(tmp_path: Path, pki: DevPki) -> Path:
    shutil.copytree(pki.keys_dir, tmp_path / "keys")
    return tmp_path / "keys"


def runtime_of(tmp_path: Path, keys: Path) -> Runtime:
    built = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", keys,
                                  tsa_url="none"))
    initialise(built)
    return built


def issue(runtime: Runtime, name: str) -> Certificate:
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "test:clerk", sample(name)).id
    assert issue_certificate(runtime, cert_id)
    with runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        return record


@pytest.fixture
def runtimes(tmp_path: Path, keys: Path) -> Iterator[list[Runtime]]:
    made: list[Runtime] = []
    yield made
    for runtime in made:
        runtime.close()


def stage(keys: Path, at: dt.datetime, source: Path | None = None,
          **changes: object) -> rotation.Pending:
    config = dataclasses.replace(SignerConfig.from_keys_dir(keys), **changes)  # type: ignore[arg-type]
    return rotation.stage(keys, at, source, config=config,
                          verify_base_url="http://127.0.0.1:8000")


def due(keys: Path) -> None:
    """Make the staged rotation due: its moment a second ago."""
    (keys / "next" / "activate-at").write_text(
        (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat())


def promote(keys: Path) -> bool:
    return rotation.promote(keys, config=SignerConfig.from_keys_dir(keys),
                            verify_base_url="http://127.0.0.1:8000")


def test_staged_keys_sign_from_their_moment_in_a_running_process(
    tmp_path: Path, keys: Path, runtimes: list[Runtime], monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtimes.append(runtime_of(tmp_path, keys))
    old_kid = runtimes[0].keyring.seal_kid
    moment = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(microsecond=0)
    staged = stage(keys, moment)
    assert staged.activate_at == moment and not staged.due()
    runtime = Runtime(runtimes[0].settings)  # a worker (re)started after the staging
    runtimes.append(runtime)
    keyring = runtime.keyring
    assert keyring.active().seal_kid == old_kid  # not yet
    assert keyring.active(moment - dt.timedelta(microseconds=1)).seal_kid == old_kid
    new_kid = keyring.active(moment).seal_kid  # from the moment itself
    assert new_kid != old_kid
    before = issue(runtime, "birth-1")
    # The same process, its clock past the moment: the issue job seals with the new key.
    import issuer.issue

    monkeypatch.setattr(issuer.issue, "utcnow", lambda: moment + dt.timedelta(seconds=1))
    after = issue(runtime, "birth-2")
    assert (before.seal_kid, after.seal_kid) == (old_kid.hex(), new_kid.hex())
    # Both verify, and the new seal is trusted already while only staged.
    from issuer.verify import verify_qr

    for record in (before, after):
        assert record.seal_text is not None
        assert verify_qr(runtime, record.seal_text).current


def test_issue_rotate_issue_and_both_verify_offline(tmp_path: Path, keys: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRAMAAN_", "DATABASE_URL", "REDIS_URL"))}
    env.update(PRAMAAN_HOME=str(tmp_path), PRAMAAN_KEYS_DIR=str(keys),
               PRAMAAN_TSA_URL="none")

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    assert pramaan("init").returncode == 0
    first = pramaan("issue", "--data", str(SAMPLES / "birth-1.json"), "--out",
                    str(tmp_path / "first.pdf"))
    assert first.returncode == 0, first.stderr
    old_seal = (keys / "seal.crt").read_bytes()
    old_signer_key = (keys / "signer.key").read_bytes()

    early = pramaan("keys", "promote")
    assert early.returncode == 1 and "nothing to promote: no rotation is staged" in early.stdout
    rotated = pramaan("keys", "rotate", "--actor", "ops")
    assert rotated.returncode == 0, rotated.stderr
    assert "Restart the web processes and the workers now" in rotated.stdout
    again = pramaan("keys", "rotate")
    assert again.returncode == 2 and "already staged" in again.stderr
    promoted = pramaan("keys", "promote", "--actor", "ops")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert not (keys / "next").exists()
    assert (keys / "seal.crt").read_bytes() != old_seal
    assert (keys / "signer.key").read_bytes() != old_signer_key  # the old private key is gone
    (retired,) = (keys / "seal-retired").glob("*.crt")
    assert retired.read_bytes() == old_seal
    assert len(list((keys / "signer-retired").glob("*.crt"))) == 1

    second = pramaan("issue", "--data", str(SAMPLES / "birth-2.json"), "--out",
                     str(tmp_path / "second.pdf"))
    assert second.returncode == 0, second.stderr
    kids = {decode_seal(validate_pdf((tmp_path / pdf).read_bytes(), [keys / "root.crt"])
                        .info["PramaanSeal"]).message.kid for pdf in ("first.pdf", "second.pdf")}
    assert len(kids) == 2  # sealed by the old key, then by the new
    for pdf in ("first.pdf", "second.pdf"):
        verified = pramaan("verify", str(tmp_path / pdf))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["current"] is True
    checked = pramaan("keys", "check")
    assert checked.returncode == 0, checked.stdout

    runtime = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'pramaan.db'}",
                                    keys))
    try:
        with runtime.sessions() as session:
            events = [(e.action, e.actor, set(e.details)) for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action.in_(("keys_rotate", "keys_promote")))
                .order_by(AuditEvent.seq))]
    finally:
        runtime.close()
    assert events == [("keys_rotate", "cli:ops", {"activate_at", "seal_kid", "signer_kid"}),
                      ("keys_promote", "cli:ops", {"activate_at"})]


def test_one_rotation_is_staged_at_a_time_and_promoted_only_when_due(keys: Path) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    stage(keys, later)
    with pytest.raises(SigningError) as refused:
        stage(keys, later + dt.timedelta(days=1))
    assert refused.value.code == "invalid_rotation"
    assert str(refused.value) == (f"a rotation is already staged for {later:%Y-%m-%d %H:%M:%S}"
                                  " UTC: `pramaan keys promote` it once that moment has passed")
    assert promote(keys) is False  # not due: nothing moves
    due(keys)
    staged_seal = (keys / "next" / "seal.crt").read_bytes()
    assert promote(keys) is True
    assert (keys / "seal.crt").read_bytes() == staged_seal
    stage(keys, later)  # now a new one may be staged


def test_a_promotion_cut_short_finishes_when_run_again(keys: Path) -> None:
    old_seal = (keys / "seal.crt").read_bytes()
    stage(keys, dt.datetime.now(dt.UTC))
    new_seal = (keys / "next" / "seal.crt").read_bytes()
    # A crash after the seal half was done (old certificate kept, new files moved), before
    # the signer's: what promote had done by then, done here by hand.
    (keys / "seal-retired").mkdir(exist_ok=True)
    shutil.copy(keys / "seal.crt", keys / "seal-retired" / "old.crt")
    for name in ("seal.key", "seal.crt"):
        os.replace(keys / "next" / name, keys / name)
    # Meanwhile verification works: the half-moved set is not taken for a pending one.
    assert SignerConfig.from_keys_dir(keys).pending_dir is None
    assert TrustStore.from_config(SignerConfig.from_keys_dir(keys)).seal_trust
    assert promote(keys) is True
    assert (keys / "seal.crt").read_bytes() == new_seal != old_seal
    assert not (keys / "next").exists()
    # The new seal is not retired as well; the old one stays, once.
    assert [p.read_bytes() for p in (keys / "seal-retired").iterdir()] == [old_seal]
    assert len(list((keys / "signer-retired").glob("*.crt"))) == 1


def test_what_cannot_be_rotated_is_refused_before_anything_is_staged(
    keys: Path, tmp_path: Path, stranger: DevPki
) -> None:
    now = dt.datetime.now(dt.UTC)
    pkcs11 = ("keys in a PKCS#11 token are not rotated here: install the new key and "
              "certificate in place")
    for when, changes, says in ((dt.datetime(2030, 1, 1), {}, "the activation time needs a "
                                 "time zone"),
                                (now, {"backend": "pkcs11"}, pkcs11),
                                (now, {"pkcs11_seal_key_label": "seal"}, pkcs11)):
        with pytest.raises(SigningError) as refused:
            stage(keys, when, **changes)
        assert (str(refused.value), refused.value.code) == (says, "invalid_rotation")
    # Key files elsewhere (PRAMAAN_SIGNER_KEY_FILE, PRAMAAN_SEAL_KEY_FILE): a promotion would
    # leave them signing.
    for field, name in (("key_path", "signer.key"), ("seal_key_path", "seal.key")):
        elsewhere = tmp_path / "elsewhere" / name
        with pytest.raises(SigningError) as refused:
            stage(keys, now, **{field: elsewhere})
        assert (str(refused.value), refused.value.code) == (
            f"a rotation replaces {keys / name}, but the key in use is {elsewhere}: install the "
            "new key file in its place instead", "invalid_rotation")
    new = tmp_path / "new"
    new.mkdir()
    (new / "seal.crt").write_bytes(b"x")
    with pytest.raises(KeyMaterialMissing, match=r"lack signer\.key, signer\.crt, seal\.key"):
        stage(keys, now, new)
    # A set whose signer key is not its certificate's, or whose signer is another root's.
    for name in ("signer.key", "signer.crt", "seal.key", "seal.crt"):
        shutil.copy(keys / name, new / name)
    shutil.copy(stranger.signer_key, new / "signer.key")
    with pytest.raises(KeyCertMismatch):
        stage(keys, now, new)
    shutil.copy(stranger.signer_cert, new / "signer.crt")
    with pytest.raises(SigningError) as untrusted:
        stage(keys, now, new)
    assert untrusted.value.code == "signer_untrusted"
    (keys / "ca.key").unlink()
    with pytest.raises(KeyMaterialMissing, match="no development CA key"):
        stage(keys, now)
    assert not (keys / "next").exists()
    assert not [p for p in keys.iterdir() if p.name.startswith(".next-")]  # no leftovers


def test_keys_check_loads_a_staged_rotation_too(keys: Path, stranger: DevPki) -> None:
    from signing.key_check import check_keys

    stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    named = {c.name: c for c in check_keys(SignerConfig.from_keys_dir(keys))}
    assert named["staged rotation"].ok and named["staged rotation"].detail == "loads and checks"
    assert named["trust store"].detail.startswith("2 seal certificate(s) trusted")
    shutil.copy(stranger.seal_key, keys / "next" / "seal.key")  # damaged after staging
    named = {c.name: c for c in check_keys(SignerConfig.from_keys_dir(keys))}
    assert not named["staged rotation"].ok
    assert named["staged rotation"].detail.endswith("[key_cert_mismatch]")


def test_a_staged_set_damaged_since_is_not_promoted(keys: Path, stranger: DevPki) -> None:
    stage(keys, dt.datetime.now(dt.UTC))
    shutil.copy(stranger.seal_key, keys / "next" / "seal.key")
    current = {name: (keys / name).read_bytes() for name in rotation.ROTATED_FILES}
    with pytest.raises(KeyCertMismatch):
        promote(keys)
    assert {name: (keys / name).read_bytes() for name in rotation.ROTATED_FILES} == current


def test_new_certificates_must_be_valid_when_they_take_over(keys: Path) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=6 * 365)  # past a 5-year certificate
    with pytest.raises(SigningError, match="not at the moment it takes over") as refused:
        stage(keys, later)
    assert refused.value.code == "invalid_rotation"
    assert not (keys / "next").exists()
    staged = stage(keys, dt.datetime(2026, 12, 2, 10, 0, 0, 999_999, tzinfo=dt.UTC)
                   .replace(year=dt.datetime.now(dt.UTC).year + 1))
    assert staged.activate_at.microsecond == 0  # whole seconds, as seals' issue times


def test_a_garbled_activation_time_is_refused_by_name(keys: Path) -> None:
    stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    moment = keys / "next" / "activate-at"
    for text, why in (("next tuesday", "is not an ISO 8601 time"),
                      ("2030-01-01T00:00:00", "has no time zone")):
        moment.write_text(text)
        with pytest.raises(KeyMaterialMissing) as refused:
            rotation.pending(keys)
        assert str(refused.value) == f"{moment} {why}"
    # ASCII only: read as UTF-8, this would be a time (any one character may part the date
    # from the time in ISO 8601 as Python reads it).
    moment.write_text("2030-01-01\u00e900:00:00+00:00", encoding="utf-8")
    with pytest.raises(ValueError):
        rotation.pending(keys)


def test_a_retired_seal_key_vouches_for_nothing_sealed_after_it_stopped_signing(
        keys: Path) -> None:
    # Its trust list window ends at the rotation's moment (while staged, and once promoted),
    # not at its certificate's expiry: a stolen old key cannot make new seals that verify.
    from signing.seal import Sealer, SealKey, verify_seal

    old = SealKey.load(keys / "seal.key", keys / "seal.crt")
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    stage(keys, moment)

    def entry_of_old() -> dt.datetime:
        trust = TrustStore.from_config(SignerConfig.from_keys_dir(keys)).seal_trust
        (entry,) = trust.keys_for(old.kid)
        return entry.not_after

    assert entry_of_old() == moment  # staged: the current key signs until then
    retired = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    (keys / "next" / "activate-at").write_text(retired.isoformat())  # now due
    assert promote(keys) is True
    assert entry_of_old() == retired
    (marker,) = (keys / "seal-retired").glob("*.retired-at")
    assert marker.name == f"{old.kid.hex()}.retired-at"
    trust = TrustStore.from_config(SignerConfig.from_keys_dir(keys)).seal_trust
    sealer = Sealer(old, "http://127.0.0.1:8000")
    before = sealer.seal({1: "x", 6: int(retired.timestamp()) - 60})
    after = sealer.seal({1: "x", 6: int(retired.timestamp()) + 60})
    assert verify_seal(before, trust).ok
    assert verify_seal(after, trust).reason == "outside_window"
    marker.write_text("yesterday")
    with pytest.raises(SigningError, match="does not hold an ISO 8601 time"):
        TrustStore.from_config(SignerConfig.from_keys_dir(keys))


def test_times_are_kept_in_utc_whatever_the_machines_zone(keys: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
        moment = (dt.datetime.now(ist) + dt.timedelta(days=1)).replace(microsecond=0)
        too_late = moment + dt.timedelta(days=6 * 365)  # past the new certificates
        with pytest.raises(SigningError) as refused:
            stage(keys, too_late)
        assert str(refused.value).endswith(f"({too_late.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC)")
        staged = stage(keys, moment)
        assert staged.activate_at.utcoffset() == dt.timedelta(0) and staged.activate_at == moment
        text = (keys / "next" / "activate-at").read_text()
        assert text == moment.astimezone(dt.UTC).isoformat() and text.endswith("+00:00")
        assert rotation.pending(keys) == staged
        (keys / "next" / "activate-at").write_text(
            (dt.datetime.now(ist) - dt.timedelta(seconds=1)).isoformat())
        assert rotation.pending(keys).activate_at.utcoffset() == dt.timedelta(0)  # type: ignore[union-attr]
        assert promote(keys) is True
        for kind in ("seal", "signer"):
            (marker,) = (keys / f"{kind}-retired").glob(f"*{rotation.RETIRED_AT_SUFFIX}")
            assert marker.read_text().endswith("+00:00")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_retired_at_marker_is_read_exactly(keys: Path) -> None:
    cert = keys / "seal-retired" / "k.crt"
    cert.parent.mkdir(exist_ok=True)
    marker = cert.with_suffix(rotation.RETIRED_AT_SUFFIX)
    assert rotation.retired_at(cert) is None
    marker.write_text("2030-01-01T00:00:00+05:30\n")
    assert rotation.retired_at(cert) == dt.datetime(2029, 12, 31, 18, 30, tzinfo=dt.UTC)
    for text, says in (("soon", f"{marker} does not hold an ISO 8601 time"),
                       ("2030-01-01T00:00:00", f"{marker} names no time zone")):
        marker.write_text(text)
        with pytest.raises(SigningError) as refused:
            rotation.retired_at(cert)
        assert (str(refused.value), refused.value.code) == (says, "invalid_rotation")


def test_new_certificates_are_taken_from_their_first_moment_to_before_their_last(
        keys: Path, tmp_path: Path, pki: DevPki) -> None:
    from cryptography import x509

    source = tmp_path / "new"
    source.mkdir()
    for name in ("signer.key", "signer.crt", "seal.key", "seal.crt"):
        shutil.copy(keys / name, source / name)
    bounds = [x509.load_pem_x509_certificate((source / f"{kind}.crt").read_bytes())
              for kind in ("seal", "signer")]
    first = max(c.not_valid_before_utc for c in bounds)
    last = min(c.not_valid_after_utc for c in bounds)
    with pytest.raises(SigningError, match="not at the moment it takes over"):
        stage(keys, last, source)
    assert stage(keys, first, source).activate_at == first


def test_keys_are_staged_beside_the_keys_not_in_the_temporary_folder(
        keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The temporary folder is often another file system (tmpfs) than keys/: a set staged
    # there could not be moved into keys/next in one rename.
    import tempfile

    elsewhere = Path("/dev/shm")
    assert elsewhere.is_dir() and os.stat(elsewhere).st_dev != os.stat(keys).st_dev
    before = set(elsewhere.iterdir())
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert (keys / "next" / "seal.crt").exists() and set(elsewhere.iterdir()) == before
    assert not [p for p in keys.iterdir() if p.name.startswith(".next-")]


def test_a_staged_private_key_is_never_readable_by_others_even_for_a_moment(
        keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each file is created with its final mode: a key file opened by another user in the
    # moment before a later chmod could be read once the key is written.
    created: dict[str, int] = {}
    chmod = os.fchmod

    def watched(fd: int, mode: int) -> None:
        created[os.readlink(f"/proc/self/fd/{fd}")] = os.fstat(fd).st_mode & 0o777
        chmod(fd, mode)

    monkeypatch.setattr(os, "fchmod", watched)
    old_umask = os.umask(0)
    try:
        stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    finally:
        os.umask(old_umask)
    keys_made = {Path(p).name: m for p, m in created.items() if p.endswith(".key")}
    assert keys_made == {"signer.key": 0o600, "seal.key": 0o600}
    # The certificates and the moment are public: readable by the verifying processes.
    assert {p.name: p.stat().st_mode & 0o777 for p in (keys / "next").iterdir()} == {
        "signer.key": 0o600, "seal.key": 0o600, "signer.crt": 0o644, "seal.crt": 0o644,
        "activate-at": 0o644}


def test_two_rotations_in_a_row_each_retire_their_predecessor(keys: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    for _ in range(2):
        old = x509.load_pem_x509_certificate((keys / "signer.crt").read_bytes())
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        signer = x509.load_pem_x509_certificate((keys / "next" / "signer.crt").read_bytes())
        # Valid from five minutes back (a verifier's clock a little behind), as long as the old.
        skew = dt.timedelta(minutes=5)
        assert started - skew <= signer.not_valid_before_utc <= dt.datetime.now(dt.UTC) - skew
        assert (signer.not_valid_after_utc - signer.not_valid_before_utc
                == old.not_valid_after_utc - old.not_valid_before_utc + skew)
        key = signer.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        identifier = signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert not identifier.critical  # RFC 5280: never critical
        assert identifier.value == x509.SubjectKeyIdentifier.from_public_key(key)
        due(keys)
        assert promote(keys) is True
    for kind in ("seal", "signer"):
        markers = sorted((keys / f"{kind}-retired").glob(f"*{rotation.RETIRED_AT_SUFFIX}"))
        assert len(markers) == 2 and len(list((keys / f"{kind}-retired").glob("*.crt"))) == 2
        for marker in markers:
            assert marker.stat().st_mode & 0o777 == 0o644
            assert marker.read_text().endswith("+00:00")


def test_without_a_development_ca_the_message_says_what_to_give(keys: Path) -> None:
    (keys / "ca.key").unlink()
    with pytest.raises(KeyMaterialMissing) as refused:
        stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert str(refused.value) == (f"no development CA key in {keys}: give the new keys with "
                                  "--from DIR (signer.key, signer.crt, seal.key, seal.crt from "
                                  "your CA)")


def test_a_staged_rotation_is_due_from_its_moment_itself(tmp_path: Path) -> None:
    moment = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    staged = rotation.Pending(tmp_path / "next", moment)
    assert staged.due(moment) and staged.due(moment + dt.timedelta(microseconds=1))
    assert not staged.due(moment - dt.timedelta(microseconds=1))


def test_a_development_ca_key_that_is_not_rsa_is_refused_by_name(keys: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (keys / "ca.key").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(KeyMaterialMissing) as refused:
        stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert str(refused.value) == f"the dev CA key {keys / 'ca.key'} is not an RSA key"
    assert not (keys / "next").exists()


def test_a_failed_staging_reports_its_own_error_even_when_its_folder_is_already_gone(
        keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clean-up of the half-made folder never hides why the staging failed: here the final
    # move fails (an I/O error) with the folder gone already, so removing it fails too.
    import errno

    move = os.replace

    def failing(source: Path, target: Path) -> None:
        if Path(target).name != rotation.NEXT_DIR:
            move(source, target)
            return
        shutil.rmtree(source)
        raise OSError(errno.EIO, "Input/output error", str(target))

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError) as failed:
        stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert failed.value.errno == errno.EIO
    assert not (keys / "next").exists()
    assert not [p for p in keys.iterdir() if p.name.startswith(".next-")]


def test_the_staged_keys_accept_the_seals_of_the_key_they_retire(keys: Path) -> None:
    from signing.keyring import Keyring
    from signing.seal import verify_seal

    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    stage(keys, moment)
    keyring = Keyring.from_config(SignerConfig.from_keys_dir(keys),
                                  verify_base_url="http://127.0.0.1:8000")
    try:
        successor = keyring.active(moment)
        assert successor is keyring.pending
        assert [e.kid for e in successor.seal_trust.entries] == [successor.seal_kid,
                                                                 keyring.seal_kid]
        sealed = keyring.sealer.seal({1: "x", 6: int(moment.timestamp()) - 60})
        assert verify_seal(sealed, successor.seal_trust).ok
    finally:
        keyring.close()


def test_an_unreadable_staged_seal_certificate_is_refused_by_name(keys: Path) -> None:
    stage(keys, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    (keys / "next" / "seal.crt").write_text("not a certificate\n")
    with pytest.raises(KeyMaterialMissing,
                       match=r"^staged seal certificate \S+ holds no valid PEM certificate$"):
        TrustStore.from_config(SignerConfig.from_keys_dir(keys))
