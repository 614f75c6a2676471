"""The `pramaan` command, run as a real subprocess in a fresh PRAMAAN_HOME."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signing.validate import validate_pdf
from tests.conftest import SAMPLES
from tests.fixture_scope import shared
from tests.tools import need, run


def pramaan(home: Path, *args: str | Path,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "PRAMAAN_KEYS_DIR", "PRAMAAN_STORE_DIR")}
    env["PRAMAAN_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=300, check=False, input=stdin)


@pytest.fixture(scope=shared("module"))
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    first = pramaan(path, "init")
    assert first.returncode == 0, first.stderr
    assert "API tokens for the development department" in first.stdout and "pmn_" in first.stdout
    again = pramaan(path, "init")
    assert again.returncode == 0 and "pmn_" not in again.stdout, "init is idempotent"
    assert (path / "keys" / "signer.key").exists() and (path / "var" / "pramaan.db").exists()
    return path


@pytest.fixture(scope=shared("module"))
def issued(home: Path) -> tuple[Path, dict[str, str]]:
    out = home / "cert.pdf"
    result = pramaan(home, "issue", "--data", SAMPLES / "birth-2.json", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_issue_and_verify_pdf(home: Path, issued: tuple[Path, dict[str, str]]) -> None:
    pdf, info = issued
    assert info["state"] == "issued"
    result = pramaan(home, "verify", pdf)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["current"] is True and report["certificate"]["number"] == info["number"]


def test_verify_at_another_day_tells_how_long_the_signature_holds(
    home: Path, issued: tuple[Path, dict[str, str]]
) -> None:
    pdf, _ = issued
    today = datetime.now(UTC).date()
    soon = pramaan(home, "verify", "--at", str(today + timedelta(days=365)), pdf)
    assert soon.returncode == 0, soon.stdout + soon.stderr
    # The development deployment signs at B-LTA: the dev document signer's certificate lasts
    # five years, and the certificate still verifies after it; the dev TSA's lasts ten, and
    # then nothing vouches for the timestamps (an archival timestamp would be due before).
    assert validate_pdf(pdf.read_bytes(), [home / "keys" / "root.crt"]).level == "B-LTA"
    after_signer = pramaan(home, "verify", "--at", str(today + timedelta(days=6 * 365)), pdf)
    assert after_signer.returncode == 0, after_signer.stdout + after_signer.stderr
    later = pramaan(home, "verify", "--at", str(today + timedelta(days=11 * 365)), pdf)
    assert later.returncode == 1
    assert json.loads(later.stdout)["reason"] == "pdf_signature: untrusted"
    for garbage in ("2030-13-01", "tomorrow", "2030-1-1", "2030-W01-1"):
        refused = pramaan(home, "verify", "--at", garbage, pdf)
        assert refused.returncode == 2
        assert f"{garbage!r} is not a date (YYYY-MM-DD)" in refused.stderr


def test_tampered_pdf_fails(home: Path, issued: tuple[Path, dict[str, str]],
                            tmp_path: Path) -> None:
    pdf, _ = issued
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(data))
    result = pramaan(home, "verify", bad)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["genuine"] is False and report["reason"].startswith("pdf_signature:")


def test_verify_qr_text_and_image(home: Path, issued: tuple[Path, dict[str, str]],
                                  tmp_path: Path) -> None:
    pdf, _ = issued
    need("pdftoppm")
    scan = run("pdftoppm", "-r", "300", "-png", "-singlefile", pdf, tmp_path / "scan")
    assert scan.returncode == 0
    image = tmp_path / "scan.png"
    ok = pramaan(home, "verify", "--image", image)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = run("zbarimg", "--raw", "-q", image).stdout.strip()
    assert pramaan(home, "verify", "--qr", text).returncode == 0
    digits_at = text.index("#") + 1
    at = digits_at + 40
    changed = text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:]
    bad = pramaan(home, "verify", "--qr", changed)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["reason"].startswith("seal:")
    # A corner of the page without the QR: "no QR code found", not a crash.
    run("pdftoppm", "-r", "50", "-png", "-singlefile", "-x", "0", "-y", "0", "-W", "50", "-H", "50",
        pdf, tmp_path / "blank")
    blank = tmp_path / "blank.png"
    none = pramaan(home, "verify", "--image", blank)
    assert none.returncode == 1


def test_bad_request_file_says_why(home: Path, tmp_path: Path) -> None:
    data = json.loads((SAMPLES / "birth-1.json").read_text(encoding="utf-8"))
    del data["child"]["name"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = pramaan(home, "issue", "--data", path)
    assert result.returncode == 2
    assert "child.name" in result.stderr


def test_audit_chain(home: Path, issued: tuple[Path, dict[str, str]]) -> None:
    result = pramaan(home, "audit-verify")
    assert result.returncode == 0 and json.loads(result.stdout)["ok"] is True


def test_refuses_a_key_that_does_not_match_its_certificate(tmp_path: Path) -> None:
    first = pramaan(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    keys = tmp_path / "keys"
    (keys / "signer.key").write_bytes((keys / "ca.key").read_bytes())
    result = pramaan(tmp_path, "issue", "--data", SAMPLES / "birth-1.json")
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "key_cert_mismatch" in result.stderr


def test_production_init_without_keys_refuses_instead_of_making_dev_keys(tmp_path: Path) -> None:
    env_home = tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "cli", "init"],
        env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
             "PRAMAAN_HOME": str(env_home),
             "PRAMAAN_VERIFY_BASE_URL": "https://verify.pmc.example"},
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 2
    assert "no document-signer key" in result.stderr and "--dev-pki" in result.stderr
    assert not (env_home / "keys" / "signer.key").exists()


def test_departments_people_and_tokens_from_the_command_line(home: Path) -> None:
    added = pramaan(home, "department", "add", "pmc-ward-aundh", "--name-en", "Aundh Ward Office",
                    "--name-mr", "औंध क्षेत्रीय कार्यालय", "--approval", "officer", "--types",
                    "birth", "--actor", "registrar")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == [{
        "code": "pmc-ward-aundh", "name_en": "Aundh Ward Office",
        "name_mr": "औंध क्षेत्रीय कार्यालय", "approval": "officer", "types": ["birth"]}]
    twice = pramaan(home, "department", "add", "pmc-ward-aundh", "--name-en", "x", "--name-mr",
                    "क्ष", "--approval", "automatic")
    assert twice.returncode == 2 and '"code": "taken"' in twice.stderr
    codes = [d["code"] for d in json.loads(pramaan(home, "department", "list").stdout)]
    assert "pmc-ward-aundh" in codes and "pmc-births-deaths" in codes

    made = pramaan(home, "token", "create", "--department", "pmc-ward-aundh", "--role", "officer",
                   "--name", "officer-1", "--actor", "registrar")
    assert made.returncode == 0 and made.stdout.startswith("pmn_"), made.stderr
    listed = pramaan(home, "token", "list", "--department", "pmc-ward-aundh")
    assert made.stdout.strip() not in listed.stdout
    assert [t["name"] for t in json.loads(listed.stdout)] == ["officer-1"]

    password = "Aundh-Officer-2026"
    user = pramaan(home, "user", "add", "asha.patil", "--department", "pmc-ward-aundh", "--role",
                   "officer", "--full-name", "Asha Patil", "--password-stdin", "--actor",
                   "registrar", stdin=password + "\n")
    assert user.returncode == 0, user.stderr
    assert json.loads(user.stdout)["actor"] == "user:asha.patil"
    weak = pramaan(home, "user", "add", "ravi", "--department", "pmc-ward-aundh", "--role",
                   "clerk", "--full-name", "Ravi", "--password-stdin", stdin="password\n")
    assert weak.returncode == 2 and '"field": "password"' in weak.stderr
    disabled = pramaan(home, "user", "disable", "asha.patil", "--actor", "registrar")
    assert disabled.returncode == 0 and json.loads(disabled.stdout)["status"] == "disabled"
    people = pramaan(home, "user", "list", "--department", "pmc-ward-aundh")
    assert password not in people.stdout and "argon2" not in people.stdout
    assert [(u["username"], u["status"]) for u in json.loads(people.stdout)] == [
        ("asha.patil", "disabled")]
    revoked = pramaan(home, "token", "revoke", "--department", "pmc-ward-aundh", "--name",
                      "officer-1", "--actor", "registrar")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"

    # Every change is in the audit chain, under the operator's name, and the chain holds.
    audit = sqlite3.connect(home / "var" / "pramaan.db")
    try:
        events = audit.execute("SELECT actor, action FROM audit_events WHERE actor = "
                               "'cli:registrar' ORDER BY seq").fetchall()
    finally:
        audit.close()
    assert events == [("cli:registrar", a) for a in ("department_add", "token_create",
                                                     "user_add", "user_disable", "token_revoke")]
    assert json.loads(pramaan(home, "audit-verify").stdout)["ok"] is True


def test_verify_image_reads_a_tilted_phone_photo_with_zxing_cpp(
        home: Path, issued: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """A phone frame of the printed certificate that zbar cannot read (tests/qr_conditions.py,
    tilted harder than the print tests' phone): `verify --image` reads it with zxing-cpp."""
    import cv2
    import numpy as np

    from tests import qr_conditions as q

    pdf, _ = issued
    printed = q.printed_qr(pdf)
    rng = np.random.default_rng(7)
    for _ in range(40):
        image = q._perspective(q._scaled(printed, 5.5), rng, tilt_deg=12, keystone=0.25)
        frame = q._jpeg(q._noise(q._uneven_light(cv2.GaussianBlur(image, (0, 0), 0.9), rng,
                                                 darkest=0.55), rng, 4), 70)
        if not q.read_zbar(frame) and q.read_zxing(frame):
            break
    else:
        raise AssertionError("no frame that only zxing-cpp reads: the simulation changed")
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), frame)

    read = pramaan(home, "verify", "--image", photo)

    assert read.returncode == 0, read.stdout + read.stderr
    assert "read with zxing-cpp" in read.stderr
    assert json.loads(read.stdout)["current"] is True


def test_verify_image_says_plainly_what_it_cannot_read(home: Path, tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image", encoding="utf-8")
    refused = pramaan(home, "verify", "--image", not_an_image)
    assert refused.returncode == 2
    assert "notes.png is not an image that can be read" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = pramaan(home, "verify", "--image", tmp_path / "nowhere.png")
    assert missing.returncode == 2 and "cannot read nowhere.png" in missing.stderr


def test_where_both_decoders_read_an_image_zxing_cpp_is_asked_first(tmp_path: Path) -> None:
    """zxing-cpp first, zbar only for what it does not find. No image was found that zbar reads
    and zxing-cpp does not (mirrored, no quiet zone, one pixel per module, 10 % contrast, 240
    simulated phone frames and scans at 30-40 mm), so the fallback is not exercised here."""
    import cv2
    import numpy as np

    from issuer.scan import Scanned, _zbar, scan_image
    from signing.qr import _matrix

    text = "https://verify.pmc.example/v#1" + "4" * 200
    pixels = (1 - np.array(_matrix(text, 4), dtype=np.uint8)) * 255
    both = tmp_path / "large.png"
    cv2.imwrite(str(both), cv2.resize(pixels, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST))
    assert _zbar(both) == [text]
    assert scan_image(both) == Scanned([text], "zxing-cpp")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200), 255, dtype=np.uint8))
    assert scan_image(blank) == Scanned([], None)



def _png_header(tmp_path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` pixels and holds none: opening reads the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    path = tmp_path / f"{width}x{height}.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))
    return path


def test_an_image_too_large_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    from issuer.scan import MAX_PIXELS, ImageUnreadable, scan_image

    over_ours = _png_header(tmp_path, 8000, 8000)  # 64 MP: over our cap, under Pillow's
    assert 8000 * 8000 > MAX_PIXELS
    with pytest.raises(ImageUnreadable, match="8000 x 8000 pixels, more than 60000000"):
        scan_image(over_ours)
    bomb = _png_header(tmp_path, 20000, 20000)  # 400 MP: Pillow's bomb warning, an error here
    with pytest.raises(ImageUnreadable, match="is not an image that can be read"):
        scan_image(bomb)
