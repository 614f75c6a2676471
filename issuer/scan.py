"""Reading QR codes from photos and scans with zbarimg (Debian package zbar-tools)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from issuer.errors import PramaanError


class ScannerMissing(PramaanError):
    code = "scanner_missing"
    status = 500
    title = "zbarimg is not installed"


def decode_qr_image(path: Path) -> list[str]:
    """Every QR text zbarimg finds in the image (PNG, JPEG, PDF page images), in order."""
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
