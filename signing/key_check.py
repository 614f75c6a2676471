"""`pramaan keys check`: every startup check of the signing keys, each reported on its own line
instead of stopping at the first, plus the warnings an operator needs weeks ahead (a certificate
about to expire) and whether the configured TSA answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signing.backend import SignerBackend, load_backend
from signing.config import SignerConfig
from signing.errors import SigningError
from signing.file_backend import load_pem_certificates
from signing.key_files import is_pkcs12
from signing.keyring import load_seal_key, require_chain, timestamper_of
from signing.pades import PadesSigner
from signing.sample_pdf import minimal_pdf
from signing.timestamps import TsaUnavailable
from signing.trust_store import TrustStore
from signing.validate import validate_pdf

EXPIRY_MARGIN = dt.timedelta(days=30)
T = TypeVar("T")


@dataclass(frozen=True)
class KeyCheck:
    """One check: what was checked, whether it passed, and what an operator should read."""

    name: str
    ok: bool
    detail: str


def check_keys(config: SignerConfig, *, now: dt.datetime | None = None,
               margin: dt.timedelta = EXPIRY_MARGIN) -> list[KeyCheck]:
    """Check the key material of `config` as the service would at startup, and more: each
    certificate (signer, seal, chain, roots) must stay valid for `margin` after `now`, and the
    TSA, if one is configured, must answer with a usable timestamp."""
    moment = now or dt.datetime.now(dt.UTC)
    checks: list[KeyCheck] = []
    opened: list[object] = []
    try:
        return _check_all(config, moment, margin, checks, opened)
    finally:
        for holder in opened:  # token sessions, whatever happened
            close = getattr(holder, "close", None)
            if close is not None:
                close()


def _check_all(config: SignerConfig, moment: dt.datetime, margin: dt.timedelta,
               checks: list[KeyCheck], opened: list[object]) -> list[KeyCheck]:
    backend = _attempt(checks, "document signer", lambda: load_backend(config),
                       lambda b: _describe(b.certificate))
    opened.append(backend)
    if backend is not None:
        checks.append(_lifetime("document signer certificate", backend.certificate, moment,
                                margin))
        _attempt(checks, "signer chain", lambda: _chain(backend, config),
                 lambda _: "chains to a configured trust root")
    seal = _attempt(checks, "seal key", lambda: load_seal_key(config, backend),
                    lambda key: f"kid {key.kid.hex()}, {_describe(key.certificate)}")
    if seal is not None:
        opened.append(seal.private_key)
        checks.append(_lifetime("seal certificate", seal.certificate, moment, margin))
    # A PKCS#12 signer key carries its chain (checked with the key above); else chain files.
    chain_files = () if is_pkcs12(config.key_path) else config.chain_paths
    for cert in backend.chain if backend is not None and not chain_files else ():
        checks.append(_lifetime(f"chain certificate {cert.subject.rfc4514_string()}", cert,
                                moment, margin))
    for label, paths in (("chain certificate", chain_files),
                         ("trust root", config.trust_root_paths)):
        for path in paths:
            certs = _attempt(checks, f"{label} {path.name}", _loader(path, label),
                             lambda found: f"{len(found)} certificate(s)")
            for cert in certs or ():
                checks.append(_lifetime(f"{label} {path.name}", cert, moment, margin))
    _attempt(checks, "trust store", lambda: TrustStore.from_config(config),
             lambda store: f"{len(store.seal_trust.entries)} seal certificate(s) trusted "
             "(current, staged and retired)")
    if config.pending_dir is not None:
        _attempt(checks, "staged rotation", lambda: _load_staged(config),
                 lambda staged: "loads and checks" if staged else "none")
    if config.dev_tsa:
        for label, path in (("TSA certificate", config.tsa_cert_path),
                            *(("TSA chain certificate", p) for p in config.tsa_chain_paths)):
            for cert in _attempt(checks, f"{label} {path.name}", _loader(path, label),
                                 lambda found: f"{len(found)} certificate(s)") or ():
                checks.append(_lifetime(f"{label} {path.name}", cert, moment, margin))
    if config.tsa_url or config.dev_tsa:
        where = config.tsa_url or "the development TSA (in process)"
        _attempt(checks, "time-stamping authority", lambda: _stamp(config),
                 lambda when: f"{where} answered (its time: {when:%Y-%m-%d %H:%M:%S} UTC)")
    if backend is not None:
        # The whole path once: sign a page as issuing does (timestamp, reservation) and
        # validate it as a verifier would, so a TSA under a root we do not trust, or a
        # signature too large for its room, shows here and not on the first certificate.
        _attempt(checks, "test signature", lambda: _sign_and_validate(config, backend),
                 lambda level: f"a {level} signature validates against the trust roots")
    return checks


def _load_staged(config: SignerConfig) -> bool:
    from signing.keyring import Keyring

    base = "https://check.invalid"  # equivalent: in capitals (only the seal links use it)
    keyring = Keyring.from_config(config, verify_base_url=base)
    keyring.close()
    return keyring.pending is not None


def _sign_and_validate(config: SignerConfig, backend: SignerBackend) -> str:
    stamper = timestamper_of(config)
    signer = PadesSigner(backend, bytes_reserved=config.bytes_reserved, timestamper=stamper)
    reason = "pramaan keys check"  # equivalent: any reason and place sign alike
    place = "here"  # equivalent: any reason and place sign alike
    # equivalent: None omits /Reason or /Location, outside /Contents; nothing reads them
    pdf = signer.sign(minimal_pdf(), reason=reason, location=place)
    report = validate_pdf(pdf, config.trust_root_paths)
    if not report.ok:
        raise SigningError(f"the test signature does not validate: {report.reason}",
                           code="test_signature_invalid")
    return "PAdES B-T" if report.timestamp is not None else "PAdES B-B"


def _attempt(checks: list[KeyCheck], name: str, load: Callable[[], T],
                describe: Callable[[T], str]) -> T | None:
    try:
        value = load()
    except SigningError as exc:
        checks.append(KeyCheck(name, False, f"{exc} [{exc.code}]"))
        return None
    checks.append(KeyCheck(name, True, describe(value)))
    return value


def _loader(path: Path, label: str) -> Callable[[], list[x509.Certificate]]:
    return lambda: load_pem_certificates(path, label)


def _chain(backend: SignerBackend, config: SignerConfig) -> None:
    require_chain(backend, config)


def _stamp(config: SignerConfig) -> dt.datetime:
    stamper = timestamper_of(config)
    assert stamper is not None
    digest = hashlib.sha256(b"pramaan keys check").digest()  # equivalent: any digest asks the same
    try:
        token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    except OSError as exc:  # TimestampRequestError is an OSError
        raise TsaUnavailable(f"no timestamp from the TSA: {exc}") from exc
    when: dt.datetime = token["content"]["encap_content_info"]["content"].parsed[
        "gen_time"].native
    return when


def _lifetime(name: str, cert: x509.Certificate, now: dt.datetime,
              margin: dt.timedelta) -> KeyCheck:
    until = cert.not_valid_after_utc
    if now < cert.not_valid_before_utc:
        return KeyCheck(f"{name} validity", False,
                        f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if until <= now + margin:
        left = max((until - now).days, 0)
        state = "expired" if until <= now else f"expires in {left} day(s)"
        return KeyCheck(f"{name} validity", False,
                        f"{state} ({until:%Y-%m-%d}): renew it before then")
    return KeyCheck(f"{name} validity", True,
                    f"valid until {until:%Y-%m-%d} ({(until - now).days} days)")


def _describe(cert: x509.Certificate) -> str:
    key = cert.public_key()
    kind = (f"RSA-{key.key_size}" if isinstance(key, rsa.RSAPublicKey)
            else f"EC {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey)
            else type(key).__name__)
    return f"{cert.subject.rfc4514_string()} ({kind})"
