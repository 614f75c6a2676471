"""What a screen reader finds in an issued certificate (issue 10, "paper that reads aloud"): the
QR figure carries alternative text naming what it is and where to verify, in the signed PDF of
every type. (Marathi labels tagged /Lang (mr), header cells and the reading order of Devanagari
clusters are still to do.)"""

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
