"""The document signer with its key in an HSM, over PKCS#11 (`SignerConfig.backend == "pkcs11"`).

The certificate and chain stay files (keys/signer.crt, keys/ca.crt), as for the file backend;
only the private key lives in the token, found by its label. The session is opened when the
backend is loaded, which a worker does on its first job (`Runtime.keyring` is built lazily),
so never before a fork (SIGNING.md, trap 5); `pramaan serve` checks such keys in a fresh
process of its own before gunicorn forks (web_server.py), and `Runtime.close` closes it.
SoftHSM 2.6 has no one-step ECDSA-with-SHA256, so EC keys sign through the raw ECDSA
mechanism over a digest we compute.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pyhanko.config.pkcs11 import TokenCriteria
from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

from signing.cms_attributes import EncodedSigningCertificateMixin
from signing.config import SignerConfig
from signing.errors import KeyCertMismatch, KeyMaterialMissing, SigningError
from signing.file_backend import (
    DOCUMENT_SIGNER_USAGE,
    load_chain,
    load_pem_certificate,
    require_end_entity,
    require_valid_now,
    to_asn1_certificate,
)
from signing.seal import SealKey
from signing.trust_list import SEAL_USAGE, kid_for

_PROBE = b"pramaan: does the token's key belong to the signer certificate?"


class Pkcs11DocumentSigner(EncodedSigningCertificateMixin, PKCS11Signer):
    """pyHanko's PKCS#11 signer, with the signing-certificate-v2 attribute encoded once, and
    the token asked to sign in the calling thread.

    pyHanko 0.38 hands each token signature to the event loop's default thread pool, and
    every signature runs in a new event loop, so each one paid for a new thread: 2.8 ms of
    3.4 ms per signature against SoftHSM2's 0.5 ms. The steps are pyHanko's own (its private
    `_select_pkcs11_signing_params` and key handle; pinned in setup.py)."""

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        if dry_run:  # pyHanko's size estimate; we always pass bytes_reserved instead
            estimate: bytes = await super().async_sign_raw(  # equivalent: never reached
                data, digest_algorithm, dry_run=True)  # equivalent: never reached
            return estimate
        await self.ensure_objects_loaded()  # type: ignore[no-untyped-call]
        spec = self._select_pkcs11_signing_params(digest_algorithm,
                                                  # equivalent, next line: sign_kwargs ignores data
                                                  sign_kwargs=self.sign_kwargs(data))  # equivalent
        if spec.pre_sign_transform is not None:
            data = spec.pre_sign_transform(data)
        assert self._key_handle is not None
        signature: bytes = self._key_handle.sign(data, **spec.sign_kwargs)
        if spec.post_sign_transform is not None:
            signature = spec.post_sign_transform(signature)
        return signature


@dataclass(frozen=True)
class Pkcs11Backend:
    """The document signer whose key is in a PKCS#11 token."""

    signer: Pkcs11DocumentSigner = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def load(cls, config: SignerConfig) -> Pkcs11Backend:
        """Open a session on the token named by `config` with the PIN from the environment
        variable `config.pkcs11_pin_env`, find the key by label, and check it against the
        signer certificate (by a signature it must verify), with the file backend's checks of
        usage and validity. Raises `KeyMaterialMissing` (no module, token, PIN or key),
        `KeyCertMismatch` or `BadKeyUsage`."""
        certificate = load_pem_certificate(config.cert_path, "signer certificate")
        # equivalent, next line: the label only names the certificate in a refusal message
        require_end_entity(certificate, DOCUMENT_SIGNER_USAGE, "signer certificate")  # equivalent
        require_valid_now(certificate, "signer certificate")
        chain = load_chain(config)
        session = open_session(config)
        try:
            signer = Pkcs11DocumentSigner(
                session, key_label=config.pkcs11_key_label,
                signing_cert=to_asn1_certificate(certificate),
                ca_chain=[to_asn1_certificate(c) for c in chain],
                other_certs_to_pull=(),  # equivalent: () is pyHanko 0.38's default too (pinned)
                use_raw_mechanism=isinstance(certificate.public_key(),
                                             ec.EllipticCurvePublicKey))
            _require_key_of(signer, certificate, config.pkcs11_key_label)
        except BaseException:
            session.close()  # the token's login lasts while a session of ours is open
            raise
        return cls(signer=signer, certificate=certificate, chain=tuple(chain))

    @property
    def session(self) -> Any:
        """The open token session (the seal key, if in the same token, uses it too)."""
        return self.signer.pkcs11_session

    def close(self) -> None:
        """Close the token session (the token logs this process out with its last one)."""
        self.signer.pkcs11_session.close()


def open_session(config: SignerConfig) -> Any:
    """A logged-in session on the token `config` names, the PIN from the environment."""
    if not config.pkcs11_module or not os.path.exists(config.pkcs11_module):
        raise KeyMaterialMissing(f"PKCS#11 module {config.pkcs11_module!r} not found")
    pin = os.environ.get(config.pkcs11_pin_env)
    if not pin:
        raise KeyMaterialMissing(f"the token's PIN is not set (${config.pkcs11_pin_env})")
    try:
        return open_pkcs11_session(
            config.pkcs11_module,
            token_criteria=TokenCriteria(label=config.pkcs11_token_label), user_pin=pin)
    except Exception as exc:  # python-pkcs11 raises its own types, or pyHanko's config error
        raise KeyMaterialMissing(
            f"cannot open PKCS#11 token {config.pkcs11_token_label!r} with "
            f"{config.pkcs11_module}: {type(exc).__name__}: {exc}") from exc


class TokenEcKey:
    """A P-256 key in the token, as the sealer uses a key (`cose.EcdsaKey`): ECDSA over
    SHA-256, a DER signature out. SoftHSM 2.6 signs only with the raw mechanism, over a digest
    we compute (SIGNING.md, trap 5). Unlike a file key's, its signatures are not deterministic:
    each seal text still reads back and verifies (the sealer checks before handing it out)."""

    def __init__(self, handle: Any, public: ec.EllipticCurvePublicKey,
                 own_session: Any | None = None) -> None:
        self._handle = handle
        self._public = public
        self._own_session = own_session  # closed by close(); None: the signer's session

    def close(self) -> None:
        """Close the session this key opened for itself, if it did."""
        if self._own_session is not None:
            self._own_session.close()
            self._own_session = None

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        from pkcs11 import Mechanism

        if not isinstance(signature_algorithm.algorithm, hashes.SHA256):  # the seal's ES256
            raise SigningError("the token's seal key signs ECDSA with SHA-256 only",
                               code="unsupported_key")
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        raw: bytes = self._handle.sign(digest.finalize(), mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        r = int.from_bytes(raw[:half], "big")  # equivalent: "big" is the default
        s = int.from_bytes(raw[half:], "big")  # equivalent: "big" is the default
        return encode_dss_signature(r, s)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public


def load_token_seal_key(config: SignerConfig, session: Any | None = None) -> SealKey:
    """The seal key labelled `config.pkcs11_seal_key_label` in the token (a new session unless
    the document signer's is given), with the file seal key's checks of its certificate and a
    seal signature the certificate must verify."""
    from pkcs11 import KeyType, ObjectClass

    certificate = load_pem_certificate(config.seal_cert_path, "seal certificate")
    public = certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1):
        raise SigningError(f"seal certificate {config.seal_cert_path} is not EC P-256",
                           code="unsupported_key")
    require_end_entity(certificate, SEAL_USAGE, "seal certificate")
    require_valid_now(certificate, "seal certificate")
    label = config.pkcs11_seal_key_label
    own = open_session(config) if session is None else None
    opened: Any = session if session is not None else own
    try:
        try:
            handle = opened.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                              key_type=KeyType.EC, label=label)
            key = TokenEcKey(handle, public, own)
            signature = key.sign(_PROBE, ec.ECDSA(hashes.SHA256()))
        except Exception as exc:  # python-pkcs11's NoSuchKey, MultipleObjectsReturned, ...
            raise KeyMaterialMissing(f"the token has no usable EC seal key labelled {label!r}: "
                                     f"{type(exc).__name__}: {exc}") from exc
        try:
            public.verify(signature, _PROBE, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise KeyCertMismatch(f"seal key: the token's key {label!r} does not match the "
                                  f"certificate {certificate.subject.rfc4514_string()}") from None
    except BaseException:
        if own is not None:
            own.close()
        raise
    der = certificate.public_bytes(serialization.Encoding.DER)
    return SealKey(private_key=key, certificate=certificate, kid=kid_for(der))


def _require_key_of(signer: Pkcs11DocumentSigner, certificate: x509.Certificate,
                    label: str) -> None:
    try:
        signature = asyncio.run(signer.async_sign_raw(_PROBE, "sha256"))  # equivalent: SHA256
    except Exception as exc:  # no such key, or a key that cannot sign: python-pkcs11's types
        raise KeyMaterialMissing(
            f"the token has no usable signing key labelled {label!r}: "
            f"{type(exc).__name__}: {exc}") from exc
    public: Any = certificate.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, _PROBE, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, _PROBE, ec.ECDSA(hashes.SHA256()))
        else:
            raise SigningError(f"unsupported signer key {type(public).__name__}",
                               code="unsupported_key")
    except InvalidSignature:
        raise KeyCertMismatch(
            f"signer key: the token's key {label!r} does not match the certificate "
            f"{certificate.subject.rfc4514_string()}") from None
