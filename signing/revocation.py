"""Revocation information for the long-term signature levels (PAdES B-LT, B-LTA): what proves,
inside the PDF, that no certificate of the chain was revoked when it was signed.

`DevRevocationAuthority` is the development deployment's own: each dev CA (root, document
signer CA, TSA CA) issues a CRL signed with its key (keys/*.key), and OCSP answers on the end
entities it issued (the document signer, the TSA), made in process, so a newcomer's first
certificate is long-term without any server. The OCSP answers are what lets a certificate
outlive its signer and TSA certificates (see `DevRevocationAuthority.validation_context`).
`FetchingRevocation` is production's: revocation information is fetched from the addresses the
certificates name (their CA's OCSP responder and CRL distribution points). Both hand pyHanko a
`ValidationContext` that demands revocation information for every certificate of the chain,
so a signature is never embedded without it. (A verifier's current information in production:
signing/fetched_revinfo.py.)
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from signing.file_backend import to_asn1_certificate

CRL_VALIDITY: Final = dt.timedelta(days=7)
"""How long a dev CRL is current (nextUpdate - thisUpdate). Longer than an OCSP answer, as
CAs' usually are, and it must be: pyHanko's time slide moves an end entity's control time to
the end of its OCSP answer, where its CA's CRL from a moment earlier must still be current."""
OCSP_VALIDITY: Final = dt.timedelta(days=1)
"""How long a dev OCSP answer is current."""
CRL_REISSUE: Final = dt.timedelta(hours=1)
"""A dev CRL is made afresh after this long (whole-second times, a monotonic CRL number)."""

REQUIRE_REVINFO: Final = CertRevTrustPolicy(RevocationCheckingPolicy(
    ee_certificate_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
    intermediate_ca_cert_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
))
"""Every certificate below the root must have revocation information, CRL or OCSP."""

CONTEXT_REUSE: Final = dt.timedelta(minutes=5)
"""How long one validation context serves the signatures a thread makes (`ReusedContext`)."""

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class RevocationSource(Protocol):
    """Where the revocation information embedded in a long-term signature comes from."""

    def validation_context(self, roots: Sequence[x509.Certificate],
                           others: Sequence[x509.Certificate],
                           now: dt.datetime | None = None) -> ValidationContext:
        """A context for pyHanko that validates the chain at `now` with revocation info."""
        ...


class FetchingRevocation:
    """Production: fetch OCSP responses and CRLs from the addresses in the certificates."""

    def validation_context(self, roots: Sequence[x509.Certificate],
                           others: Sequence[x509.Certificate],
                           now: dt.datetime | None = None) -> ValidationContext:
        return ValidationContext(
            trust_roots=[to_asn1_certificate(c) for c in roots],
            other_certs=[to_asn1_certificate(c) for c in others],
            allow_fetching=True, revinfo_policy=REQUIRE_REVINFO, moment=now)


@dataclass(frozen=True)
class Revoked:
    """A revoked certificate: since when, and why (an RFC 5280 reason)."""

    since: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise


class DevRevocationAuthority:
    """CRLs of the development CAs, made in process from their keys.

    `issuers` are the CAs (certificate and key); `revoked` maps (issuer subject, serial) of
    certificates to revoke (tests; the dev deployment revokes nothing). CRLs are cached and made
    afresh every CRL_REISSUE, with whole-second times (poppler and NSS mis-read fractions).
    """

    def __init__(self, issuers: Sequence[tuple[x509.Certificate, CaKey | Callable[[], CaKey]]],
                 revoked: Mapping[tuple[x509.Name, int], Revoked] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        # A key may be given as a function that loads it: the CA keys are read (RSA-3072 key
        # checks, about 0.16 s each) only when a CRL or OCSP answer is first made.
        self._issuers = [(cert, _Lazy(key)) for cert, key in issuers]
        self._revoked = dict(revoked or {})
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[dt.datetime, x509.CertificateRevocationList]] = {}

    def crls(self, now: dt.datetime | None = None,
             certs: Sequence[x509.Certificate] = ()) -> list[x509.CertificateRevocationList]:
        """The current CRL of every CA, as of `now` (default: the clock); `certs` are not
        needed (every dev CA's is given)."""
        moment = (now or self._clock()).astimezone(dt.UTC).replace(microsecond=0)
        return [self._crl(cert, key.get(), moment) for cert, key in self._issuers]

    def _crl(self, cert: x509.Certificate, key: CaKey,
             now: dt.datetime) -> x509.CertificateRevocationList:
        name = cert.subject.public_bytes()
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] <= now < cached[0] + CRL_REISSUE:
                return cached[1]
            made = _build_crl(cert, key, now, [
                (serial, entry) for (issuer, serial), entry in self._revoked.items()
                if issuer == cert.subject and entry.since <= now])
            self._cache[name] = (now, made)
            return made

    def ocsp(self, cert: x509.Certificate, now: dt.datetime | None = None,
             issuer: x509.Certificate | None = None) -> bytes | None:
        """A DER OCSP response on `cert`, signed by the CA that issued it (good, or revoked
        with its time and reason), valid OCSP_VALIDITY; None if no CA of ours issued it
        (`issuer` is not needed: the CA is found among ours)."""
        # equivalent: astimezone(None): same instant; aware times compare as instants and
        # cryptography's OCSP builder encodes them in UTC (a whole-second offset keeps µs)
        moment = (now or self._clock()).astimezone(dt.UTC).replace(microsecond=0)
        ours = next(((c, k) for c, k in self._issuers if c.subject == cert.issuer), None)
        if ours is None:
            return None
        entry = self._revoked.get((cert.issuer, cert.serial_number))
        revoked = entry is not None and entry.since <= moment
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=ours[0], algorithm=hashes.SHA1(),  # noqa: S303 (the CertID of RFC 6960 clients)
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=moment, next_update=moment + OCSP_VALIDITY,
            revocation_time=(entry.since.astimezone(dt.UTC).replace(microsecond=0)
                             if revoked and entry else None),
            revocation_reason=entry.reason if revoked and entry else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, ours[0])
        return builder.sign(ours[1].get(), hashes.SHA256()).public_bytes(
            serialization.Encoding.DER)

    def validation_context(self, roots: Sequence[x509.Certificate],
                           others: Sequence[x509.Certificate],
                           now: dt.datetime | None = None) -> ValidationContext:
        # End entities' status by OCSP as well: pyHanko's past validation takes only an OCSP
        # answer as evidence of an end entity's status once it has expired (a CRL of its CA
        # finds no path there; docs/long-term-signatures-spike.md, session 19).
        return offline_context(roots, others, self.crls(now),
                               [self.ocsp(c, now) for c in others if not is_ca(c)], now)


def offline_context(roots: Sequence[x509.Certificate], others: Sequence[x509.Certificate],
                    crls: Sequence[x509.CertificateRevocationList],
                    ocsps: Sequence[bytes | None],
                    now: dt.datetime | None) -> ValidationContext:
    """A validation context with exactly this revocation information (nothing fetched),
    demanding it for every certificate below the roots; None answers are left out."""
    return ValidationContext(
        trust_roots=[to_asn1_certificate(c) for c in roots],
        other_certs=[to_asn1_certificate(c) for c in others],
        crls=[asn1_crl.CertificateList.load(c.public_bytes(serialization.Encoding.DER))
              for c in crls],
        ocsps=[answer for answer in ocsps if answer],
        allow_fetching=False, revinfo_policy=REQUIRE_REVINFO, moment=now)


class ReusedContext:
    """The validation context `make` gives, kept for `CONTEXT_REUSE` per thread: pyHanko then
    validates the chain, and the revocation information is made (or fetched), once in five
    minutes rather than for every signature (B-LTA signing took 60 ms, 36 with it). The
    embedded status is at most that old, as a CA's OCSP answers usually are. Per thread, as a
    context is not shared safely."""

    def __init__(self, make: Callable[[], ValidationContext],
                 clock: Callable[[], dt.datetime] | None = None,
                 reuse: dt.timedelta = CONTEXT_REUSE) -> None:
        self._make = make
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._reuse = reuse
        self._local = threading.local()

    def forget(self) -> None:
        """Make the next call build a new context (after a failure: the servers may be back,
        or the status changed)."""
        self._local.kept = None

    def __call__(self) -> ValidationContext:
        now = self._clock()
        kept: tuple[dt.datetime, ValidationContext] | None = getattr(self._local, "kept", None)
        if kept is None or not kept[0] <= now < kept[0] + self._reuse:
            kept = (now, self._make())
            self._local.kept = kept
        return kept[1]


def is_ca(cert: x509.Certificate) -> bool:
    """Whether `cert` is a CA's (basic constraints cA true)."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issuer_of(cert: x509.Certificate,
              certs: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The certificate among `certs` that issued `cert` (its signature checked), or None."""
    for candidate in certs:
        if candidate.subject == cert.issuer and candidate != cert:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return candidate
    return None


class _Lazy:
    """A CA key, or the function that loads it on first use (thread-safe, loaded once)."""

    def __init__(self, key: CaKey | Callable[[], CaKey]) -> None:
        self._key = key
        self._lock = threading.Lock()

    def get(self) -> CaKey:
        with self._lock:
            if callable(self._key) and not isinstance(
                    self._key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                self._key = self._key()
            return self._key


def _build_crl(issuer: x509.Certificate, key: CaKey, now: dt.datetime,
               revoked: Sequence[tuple[int, Revoked]]) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        # The epoch second of thisUpdate: monotonic without stored state (one CRL a second).
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()), critical=False)  # type: ignore[arg-type]
    )
    for serial, entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(entry.since.astimezone(dt.UTC).replace(microsecond=0))
            .add_extension(x509.CRLReason(entry.reason), critical=False).build())
    return builder.sign(key, hashes.SHA256())
