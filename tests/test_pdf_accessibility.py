"""What a screen reader finds in an issued certificate (issue 10, "paper that reads aloud"): the
QR figure carries alternative text naming what it is and where to verify, and every piece of
Marathi (labels, headers, the seal block, the footer, not only the values) is a paragraph tagged
/Lang (mr), in the signed PDF of every type. (Row header cells: typst writes them only through
`pdf.header-cell`, behind its a11y-extras feature flag, which typst-py cannot turn on; the
split Devanagari clusters in pdftotext's output: see the README.)"""

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
