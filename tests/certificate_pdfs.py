"""Render a request the way the issue job does (render_data over an Intent), without a database,
and read the result back with poppler: for the template tests of every certificate type."""

from __future__ import annotations

import re
import subprocess
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from issuer.certtypes import cert_type
from issuer.issue import Intent, render_data
from issuer.render import Renderer
from issuer.settings import Settings
from signing.qr import qr_svg

# Same shape as a real seal: link, flag digit, ~750 digits of COSE_Sign1.
SEAL = "http://127.0.0.1:8000/v#1" + "".join(str(i * 7919 % 10) for i in range(750))
ISSUED_AT = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)


def intent(request: Mapping[str, Any], number: str | None = None, seal: str = SEAL) -> Intent:
    """What the issue job would have recorded for `request` (its type's current template)."""
    kind = cert_type(request["type"])
    assert kind is not None
    return Intent(id=str(uuid.uuid4()), cert_type=kind.code,
                  number=number or f"PMC/{kind.number_prefix}/2026/000001",
                  request=dict(request), issued_at=ISSUED_AT, seal_text=seal,
                  template_version=kind.template_version)


def render(renderer: Renderer, request: Mapping[str, Any], number: str | None = None) -> bytes:
    recorded = intent(request, number)
    settings = Settings.from_env(env={})
    return renderer.render(recorded.template_version, render_data(settings, recorded),
                           qr_svg(recorded.seal_text))


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True,
                          text=True).stdout


def write(tmp_path: Path, pdf: bytes, name: str = "out.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def text_of(tmp_path: Path, pdf: bytes) -> str:
    """The text layer, NFC (poppler's raw order, no layout)."""
    out = run("pdftotext", "-enc", "UTF-8", write(tmp_path, pdf, "text.pdf"), "-")
    return unicodedata.normalize("NFC", out)


def squash(text: str) -> str:
    """Without any white space: poppler splits some shaped Devanagari clusters with a space
    ("कु लकर्णी": typst writes ActualText spans with a glyph offset), and wraps lines."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFC", text))


def pages(tmp_path: Path, pdf: bytes) -> int:
    info = run("pdfinfo", write(tmp_path, pdf, "info.pdf"))
    match = re.search(r"^Pages:\s+(\d+)$", info, re.M)
    assert match, info
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)$", info, re.M), info
    return int(match[1])


def qr_text(tmp_path: Path, pdf: bytes, dpi: int = 300) -> str:
    path = write(tmp_path, pdf, "qr.pdf")
    prefix = tmp_path / "qr-page"
    run("pdftoppm", "-r", str(dpi), "-png", "-singlefile", path, prefix)
    return run("zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable",
               f"{prefix}.png").removesuffix("\n")


def words_with_boxes(tmp_path: Path, pdf: bytes) -> list[tuple[str, float, float, float, float]]:
    """Every word of the text layer with its box (xMin, yMin, xMax, yMax) in points."""
    html = run("pdftotext", "-bbox", write(tmp_path, pdf, "bbox.pdf"), "-")
    found = re.findall(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', html
    )
    return [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in found]


def particulars_size(request: Mapping[str, Any]) -> dict[str, str]:
    """How the template laid out the particulars: {"mode": "full" | "fitted", "size": "…pt"}
    (the template's <particulars-size> metadata, read with typst query)."""
    import json

    import typst

    import templates
    from issuer.render import nfc

    recorded = intent(request)
    data = render_data(Settings.from_env(env={}), recorded)
    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False,
                        font_paths=[str(templates.fonts_dir())])
    code, _, n = recorded.template_version.partition("/")
    found = typst.query(
        str(templates.templates_dir() / code / f"{n}.typ"), "<particulars-size>",
        field="value", one=True, root=str(templates.templates_dir()), font_paths=fonts,
        ignore_system_fonts=True, package_path=str(templates.packages_dir()),
        sys_inputs={"data": json.dumps(nfc(data), ensure_ascii=False),
                    "qr": qr_svg(recorded.seal_text).decode()},
    )
    result: dict[str, str] = json.loads(found)
    return result
