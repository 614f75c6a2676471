"""The large files of the verify page (the decoder's wasm, the fonts), answered from memory
(api.whole_file: a full-suite run once saw Werkzeug's server leave the streamed wasm file open
after a browser dropped the download; a dropped download could not be made to reproduce it
on purpose): whole, cacheable, and 304 for a browser that has them already."""

from __future__ import annotations

import pytest

from tests.conftest import Live

LARGE = ("/v/vendor/zxing_reader.wasm", "/v/fonts/NotoSansDevanagari-Regular.ttf")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_browser_that_has_the_file_gets_not_modified(live: Live) -> None:
    for path in LARGE:
        first = live.get(path)
        assert first.status_code == 200 and len(first.content) > 100_000
        assert "max-age" in first.headers["Cache-Control"]
        again = live.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and not again.content
    assert live.get("/v/vendor/nothing.wasm").status_code == 404
