"""The two pull operations DigiLocker calls on us: Pull URI (a citizen searches) and Pull Doc (a
citizen opens a URI), PROTOCOL.md §2-3. Framework-free: the request arrives parsed and
authenticated (request_auth, xml_body); records come through the `Records` protocol.

Answers: Status 1 with the document; 9 (pending) when the Aadhaar details DigiLocker sent do not
fit the certificate (holder_match); 0 for everything else. `format` xml/pdf/both, absent = PDF.

Superseded and revoked (README "DigiLocker"): a URI keeps naming the certificate across
corrections, so Pull Doc on a superseded certificate's URI returns the certificate that now stands
in its place (the end of its `superseded_by` chain, its own number, `prevNumber` the one it
corrects); a revoked certificate, or a chain that ends in one, is Status 0: DigiLocker is told
of the revocation by a push (action D) and must not be handed a revoked document.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from digilocker.certificate_xml import Facts, Issuer, certificate_xml
from digilocker.holder_match import Claim, matches, people
from digilocker.uri import document_uri, our_document
from digilocker.xml_body import PullRequest, render_response
from issuer.aadhaar import aadhaar_key, match_aadhaar
from issuer.certtypes import doc_type_code, known_types
from issuer.errors import ConfigError
from issuer.settings import Settings

if TYPE_CHECKING:
    from digilocker.records import Pulled

SUCCESS, ERROR, PENDING = "1", "0", "9"
FORMATS = ("", "pdf", "xml", "both")
URI_ROOT, DOC_ROOT = "PullURIRequest", "PullDocRequest"
_ECHOED = ("DocType", "DigiLockerId", "FullName", "DOB")
DEFAULT_SEARCH: Mapping[str, tuple[str, ...]] = {
    "birth": ("RegistrationNumber", "DateOfBirth"),
    "death": ("RegistrationNumber", "DateOfDeath"),
    "property_no_dues": ("PropertyId",),
}


class Records(Protocol):
    """Where pulls find certificates (digilocker/records.py: the database and the PDF store)."""

    def search(self, kind: str, values: Sequence[str]) -> Pulled | None:
        """The one issued certificate of `kind` these search values name, or None (none, or
        more than one that could be meant)."""

    def by_id(self, doc_id: str) -> Pulled | None:
        """The certificate with this record id, in any state."""

    def current(self, record: Pulled) -> Pulled | None:
        """The issued certificate standing for `record` (itself, or the end of its supersession
        chain), or None when that is revoked or not issued."""

    def previous_number(self, record: Pulled) -> str:
        """The number of the certificate `record` corrects, or ""."""

    def pdf_base64(self, record: Pulled) -> str:
        """The Base64 of the stored signed PDF, checked against its recorded SHA-256."""

    def disclosed(self, record: Pulled, operation: str, txn: str) -> None:
        """Note that `record` was handed to DigiLocker (a log line; no personal data)."""


@dataclass(frozen=True)
class PullConfig:
    """What the operations need of the settings."""

    issuer: Issuer
    doc_types: Mapping[str, str]  # certificate type -> DigiLocker doc type code
    search: Mapping[str, tuple[str, ...]]  # certificate type -> element names, in order
    uid_hmac: Callable[[str], str]  # "" when the UID cannot be hashed

    def kind_of(self, doc_type: str) -> str | None:
        """The certificate type published under `doc_type`, or None."""
        return next((kind for kind, code in self.doc_types.items() if code == doc_type), None)

    def search_names(self, kind: str) -> tuple[str, ...]:
        """The element names of `kind`'s search parameters, in the type's order."""
        return self.search.get(kind) or DEFAULT_SEARCH.get(kind, ())

    @classmethod
    def from_settings(cls, settings: Settings) -> PullConfig:
        """Issuer id and name, doc type codes (PRAMAAN_DOCTYPE_CODES), search parameter names
        (PRAMAAN_DIGILOCKER_SEARCH) and the Aadhaar HMAC key, as configured."""
        def uid_hmac(uid: str) -> str:
            try:
                return match_aadhaar(uid, aadhaar_key(settings))
            except (ValueError, ConfigError):
                return ""  # not 12 digits, or no key: the UID cannot be confirmed
        return cls(
            issuer=Issuer(name=settings.issuer_name_en, code=settings.digilocker_issuer_id),
            doc_types={code: doc_type_code(settings, kind)
                       for code, kind in known_types().items()},
            search=settings.digilocker_search,
            uid_hmac=uid_hmac,
        )


def error(root: str, request: PullRequest | None) -> bytes:
    """Status 0, echoing ts and txn when the request could be read."""
    ts, txn = (request.ts, request.txn) if request is not None else ("", "")
    return render_response(_response_root(root), ERROR, ts, txn)


def pull_uri(request: PullRequest, config: PullConfig, records: Records) -> bytes:
    """Answer a Pull URI request: find the certificate the search parameters name."""
    details = request.details
    kind = config.kind_of(details.get("DocType", ""))
    if kind is None or request.format not in FORMATS:
        return error(URI_ROOT, request)
    names = config.search_names(kind)
    values = [details.get(name) or details.get(f"UDF{i}", "") for i, name in
              enumerate(names, start=1)]
    echo = _echo(details, names)
    if not names or not all(values):
        return error(URI_ROOT, request)
    record = records.search(kind, values)
    if record is None:
        return error(URI_ROOT, request)
    if not _holder_fits(request, config, record):
        return render_response("PullURIResponse", PENDING, request.ts, request.txn, echo)
    doc_type = config.doc_types[kind]
    uri = document_uri(config.issuer.code, doc_type, record.id)
    contents = _contents(request, config, records, record, kind, doc_type)
    records.disclosed(record, "pulluri", request.txn)
    return render_response("PullURIResponse", SUCCESS, request.ts, request.txn,
                           [*echo, ("URI", uri), *contents], _persons(kind, record))


def pull_doc(request: PullRequest, config: PullConfig, records: Records) -> bytes:
    """Answer a Pull Doc request: the document a URI names (see the module on supersession)."""
    parts = our_document(request.details.get("URI", ""), config.issuer.code)
    kind = config.kind_of(parts[0]) if parts else None
    if parts is None or kind is None or request.format not in FORMATS:
        return error(DOC_ROOT, request)
    named = records.by_id(parts[1])
    if named is None or named.cert_type != kind:
        return error(DOC_ROOT, request)
    record = records.current(named)
    if record is None:
        return error(DOC_ROOT, request)
    if not _holder_fits(request, config, record):
        return render_response("PullDocResponse", PENDING, request.ts, request.txn)
    contents = _contents(request, config, records, record, kind, parts[0])
    records.disclosed(record, "pulldoc", request.txn)
    return render_response("PullDocResponse", SUCCESS, request.ts, request.txn, contents)


def _response_root(request_root: str) -> str:
    return "PullDocResponse" if request_root == DOC_ROOT else "PullURIResponse"


def _holder_fits(request: PullRequest, config: PullConfig, record: Pulled) -> bool:
    details = request.details
    uid = details.get("UID", "")
    claim = Claim(full_name=details.get("FullName", ""), dob=details.get("DOB", ""),
                  uid_sent=bool(uid), uid_hmac=config.uid_hmac(uid) if uid else "")
    if claim.empty:
        return True
    return matches(claim, people(record.cert_type, record.request, record.aadhaar_hmac))


def _contents(request: PullRequest, config: PullConfig, records: Records, record: Pulled,
              kind: str, doc_type: str) -> list[tuple[str, str]]:
    contents: list[tuple[str, str]] = []
    if request.format in ("", "pdf", "both"):
        contents.append(("DocContent", records.pdf_base64(record)))
    if request.format in ("xml", "both"):
        issued = record.issued_at.date() if record.issued_at else date.today()
        facts = Facts(kind=kind, doc_type=doc_type, number=record.number or "",
                      prev_number=records.previous_number(record), issued=issued,
                      issued_at=str((record.request.get("ward_office") or {}).get("en", "")))
        data = certificate_xml(config.issuer, facts, record.request)
        contents.append(("DataContent", base64.b64encode(data).decode("ascii")))
    return contents


def _echo(details: Mapping[str, str], names: Sequence[str]) -> list[tuple[str, str]]:
    """DocDetails as sent (§2.3), the UID masked as UIDAI masks it (last four digits only)."""
    echo = [(name, details[name]) for name in _ECHOED[:2] if name in details]
    uid = details.get("UID", "")
    if uid:
        echo.append(("UID", "xxxxxxxx" + uid[-4:] if len(uid) >= 4 else ""))
    echo += [(name, details[name]) for name in _ECHOED[2:] if name in details]
    echo += [(name, details[name]) for name in names if name in details]
    echo += [(name, value) for name, value in details.items()
             if name.startswith("UDF") and name not in names]
    return echo


def _persons(kind: str, record: Pulled) -> list[dict[str, str]]:
    """v1.11's holder details for DigiLocker's own name matching (§2.3, layout as Assam/CGHS
    emit it): the holder's name, and the date of birth where the certificate has one."""
    request = record.request
    if kind == "birth":
        child = request["child"]
        dob = str(child.get("date_of_birth", ""))
        return [{"name": child["name"]["en"], "dob": f"{dob[8:10]}-{dob[5:7]}-{dob[:4]}",
                 "gender": {"male": "M", "female": "F"}.get(child.get("sex"), "T")}]
    if kind == "death":
        return [{"name": request["deceased"]["name"]["en"]}]
    return [{"name": owner["name"]["en"]} for owner in request.get("owners", ())]
