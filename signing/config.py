"""Frozen signing configuration: where the key material is and which backend holds the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from signing.errors import SigningError


@dataclass(frozen=True)
class SignerConfig:
    """Everything `signing/` needs to load its keys; built once at startup.

    `chain_paths` are the intermediate certificates embedded in each signature;
    `trust_root_paths` are the roots a validator must trust (never embedded).
    `bytes_reserved` is the hex length reserved for the CMS container in each PDF.
    `retired_seal_cert_paths` are seal certificates no longer used for sealing: verify-only,
    kept forever, because birth certificates never expire.
    With `backend` "pkcs11" the signer's private key is in a PKCS#11 token: `pkcs11_module`
    (the library), `pkcs11_token_label` (the token's label), `pkcs11_key_label`, and the PIN
    read from the environment variable named `pkcs11_pin_env` (never stored here).
    `key_path` (and `seal_key_path`) may be an encrypted PEM or a PKCS#12 file (.p12, .pfx),
    opened with the password in the environment variable named `key_password_env`; a PKCS#12
    signer key brings its certificate and chain, and `cert_path` and `chain_paths` are unread.
    `pending_dir` holds a staged key rotation (signing/rotation.py), if there is one.
    `tsa_url`, when set, is the RFC 3161 TSA that timestamps every signature (PAdES B-T),
    waiting at most `tsa_timeout` seconds for it; with `dev_tsa` instead, the development TSA
    (`tsa_key_path`, `tsa_cert_path`, `tsa_chain_paths`) timestamps in process.
    """

    key_path: Path
    cert_path: Path
    chain_paths: tuple[Path, ...]
    seal_key_path: Path
    seal_cert_path: Path
    trust_root_paths: tuple[Path, ...]
    backend: str = "file"
    bytes_reserved: int = 16384
    retired_seal_cert_paths: tuple[Path, ...] = ()
    tsa_url: str | None = None
    tsa_timeout: float = 10.0
    dev_tsa: bool = False
    dev_tsa_delay: float = 0.0  # seconds the development TSA waits, as a distant one would
    tsa_key_path: Path = Path("tsa.key")
    tsa_cert_path: Path = Path("tsa.crt")
    tsa_chain_paths: tuple[Path, ...] = ()
    pkcs11_module: str | None = None
    pkcs11_token_label: str = "pramaan"  # noqa: S105 - a label, not a secret
    pkcs11_key_label: str = "signer"
    pkcs11_pin_env: str = "PRAMAAN_PKCS11_PIN"
    pkcs11_seal_key_label: str | None = None
    pending_dir: Path | None = None
    key_password_env: str = "PRAMAAN_KEY_PASSWORD"  # noqa: S105 - a variable's name

    def __post_init__(self) -> None:
        """Reject settings that could only fail later, at the first signature."""
        # `<= 1` is equivalent: 1 is odd, refused by `% 2` anyway.
        if self.bytes_reserved <= 0 or self.bytes_reserved % 2:  # equivalent: `<= 1`
            raise SigningError(
                f"bytes_reserved must be a positive even number, got {self.bytes_reserved}",
                code="invalid_signing_config",
            )
        if not self.trust_root_paths:
            raise SigningError("at least one trust root is required", code="invalid_signing_config")
        if self.dev_tsa and self.tsa_url:
            raise SigningError("one TSA: the development TSA or a TSA's URL, not both",
                               code="invalid_signing_config")

    @classmethod
    def from_keys_dir(cls, keys_dir: Path) -> SignerConfig:
        """Configuration for the dev PKI layout written by `signing.devpki.ensure_dev_pki`."""
        return cls(
            key_path=keys_dir / "signer.key",
            cert_path=keys_dir / "signer.crt",
            chain_paths=(keys_dir / "ca.crt",),
            seal_key_path=keys_dir / "seal.key",
            seal_cert_path=keys_dir / "seal.crt",
            trust_root_paths=(keys_dir / "root.crt",),
            retired_seal_cert_paths=tuple(sorted((keys_dir / "seal-retired").glob("*.crt"))),
            tsa_key_path=keys_dir / "tsa.key",
            tsa_cert_path=keys_dir / "tsa.crt",
            tsa_chain_paths=(keys_dir / "tsa-ca.crt",),
            # A staged rotation, whole (a promotion cut short leaves a part: not pending).
            pending_dir=(keys_dir / "next" if all(
                (keys_dir / "next" / name).exists() for name in (
                    "activate-at", "signer.key", "signer.crt", "seal.key", "seal.crt"))
                else None),
        )
