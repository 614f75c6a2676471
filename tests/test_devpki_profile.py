"""The development PKI's certificates, extension by extension: what pdfsig, NSS, pyHanko and the
keys check rely on (critical basic constraints and key usage, path lengths, the CAs' usages,
each end entity's own usages, and names an operator can read)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from signing.devpki import DevPki, dev_crl_url, ensure_dev_pki

USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
          "key_agreement", "key_cert_sign", "crl_sign")
ORG = "O=Pune Municipal Corporation (DEVELOPMENT)"
PUNE = "L=Pune,ST=Maharashtra,C=IN"

PROFILE = {
    # file: (subject, CA, path length, key usages)
    "root_cert": ("CN=Pramaan Dev Root CA,OU=Certifying Authority," + ORG + ",C=IN",
                  True, 1, {"key_cert_sign", "crl_sign"}),
    "ca_cert": ("CN=Pramaan Dev Sub CA for Document Signer,OU=Sub-CA," + ORG + ",C=IN",
                True, 0, {"key_cert_sign", "crl_sign"}),
    "tsa_ca_cert": ("CN=Pramaan Dev CA for Time Stamping,OU=Sub-CA," + ORG + ",C=IN",
                    True, 0, {"key_cert_sign", "crl_sign"}),
    "signer_cert": ("CN=Pramaan Dev Document Signer,OU=Birth and Death Registration," + ORG
                    + "," + PUNE, False, None, {"digital_signature", "content_commitment"}),
    "seal_cert": ("CN=Pramaan Dev QR Seal,OU=Certificate Verification," + ORG + "," + PUNE,
                  False, None, {"digital_signature"}),
    "tsa_cert": ("CN=Pramaan Dev Time Stamping Authority,OU=Time Stamping," + ORG + "," + PUNE,
                 False, None, {"digital_signature"}),
}


@pytest.fixture
def own_pki(tmp_path: Path) -> DevPki:
    """A dev PKI made for each test (about 0.4 s), not conftest's module-wide one: mutmut maps a
    mutant to the tests that called its function, and a module fixture is made (and counted)
    in the module's first test only, so a mutant of an end entity's name or extensions would
    run only the root or CA's test, which cannot see it."""
    return ensure_dev_pki(tmp_path / "keys")


@pytest.mark.parametrize("name", sorted(PROFILE))
def test_each_development_certificate_has_its_profile(own_pki: DevPki, name: str) -> None:
    subject, is_ca, path_length, usages = PROFILE[name]
    cert = x509.load_pem_x509_certificate(getattr(own_pki, name).read_bytes())
    assert cert.subject.rfc4514_string() == subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert (constraints.critical, constraints.value.ca, constraints.value.path_length) == (
        True, is_ca, path_length)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert {flag for flag in USAGES if getattr(usage.value, flag)} == usages


def test_the_crl_of_each_ca_is_named_beside_the_ocsp_responder() -> None:
    # docker/compose.yaml's PRAMAAN_DEV_OCSP_URL, and a responder at the root of its host.
    assert dev_crl_url("http://dev-ocsp:8319/ocsp", "root") == "http://dev-ocsp:8319/crl/root.crl"
    assert dev_crl_url("http://127.0.0.1:8319/", "tsa-ca") == (
        "http://127.0.0.1:8319/crl/tsa-ca.crl")
