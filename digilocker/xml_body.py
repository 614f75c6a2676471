"""The XML of the pull APIs: hostile-safe parsing of what DigiLocker sends, and our answers.

PROTOCOL.md §2-3, §11.7-8: the roots are unqualified (samples only *declare* a `ns2` prefix, one
implementation binds them into a namespace), attribute case varies between documents (`orgId` /
`orgid`, `keyhash` / `keyHash`), and the search parameters arrive under issuer-configured names.
So parsing is namespace- and case-agnostic, and `DocDetails` is read as a plain map.

Parsing goes through defusedxml with DTDs forbidden outright: no entity (internal or external),
no external DTD, so XXE and entity bombs fail before expansion. The body must be UTF-8.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

# An attribute or parameter longer than this is not a DigiLocker value (txn fits the replay
# table's 100 characters; ts is 25-35; names and ids are short); a Photo is the one long child.
MAX_VALUE = 100
MAX_PHOTO = 200_000
MAX_CHILDREN = 64
DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
TEMPURI = "http://tempuri.org/"


class BadBody(ValueError):
    """The body is not a pull request we can read (the reason is for our log, not the caller)."""


@dataclass(frozen=True)
class PullRequest:
    """One parsed request: the root's local name, its attributes (names lower-cased) and the
    `DocDetails` children by local name (first occurrence wins, text stripped)."""

    root: str
    attributes: Mapping[str, str]
    details: Mapping[str, str] = field(default_factory=dict)

    def attribute(self, name: str) -> str:
        """An attribute by name in any case (`orgId`, `orgid`), or ""."""
        return self.attributes.get(name.lower(), "")

    @property
    def ts(self) -> str:
        """The request's `ts`, echoed verbatim in the answer."""
        return self.attribute("ts")

    @property
    def txn(self) -> str:
        """The request's `txn`, echoed verbatim in the answer."""
        return self.attribute("txn")

    @property
    def format(self) -> str:
        """`xml`, `pdf`, `both` (lower-cased) or "" when absent (which means PDF)."""
        return self.attribute("format").strip().lower()


def local_name(tag: str) -> str:
    """`{ns}Name` -> `Name`; unqualified names unchanged."""
    return tag.rpartition("}")[2]


def parse_request(raw: bytes) -> PullRequest:
    """The pull request in `raw`, or BadBody: not UTF-8, not well-formed, any DTD or entity,
    a value over its size, or a DocDetails with more children than any request has."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8") from None
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise BadBody(f"unreadable XML: {type(exc).__name__}") from None
    attributes: dict[str, str] = {}
    for name, value in root.attrib.items():
        if len(value) > MAX_VALUE:
            raise BadBody(f"attribute {local_name(name)} is too long")
        attributes.setdefault(local_name(name).lower(), value)
    return PullRequest(local_name(root.tag), attributes, _details(root))


def _details(root: Element) -> dict[str, str]:
    block = next((child for child in root if local_name(child.tag) == "DocDetails"), None)
    if block is None:
        return {}
    if len(block) > MAX_CHILDREN:
        raise BadBody("DocDetails has too many children")
    details: dict[str, str] = {}
    for child in block:
        name = local_name(child.tag)
        text = (child.text or "").strip()
        if len(text) > (MAX_PHOTO if name == "Photo" else MAX_VALUE):
            raise BadBody(f"DocDetails/{name} is too long")
        details.setdefault(name, text)
    return details


def render_response(root: str, status: str, ts: str, txn: str,
                    details: Sequence[tuple[str, str]] | None = None,
                    persons: Sequence[Mapping[str, str]] = ()) -> bytes:
    """`<root>` as PROTOCOL.md §2.3/§3 shows it: the `ns2` declaration of the samples,
    `ResponseStatus` with Status/ts/txn (echoed) and the status as its text too (v1.0 sample),
    then `DocDetails` (child elements in the order given, then IssuedTo/Persons/Person)."""
    top = Element(root, {"xmlns:ns2": TEMPURI})
    status_element = ET.SubElement(top, "ResponseStatus", {"Status": status, "ts": ts,
                                                           "txn": txn})
    status_element.text = status
    if details is not None or persons:
        block = ET.SubElement(top, "DocDetails")
        for name, value in details or ():
            ET.SubElement(block, name).text = value
        if persons:
            people = ET.SubElement(ET.SubElement(block, "IssuedTo"), "Persons")
            for person in persons:
                ET.SubElement(people, "Person", dict(person))
    return DECLARATION + ET.tostring(top, encoding="unicode").encode("utf-8")
