"""The printed QR as real devices see it: a page rendered from the certificate's PDF (poppler, as a
printer would put it on paper), then made into what a cheap phone's video frame or an office
scanner delivers, and read with the two decoder families verifiers have: zxing-cpp (most Android
phones' camera apps and scanner libraries) and zbar (`zbarimg`, scanners and desktop tools).

Conditions (each frame drawn with its own random jitter from a fixed seed, so runs repeat):

- `phone`: about 5.5 pixels per millimetre of paper (a 720p frame of an A4 page held at arm's
  length), 5 degree tilt and 10 % keystone (the phone not parallel to the paper), slight defocus
  blur, uneven light (a shadow across the page), sensor noise and JPEG compression.
- `scan150`: a 150 dpi greyscale office scan, up to 1 degree skew, JPEG.
- `stained`: a 300 dpi scan with an opaque ink blot over about a tenth of the symbol: what error
  correction level Q (25 % of codewords) is kept for.

Used by tests/test_qr_print_scan.py (the rates the print must reach) and bench/qr_conditions.py
(the table in the closing note).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp

RENDER_DPI = 600
MM_PER_INCH = 25.4
FRAMES = 30

Image = Any  # a numpy uint8 greyscale array


@dataclass(frozen=True)
class Printed:
    """The QR as printed: a greyscale crop of the rendered page around the symbol."""

    pixels: Image
    px_per_mm: float
    width_mm: float  # the symbol's width on paper, quiet zone excluded


def printed_qr(pdf: Path, *, dpi: int = RENDER_DPI) -> Printed:
    """Render page 1 of `pdf` at `dpi` and crop the QR symbol with a margin of paper."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "page"
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", str(pdf),
                        str(out)], check=True, capture_output=True, timeout=120)
        page = cv2.imread(str(out) + ".png", cv2.IMREAD_GRAYSCALE)
    found = zxingcpp.read_barcodes(page, formats=zxingcpp.BarcodeFormat.QRCode)
    if len(found) != 1:
        raise AssertionError(f"expected one QR code on the clean page, found {len(found)}")
    corners = found[0].position
    xs = [p.x for p in (corners.top_left, corners.top_right, corners.bottom_left,
                        corners.bottom_right)]
    ys = [p.y for p in (corners.top_left, corners.top_right, corners.bottom_left,
                        corners.bottom_right)]
    px_per_mm = dpi / MM_PER_INCH
    margin = int(12 * px_per_mm)
    top, left = max(min(ys) - margin, 0), max(min(xs) - margin, 0)
    crop = page[top:max(ys) + margin, left:max(xs) + margin]
    return Printed(pixels=np.ascontiguousarray(crop), px_per_mm=px_per_mm,
                   width_mm=(max(xs) - min(xs)) / px_per_mm)


def _scaled(printed: Printed, px_per_mm: float) -> Image:
    factor = px_per_mm / printed.px_per_mm
    return cv2.resize(printed.pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _jpeg(image: Image, quality: int) -> Image:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded: Image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return decoded


def _perspective(image: Image, rng: np.random.Generator, *, tilt_deg: float,
                 keystone: float) -> Image:
    """Rotate by about `tilt_deg` and shrink one edge by `keystone` (the far side of paper
    held at an angle), onto a larger canvas of paper-white."""
    h, w = image.shape
    pad = int(0.25 * max(h, w))
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    ch, cw = canvas.shape
    cx, cy = cw / 2, ch / 2
    angle = math.radians(tilt_deg * rng.choice([-1, 1]) * rng.uniform(0.8, 1.0))
    squeeze = keystone * rng.uniform(0.8, 1.0) / 2
    src = np.float32([[pad, pad], [pad + w, pad], [pad + w, pad + h], [pad, pad + h]])
    # The top edge shorter than the bottom one: the page tilted away at its top.
    dst = np.float32([[pad + w * squeeze, pad], [pad + w * (1 - squeeze), pad],
                      [pad + w, pad + h], [pad, pad + h]])
    rotation = np.float32([[math.cos(angle), -math.sin(angle)],
                           [math.sin(angle), math.cos(angle)]])
    dst = (dst - [cx, cy]) @ rotation.T + [cx, cy] + rng.uniform(-3, 3, size=2)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped: Image = cv2.warpPerspective(canvas, matrix, (cw, ch), flags=cv2.INTER_LINEAR,
                                        borderValue=255)
    return warped


def _uneven_light(image: Image, rng: np.random.Generator, *, darkest: float) -> Image:
    h, w = image.shape
    direction = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / w - 0.5) * math.cos(direction) + (yy / h - 0.5) * math.sin(direction)
    gain = darkest + (1 - darkest) * (ramp - ramp.min()) / (ramp.max() - ramp.min() + 1e-9)
    # Paper is never pure white and ink never pure black under a phone's light.
    lit = (image.astype(np.float32) * 0.82 + 30) * gain
    return np.clip(lit, 0, 255).astype(np.uint8)


def _noise(image: Image, rng: np.random.Generator, sigma: float) -> Image:
    noisy = image.astype(np.float32) + rng.normal(0, sigma, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def phone(printed: Printed, rng: np.random.Generator) -> Image:
    image = _scaled(printed, 5.5 * rng.uniform(0.95, 1.05))
    image = _perspective(image, rng, tilt_deg=5, keystone=0.10)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 1.1))
    image = _uneven_light(image, rng, darkest=0.55)
    image = _noise(image, rng, 4)
    return _jpeg(image, int(rng.integers(60, 76)))


def scan150(printed: Printed, rng: np.random.Generator) -> Image:
    image = _scaled(printed, 150 / MM_PER_INCH)
    h, w = image.shape
    skew = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-1, 1), 1.0)
    image = cv2.warpAffine(image, skew, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    image = cv2.GaussianBlur(image, (0, 0), 0.5)
    return _jpeg(_noise(image, rng, 2), 80)


def stained(printed: Printed, rng: np.random.Generator) -> Image:
    image = _scaled(printed, 300 / MM_PER_INCH).copy()
    h, w = image.shape
    px = 300 / MM_PER_INCH
    symbol = printed.width_mm * px
    # A blot of about a tenth of the symbol's area, away from the three finder patterns.
    radius = int(symbol * math.sqrt(0.10 / math.pi))
    cx = int(w / 2 + rng.uniform(0.05, 0.2) * symbol)
    cy = int(h / 2 + rng.uniform(0.05, 0.2) * symbol)
    blot = np.zeros_like(image)
    cv2.circle(blot, (cx, cy), radius, 255, -1)
    blot = cv2.GaussianBlur(blot, (0, 0), radius / 6)
    image = np.minimum(image, (255 - blot).astype(np.uint8))  # opaque ink at its centre
    return _jpeg(_noise(image, rng, 2), 85)


CONDITIONS: dict[str, Callable[[Printed, np.random.Generator], Image]] = {
    "phone": phone, "scan150": scan150, "stained": stained,
}


def read_zxing(image: Image) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormat.QRCode)]


def read_zbar(image: Image) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".png") as file:
        cv2.imwrite(file.name, image)
        done = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                               file.name], capture_output=True, text=True, timeout=60)
    return [line for line in done.stdout.splitlines() if line]


DECODERS: dict[str, Callable[[Image], list[str]]] = {"zxing-cpp": read_zxing, "zbar": read_zbar}


def decode_rates(printed: Printed, expected: str, *, frames: int = FRAMES, seed: int = 1,
                 conditions: tuple[str, ...] = tuple(CONDITIONS),
                 keep: Path | None = None) -> dict[tuple[str, str], int]:
    """How many of `frames` frames per condition each decoder read as exactly `expected`.
    With `keep`, the first frame of each condition is saved there (look at them)."""
    counts: dict[tuple[str, str], int] = {}
    for condition in conditions:
        rng = np.random.default_rng(seed)
        made = [CONDITIONS[condition](printed, rng) for _ in range(frames)]
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(keep / f"qr-{condition}.png"), made[0])
        for decoder, read in DECODERS.items():
            counts[(condition, decoder)] = sum(expected in read(frame) for frame in made)
    return counts
