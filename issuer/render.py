"""Render certificate PDFs with typst.

Rendering is a pure function of (template version, data, QR): the template reads everything
from `sys.inputs` as JSON, never from spliced source, so request text cannot inject typst markup.
A template version ("birth/1") names one file, <root>/birth/1.typ, under its type's templates
root; a shipped version is never edited (a change ships as the next version), so a certificate
re-renders byte for byte with the version recorded when it was issued.
The typst compiler is built once per templates root and reused (RENDERING.md: ~10 ms/document).
"""

from __future__ import annotations

import functools
import json
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import typst

import templates
from issuer.certtypes import cert_type, template_file

SPECIMEN_WRAPPER: Final = """
#set page(foreground: place(center + horizon, rotate(-40deg, text(
  size: 58pt, weight: "bold", fill: rgb(190, 30, 30, 90),
  font: ("Noto Sans", "Noto Sans Devanagari"))[SPECIMEN · नमुना])))
#include sys.inputs.template
""".encode()
"""The main file of a specimen render (typst source; the template's path in sys.inputs)."""

NO_SEAL_SVG: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
    '<rect x="1" y="1" width="98" height="98" fill="#f2f2f2" stroke="#b0b0b0" stroke-width="2"/>'
    '<path d="M1 1L99 99M99 1L1 99" stroke="#c8c8c8" stroke-width="2"/></svg>')
"""Where a specimen's QR would be: an empty crossed box (a specimen has no seal)."""


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
    """Turns certificate data plus the QR seal into PDF bytes, one compiler per templates root.

    Compilers are created lazily on the first render from each root (nothing at import or
    construction time) and reused for every later document. A lock serialises compiles on one
    compiler, so a Renderer may be shared between threads.
    """

    def __init__(self, templates_root: Path | None = None, fonts: Path | None = None) -> None:
        """Use ONLY the fonts in the folder `fonts`, and templates from each type's own
        templates root or, given `templates_root`, from that one root for every type."""
        self._root = templates_root
        self._fonts = fonts if fonts is not None else templates.fonts_dir()
        self._compilers: dict[Path, typst.Compiler] = {}
        self._lock = threading.Lock()

    def render(self, template_version: str, data: Mapping[str, Any], qr_svg: bytes) -> bytes:
        """Return the PDF of one certificate with template `template_version` ("birth/1").

        `data` is the template's input object ({issuer, certificate, request}); every string in
        it is NFC-normalised here. `qr_svg` is the SVG document from `signing.qr.qr_svg`.
        Raises ValueError for a version of an unknown type or without its file, and
        `typst.TypstError` when the template rejects the data (e.g. it would not fit one page).
        """
        root, template = self._template(template_version)
        sys_inputs = {
            "data": json.dumps(nfc(data), ensure_ascii=False),
            "qr": qr_svg.decode("utf-8"),
        }
        options = template_options(template)
        pdf = self._compile(root, template, template, sys_inputs, standards=options.standards)
        return with_row_headers(pdf) if options.row_headers else pdf

    def render_specimen(self, template_version: str, data: Mapping[str, Any],
                        png_ppi: int = 0) -> bytes:
        """The PDF `render` would make, as a specimen: SPECIMEN · नमुना across every page and
        an empty crossed box where the seal QR goes. For showing what a row will look like
        before anyone approves it; it carries no seal and is never signed. The template file
        is not touched: a wrapper sets the page foreground and includes it. With `png_ppi`,
        the page as a PNG image (the officers' console shows it inline)."""
        root, template = self._template(template_version)
        sys_inputs = {
            "data": json.dumps(nfc(data), ensure_ascii=False),
            "qr": NO_SEAL_SVG,
            "template": "/" + template.relative_to(root).as_posix(),
        }
        return self._compile(root, template, SPECIMEN_WRAPPER, sys_inputs, png_ppi)

    def _compile(self, root: Path, template: Path, main: Path | bytes,
                 sys_inputs: dict[str, str], png_ppi: int = 0,
                 standards: tuple[str, ...] = ()) -> bytes:
        """Compile `main` (the template's file, or typst source) with the root's compiler: a
        PDF (to the PDF `standards` given), or with `png_ppi` the (one) page as a PNG image at
        that resolution."""
        with self._lock:
            compiler = self._compiler(root, template)
            # typst-py re-reads its main input only when given on each call (RENDERING.md).
            if png_ppi:
                out = compiler.compile(input=main,  # type: ignore[type-var]  # Path or bytes
                                       format="png", ppi=png_ppi, sys_inputs=sys_inputs)
            elif standards:
                out = compiler.compile(input=main,  # type: ignore[type-var]  # Path or bytes
                                       format="pdf", sys_inputs=sys_inputs,
                                       pdf_standards=list(standards))  # type: ignore[arg-type]
            else:
                out = compiler.compile(input=main,  # type: ignore[type-var]  # Path or bytes
                                       format="pdf", sys_inputs=sys_inputs)
        if not isinstance(out, bytes):
            raise TypeError(f"typst returned {type(out).__name__}, expected one document")
        return out

    def _template(self, version: str) -> tuple[Path, Path]:
        code = version.partition("/")[0]
        kind = cert_type(code)
        if kind is None:
            raise ValueError(f"unknown certificate type {code!r} (template {version!r})")
        root = self._root if self._root is not None else kind.templates_root
        template = template_file(root, version)
        if not template.is_file():
            raise ValueError(f"template {version!r} has no file {template}")
        return root, template

    def _compiler(self, root: Path, template: Path) -> typst.Compiler:
        compiler = self._compilers.get(root)
        if compiler is None:
            # A Fonts object (not bare folders) so that neither host fonts nor typst's own
            # embedded fonts can stand in: output depends on the shipped fonts only.
            fonts = typst.Fonts(
                include_system_fonts=False,
                include_embedded_fonts=False,
                font_paths=[str(self._fonts)],
            )
            # The shipped typst packages (@pramaan/certificate), for templates under any root.
            compiler = typst.Compiler(
                input=template,
                root=root,
                font_paths=fonts,
                ignore_system_fonts=True,
                package_path=templates.packages_dir(),
            )
            self._compilers[root] = compiler
        return compiler


OPTIONS_MARK = "// pramaan:"
KNOWN_STANDARDS = frozenset({"a-2b", "a-2u", "a-3b", "a-3u"})
ROW_HEADERS = "table-row-headers"


@dataclass(frozen=True)
class TemplateOptions:
    """What a template version asks of the renderer, on its first line:
    `// pramaan: pdf-standard a-2b; table-row-headers`. A property of the shipped file, so every
    version re-renders as it first did (birth/2 and older name nothing: plain PDF 1.7)."""

    standards: tuple[str, ...] = ()
    row_headers: bool = False  # the first cell of every table row tagged a row header (TH)


@functools.cache
def template_options(template: Path) -> TemplateOptions:
    with template.open(encoding="utf-8") as source:
        first = source.readline().strip()
    if not first.startswith(OPTIONS_MARK):
        return TemplateOptions()
    standards: tuple[str, ...] = ()
    row_headers = False
    for option in filter(None, (o.strip() for o in first[len(OPTIONS_MARK):].split(";"))):
        name, _, value = option.partition(" ")
        if name == "pdf-standard":
            standards = tuple(value.split())
            unknown = set(standards) - KNOWN_STANDARDS
            if unknown:
                raise ValueError(f"{template}: unknown PDF standard {', '.join(sorted(unknown))}")
        elif option == ROW_HEADERS:
            row_headers = True
        else:
            raise ValueError(f"{template}: unknown template option {option!r}")
    return TemplateOptions(standards, row_headers)


def pdf_standards(template: Path) -> tuple[str, ...]:
    return template_options(template).standards


_ROW = re.compile(rb"\d+ 0 obj\n<</Type/StructElem/S/TR/P \d+ 0 R/K\[(\d+) 0 R")
_CELL = b"/S/TD/P %b 0 R/A[<</O/Table/Headers[]>>"


def with_row_headers(pdf: bytes) -> bytes:
    """The PDF with the first cell of every table row tagged as the row's header: /S /TH with
    the attribute /Scope /Row (ISO 32000-1 14.8.5.7). typst writes row headers only through
    `pdf.header-cell`, behind a feature flag typst-py cannot set; its cells come as
    `/S/TD/P <row> 0 R/A[<</O/Table/Headers[]>>...`, and `/S/TH ... /Scope/Row` is the same
    length, so the file is edited in place and every xref offset stays right. A cell not
    written that way (another typst) fails the render rather than leave a row untagged."""
    out = bytearray(pdf)
    rows = list(_ROW.finditer(pdf))
    if not rows:
        raise ValueError("no table rows found to tag row headers in")
    for row in rows:
        number = row.group(1)
        start = pdf.find(b"\n" + number + b" 0 obj\n<</Type/StructElem", 0)
        parent = pdf[row.start():].split(b" ", 1)[0]
        cell = _CELL % parent
        at = pdf.find(cell, start, start + 200) if start >= 0 else -1
        if at < 0:
            raise ValueError(f"table cell {number.decode()} is not written as expected")
        new = b"/S/TH/P " + parent + b" 0 R/A[<</O/Table/Scope/Row>>"
        assert len(new) == len(cell)
        out[at:at + len(cell)] = new
    return bytes(out)
