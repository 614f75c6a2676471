"""What a screen reader finds in an issued certificate (issue 10, "paper that reads aloud"): the
QR figure carries alternative text naming what it is and where to verify, and every piece of
Marathi (labels, headers, the seal block, the footer, not only the values) is a paragraph tagged
/Lang (mr), and the label of every table row is that row's header cell (TH, /Scope /Row), in
the signed PDF of every type. (The split Devanagari clusters in pdftotext's output: see the
README.)"""

from __future__ import annotations

import re

import pytest

from tests.conftest import Live, sample


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["birth-1", "death-1", "property-1"])
def test_the_qr_figure_has_alternative_text(live: Live, kind: str) -> None:
    made = live.post_json("/api/v1/certificates", sample(kind))
    assert made.status_code == 202, made.text
    pdf = live.get(made.json()["links"]["self"] + "/pdf").content
    figures = re.findall(rb"/S/Figure[^>]*?/Alt\(([^)]*)\)", pdf)
    host = live.runtime.settings.verify_base_url.split("://", 1)[1].encode()
    assert figures == [b"QR code: the digital seal of this certificate. Scan it to verify at "
                       + host + b"."], figures


# Marathi paragraphs in the signed PDF of each type: every label (two paragraphs, English and
# Marathi) and every Marathi piece in an English line. Layout 1.1.0 / birth/2 tagged only the
# stand-alone Marathi paragraphs and values (9-10 of them).
MARATHI_PARAGRAPHS = {"birth-1": 31, "death-1": 29, "property-1": 29}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["birth-1", "death-1", "property-1"])
def test_every_marathi_label_and_header_is_tagged_marathi(live: Live, kind: str) -> None:
    made = live.post_json("/api/v1/certificates", sample(kind))
    assert made.status_code == 202, made.text
    pdf = live.get(made.json()["links"]["self"] + "/pdf").content
    assert len(re.findall(rb"/Lang ?\(mr\)", pdf)) == MARATHI_PARAGRAPHS[kind]
    # English is the document's language (the catalog's /Lang: typst's, and pyHanko's copy of
    # the catalog in the signature's revision), inherited by every other paragraph.
    assert len(re.findall(rb"/Lang ?\(en\)", pdf)) == 2
    assert set(re.findall(rb"/Lang ?\((\w+)\)", pdf)) == {b"en", b"mr"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["birth-1", "death-1", "property-1"])
def test_every_row_label_is_the_row_s_header_cell(live: Live, kind: str) -> None:
    made = live.post_json("/api/v1/certificates", sample(kind))
    assert made.status_code == 202, made.text
    pdf = live.get(made.json()["links"]["self"] + "/pdf").content
    rows = re.findall(rb"(\d+) 0 obj\n<</Type/StructElem/S/TR/P \d+ 0 R/K\[(\d+) 0 R (\d+) 0 R\]",
                      pdf)
    assert len(rows) >= 12
    for row, label, value in rows:
        assert re.search(rb"\n" + label + rb" 0 obj\n<</Type/StructElem/S/TH/P " + row
                         + rb" 0 R/A\[<</O/Table/Scope/Row>>", pdf), label
        assert re.search(rb"\n" + value + rb" 0 obj\n<</Type/StructElem/S/TD/P " + row, pdf)


def test_a_cell_typst_did_not_write_as_expected_fails_the_render() -> None:
    from issuer.render import with_row_headers

    row = b"\n7 0 obj\n<</Type/StructElem/S/TR/P 9 0 R/K[5 0 R 6 0 R]>>\nendobj\n"
    cell = b"\n5 0 obj\n<</Type/StructElem/S/TD/P 7 0 R/A[<</O/Table/Headers[]>>]>>\nendobj\n"
    fixed = with_row_headers(cell + row)
    assert b"/S/TH/P 7 0 R/A[<</O/Table/Scope/Row>>" in fixed and len(fixed) == len(cell + row)
    with pytest.raises(ValueError, match="table cell 5 is not written as expected"):
        with_row_headers(cell.replace(b"Headers[]", b"Headers[1]") + row)
    with pytest.raises(ValueError, match="no table rows"):
        with_row_headers(cell)
