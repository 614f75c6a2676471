"""Reading the QR seal from photos and scans (`pramaan verify --image`).

zxing-cpp first: the decoder family of most Android camera apps, which reads tilted, keystoned
and blurred phone photos that zbar misses (tests/qr_conditions.py measures both). zbarimg
(Debian package zbar-tools) second, for what zxing-cpp does not find. QR codes only: another
symbol on the page (a barcode on a receipt) is never taken for the seal.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from issuer.errors import PramaanError

MAX_PIXELS: Final = 60_000_000
"""Largest image read (a 12,000 x 5,000 scan); more is refused before it is decoded."""


class ScannerMissing(PramaanError):
    code = "scanner_missing"
    status = 500
    title = "zbarimg is not installed"


class ImageUnreadable(PramaanError):
    code = "image_unreadable"
    status = 422
    title = "The image cannot be read"


@dataclass(frozen=True)
class Scanned:
    """The QR texts found in an image, in order, and the decoder that found them."""

    texts: list[str]
    decoder: str | None


def scan_image(path: Path) -> Scanned:
    """The QR texts in the image at `path` and which decoder read them (zxing-cpp, then zbar).
    Raises `ImageUnreadable` for a file that is not an image this can read."""
    found = _zxing(path)
    if found:
        return Scanned(found, "zxing-cpp")
    found = _zbar(path)
    return Scanned(found, "zbar" if found else None)


def _zxing(path: Path) -> list[str]:
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    # Pillow refuses a header of more than twice its own cap (DecompressionBombError) as it
    # opens it; ours, below Pillow's, refuses the rest before anything is decoded.
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageUnreadable(f"{path.name} has {image.width} x {image.height} "
                                      f"pixels, more than {MAX_PIXELS} are not read")
            grey = image.convert("L")
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"{path.name} is not an image that can be read: {exc}") from exc
    except OSError as exc:
        raise ImageUnreadable(f"cannot read {path.name}: {exc}") from exc
    return [found.text for found in zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)) if found.text]


def _zbar(path: Path) -> list[str]:
    exe = shutil.which("zbarimg")
    if exe is None:
        raise ScannerMissing("install zbar-tools (apt-get install zbar-tools) to read images")
    result = subprocess.run(
        [exe, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", "-Sbinary", str(path)],
        capture_output=True, timeout=60, check=False,
    )
    # Exit 4 means "no symbol found"; anything else non-zero is a real failure.
    if result.returncode not in (0, 4):
        detail = result.stderr.decode(errors="replace")
        raise PramaanError(f"zbarimg failed on {path.name}: {detail}")
    text = result.stdout.decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]
