"""Signed CMS attributes that are the same for every signature, encoded once per signer.

pyHanko rebuilds the ESS signing-certificate-v2 attribute (hash + issuer name + serial of the
signer certificate) from Python values for every signature, and asn1crypto then re-encodes the
issuer name field by field: about a third of a PAdES B-B signature's time here. The value
depends only on the certificate, so we encode it once and hand pyHanko a parsed copy of those
bytes (asn1crypto re-emits parsed bytes as they are).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign import attributes
from pyhanko.sign.general import as_signing_certificate_v2


class _EncodedSigningCertificateV2(attributes.SigningCertificateV2Provider):
    def __init__(self, certificate: asn1_x509.Certificate, der: bytes) -> None:
        # The parent keeps `certificate` only for its own build_attr_value, replaced below, so a
        # mutant passing None instead is equivalent.
        super().__init__(certificate)  # equivalent: None
        self._der = der

    async def build_attr_value(
        self, dry_run: bool = False  # equivalent: the default (dry_run is ignored)
    ) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self._der)


class _SpecWithEncodedCertificate(attributes.SignedAttributeProviderSpec):
    def __init__(self, inner: attributes.SignedAttributeProviderSpec,
                 provider: _EncodedSigningCertificateV2) -> None:
        self._inner = inner
        self._provider = provider

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterable[attributes.CMSAttributeProvider]:
        # For PAdES (any level) pyHanko 0.38 reads data_digest and digest_algorithm only for CAdES
        # attributes (cades_signed_attr_spec, never set in pades.py) and CMSAlgorithmProtection
        # (not added to PAdES signatures): None for either is equivalent.
        for provider in self._inner.signed_attr_providers(
            data_digest, digest_algorithm  # equivalent: None (see above)
        ):
            if type(provider) is attributes.SigningCertificateV2Provider:
                yield self._provider
            else:
                yield provider


class EncodedSigningCertificateMixin:
    """Mix into a pyHanko `Signer` subclass (before it) to encode signing-certificate-v2 once.

    Hooks pyHanko 0.38's `_signed_attr_provider_spec` (pinned in setup.py); the tests check
    that signatures still validate and carry exactly pyHanko's own attribute value.
    """

    signing_cert: asn1_x509.Certificate
    _encoded_scv2: _EncodedSigningCertificateV2 | None = None

    def _signed_attr_provider_spec(
        self, *args: Any, **kwargs: Any
    ) -> attributes.SignedAttributeProviderSpec:
        parent: Any = super()
        inner: attributes.SignedAttributeProviderSpec = parent._signed_attr_provider_spec(
            *args, **kwargs  # equivalent: without *args (pyHanko 0.38 passes keywords only)
        )
        if self._encoded_scv2 is None:
            der = as_signing_certificate_v2(self.signing_cert).dump()
            # equivalent: None for the certificate (see _EncodedSigningCertificateV2.__init__)
            self._encoded_scv2 = _EncodedSigningCertificateV2(self.signing_cert, der)  # equivalent
        return _SpecWithEncodedCertificate(inner, self._encoded_scv2)
