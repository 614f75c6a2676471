"""What a verifier trusts: certificates and public keys only, never a private key.

The API process that only verifies (and `pramaan verify`) loads this, not the signing keyring,
so verification works on a machine that holds no private key at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509

from signing.config import SignerConfig
from signing.file_backend import load_pem_certificate, load_pem_certificates
from signing.rotation import pending, retired_at
from signing.trust_list import TrustEntry, TrustList


@dataclass(frozen=True)
class TrustStore:
    """The seal keys verifiers accept (current and retired) and the PDF trust roots."""

    seal_trust: TrustList = field(repr=False)
    trust_root_paths: tuple[Path, ...]
    roots: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    """The certificates of `trust_root_paths`, read once."""

    @classmethod
    def from_config(cls, config: SignerConfig) -> TrustStore:
        """Load the current, staged (a rotation to come) and retired seal certificates and
        check the trust roots are
        readable. Opens no private key. Raises `KeyMaterialMissing` for an absent file and
        `SigningError` for a certificate that is not a P-256 seal certificate."""
        current = TrustEntry.from_certificate(
            load_pem_certificate(config.seal_cert_path, "seal certificate")
        )
        retired = [
            _until(TrustEntry.from_certificate(cert), retired_at(path))
            for path in config.retired_seal_cert_paths
            for cert in load_pem_certificates(path, "retired seal certificate")
        ]
        staged = [] if config.pending_dir is None else [TrustEntry.from_certificate(
            load_pem_certificate(config.pending_dir / "seal.crt", "staged seal certificate"))]
        if config.pending_dir is not None:  # the current key signs until the staged one's time
            staged_at = pending(config.pending_dir.parent)
            current = _until(current, staged_at.activate_at if staged_at else None)
        roots = tuple(cert for path in config.trust_root_paths
                      for cert in load_pem_certificates(path, "trust root"))
        return cls(seal_trust=TrustList([current, *staged, *retired]),
                   trust_root_paths=config.trust_root_paths, roots=roots)


def _until(entry: TrustEntry, end: dt.datetime | None) -> TrustEntry:
    # A key retired (or to be) at `end` signs nothing after it, whatever its expiry.
    if end is None or end >= entry.not_after:  # equivalent: `>` (at equality the same entry)
        return entry
    return replace(entry, not_after=max(end, entry.not_before))
