"""Typed errors raised by `signing/`, each with a stable machine-readable `code`.

The API layer maps `code` to an RFC 9457 problem body; `str(error)` is a human message meant for
operators and logs (it never contains key material).
"""

from __future__ import annotations

from typing import Final

SEAL_REASONS: Final = frozenset(
    {"malformed", "unknown_kid", "bad_signature", "payload_mismatch", "too_large",
     "outside_window"}
)
"""Stable reasons a QR seal is rejected (`SealError.reason`, `SealReport.reason`)."""


class SigningError(Exception):
    """Base class of every error raised by `signing/`.

    `code` is stable and machine-readable; the message is for humans.
    """

    code: str = "signing_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        """Create the error with a human `message` and optionally override the class `code`."""
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class KeyCertMismatch(SigningError):
    """A private key does not belong to the certificate it is configured with."""

    code = "key_cert_mismatch"


class BadKeyUsage(SigningError):
    """A certificate lacks a required keyUsage, or is a CA certificate where an end entity is
    required."""

    code = "bad_key_usage"


class KeyMaterialMissing(SigningError):
    """A configured key or certificate file is absent or unreadable."""

    code = "key_material_missing"


class KeyPasswordError(KeyMaterialMissing):
    """An encrypted key file (PEM or PKCS#12) has no password in the environment
    ("key_password_missing") or does not open with the one there ("key_password_wrong")."""

    code = "key_password_missing"


class SignatureTooLarge(SigningError):
    """The CMS signature did not fit the space reserved in the PDF (`bytes_reserved`)."""

    code = "signature_too_large"


class SealError(SigningError):
    """A QR seal could not be produced or verified; `reason` is one of `SEAL_REASONS`."""

    code = "seal_invalid"

    def __init__(self, reason: str, message: str | None = None) -> None:
        """Create the error for a stable `reason` (see `SEAL_REASONS`) and an optional message."""
        if reason not in SEAL_REASONS:
            raise ValueError(f"unknown seal error reason {reason!r}")
        super().__init__(message or f"seal rejected: {reason}")
        self.reason = reason


class ServiceUnavailable(SigningError):
    """A service outside us (a TSA, an OCSP responder, a CRL server) gave no usable answer:
    nothing was signed, and it is not the document's fault (the job waits and tries again)."""

    code = "service_unavailable"


class RevocationUnavailable(ServiceUnavailable):
    """No current revocation information for the signer's chain could be had (a responder or
    CRL server down, or answers out of date); the signer is not known to be revoked."""

    code = "revocation_unavailable"
