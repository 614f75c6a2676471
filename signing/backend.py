"""The signer backend interface and the one place that picks a backend by configuration."""

from __future__ import annotations

from typing import Final, Protocol

from cryptography import x509
from pyhanko.sign.signers import Signer

from signing.config import SignerConfig
from signing.errors import SigningError
from signing.file_backend import FileBackend

KNOWN_BACKENDS: Final = ("file", "pkcs11")


class SignerBackend(Protocol):
    """What PAdES signing needs from wherever the key lives (a file, or a PKCS#11 token)."""

    @property
    def signer(self) -> Signer:
        """The pyHanko signer producing CMS signatures with the document-signer key."""
        ...

    @property
    def certificate(self) -> x509.Certificate:
        """The document-signer certificate."""
        ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The intermediate certificates each signature carries (no roots)."""
        ...


def load_backend(config: SignerConfig) -> SignerBackend:
    """Load exactly the backend named by `config.backend`, with its startup checks.

    Raises `SigningError` (code "unknown_backend") for a name that is not implemented.
    """
    if config.backend == "file":
        return FileBackend.load(config)
    if config.backend == "pkcs11":
        from signing.pkcs11_backend import Pkcs11Backend  # python-pkcs11 only when used

        return Pkcs11Backend.load(config)
    raise SigningError(
        f"unknown signer backend {config.backend!r}; known backends: "
        f"{', '.join(KNOWN_BACKENDS)}",
        code="unknown_backend",
    )
