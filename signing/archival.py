"""Keeping a B-LTA certificate verifiable for decades: before the newest timestamp's TSA
certificate expires, add an archival document timestamp from a TSA whose certificate lasts
longer, with current revocation information for the timestamp chain it covers
(ETSI EN 319 142-1, PAdES-LTA; `pramaan ltv refresh`).

The revocation information embedded in a round: OCSP answers for the end entities (every TSA
certificate the file holds that is still valid, and the new TSA's), and CRLs only of the CAs
that issue no end entity of the file. pyHanko's past validation takes only OCSP as evidence of
an expired end entity's status, and a CRL of its CA issued after it expired would put the time
slide past that expiry (docs/long-term-signatures-spike.md, session 19).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Final

from cryptography import x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathError, ValidationError

from signing.errors import SigningError
from signing.long_term import _clock_at, _tsa_certs
from signing.revocation import DevRevocationAuthority, RevocationSource, is_ca, offline_context
from signing.timestamps import TsaUnavailable

DEFAULT_HORIZON: Final = dt.timedelta(days=365)
"""Refresh when the newest timestamp's TSA certificate expires within this long."""


@dataclass(frozen=True)
class Due:
    """Whether a file needs an archival timestamp now, and why (or why not)."""

    due: bool
    reason: str
    expires: dt.datetime | None = None


def newest_timestamp_expiry(pdf: bytes) -> dt.datetime | None:
    """When the certificate of the newest document timestamp's TSA expires; None for a file
    without a document timestamp (B-B, B-T, B-LT: nothing to refresh)."""
    # Lenient, as `ArchivalStamper.refresh` reads it. pyHanko reads `strict` as a truth value.
    reader = PdfFileReader(BytesIO(pdf), strict=False)  # equivalent: strict=None (see above)
    stamps = reader.embedded_timestamp_signatures
    if not stamps:
        return None
    newest = max(stamps, key=lambda s: s.signed_revision)
    expiry: dt.datetime = newest.signer_cert.not_valid_after
    return expiry


def is_due(pdf: bytes, tsa_certificate: x509.Certificate, now: dt.datetime,
           horizon: dt.timedelta = DEFAULT_HORIZON) -> Due:
    """Whether `pdf` needs a round now, with `tsa_certificate` the one that would stamp it: only
    when its newest timestamp's TSA certificate expires within `horizon` and the new one lasts
    longer (a round with the same TSA certificate would gain nothing)."""
    expires = newest_timestamp_expiry(pdf)
    if expires is None:
        return Due(False, "no document timestamp (not B-LTA)")
    if expires - horizon > now:
        return Due(False, "its newest timestamp holds beyond the horizon", expires)
    if tsa_certificate.not_valid_after_utc <= expires:
        return Due(False, "the TSA's certificate expires no later than the newest timestamp's: "
                   "renew the TSA first", expires)
    return Due(True, "its newest timestamp's TSA certificate expires within the horizon", expires)


class ArchivalStamper:
    """Adds archival rounds with one TSA and one source of revocation information."""

    def __init__(self, timestamper: TimeStamper, revocation: RevocationSource,
                 roots: Sequence[x509.Certificate], others: Sequence[x509.Certificate],
                 signer_ca: x509.Name) -> None:
        self._timestamper = timestamper
        self._revocation = revocation
        self._roots = list(roots)
        self._others = list(others)
        self._signer_ca = signer_ca

    def current_tsa_certificate(self) -> x509.Certificate:
        """The certificate the TSA signs with now, read from a timestamp on a probe digest (a
        licensed TSA's is not configured, and it renews on its own schedule).

        Raises `TsaUnavailable` when no timestamp came, `SigningError` when the token names no
        certificate it carries."""
        try:
            token = asyncio.run(self._timestamper.async_timestamp(
                # equivalent: any probe digest asks the same (only the token's certificate is read)
                hashlib.sha256(b"pramaan: which certificate signs now").digest(), "sha256"))
        except TimestampRequestError as exc:
            raise TsaUnavailable(f"no timestamp from the TSA: {exc}") from exc
        signed = token["content"]
        sid = signed["signer_infos"][0]["sid"].chosen
        for choice in signed["certificates"] or ():
            if choice.name == "certificate" and choice.chosen.issuer == sid["issuer"] and (
                    choice.chosen.serial_number == sid["serial_number"].native):
                return x509.load_der_x509_certificate(choice.chosen.dump())
        raise SigningError("the TSA's timestamp does not carry its certificate",
                           code="archival_failed")

    def refresh(self, pdf: bytes, now: dt.datetime | None = None) -> bytes:
        """`pdf` with a round added (two revisions: validation data with the new document
        timestamp, then the new TSA's validation data). `now` other than the present is for
        simulations (the TSA and revocation source must keep the same clock).

        Raises `TsaUnavailable` when no timestamp came, `SigningError` when the chain of the
        newest timestamp cannot be validated or the file cannot be read."""
        # equivalent: astimezone(None) (the same instant in the local zone: every reader below
        # compares aware times or converts to UTC first); now(None) (naive local time, which
        # astimezone reads as local time, DST folds included)
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        output = BytesIO()
        try:
            # equivalent: strict=None (pyHanko reads `strict` as a truth value)
            reader = PdfFileReader(BytesIO(pdf), strict=False)
            if not reader.embedded_regular_signatures:
                raise SigningError("the PDF holds no signature to keep", code="unreadable_pdf")
            stamped = [x509.load_der_x509_certificate(c.dump()) for c in _tsa_certs(
                reader.embedded_regular_signatures[0], reader.embedded_timestamp_signatures)]
            # equivalent: _clock_at(None) (the real clock): here pyHanko reads the clock only to
            # date the OCSP answers' proof of existence, which only a time-slide (past) validation
            # consults; the newest timestamp is validated at the context's own moment
            with _clock_at(moment):
                try:
                    PdfTimeStamper(self._timestamper).update_archival_timestamp_chain(
                        # equivalent: in_place None, True or left out (True): pyHanko then
                        # writes into the private BytesIO(pdf) and copies it all into `output`
                        reader, self._context(moment, stamped), in_place=False, output=output)
                except TypeError as exc:
                    # pyHanko 0.38 gathers the newest timestamp's chain for the DSS from a path
                    # it did not find (None) when that chain does not build to the roots.
                    raise SigningError("the archival round failed: the newest timestamp's "
                                       "chain does not build to a trusted root",
                                       code="archival_failed") from exc
        except TimestampRequestError as exc:
            raise TsaUnavailable(f"no archival timestamp from the TSA: {exc}") from exc
        except (PyHankoSigningError, PathError, ValidationError) as exc:
            raise SigningError(f"the archival round failed: {exc}", code="archival_failed") from exc
        except (PdfError, ValueError, KeyError) as exc:
            raise SigningError(f"the PDF cannot be read: {exc}", code="unreadable_pdf") from exc
        return output.getvalue()

    def _context(self, now: dt.datetime,
                 stamped: Sequence[x509.Certificate]) -> ValidationContext:
        if not isinstance(self._revocation, DevRevocationAuthority):
            return self._revocation.validation_context(self._roots, self._others, now)
        # End entities (the signer, every TSA) by OCSP only: a CA's CRL issued after one of
        # its end entities expired would put pyHanko's time slide past that expiry.
        end_entities = [*stamped, *(c for c in self._others if not is_ca(c))]
        issuers = {self._signer_ca, *(c.issuer for c in end_entities)}
        crls = [c for c in self._revocation.crls(now) if c.issuer not in issuers]
        answers = [self._revocation.ocsp(c, now) for c in end_entities
                   if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
        return offline_context(self._roots, self._others, crls, answers, now)

