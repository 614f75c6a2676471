"""A test PKI declared with certomancer and served over HTTP on 127.0.0.1 by the test itself:
root -> intermediate -> document signer (and one revoked before today), a delegated OCSP
responder, CRLs for both CAs; root -> TSA CA -> TSA, with a delegated OCSP responder of its own,
and the TSA's renewed certificate and key (valid from nine years on, for archival rounds). The
certificates name the live addresses (CRL distribution points, OCSP in AIA), as a licensed
CA's do, so this is production's path: revocation information fetched, not made in process.
`ServedPki.travel` moves the served PKI's clock (its OCSP answers, CRLs and timestamps) to
another moment. Not a test module."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

ARCH = "pramaan-test"
KEYS = ("root", "interm", "interm-ocsp", "signer", "revoked", "tsa-ca", "tsa-ocsp", "tsa",
        "tsa2")
RENEWAL: Final = dt.timedelta(days=365 * 9)
"""When the TSA's renewed certificate (tsa2) becomes valid, from the PKI's creation."""


@dataclass(frozen=True)
class ServedPki:
    base: str
    folder: Path  # root.crt, interm.crt, signer.crt/.key, revoked.crt/.key, tsa-ca.crt, tsa.crt
    _app: dict[str, Any] = field(repr=False, compare=False)

    @property
    def tsa_url(self) -> str:
        return f"{self.base}/{ARCH}/tsa/tsa"

    @property
    def renewed_tsa_url(self) -> str:
        return f"{self.base}/{ARCH}/tsa/tsa2"

    def travel(self, moment: dt.datetime) -> None:
        """Serve every OCSP answer, CRL and timestamp as of `moment` from now on."""
        self._app["wsgi"] = Animator(self._app["store"], with_web_ui=False,
                                     at_time=moment.astimezone(dt.UTC).replace(microsecond=0))


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def _config(base: str, now: dt.datetime, tsa_revoked_after: dt.timedelta | None = None,
            tsa_ca_revoked_after: dt.timedelta | None = None) -> dict[str, Any]:
    def validity(years: int) -> dict[str, str]:
        return {"valid-from": _iso(now - dt.timedelta(days=1)),
                "valid-to": _iso(now + dt.timedelta(days=365 * years))}

    def usage(*bits: str) -> dict[str, Any]:
        return {"id": "key_usage", "critical": True,
                "smart-value": {"schema": "key-usage", "params": list(bits)}}

    ca = {"id": "basic_constraints", "critical": True, "value": {"ca": True}}
    revinfo = [
        {"id": "crl_distribution_points",
         "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["interm"]}}},
        {"id": "authority_information_access",
         "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": ["interm"]}}},
    ]
    def tsa(valid: dict[str, str]) -> dict[str, Any]:
        # Under a TSA CA with OCSP: pyHanko's past validation takes only OCSP as evidence of
        # an expired TSA certificate's status (docs/long-term-signatures-spike.md).
        return {"issuer": "tsa-ca", "validity": valid, "extensions": [
            usage("digital_signature"),
            {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
            {"id": "authority_information_access", "smart-value": {
                "schema": "aia-urls", "params": {"ocsp-responder-names": ["tsa-ca"]}}}]}

    signer = {"issuer": "interm", "validity": validity(3),
              "extensions": [usage("digital_signature", "non_repudiation"), *revinfo]}

    def revoked_since(after: dt.timedelta | None) -> dict[str, Any]:
        return {} if after is None else {"revocation": {
            "revoked-since": _iso(now + after), "reason": "key_compromise"}}
    return {
        "external-url-prefix": base,
        "keysets": {"keys": {"keys": {k: {"path": f"{k}.key.pem"} for k in KEYS}}},
        "pki-architectures": {ARCH: {
            "keyset": "keys",
            "entity-defaults": {"country-name": "IN",
                                "organization-name": "Pramaan Test Corporation"},
            "entities": {"root": {"common-name": "Test Root CA"},
                         "tsa-ca": {"common-name": "Test TSA CA"},
                         "tsa-ocsp": {"common-name": "Test TSA OCSP Responder"},
                         "interm": {"common-name": "Test Document Signer CA"},
                         "interm-ocsp": {"common-name": "Test OCSP Responder"},
                         "signer": {"common-name": "Test Document Signer"},
                         "revoked": {"common-name": "Test Revoked Signer"},
                         "tsa": {"common-name": "Test Time Stamping Authority"}},
            "certs": {
                "root": {"subject": "root", "subject-key": "root", "issuer": "root",
                         "authority-key": "root", "validity": validity(20),
                         "extensions": [ca, usage("digital_signature", "key_cert_sign",
                                                  "crl_sign")]},
                "interm": {"issuer": "root", "validity": validity(15), "extensions": [
                    {**ca, "value": {"ca": True, "path-len-constraint": 0}},
                    usage("digital_signature", "key_cert_sign", "crl_sign"),
                    {"id": "crl_distribution_points", "smart-value": {
                        "schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}}}]},
                "interm-ocsp": {"issuer": "interm", "validity": validity(3), "extensions": [
                    usage("digital_signature"),
                    {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                    {"id": "ocsp_no_check"}]},
                "signer": signer,
                "revoked": {**signer, "revocation": {
                    "revoked-since": _iso(now - dt.timedelta(hours=12)),
                    "reason": "key_compromise"}},
                "tsa-ca": {**revoked_since(tsa_ca_revoked_after),
                           "issuer": "root", "validity": validity(20), "extensions": [
                    {**ca, "value": {"ca": True, "path-len-constraint": 0}},
                    usage("digital_signature", "key_cert_sign", "crl_sign"),
                    {"id": "crl_distribution_points", "smart-value": {
                        "schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}}}]},
                "tsa-ocsp": {"issuer": "tsa-ca", "validity": validity(20), "extensions": [
                    usage("digital_signature"),
                    {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                    {"id": "ocsp_no_check"}]},
                "tsa": {**tsa(validity(10)), **revoked_since(tsa_revoked_after)},
                "tsa2": {**tsa({"valid-from": _iso(now + RENEWAL),
                                "valid-to": _iso(now + RENEWAL + dt.timedelta(days=365 * 10))}),
                         "subject": "tsa", "subject-key": "tsa2"},
            },
            "services": {
                "ocsp": {"interm": {"for-issuer": "interm", "responder-cert": "interm-ocsp",
                                    "signing-key": "interm-ocsp"},
                         "tsa-ca": {"for-issuer": "tsa-ca", "responder-cert": "tsa-ocsp",
                                    "signing-key": "tsa-ocsp"}},
                "crl-repo": {"root": {"for-issuer": "root", "signing-key": "root",
                                      "simulated-update-schedule": "P1D"},
                             "interm": {"for-issuer": "interm", "signing-key": "interm",
                                        "simulated-update-schedule": "P1D"}},
                "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"},
                                  "tsa2": {"signing-key": "tsa2", "signing-cert": "tsa2"}},
            },
        }},
    }


@contextmanager
def served_pki(folder: Path, tsa_revoked_after: dt.timedelta | None = None,
               tsa_ca_revoked_after: dt.timedelta | None = None) -> Iterator[ServedPki]:
    """Declare the PKI in `folder` and serve its OCSP, CRLs and TSA on 127.0.0.1 until the
    block ends; with `tsa_revoked_after`, the TSA's certificate is revoked that long after
    the PKI's creation (its OCSP responder alone says so: no CRL covers it); likewise the
    TSA's CA's with `tsa_ca_revoked_after` (the root's CRL alone says so)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in KEYS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (folder / f"{name}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    app: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: app["wsgi"](env, start),
                         threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    declared = _config(base, dt.datetime.now(dt.UTC), tsa_revoked_after,
                       tsa_ca_revoked_after)
    (folder / "certomancer.yml").write_text(yaml.safe_dump(declared))  # to read, and rerun
    config = CertomancerConfig(declared, key_search_dir=str(folder))
    arch = config.get_pki_arch(ARCH)
    for label in ("root", "interm", "signer", "revoked", "tsa-ca", "tsa", "tsa2"):
        (folder / f"{label}.crt").write_bytes(_pem(arch.get_cert(label).dump()))
    for label in ("signer", "revoked"):
        (folder / f"{label}.key").write_bytes((folder / f"{label}.key.pem").read_bytes())
    # Whole seconds (poppler reads an OCSP time with a fraction as "Unknown issue"), fixed at
    # the start: the PKI's clock for every OCSP answer, CRL and timestamp it gives.
    app["store"] = AnimatorArchStore(config.pki_archs)
    served = ServedPki(base=base, folder=folder, _app=app)
    served.travel(dt.datetime.now(dt.UTC))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
