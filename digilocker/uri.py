"""Document URIs: `<issuer id>-<doc type>-<doc id>` (PROTOCOL.md §5).

Our doc id is the certificate's record id (a UUID): unique, never reused, and stable, where the
certificate number is not unique across a correction and ward codes may hold hyphens. A doc id
with hyphens is why a URI is split at its first two hyphens only (§5, §11.12); issuer ids are
reverse domain names (dots, no hyphens) and doc type codes are letters and digits.
"""

from __future__ import annotations

from typing import NamedTuple


class DocumentUri(NamedTuple):
    """The three parts of a document URI."""

    issuer_id: str
    doc_type: str
    doc_id: str


def document_uri(issuer_id: str, doc_type: str, doc_id: str) -> str:
    """The URI DigiLocker stores for one of our documents (pushes send it, pulls resolve it)."""
    return f"{issuer_id}-{doc_type}-{doc_id}"


def split_uri(uri: str) -> DocumentUri | None:
    """(issuer id, doc type, doc id) of `uri`, split at the first two hyphens only; None when a
    part is missing."""
    issuer_id, sep1, rest = uri.partition("-")
    doc_type, sep2, doc_id = rest.partition("-")
    if not (sep1 and sep2 and issuer_id and doc_type and doc_id):
        return None
    return DocumentUri(issuer_id, doc_type, doc_id)


def our_document(uri: str, issuer_id: str) -> tuple[str, str] | None:
    """(doc type, doc id) when `uri` names a document of `issuer_id`, else None. Our own id is
    matched as a whole prefix, so a configured issuer id with a hyphen still resolves; the rest
    splits at its first hyphen (doc ids keep theirs)."""
    prefix = f"{issuer_id}-"
    if not uri.startswith(prefix):
        return None
    doc_type, sep, doc_id = uri[len(prefix):].partition("-")
    if not (sep and doc_type and doc_id):
        return None
    return doc_type, doc_id
