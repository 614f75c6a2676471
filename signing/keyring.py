"""The one object the issuer holds per process: every key loaded and checked once at startup."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathError, ValidationError

from signing.archival import ArchivalStamper
from signing.backend import SignerBackend, load_backend
from signing.config import SignerConfig
from signing.errors import SigningError
from signing.file_backend import (
    load_pem_certificate,
    load_pem_certificates,
    to_asn1_certificate,
)
from signing.key_files import load_pem_private_key
from signing.pades import PadesSigner
from signing.revocation import (
    CaKey,
    DevRevocationAuthority,
    FetchingRevocation,
    ReusedContext,
    RevocationSource,
)
from signing.seal import Sealer, SealKey
from signing.timestamps import (
    DevTimeStampAuthority,
    InProcessTimeStamper,
    StrictTimeStamper,
)
from signing.trust_list import TrustList
from signing.trust_store import TrustStore


@dataclass(frozen=True)
class Keyring:
    """Loaded signing material: the PAdES signer, the sealer, and the trust store they must
    satisfy (a signer that verifiers would refuse is refused at startup)."""

    backend: SignerBackend = field(repr=False)
    pades: PadesSigner = field(repr=False)  # the default level (see from_config)
    sealer: Sealer = field(repr=False)
    trust: TrustStore = field(repr=False)
    seal_kid: bytes
    seal_key: SealKey = field(repr=False)
    pades_b_b: PadesSigner = field(repr=False)
    pades_b_t: PadesSigner | None = field(repr=False)
    # B-LT and B-LTA: with a TSA and a source of revocation information (signing/revocation).
    pades_long_term: dict[str, PadesSigner] = field(default_factory=dict, repr=False)
    # Archival rounds for B-LTA certificates (signing/archival.py), with the same TSA.
    archival: ArchivalStamper | None = field(default=None, repr=False)
    tsa_certificate: x509.Certificate | None = field(default=None, repr=False)
    # A staged rotation (signing/rotation.py): the keys that sign from `activate_at` on.
    pending: Keyring | None = field(default=None, repr=False)
    activate_at: dt.datetime | None = None

    def pades_at(self, level: str) -> PadesSigner:
        """The PAdES signer of `level`: "B-B", or "B-T", "B-LT", "B-LTA" (refused without a
        TSA, and the long-term ones without revocation information)."""
        if level == "B-T" and self.pades_b_t is not None:
            return self.pades_b_t
        if level == "B-B":
            return self.pades_b_b
        if level in self.pades_long_term:
            return self.pades_long_term[level]
        raise SigningError(f"no signer for PAdES {level}: B-T needs a TSA, B-LT and B-LTA "
                           "revocation information too", code="invalid_signing_config")

    def close(self) -> None:
        """Close what holds a session open (a PKCS#11 token's), this set's and the staged."""
        for keys in (self, self.pending):
            if keys is not None:
                for holder in (keys.backend, keys.seal_key.private_key):
                    close = getattr(holder, "close", None)
                    if close is not None:
                        close()

    def active(self, now: dt.datetime | None = None) -> Keyring:
        """The keys that sign at `now` (default: now): the staged ones once their time has
        come, else these."""
        if self.pending is not None and self.activate_at is not None and (
                now or dt.datetime.now(dt.UTC)) >= self.activate_at:
            return self.pending
        return self

    @property
    def seal_trust(self) -> TrustList:
        """The seal keys verifiers accept (this key and the retired ones)."""
        return self.trust.seal_trust

    @property
    def trust_root_paths(self) -> tuple[Path, ...]:
        """The roots signed PDFs must chain to."""
        return self.trust.trust_root_paths

    @classmethod
    def from_config(cls, config: SignerConfig, *, verify_base_url: str) -> Keyring:
        """Load everything named by `config` once, with the startup checks.

        Raises `KeyMaterialMissing`, `KeyCertMismatch`, `BadKeyUsage`, or `SigningError` with
        code "signer_untrusted" when the signer certificate does not chain through
        `chain_paths` to one of `trust_root_paths` (signed PDFs would not validate).
        """
        backend = load_backend(config)
        opened: list[object] = [backend]  # whatever holds a token session, closed on failure
        try:
            seal_key = load_seal_key(config, backend)
            opened.append(seal_key.private_key)
            require_chain(backend, config)
            staged = _staged(config, verify_base_url)
            if staged:
                opened.append(staged[0])
            timestamper = timestamper_of(config)
            pades_b_b = PadesSigner(backend, bytes_reserved=config.bytes_reserved)
            pades_b_t = (PadesSigner(backend, bytes_reserved=config.bytes_reserved,
                                     timestamper=timestamper) if timestamper else None)
            source = revocation_of(config)
            long_term = _long_term_signers(backend, config, timestamper, source)
            archival = (_archival_stamper(backend, config, timestamper, source)
                        if long_term else None)
            return cls(
                pending=staged[0] if staged else None,
                activate_at=staged[1] if staged else None,
                backend=backend,
                # The default level: B-LTA in development (the dev TSA, and the dev CAs'
                # CRLs), so a newcomer's first certificate is already long-term; else B-T
                # with a TSA, else B-B. PRAMAAN_SIGNATURE_LEVELS sets it per type.
                pades=(long_term.get("B-LTA") if config.dev_tsa else None)
                or pades_b_t or pades_b_b,
                pades_b_b=pades_b_b,
                pades_b_t=pades_b_t,
                pades_long_term=long_term,
                archival=archival,
                tsa_certificate=(load_pem_certificate(config.tsa_cert_path, "TSA certificate")
                                 if config.dev_tsa else None),
                sealer=Sealer(seal_key, verify_base_url),
                trust=TrustStore.from_config(config),
                seal_kid=seal_key.kid,
                seal_key=seal_key,
            )
        except BaseException:
            for holder in reversed(opened):
                close = getattr(holder, "close", None)
                if close is not None:
                    close()
            raise


def _staged(config: SignerConfig, verify_base_url: str) -> tuple[Keyring, dt.datetime] | None:
    if config.pending_dir is None:
        return None
    from signing.rotation import pending, require_rotatable

    staged = pending(config.pending_dir.parent)
    if staged is None:
        return None
    require_rotatable(config, config.pending_dir.parent)
    folder = staged.directory
    successor = replace(config, key_path=folder / "signer.key", cert_path=folder / "signer.crt",
                        seal_key_path=folder / "seal.key", seal_cert_path=folder / "seal.crt",
                        pending_dir=None, retired_seal_cert_paths=(
                            config.seal_cert_path, *config.retired_seal_cert_paths))
    return Keyring.from_config(successor, verify_base_url=verify_base_url), staged.activate_at


def _long_term_signers(backend: SignerBackend, config: SignerConfig,
                       timestamper: TimeStamper | None,
                       source: RevocationSource | None) -> dict[str, PadesSigner]:
    if timestamper is None or source is None:
        return {}
    roots, others = _chain_certificates(config)
    context = ReusedContext(
        lambda: source.validation_context(roots, [*others, backend.certificate]))
    return {level: PadesSigner(backend, bytes_reserved=config.bytes_reserved,
                               timestamper=timestamper, revocation=context,
                               archival=level == "B-LTA")
            for level in ("B-LT", "B-LTA")}


def _archival_stamper(backend: SignerBackend, config: SignerConfig,
                      timestamper: TimeStamper | None,
                      source: RevocationSource | None) -> ArchivalStamper | None:
    if timestamper is None or source is None:
        return None
    roots, others = _chain_certificates(config)
    return ArchivalStamper(timestamper, source, roots, others, backend.certificate.issuer)


def _chain_certificates(
        config: SignerConfig) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The trust roots, and the other certificates a long-term signature's validation needs:
    the signer's chain, the TSA's chain, and the development TSA's own certificate."""
    roots = [c for path in config.trust_root_paths for c in load_pem_certificates(path)]
    others = [c for path in (*config.chain_paths, *config.tsa_chain_paths)
              for c in load_pem_certificates(path)]
    if config.dev_tsa:
        others.append(load_pem_certificates(config.tsa_cert_path)[0])
    return roots, others


def revocation_of(config: SignerConfig) -> RevocationSource | None:
    """Where long-term signatures get revocation information: the development CAs' own CRLs
    (with the development TSA, when keys/ holds the CA keys), or fetched from the addresses in
    the certificates (with a TSA's URL); None for neither."""
    if config.dev_tsa:
        from signing.devpki import DevPki

        pki = DevPki.at(config.tsa_key_path.parent)
        pairs = [(pki.root_cert, pki.root_key), (pki.ca_cert, pki.ca_key),
                 (pki.tsa_ca_cert, pki.tsa_ca_key)]
        if not all(key.exists() for _, key in pairs):
            return None
        return DevRevocationAuthority([
            (load_pem_certificate(cert, "CA certificate"), functools.partial(_ca_key, key))
            for cert, key in pairs])
    if config.tsa_url:
        return FetchingRevocation()
    return None


def _ca_key(path: Path) -> CaKey:
    key = load_pem_private_key(path, "CA key")  # equivalent: label (message only)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise SigningError(f"the CA key {path} is neither RSA nor EC", code="unsupported_key")
    return key


def load_seal_key(config: SignerConfig, backend: SignerBackend | None = None) -> SealKey:
    """The seal key: in the PKCS#11 token when `config.pkcs11_seal_key_label` names one (in
    the document signer's session when that is in a token too), else the file."""
    if config.pkcs11_seal_key_label:
        from signing.pkcs11_backend import load_token_seal_key

        return load_token_seal_key(config, getattr(backend, "session", None))
    return SealKey.load(config.seal_key_path, config.seal_cert_path,
                        password_env=config.key_password_env)


def timestamper_of(config: SignerConfig) -> TimeStamper | None:
    """The TSA client `config` names: a URL's, the development TSA in process, or none (B-B)."""
    if config.tsa_url:
        return StrictTimeStamper(config.tsa_url, timeout=config.tsa_timeout)
    if config.dev_tsa:
        return InProcessTimeStamper(DevTimeStampAuthority.load(
            config.tsa_key_path, config.tsa_cert_path, config.tsa_chain_paths),
            delay=config.dev_tsa_delay)
    return None


def require_chain(backend: SignerBackend, config: SignerConfig) -> None:
    """Raise `SigningError` (code "signer_untrusted") unless the signer certificate chains
    through the backend's chain (`config.chain_paths`, or a PKCS#12 file's) to one of
    `config.trust_root_paths`."""
    roots = [
        to_asn1_certificate(cert)
        for path in config.trust_root_paths
        for cert in load_pem_certificates(path, "trust root")
    ]
    chain = [to_asn1_certificate(cert) for cert in backend.chain]
    validator = CertificateValidator(
        to_asn1_certificate(backend.certificate),
        intermediate_certs=chain,
        # Never fetch (tests/test_signing_keys.py); None or the default are False as well.
        validation_context=ValidationContext(trust_roots=roots, allow_fetching=False),  # equivalent
    )
    # load_backend has already refused a signer without these usages (file_backend's
    # require_end_entity), so leaving them out here changes nothing.
    usage = {"digital_signature", "non_repudiation"}  # equivalent: checked at load, see above
    try:
        asyncio.run(validator.async_validate_usage(usage))  # type: ignore[no-untyped-call]
    except (PathError, ValidationError) as exc:
        raise SigningError(
            f"the signer certificate {backend.certificate.subject.rfc4514_string()} does not "
            f"chain to a configured trust root through the configured chain: {exc}",
            code="signer_untrusted",
        ) from exc
