"""Independent checkers: poppler (pdfsig, pdftotext, pdftoppm), zbarimg, NSS certutil."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise AssertionError(f"{tool} is not installed (make debian-tools)")
    return exe


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          check=False)


def nss_db_with_root(directory: Path, root_cert: Path) -> Path:
    """An NSS database that trusts our dev root, for pdfsig."""
    need("certutil")
    directory.mkdir(parents=True, exist_ok=True)
    db = f"sql:{directory}"
    assert run("certutil", "-N", "-d", db, "--empty-password").returncode == 0
    added = run("certutil", "-A", "-n", "pramaan-dev-root", "-t", "CT,C,C", "-a", "-i", root_cert,
                "-d", db)
    assert added.returncode == 0, added.stderr
    return directory


def pdfsig(pdf: Path, nss_dir: Path) -> str:
    need("pdfsig")
    return run("pdfsig", "-nssdir", f"sql:{nss_dir}", pdf).stdout


def pdftotext(pdf: Path) -> str:
    need("pdftotext")
    result = run("pdftotext", "-layout", pdf, "-")
    assert result.returncode == 0, result.stderr
    return result.stdout


def qr_from_pdf(pdf: Path, workdir: Path, dpi: int = 300) -> list[str]:
    """Rasterise page 1 and read the QR back with zbarimg, as a phone would from a scan."""
    need("pdftoppm")
    need("zbarimg")
    prefix = workdir / "page"
    result = run("pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", "-singlefile", pdf,
                 prefix)
    assert result.returncode == 0, result.stderr
    # QR only, as issuer/scan.py reads photos: with every symbology enabled zbar once read a stray
    # second "barcode" out of the printed text.
    scan = run("zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f"{prefix}.png")
    return [line for line in scan.stdout.splitlines() if line]
