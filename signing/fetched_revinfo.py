"""Current revocation information for a verifier in production: fetched over HTTP from the
addresses the certificates themselves name (CRL distribution points, the OCSP responder in
the authority information access), as a PDF reader does.

A long-term signature (B-LT, B-LTA) is judged with the status information it carries and,
for what must be current (the newest timestamp's TSA, the CAs above the end entities), with
current status. Without it a production certificate read as untrusted two days after it was
signed, once its embedded OCSP answers and CRLs were stale. The development deployment makes
its own (signing/revocation.py, `DevRevocationAuthority`).

What is fetched is believed only when signed by the certificate's issuer (a CRL) or by the
issuer or a responder it delegated to (OCSP): the addresses are plain HTTP. Answers are kept
until their nextUpdate, at most `MAX_AGE`; a server that does not answer costs `timeout` once
and gives nothing (the verdict then rests on the file's own data). It fetches the present
state whatever moment is asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from signing.revocation import issuer_of

log = logging.getLogger(__name__)

MAX_AGE: Final = dt.timedelta(hours=1)
"""The longest an answer is kept, whatever its nextUpdate says."""
RETRY_AFTER: Final = dt.timedelta(minutes=1)
"""How long a server that gave nothing is left alone."""
MAX_CRL_BYTES: Final = 20 * 1024 * 1024
MAX_OCSP_BYTES: Final = 64 * 1024


class FetchedRevinfo:
    """`signing.validate.FreshRevinfo` from the certificates' own addresses (see the module)."""

    def __init__(self, *, timeout: float = 5.0,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self._timeout = timeout
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._crls: dict[str, tuple[dt.datetime, x509.CertificateRevocationList | None]] = {}
        self._answers: dict[tuple[bytes, int], tuple[dt.datetime, bytes | None]] = {}

    def crls(self, now: dt.datetime | None = None,
             certs: Sequence[x509.Certificate] = ()) -> list[x509.CertificateRevocationList]:
        """The current CRL named by each of `certs` (its issuer's), signed by that issuer."""
        found: dict[bytes, x509.CertificateRevocationList] = {}
        for cert in certs:
            issuer = issuer_of(cert, certs)
            if issuer is None:
                continue
            for url in _crl_urls(cert):
                crl = self._crl(url, issuer)
                if crl is not None:
                    found[crl.public_bytes(serialization.Encoding.DER)] = crl
        return list(found.values())

    def ocsp(self, cert: x509.Certificate, now: dt.datetime | None = None,
             issuer: x509.Certificate | None = None) -> bytes | None:
        """A current OCSP answer on `cert` from its responder, signed by `issuer` or a
        responder it delegated to; None without an issuer, an address, or an answer."""
        if issuer is None:
            return None
        key = (issuer.subject.public_bytes(), cert.serial_number)
        with self._lock:
            kept = self._answers.get(key)
            if kept is not None and kept[0] > self._clock():
                return kept[1]
        answer = None
        for url in _ocsp_urls(cert):
            answer = self._ask(url, cert, issuer)
            if answer is not None:
                break
        with self._lock:
            self._answers[key] = (self._until(answer is not None, None if answer is None else (
                ocsp.load_der_ocsp_response(answer).next_update_utc)), answer)
        return answer

    def _crl(self, url: str, issuer: x509.Certificate) -> x509.CertificateRevocationList | None:
        with self._lock:
            kept = self._crls.get(url)
            if kept is not None and kept[0] > self._clock():
                return kept[1]
        crl = None
        body = self._fetch(url, None, MAX_CRL_BYTES)
        if body is not None:
            try:
                loaded = (x509.load_der_x509_crl(body) if not body.lstrip().startswith(b"-----")
                          else x509.load_pem_x509_crl(body))
                if loaded.issuer == issuer.subject and loaded.is_signature_valid(
                        issuer.public_key()):  # type: ignore[arg-type]
                    crl = loaded
                else:
                    log.warning("the CRL at %s is not signed by %s", url,
                                issuer.subject.rfc4514_string())
            except (ValueError, TypeError) as exc:
                log.warning("the CRL at %s cannot be read: %s", url, exc)
        with self._lock:
            until = self._until(crl is not None, None if crl is None else crl.next_update_utc)
            self._crls[url] = (until, crl)
        return crl

    def _ask(self, url: str, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        request = ocsp.OCSPRequestBuilder().add_certificate(
            cert, issuer, hashes.SHA1()  # noqa: S303 (the CertID of RFC 6960 responders)
        ).build().public_bytes(serialization.Encoding.DER)
        body = self._fetch(url, request, MAX_OCSP_BYTES)
        if body is None:
            return None
        try:
            answer = ocsp.load_der_ocsp_response(body)
            # An unsuccessful answer has no serial number either (reading it raises
            # ValueError, refused below): this says why in the log.
            status = answer.response_status
            if status != ocsp.OCSPResponseStatus.SUCCESSFUL:  # equivalent: see above
                log.warning("the OCSP responder at %s answered %s", url, status)
                return None
            if answer.serial_number != cert.serial_number or not _signed_for(answer, issuer):
                log.warning("the OCSP answer from %s is not on %s or not signed for its issuer",
                            url, cert.subject.rfc4514_string())
                return None
        except ValueError as exc:
            log.warning("the OCSP answer from %s cannot be read: %s", url, exc)
            return None
        return body

    def _fetch(self, url: str, ocsp_request: bytes | None, limit: int) -> bytes | None:
        if not url.startswith(("http://", "https://")):
            return None
        # equivalent: urllib capitalizes a header's name (Content-type), whatever its case
        headers = {"Content-Type": "application/ocsp-request"} if ocsp_request else {}
        request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
            # equivalent: urllib posts iff data is not None; ocsp_request: None or a DER request
            url, data=ocsp_request, headers=headers, method="POST" if ocsp_request else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body: bytes = response.read(limit + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("revocation information from %s unavailable: %s", url, exc)
            return None
        if len(body) > limit:
            log.warning("revocation information from %s is larger than %d bytes", url, limit)
            return None
        return body

    def _until(self, found: bool, next_update: dt.datetime | None) -> dt.datetime:
        # Kept until its nextUpdate, at most MAX_AGE (none: MAX_AGE); nothing: RETRY_AFTER.
        now = self._clock()
        if not found:
            return now + RETRY_AFTER
        return min(next_update or now + MAX_AGE, now + MAX_AGE)


def _signed_for(answer: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Whether `answer` is signed by `issuer`, or by a responder certificate issued by it for
    OCSP signing and sent with the answer (RFC 6960, 4.2.2.2)."""
    signers = [issuer]
    for delegate in answer.certificates:
        try:
            delegate.verify_directly_issued_by(issuer)
            usage = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage:
            signers.append(delegate)
    return any(_verifies(signer, answer) for signer in signers)


def _verifies(signer: x509.Certificate, answer: ocsp.OCSPResponse) -> bool:
    key = signer.public_key()
    algorithm = answer.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)]


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in access
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]
