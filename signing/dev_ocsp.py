"""A development OCSP responder (RFC 6960) for the CAs of a `pramaan init --dev-pki` set.

Answers for every certificate issued by the dev root, the document signer's CA or the TSA's CA,
each answer signed by the CA that issued the certificate (no delegated responder): "good",
unless its serial is listed in the revocations file, read at every request so that a trial can
revoke a certificate while the responder runs. The CAs know no list of what they issued, so
every serial of theirs not revoked is "good". It serves the address that a dev PKI made with
PRAMAAN_DEV_OCSP_URL names in its certificates (docker/dev_ocsp.py), so that long-term
signatures (PAdES B-LT, B-LTA) fetch their status over HTTP as in production. Never for
certificates anyone relies on: its keys are the development CAs'. It serves the CAs' CRLs
too, which the dev CAs' own certificates name (pyHanko finds no path for an OCSP answer the
root signed on its own CA).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from asn1crypto import keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from signing.devpki import DevPki
from signing.file_backend import load_pem_certificate
from signing.key_files import load_pem_private_key
from signing.revocation import OCSP_VALIDITY, CaKey, DevRevocationAuthority, Revoked

log = logging.getLogger(__name__)

REQUEST_TYPE: Final = "application/ocsp-request"
RESPONSE_TYPE: Final = "application/ocsp-response"
CRL_TYPE: Final = "application/pkix-crl"
_MAX_REQUEST: Final = 16 * 1024


@dataclass(frozen=True)
class _Ca:
    cert: x509.Certificate
    key: CaKey


class DevOcspResponder:
    """OCSP answers of the dev CAs; `revocations` lists revoked serials (see `revoked`)."""

    def __init__(self, cas: Mapping[str, tuple[x509.Certificate, CaKey]],
                 revocations: Path | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self._by_stem = {stem: _Ca(cert, key) for stem, (cert, key) in cas.items()}
        self._cas = list(self._by_stem.values())
        self._revocations = revocations
        # Every use of the clock takes it .astimezone(dt.UTC) (here and in the CRLs' authority).
        # equivalent: a naive local now() is the same instant, fold and all
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def of(cls, pki: DevPki, revocations: Path | None = None) -> DevOcspResponder:
        """The responder of the three CAs of `pki` (root, document signer CA, TSA CA)."""
        cas = {}
        for cert, key in ((pki.root_cert, pki.root_key), (pki.ca_cert, pki.ca_key),
                          (pki.tsa_ca_cert, pki.tsa_ca_key)):
            private = load_pem_private_key(key, "CA key")
            if not isinstance(private, CaKey):
                # Unreachable: load_pem_private_key returns only RSA or EC keys (CaKey's union).
                # equivalent: never raised
                raise ValueError(f"the CA key {key} is neither RSA nor EC")
            cas[cert.stem] = (load_pem_certificate(cert, "CA certificate"), private)
        return cls(cas, revocations)

    def revoked(self) -> dict[int, dt.datetime]:
        """The revoked serials and since when: one per line of the revocations file, in hex,
        optionally followed by an ISO 8601 time (default: the file's modification time)."""
        if self._revocations is None or not self._revocations.exists():
            return {}
        # Naive local time (tz None) is read back as local by astimezone(dt.UTC) below, fold
        # and all; it differs only for an mtime within a day of year 1 or 9999 (not on ext4).
        # equivalent: the same instant
        changed = dt.datetime.fromtimestamp(int(self._revocations.stat().st_mtime), dt.UTC)
        found: dict[int, dt.datetime] = {}
        # equivalent: "UTF-8" names the same codec (codec names are case-insensitive)
        for line in self._revocations.read_text(encoding="utf-8").splitlines():
            words = line.split("#")[0].split()
            if words:
                since = dt.datetime.fromisoformat(words[1]) if len(words) > 1 else changed
                found[int(words[0], 16)] = since.astimezone(dt.UTC).replace(microsecond=0)
        return found

    def crl(self, stem: str) -> bytes | None:
        """The current DER CRL of the CA whose files in keys/ are `stem` (root, ca, tsa-ca),
        listing every revoked serial; None for another name."""
        ca = self._by_stem.get(stem)
        if ca is None:
            return None
        revoked = {(ca.cert.subject, serial): Revoked(since)
                   for serial, since in self.revoked().items()}
        authority = DevRevocationAuthority([(ca.cert, ca.key)], revoked, self._clock)
        return authority.crls()[0].public_bytes(serialization.Encoding.DER)

    def respond(self, request_der: bytes) -> bytes:
        """The DER OCSP response to a DER request: malformedRequest if it cannot be read,
        unauthorized if no CA of ours issued the certificate asked about."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        ca = self._issuer(request)
        if ca is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        # microsecond=1: cryptography writes whole seconds, and `since` is a whole second.
        # equivalent: the same answer
        now = self._clock().astimezone(dt.UTC).replace(microsecond=0)
        since = self.revoked().get(request.serial_number)
        revoked = since is not None and since <= now
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number, algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now, next_update=now + OCSP_VALIDITY,
            revocation_time=since if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):  # echoed, as RFC 8954 asks
                builder = builder.add_extension(extension.value, critical=False)
        log.info("OCSP %s: serial %x of %s", "revoked" if revoked else "good",
                 request.serial_number, ca.cert.subject.rfc4514_string())
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _issuer(self, request: ocsp.OCSPRequest) -> _Ca | None:
        for ca in self._cas:
            name_hash = hashes.Hash(request.hash_algorithm)
            name_hash.update(ca.cert.subject.public_bytes())
            key_hash = hashes.Hash(request.hash_algorithm)
            key_hash.update(_public_key_bits(ca.cert))
            if (name_hash.finalize() == request.issuer_name_hash
                    and key_hash.finalize() == request.issuer_key_hash):
                return ca
        return None


def _public_key_bits(cert: x509.Certificate) -> bytes:
    # RFC 6960's issuerKeyHash: the hash of the value of the subjectPublicKey BIT STRING.
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    bits: bytes = keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]  # no unused-bits
    return bits


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER)


def ocsp_wsgi_app(responder: DevOcspResponder) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering OCSP over HTTP: POST application/ocsp-request at any path,
    or GET /ocsp/{base64 request} (RFC 6960 appendix A.1, as NSS asks); GET /crl/{ca}.crl, the
    CA's CRL (`signing.devpki.dev_crl_url`); any other GET answers 200 "ok" (health check)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        # equivalent: default "XXXX": a GET of no path is answered "ok" either way
        path: str = environ.get("PATH_INFO", "")
        if method == "GET" and path.startswith("/ocsp/"):
            try:
                request = base64.b64decode(path.removeprefix("/ocsp/"), validate=True)
            except ValueError:
                # equivalent: b"XXXX" is no DER either: the same malformedRequest answer
                request = b""
            return _answer(start_response, responder.respond(request))
        if method == "GET" and path.startswith("/crl/") and path.endswith(".crl"):
            crl = responder.crl(path.removeprefix("/crl/").removesuffix(".crl"))
            if crl is None:
                # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
            # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
            start_response("200 OK", [("Content-Type", CRL_TYPE),
                                      # equivalent: name's case (RFC 9110 5.1)
                                      ("Content-Length", str(len(crl)))])
            return [crl]
        if method == "GET":
            # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        if method != "POST":
            # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
            start_response("405 Method Not Allowed", [("Allow", "GET, POST"),
                                                      # equivalent: name's case (RFC 9110 5.1)
                                                      ("Content-Length", "0")])
            return [b""]
        # equivalent: default "XXXX": no Content-Type is refused 415 either way
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip() != REQUEST_TYPE:
            # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
            start_response("415 Unsupported Media Type", [("Content-Length", "0")])
            return [b""]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            # equivalent: -2 or -1: any length below 1 is refused alike
            length = -1
        if not 0 < length <= _MAX_REQUEST:
            # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
            start_response("413 Content Too Large", [("Content-Length", "0")])
            return [b""]
        return _answer(start_response, responder.respond(environ["wsgi.input"].read(length)))

    return app


def _answer(start_response: Callable[..., Any], answer: bytes) -> Iterable[bytes]:
    # equivalent: case of reason/names (ignored: RFC 9112 4, RFC 9110 5.1)
    start_response("200 OK", [("Content-Type", RESPONSE_TYPE),
                              # equivalent: name's case (RFC 9110 5.1)
                              ("Content-Length", str(len(answer)))])
    return [answer]
