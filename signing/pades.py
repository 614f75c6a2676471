"""PAdES signing of a rendered PDF with the configured backend (pyHanko underneath): B-B; B-T
with a timestamper (signing/timestamps.py); B-LT with revocation information for the whole chain
embedded as well (signing/revocation.py), and B-LTA with a document timestamp over it all."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from io import BytesIO
from typing import Final

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    PdfSigningSession,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError
from pyhanko_certvalidator.path import ValidationPath

from signing.backend import SignerBackend
from signing.errors import RevocationUnavailable, SignatureTooLarge, SigningError
from signing.kept_paths import KeptPaths
from signing.timestamps import TsaUnavailable

STANDARD_INFO_KEYS: Final = frozenset(
    {
        "Title",
        "Author",
        "Subject",
        "Keywords",
        "Creator",
        "Producer",
        "CreationDate",
        "ModDate",
        "Trapped",
    }
)
"""Document information keys defined by ISO 32000; `info` may not set them."""

_INFO_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_MAX_INFO_VALUE: Final = 8192
_DIGEST: Final = "sha256"
# pyHanko reports an undersized reservation only through this message.
_TOO_LARGE_MESSAGE: Final = "Final ByteRange payload larger than expected"
# B-LTA: the validation data in the revision of the document timestamp, the TSA's written
# before the stamp, so the stamp covers it: two revisions (signed, then validation data and
# document timestamp), not four. No VRI dictionary: PAdES deprecates it (ETSI EN 319 142-1),
# and with it the TSA's data must follow the stamp in a revision of its own.
_DSS: Final = DSSContentSettings(
    include_vri=False,
    next_ts_settings=TimestampDSSContentSettings(
        include_vri=False,
        # equivalent in output while one TSA makes both timestamps (pyHanko then finds nothing
        # new to add after the stamp); without it pyHanko re-reads the file to find that out.
        update_before_ts=True))  # equivalent (see above)


class PadesSigner:
    """Signs PDFs as PAdES B-B (ETSI.CAdES.detached, SHA-256) with one backend, or B-T when
    given a timestamper: the signature then carries an RFC 3161 timestamp of itself.

    Create one per process and call `sign` as often as needed: it holds only the backend's
    signer and immutable settings, and builds every per-document pyHanko object afresh.
    """

    def __init__(
        self,
        backend: SignerBackend,
        *,
        bytes_reserved: int = 16384,
        field_name: str = "PramaanSignature",
        timestamper: TimeStamper | None = None,
        revocation: Callable[[], ValidationContext] | None = None,
        archival: bool = False,
    ) -> None:
        """Sign with `backend`, reserving `bytes_reserved` hex digits for the CMS container.

        With `revocation` (which needs a timestamper), each signature is B-LT: the context it
        returns (kept for a while: signing.revocation.ReusedContext, and the paths it
        validated with it: signing/kept_paths.py) validates the signer's chain with revocation
        information, and that information goes into the document security store; with
        `archival` as well it is B-LTA: the TSA's revocation information joins it, and a
        document timestamp closes it.

        A fixed reservation spares pyHanko's sizing dry run (SIGNING.md, trap 2); a signature
        that does not fit fails loudly with `SignatureTooLarge`. A B-T signature of the dev
        TSA's takes about 14,200 of the default 16,384; a TSA embedding a longer chain may need
        more.
        """
        if bytes_reserved <= 0 or bytes_reserved % 2:  # equivalent: `<= 1` (1 is odd)
            raise SigningError(
                f"bytes_reserved must be a positive even number, got {bytes_reserved}",
                code="invalid_signing_config",
            )
        if (revocation is not None or archival) and timestamper is None:
            raise SigningError("B-LT and B-LTA need a TSA", code="invalid_signing_config")
        if archival and revocation is None:
            raise SigningError("B-LTA needs revocation information", code="invalid_signing_config")
        self._signer: Signer = backend.signer
        self._bytes_reserved = bytes_reserved
        self._field_name = field_name
        self._timestamper = timestamper
        self._revocation = revocation
        self._archival = archival
        self._paths = KeptPaths()
        if revocation is not None:
            _quiet_offline_notice()

    @property
    def level(self) -> str:
        """The PAdES level this signer writes: B-B, B-T, B-LT or B-LTA."""
        if self._archival:
            return "B-LTA"
        if self._revocation is not None:
            return "B-LT"
        return "B-B" if self._timestamper is None else "B-T"

    def sign(
        self,
        pdf: bytes,
        *,
        reason: str,
        location: str,
        info: Mapping[str, str] | None = None,
        signing_time: dt.datetime | None = None,
    ) -> bytes:
        """Return `pdf` with one incremental revision adding `info` and a PAdES signature (B-LT
        adds a revision holding the validation data; at B-LTA that revision holds the TSA's
        too, and a document timestamp over it all).

        `info` entries become custom keys of the document information dictionary in the signed
        revision, so the signature covers them (e.g. {"PramaanSeal": qr_text}).
        `signing_time` (timezone-aware, default now) is the claimed signing time; the output
        is reproducible except for it, the /ModDate pyHanko stamps and the random second half
        of the file /ID.
        Raises `SignatureTooLarge` if the signature exceeds `bytes_reserved`,
        `TsaUnavailable` if a timestamp was wanted and none came, and `SigningError` for an
        unreadable or already signed input.
        """
        entries = _checked_info(info or {})
        moment = signing_time or dt.datetime.now(dt.UTC)
        if moment.tzinfo is None:
            raise SigningError("signing_time must be timezone-aware", code="invalid_signing_time")
        writer = _open_for_update(pdf)
        _write_info(writer, entries)
        metadata = PdfSignatureMetadata(
            field_name=self._field_name,
            md_algorithm=_DIGEST,
            subfilter=SigSeedSubFilter.PADES,
            reason=reason,
            location=location,
            embed_validation_info=self._revocation is not None,
            use_pades_lta=self._archival,
            validation_context=self._revocation() if self._revocation is not None else None,
            signer_key_usage={"digital_signature", "non_repudiation"},
            dss_settings=_DSS,
        )
        pdf_signer = _PdfSignerAt(metadata, self._signer, moment, self._timestamper,
                                  self._paths)
        output = BytesIO()
        try:
            pdf_signer.sign_pdf(writer, bytes_reserved=self._bytes_reserved, output=output)
        except PyHankoSigningError as exc:
            _forget(self._revocation)
            if str(exc).startswith(_TOO_LARGE_MESSAGE):
                raise SignatureTooLarge(
                    f"the signature does not fit in bytes_reserved={self._bytes_reserved}: {exc}"
                ) from exc
            if self._revocation is not None and "could not be validated" in str(exc):
                if _revocation_missing(exc):
                    raise RevocationUnavailable(
                        f"no current revocation information for the signer's chain (a "
                        f"responder or CRL server did not answer, or answered out of date): "
                        f"{_cause(exc)}") from exc
                raise SigningError(f"the signer's chain cannot be validated (revoked, or not "
                                   f"chaining to a trusted root): {_cause(exc)}",
                                   code="signer_unvalidated") from exc
            raise SigningError(f"PAdES signing failed: {exc}", code="pades_failed") from exc
        except TimestampRequestError as exc:
            raise TsaUnavailable(f"no timestamp from the TSA: {exc}") from exc
        return output.getvalue()


_OFFLINE_NOTICE: Final = "Validation/revocation info will be embedded, but fetching is not allowed"


class _DropOfflineNotice(logging.Filter):
    """pyHanko warns on every long-term signature whose validation context may not fetch:
    ours are meant so (the dev CAs' own revocation information, or what a kept context
    fetched), so the notice would fill the workers' logs with a line per document."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_OFFLINE_NOTICE)


def _quiet_offline_notice() -> None:
    logger = logging.getLogger("pyhanko.sign.signers.pdf_signer")
    if not any(isinstance(f, _DropOfflineNotice) for f in logger.filters):
        logger.addFilter(_DropOfflineNotice())


def _forget(revocation: object) -> None:
    # A context kept for reuse (signing.revocation.ReusedContext) is not kept past a failure.
    forget = getattr(revocation, "forget", None)
    if callable(forget):
        forget()


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and its explicit causes (`raise ... from`), outermost first. Not the implicit
    context: an error raised while the caller handles another (a retry inside an `except`)
    has that one as its context, which says nothing about why this signing failed."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__
    return found


def _revocation_missing(exc: BaseException) -> bool:
    """Whether pyHanko could not validate the signer's chain for want of (current) revocation
    information (certvalidator's InsufficientRevinfoError, StaleRevinfoError among them), not
    because anything is revoked (RevokedError) or untrusted."""
    return any(isinstance(c, InsufficientRevinfoError) for c in _causes(exc))


def _cause(exc: BaseException) -> str:
    """The innermost explicit cause's message (pyHanko's own says nothing). Each says
    something (pyHanko 0.38, certvalidator 0.33): pyHanko's (the caller found "could not be
    validated" in it), the path error certvalidator chains to it, and the one error chained to
    that (the policy graph overflowing); tests/test_pades_refusals.py reads one three deep."""
    return str(_causes(exc)[-1])


class _PdfSignerAt(PdfSigner):
    """A `PdfSigner` whose signing time is given instead of read from the clock, and whose
    check of the signer's chain (B-LT, B-LTA) is kept with the validation context
    (signing/kept_paths.py).

    pyHanko 0.38 takes the time from `PdfSigningSession.system_time`, which
    `init_signing_session` always sets to now; we overwrite it before anything reads it.
    """

    def __init__(
        self, metadata: PdfSignatureMetadata, signer: Signer, signing_time: dt.datetime,
        timestamper: TimeStamper | None, paths: KeptPaths,
    ) -> None:
        super().__init__(metadata, signer, timestamper=timestamper)
        self._signing_time = signing_time
        self._paths = paths

    # pyHanko 0.38 always passes existing_fields_only, and `sign` never asks for existing
    # fields only (it is False), so its default, None or leaving it out change nothing.
    def init_signing_session(
        self, pdf_out: BasePdfFileWriter, existing_fields_only: bool = False  # equivalent
    ) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only)  # equivalent
        session.system_time = self._signing_time
        validate = session._perform_presign_signer_validation

        async def kept(context: ValidationContext, key_usage: set[str]) -> ValidationPath:
            async def one() -> list[ValidationPath]:
                return [await validate(context, key_usage)]  # type: ignore[no-untyped-call]

            paths = await self._paths.paths(context, frozenset(key_usage), one)
            return paths[0]

        # pyHanko 0.38 validates the signer's chain in this one method (perform_presign_
        # validation); tests/test_kept_paths.py fails if it stops calling it.
        session._perform_presign_signer_validation = kept  # type: ignore[method-assign]
        return session


def _checked_info(info: Mapping[str, str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for key, value in info.items():
        if not _INFO_KEY.fullmatch(key) or key in STANDARD_INFO_KEYS:
            raise SigningError(
                f"info key {key!r} must be a custom ASCII name (letters and digits)",
                code="invalid_info",
            )
        if not isinstance(value, str) or len(value) > _MAX_INFO_VALUE:
            raise SigningError(
                f"info value for {key!r} must be a string of at most {_MAX_INFO_VALUE} chars",
                code="invalid_info",
            )
        entries[key] = value
    return entries


def _open_for_update(pdf: bytes) -> IncrementalPdfFileWriter:
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=True)  # equivalent: without strict (default)
        already_signed = bool(reader.embedded_signatures)
        writer = IncrementalPdfFileWriter.from_reader(reader)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SigningError(f"the PDF to sign cannot be read: {exc}", code="unreadable_pdf") from exc
    if already_signed:
        raise SigningError("the PDF to sign is already signed", code="already_signed")
    return writer


def _write_info(writer: IncrementalPdfFileWriter, entries: Mapping[str, str]) -> None:
    if not entries:
        return
    values = {generic.NameObject(f"/{k}"): generic.TextStringObject(v) for k, v in entries.items()}
    try:
        info_ref = writer.trailer.raw_get("/Info")
    except KeyError:
        writer.set_info(generic.DictionaryObject(values))  # type: ignore[no-untyped-call]
        return
    # pyHanko 0.38's incremental writer always holds /Info as an indirect object, even when the
    # input's trailer has a direct dictionary, so mutants of this branch cannot be observed.
    if not isinstance(info_ref, generic.IndirectObject):  # equivalent: unreachable (see above)
        # A direct /Info dictionary lives in the trailer, which the new revision rewrites anyway.
        merged = generic.DictionaryObject({**info_ref, **values})  # type: ignore[no-untyped-call]  # equivalent: unreachable
        writer.set_info(merged)  # equivalent: unreachable (see above)
        return
    info = info_ref.get_object()  # type: ignore[no-untyped-call]
    if not isinstance(info, generic.DictionaryObject):
        raise SigningError("the PDF's /Info entry is not a dictionary", code="unreadable_pdf")
    info.update(values)
    writer.mark_update(info_ref)
