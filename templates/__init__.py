"""Certificate templates (typst), fonts and web pages, shipped as package data."""

from pathlib import Path


def templates_dir() -> Path:
    """Folder holding the typst templates; the typst compile root."""
    return Path(__file__).resolve().parent


def fonts_dir() -> Path:
    """Folder holding the shipped fonts (Noto Sans, Noto Sans Devanagari; SIL OFL)."""
    return templates_dir() / "fonts"


def packages_dir() -> Path:
    """Folder of the typst packages templates import (@pramaan/certificate:<version>)."""
    return templates_dir() / "packages"


def web_dir() -> Path:
    """Folder holding the Jinja pages of the public web (verify page)."""
    return templates_dir() / "web"
