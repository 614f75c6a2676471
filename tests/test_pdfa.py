"""Archival: certificates are PDF/A-2b and stay so after signing (issue 10, "paper that lasts").

No PDF/A validator installs here (veraPDF is Java from its own site; none is on PyPI, npm or in
Debian), so the requirements of ISO 19005-2 that a signed certificate could break are checked
one by one in the final file, as any reader sees it (pyHanko's reader on the last revision):
the XMP declares part 2 conformance B, the output intent carries an ICC profile, every font is
embedded, the document information agrees with the XMP (pyHanko rewrites both when it signs),
the trailer has an ID, nothing is encrypted, no JavaScript, no actions, no embedded files,
every annotation prints and a visible one has its appearance, and the signature is a CAdES
one over the whole file. Old template versions stay plain PDF 1.7 (they re-render as they were).
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.conftest import Live, make_settings, sample, serve

XMP_PDFA = re.compile(rb"pdfaid:part(?:>|=\")2.*?pdfaid:conformance(?:>|=\")B", re.S)


def issued_pdf(live: Live, kind: str) -> bytes:
    made = live.post_json("/api/v1/certificates", sample(kind))
    assert made.status_code == 202, made.text
    record = live.get(made.json()["links"]["self"]).json()
    assert record["state"] == "issued", record
    pdf: bytes = live.get(record["links"]["pdf"]).content
    return pdf


def xmp_of(reader: PdfFileReader) -> bytes:
    stream = reader.root["/Metadata"]
    data: bytes = stream.data
    return data


def xmp_date(xmp: bytes, name: str) -> datetime | None:
    found = re.search(rb"<" + name.encode() + rb">([^<]+)<", xmp) or re.search(
        name.encode() + rb'="([^"]+)"', xmp)
    return datetime.fromisoformat(found.group(1).decode()) if found else None


def pdf_date(value: Any) -> datetime:
    parsed: datetime = generic.parse_pdf_date(str(value))
    return parsed


def walk(obj: Any, seen: set[int] | None = None, depth: int = 0) -> Any:
    """Every dictionary reachable from `obj` (pages, annotations, resources...)."""
    seen = seen if seen is not None else set()
    if depth > 40:
        return
    if isinstance(obj, generic.IndirectObject):
        key = obj.idnum
        if key in seen:
            return
        seen.add(key)
        obj = obj.get_object()
    if isinstance(obj, generic.DictionaryObject):
        yield obj
        for name, value in obj.items():
            if name in ("/Parent", "/P", "/Pg", "/Obj", "/StructParents"):
                continue
            yield from walk(value, seen, depth + 1)
    elif isinstance(obj, generic.ArrayObject):
        for item in obj:
            yield from walk(item, seen, depth + 1)


def check_pdfa_2b(pdf: bytes, tmp_path: Path) -> None:
    reader = PdfFileReader(BytesIO(pdf))
    root = reader.root
    xmp = xmp_of(reader)
    assert XMP_PDFA.search(xmp), "the XMP declares PDF/A-2b"
    intents = root["/OutputIntents"]
    assert len(intents) >= 1
    intent = intents[0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    icc = intent["/DestOutputProfile"].get_object().data
    assert icc[36:40] == b"acsp", "an ICC profile"
    # Every font embedded (pdffonts: the "emb" column).
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
    # The document information agrees with the XMP after signing.
    info = reader.trailer["/Info"].get_object() if "/Info" in reader.trailer else {}
    if "/ModDate" in info:
        assert xmp_date(xmp, "xmp:ModifyDate") == pdf_date(info["/ModDate"])
    if "/CreationDate" in info:
        assert xmp_date(xmp, "xmp:CreateDate") == pdf_date(info["/CreationDate"])
    assert "/ID" in reader.trailer
    assert "/Encrypt" not in reader.trailer
    for forbidden in ("/AA", "/OpenAction"):
        assert forbidden not in root
    names = root.get("/Names")
    if names is not None:
        assert "/JavaScript" not in names.get_object()
        assert "/EmbeddedFiles" not in names.get_object()
    for page in reader.root["/Pages"]["/Kids"]:
        page = page.get_object()
        assert "/AA" not in page
        for annot in page.get("/Annots", []):
            annot = annot.get_object()
            rect = [float(x) for x in annot["/Rect"]]
            assert int(annot.get("/F", 0)) & 4, "every annotation prints"
            if rect[2] - rect[0] > 0 and rect[3] - rect[1] > 0:
                assert "/N" in annot["/AP"], "a visible annotation has its appearance"
    for found in walk(root):
        assert found.get("/S") not in ("/JavaScript", "/Launch", "/ImportData"), found
    # Signed over the whole file with a CAdES signature.
    fields = [f.get_object() for f in root["/AcroForm"]["/Fields"]]
    signatures = [f["/V"].get_object() for f in fields if f.get("/FT") == "/Sig"]
    assert signatures
    first = signatures[0]
    assert first["/SubFilter"] == "/ETSI.CAdES.detached"
    start, first_len, second_start, second_len = (int(x) for x in first["/ByteRange"])
    # From the first byte to the end of its revision, all but the signature's own hex string.
    assert start == 0 and second_start + second_len <= len(pdf)
    assert pdf[first_len:first_len + 1] == b"<" and pdf[second_start - 1:second_start] == b">"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["birth-1", "death-1", "property-1"])
def test_a_signed_certificate_is_pdfa_2b(live: Live, kind: str, tmp_path: Path) -> None:
    check_pdfa_2b(issued_pdf(live, kind), tmp_path)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_it_stays_pdfa_with_the_long_term_validation_revisions(
        tmp_path: Path, database_url: str, keys_dir: Path) -> None:
    settings = make_settings(tmp_path, database_url, keys_dir, signature_level="B-LTA")
    for live in serve(settings):
        pdf = issued_pdf(live, "birth-1")
        assert pdf.count(b"%%EOF") >= 3  # signature, validation data, document timestamp
        check_pdfa_2b(pdf, tmp_path)


def test_old_versions_stay_plain_pdf_and_the_marker_is_read_from_the_file(
        tmp_path: Path) -> None:
    from issuer.certtypes import template_file
    from issuer.render import pdf_standards, template_options

    root = Path(__file__).resolve().parents[1] / "templates"
    for kind in ("birth", "death", "property_no_dues"):
        assert pdf_standards(template_file(root, f"{kind}/1")) == ()
        assert pdf_standards(template_file(root, f"{kind}/2")) == ()
        assert pdf_standards(template_file(root, f"{kind}/3")) == ("a-2b",)
        assert template_options(template_file(root, f"{kind}/3")).row_headers
        assert not template_options(template_file(root, f"{kind}/2")).row_headers
    odd = tmp_path / "odd.typ"
    odd.write_text("// pramaan: pdf-standard a-9z\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown PDF standard a-9z"):
        pdf_standards(odd)
    other = tmp_path / "other.typ"
    other.write_text("// pramaan: pdf-standard a-2b; make-it-pretty\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown template option 'make-it-pretty'"):
        template_options(other)
