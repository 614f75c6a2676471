"""The registry of certificate types: the shipped ones, and any a deployment adds.

A plain dict, filled with the three shipped types when this module is first imported and changed
only by `register` and `unregister`. A deployment that issues another type registers it at
start-up in every process that handles certificates (web, worker, CLI), before the first request:
the web process validates requests of the type, the worker renders them. Nothing else is needed
(README: Certificate types): a schema class, its typst template, one `register` call.
"""

from __future__ import annotations

import re
from pathlib import Path

from issuer.certtypes.base import CertType
from issuer.certtypes.birth import Birth
from issuer.certtypes.death import Death
from issuer.certtypes.property_no_dues import PropertyNoDues
from issuer.settings import Settings

# Type codes go into URLs, the seal and the certificates.cert_type column (32 characters);
# "<code>/<n>" goes into certificates.template_version (32 characters).
_CODE = re.compile(r"[a-z][a-z0-9_]{0,23}")
_PREFIX = re.compile(r"[A-Z]{1,3}")
# DigiLocker document type codes are short upper-case codes (BTCER, DTCER, PRTAX).
_DOC_TYPE = re.compile(r"[A-Z0-9]{2,10}")
VERSION = re.compile(r"(?P<code>[a-z][a-z0-9_]{0,23})/(?P<n>[1-9][0-9]{0,5})")

_types: dict[str, CertType] = {kind.code: kind for kind in (Birth(), Death(), PropertyNoDues())}


def known_types() -> dict[str, CertType]:
    """Type code -> type, for every registered type (a copy: change it with `register`)."""
    return dict(_types)


def cert_type(code: object) -> CertType | None:
    """The type for `code`, or None when the service does not issue it."""
    return _types.get(code) if isinstance(code, str) else None


def register(kind: CertType, *, replace: bool = False) -> None:
    """Add `kind` (or, with `replace`, put it in place of the registered type of its code).

    Refused with ValueError: a malformed code, prefix, doc type or template version, a missing
    current template, a code already registered (without `replace`) and a number prefix
    another type uses (two types would draw numbers from one series)."""
    problem = _problem(kind)
    if problem is None and kind.code in _types and not replace:
        problem = f"type {kind.code!r} is already registered"
    if problem is None:
        clash = [other.code for other in _types.values()
                 if other.code != kind.code and other.number_prefix == kind.number_prefix]
        if clash:
            problem = f"number prefix {kind.number_prefix!r} is already used by {clash[0]!r}"
    if problem is not None:
        raise ValueError(f"cannot register certificate type {kind.code!r}: {problem}")
    _types[kind.code] = kind


def unregister(code: str) -> CertType:
    """Remove the type `code` and return it (KeyError if it is not registered). Its records
    stay in the database, but cannot be submitted, issued or re-rendered until it is back."""
    return _types.pop(code)


def template_file(root: Path, version: str) -> Path:
    """The file of template `version` ("birth/1" -> <root>/birth/1.typ). ValueError for a
    version that is not "<code>/<n>"."""
    match = VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"template version {version!r} is not <type>/<number>")
    return root / match["code"] / f"{match['n']}.typ"


def doc_type_code(settings: Settings, kind: CertType) -> str:
    """The DigiLocker document type code: PRAMAAN_DOCTYPE_CODES, else the type's default."""
    return settings.doc_type_codes.get(kind.code, kind.doc_type)


def rts_days(settings: Settings, kind: CertType) -> int:
    """The Right to Public Services time limit in working days: PRAMAAN_RTS_DAYS, else the
    type's default."""
    return settings.rts_days.get(kind.code, kind.rts_days)


def _problem(kind: CertType) -> str | None:
    if not _CODE.fullmatch(kind.code):
        return "the code must be lower-case letters, digits and _ (at most 24)"
    if not _PREFIX.fullmatch(kind.number_prefix):
        return "the number prefix must be 1-3 capital letters"
    if not _DOC_TYPE.fullmatch(kind.doc_type):
        return "the DigiLocker doc type must be 2-10 capital letters or digits"
    if not 1 <= kind.rts_days <= 365:
        return "the RTS time limit must be 1-365 working days"
    if set(kind.authority) != {"en", "mr"}:
        return "the authority must be worded in English and Marathi (en, mr)"
    match = VERSION.fullmatch(kind.template_version)
    if match is None or match["code"] != kind.code:
        return f"the template version must be {kind.code}/<number>"
    template = template_file(kind.templates_root, kind.template_version)
    if not template.is_file():
        return f"its current template {template} does not exist"
    return None
