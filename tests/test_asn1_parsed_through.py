"""Certificates shared between worker threads are parsed through when loaded.

asn1crypto parses a loaded value lazily, on first access; two threads doing that at once can
see a half-built part. Worker threads share the signer's certificate and chain (and the TSA's),
and one signature in about 600 failed that way ("No field numbered 1 is present in this
asn1crypto.x509.NameTypeAndValue") until signing.file_backend.to_asn1_certificate parsed every
part at load.
"""

from __future__ import annotations

from pathlib import Path

from asn1crypto import core
from cryptography import x509

from signing.file_backend import to_asn1_certificate


def unparsed_parts(value: object, path: str) -> list[str]:
    """Where in `value` something is still left to parse on first access."""
    if isinstance(value, core.Choice):
        if value._parsed is None:  # asn1crypto keeps no public flag
            return [path]
        return unparsed_parts(value.chosen, f"{path}.{value.name}")
    if isinstance(value, core.Sequence | core.SequenceOf):
        if value.children is None:
            return [path]
        found = []
        for index, child in enumerate(value.children):
            if isinstance(child, tuple):  # still the raw header and contents
                found.append(f"{path}[{index}]")
            else:
                found += unparsed_parts(child, f"{path}[{index}]")
        return found
    return []


def test_a_certificate_pyhanko_gets_has_nothing_left_to_parse(keys_dir: Path) -> None:
    for name in ("signer.crt", "ca.crt", "root.crt", "tsa.crt", "tsa-ca.crt"):
        cert = to_asn1_certificate(x509.load_pem_x509_certificate((keys_dir / name).read_bytes()))
        assert unparsed_parts(cert, name) == []
        # The subject's attribute values (where the failure was) are built, not raw.
        rdn = cert.subject.chosen[0]
        assert not isinstance(rdn.children[0], tuple)
