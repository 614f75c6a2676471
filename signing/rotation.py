"""Key rotation: a new seal key and document-signer certificate staged in keys/next/ with the
moment they take over; until then the current ones sign, from then the new ones do, and the old
seal certificate stays trusted (verify-only) forever, since certificates issued before the
rotation must keep verifying.

`pramaan keys rotate` stages (a development set is made from the dev CA; production keys come
from a folder the operator gives), checking the new set as a keyring would first; once the
moment has passed, `pramaan keys promote` makes it current: the new files take the current
names, the old seal certificate moves to keys/seal-retired/ and the old signer certificate to
keys/signer-retired/, and the old private keys are deleted (verify-only keys need none). Every
process that loads its keys after the staging holds both sets and picks by the clock
(`Keyring.active`), so it switches at the moment without another restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import KeyMaterialMissing, SigningError
from signing.trust_list import kid_for

NEXT_DIR: Final = "next"
ACTIVATE_AT: Final = "activate-at"
ROTATED_FILES: Final = ("signer.key", "signer.crt", "seal.key", "seal.crt")


@dataclass(frozen=True)
class Pending:
    """A staged rotation: its folder and the moment its keys take over."""

    directory: Path
    activate_at: dt.datetime

    def due(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) >= self.activate_at


def pending(keys_dir: Path) -> Pending | None:
    """The rotation staged in `keys_dir`, if any."""
    directory = keys_dir / NEXT_DIR
    try:
        # equivalent, next line: codec names ignore case ("ASCII" is the same codec)
        text = (directory / ACTIVATE_AT).read_text(encoding="ascii").strip()  # equivalent
    except FileNotFoundError:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise KeyMaterialMissing(f"{directory / ACTIVATE_AT} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise KeyMaterialMissing(f"{directory / ACTIVATE_AT} has no time zone")
    return Pending(directory, moment.astimezone(dt.UTC))


def stage(keys_dir: Path, activate_at: dt.datetime, source: Path | None = None, *,
          config: SignerConfig, verify_base_url: str) -> Pending:
    """Stage new keys in keys/next/ taking over at `activate_at`: copied from `source` (the
    four files signer.key, signer.crt, seal.key, seal.crt) or, without it, made from the
    development CA of `keys_dir`. They are loaded and checked as a keyring would (key and
    certificate match, usages, validity now, chain to the roots) before anything is written.
    Refused while another rotation is staged (`promote` it first) and for keys in a PKCS#11
    token (replace those in place)."""
    if activate_at.tzinfo is None:
        raise SigningError("the activation time needs a time zone", code="invalid_rotation")
    # Whole seconds, as seals' issue times are: the seal and the PDF signature of one
    # certificate never straddle the switch.
    activate_at = activate_at.astimezone(dt.UTC).replace(microsecond=0)
    require_rotatable(config, keys_dir)
    with _locked(keys_dir):
        waiting = pending(keys_dir)
        if waiting is not None:
            when = f"{waiting.activate_at:%Y-%m-%d %H:%M:%S}"
            raise SigningError(f"a rotation is already staged for {when} UTC: "
                               "`pramaan keys promote` it once that moment has passed",
                               code="invalid_rotation")
        files = _copied(source) if source is not None else _made_from_dev_ca(keys_dir)
        # Beside keys/next (one rename, one file system); the name only tells a person what a
        # folder left by a crash was.
        staging = Path(tempfile.mkdtemp(
            prefix=".next-",  # equivalent: another prefix (nothing reads the name)
            dir=keys_dir))
        try:
            for name, data in files.items():
                _write(staging / name, data, 0o600 if name.endswith(".key") else 0o644)
            _check(staging, config, verify_base_url, activate_at)
            _write(staging / ACTIVATE_AT, activate_at.astimezone(dt.UTC).isoformat().encode(),
                   0o644)
            os.replace(staging, keys_dir / NEXT_DIR)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    staged = pending(keys_dir)
    assert staged is not None
    return staged


def require_rotatable(config: SignerConfig, keys_dir: Path) -> None:
    """Raise `SigningError` ("invalid_rotation") unless the keys are the files a rotation
    replaces, keys/signer.key and keys/seal.key: not keys in a PKCS#11 token, nor key files
    elsewhere (PRAMAAN_SIGNER_KEY_FILE, PRAMAAN_SEAL_KEY_FILE), which a promotion would leave
    signing on."""
    if config.backend != "file" or config.pkcs11_seal_key_label:
        raise SigningError("keys in a PKCS#11 token are not rotated here: install the new key "
                           "and certificate in place", code="invalid_rotation")
    for path, name in ((config.key_path, "signer.key"), (config.seal_key_path, "seal.key")):
        if path.resolve() != (keys_dir / name).resolve():
            raise SigningError(f"a rotation replaces {keys_dir / name}, but the key in use is "
                               f"{path}: install the new key file in its place instead",
                               code="invalid_rotation")


RETIRED_AT_SUFFIX = ".retired-at"
"""Beside a retired certificate `<kid>.crt`: when it stopped signing (ISO 8601, UTC)."""


def retired_at(cert_path: Path) -> dt.datetime | None:
    """When the retired certificate at `cert_path` stopped signing, if that was recorded."""
    marker = cert_path.with_suffix(RETIRED_AT_SUFFIX)
    if not marker.exists():
        return None
    try:
        moment = dt.datetime.fromisoformat(marker.read_text().strip())
    except ValueError as exc:
        raise SigningError(f"{marker} does not hold an ISO 8601 time",
                           code="invalid_rotation") from exc
    if moment.tzinfo is None:
        raise SigningError(f"{marker} names no time zone", code="invalid_rotation")
    return moment


def promote(keys_dir: Path, *, config: SignerConfig, verify_base_url: str) -> bool:
    """Make a due rotation the current keys (see the module's text). False if none is due.

    The staged set is checked again first (it may have been damaged since), because the move
    deletes the old private keys. Safe to run again after a crash: each step is skipped once
    done, and the folder goes last."""
    with _locked(keys_dir):
        waiting = pending(keys_dir)
        if waiting is None or not waiting.due():
            return False
        if all((waiting.directory / name).exists() for name in ROTATED_FILES):
            _check(waiting.directory, config, verify_base_url, waiting.activate_at)
        for kind in ("seal", "signer"):
            if (waiting.directory / f"{kind}.crt").exists():  # not yet moved
                old = keys_dir / f"{kind}.crt"
                retired = keys_dir / f"{kind}-retired"
                retired.mkdir(exist_ok=True)
                kid = kid_for(x509.load_pem_x509_certificate(old.read_bytes()).public_bytes(
                    serialization.Encoding.DER)).hex()
                # The moment it stopped signing, first: a retired key vouches for no seal made
                # after it (its window in the trust list ends here, not at its expiry).
                _write(retired / f"{kid}{RETIRED_AT_SUFFIX}",
                       waiting.activate_at.astimezone(dt.UTC).isoformat().encode(), 0o644)
                shutil.copy2(old, retired / f"{kid}.crt")
            for name in (f"{kind}.key", f"{kind}.crt"):
                if (waiting.directory / name).exists():
                    os.replace(waiting.directory / name, keys_dir / name)
        shutil.rmtree(waiting.directory)
    return True


def _check(folder: Path, config: SignerConfig, verify_base_url: str,
           activate_at: dt.datetime) -> None:
    from signing.keyring import Keyring

    for kind in ("seal", "signer"):
        cert = x509.load_pem_x509_certificate((folder / f"{kind}.crt").read_bytes())
        if not cert.not_valid_before_utc <= activate_at < cert.not_valid_after_utc:
            raise SigningError(
                f"the new {kind} certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d}, not at the moment it takes over "
                f"({activate_at:%Y-%m-%d %H:%M:%S} UTC)", code="invalid_rotation")
    candidate = replace(config, key_path=folder / "signer.key", cert_path=folder / "signer.crt",
                        seal_key_path=folder / "seal.key", seal_cert_path=folder / "seal.crt",
                        # equivalent: none is pending while staging, and the TSA is not
                        # rotated (loading it too only takes longer)
                        pending_dir=None, tsa_url=None, dev_tsa=False)  # equivalent
    Keyring.from_config(candidate, verify_base_url=verify_base_url).close()


@contextlib.contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    fd = os.open(keys_dir / ".rotation.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _copied(source: Path) -> dict[str, bytes]:
    missing = [name for name in ROTATED_FILES if not (source / name).exists()]
    if missing:
        raise KeyMaterialMissing(f"the new keys in {source} lack {', '.join(missing)}")
    return {name: (source / name).read_bytes() for name in ROTATED_FILES}


def _made_from_dev_ca(keys_dir: Path) -> dict[str, bytes]:
    pki = DevPki.at(keys_dir)
    if not pki.ca_key.exists():
        raise KeyMaterialMissing(
            f"no development CA key in {keys_dir}: give the new keys with --from DIR "
            "(signer.key, signer.crt, seal.key, seal.crt from your CA)")
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise KeyMaterialMissing(f"the dev CA key {pki.ca_key} is not an RSA key")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    files: dict[str, bytes] = {}
    for kind, key in (("signer", rsa.generate_private_key(65537, 2048)),  # equivalent: 2049
                      ("seal", ec.generate_private_key(ec.SECP256R1()))):
        old = x509.load_pem_x509_certificate((keys_dir / f"{kind}.crt").read_bytes())
        files[f"{kind}.key"] = key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
        files[f"{kind}.crt"] = _renewed(old, key, ca, ca_key).public_bytes(
            serialization.Encoding.PEM)
    return files


def _renewed(old: x509.Certificate, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
             ca: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A certificate like `old` (subject, extensions, lifetime) for the new `key`."""
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + (old.not_valid_after_utc - old.not_valid_before_utc)))
    for extension in old.extensions:
        if isinstance(extension.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
