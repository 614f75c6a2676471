"""Render certificate PDFs with typst.

Rendering is a pure function of (template, data, QR): the template reads everything from
`sys.inputs` as JSON, never from spliced source, so request text cannot inject typst markup.
The typst compiler is built once per certificate type and reused (RENDERING.md: ~10 ms/document).
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typst

import templates

TEMPLATE_VERSIONS: dict[str, str] = {"birth": "birth/1"}
"""Template version per certificate type; recorded with every issued certificate."""


def nfc(value: Any) -> Any:
    """Return `value` with every string (keys included) NFC-normalised, recursively.

    Mappings become dicts and lists/tuples become lists; other values are returned unchanged.
    """
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Mapping):
        return {nfc(k): nfc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc(v) for v in value]
    return value


class Renderer:
    """Turns certificate data plus the QR seal into PDF bytes, one compiler per type.

    Compilers are created lazily on the first render of each type (nothing at import or
    construction time) and reused for every later document. A lock serialises compiles on one
    compiler, so a Renderer may be shared between threads.
    """

    def __init__(self, templates_root: Path | None = None, fonts: Path | None = None) -> None:
        """Use templates from `templates_root` and ONLY the fonts in the folder `fonts`."""
        self._root = templates_root if templates_root is not None else templates.templates_dir()
        self._fonts = fonts if fonts is not None else templates.fonts_dir()
        self._compilers: dict[str, typst.Compiler] = {}
        self._lock = threading.Lock()

    def render(self, cert_type: str, data: Mapping[str, Any], qr_svg: bytes) -> bytes:
        """Return the PDF for one certificate of `cert_type`.

        `data` is the template's input object ({issuer, certificate, request}); every string in
        it is NFC-normalised here. `qr_svg` is the SVG document from `signing.qr.qr_svg`.
        Raises ValueError for an unknown certificate type and `typst.TypstError` when the
        template rejects the data (e.g. it would not fit on one page).
        """
        template = self._template(cert_type)
        sys_inputs = {
            "data": json.dumps(nfc(data), ensure_ascii=False),
            "qr": qr_svg.decode("utf-8"),
        }
        with self._lock:
            compiler = self._compiler(cert_type, template)
            # typst-py re-reads its main input only when given on each call (RENDERING.md).
            pdf = compiler.compile(input=template, format="pdf", sys_inputs=sys_inputs)
        if not isinstance(pdf, bytes):
            raise TypeError(f"typst returned {type(pdf).__name__}, expected PDF bytes")
        return pdf

    def _template(self, cert_type: str) -> Path:
        if cert_type not in TEMPLATE_VERSIONS:
            known = ", ".join(sorted(TEMPLATE_VERSIONS))
            raise ValueError(f"unknown certificate type {cert_type!r} (known: {known})")
        return self._root / f"{cert_type}.typ"

    def _compiler(self, cert_type: str, template: Path) -> typst.Compiler:
        compiler = self._compilers.get(cert_type)
        if compiler is None:
            # A Fonts object (not bare folders) so that neither host fonts nor typst's own
            # embedded fonts can stand in: output depends on the shipped fonts only.
            fonts = typst.Fonts(
                include_system_fonts=False,
                include_embedded_fonts=False,
                font_paths=[str(self._fonts)],
            )
            compiler = typst.Compiler(
                input=template,
                root=self._root,
                font_paths=fonts,
                ignore_system_fonts=True,
            )
            self._compilers[cert_type] = compiler
        return compiler
