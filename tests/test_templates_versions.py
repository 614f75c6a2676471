"""Template versions: every certificate records the template version it was rendered with, and
re-renders from its stored record byte for byte with that version after a newer one ships.

Our PAdES signer appends the signature as an incremental update (signing/pades.py: "Return `pdf`
with one incremental revision"), so the unsigned PDF that was signed is the first bytes of the
stored signed PDF, and a re-render can be compared with it exactly."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import templates
from issuer.certtypes import CertType, cert_type, register
from issuer.certtypes.birth import Birth
from issuer.issue import Intent, render_data
from issuer.models import Certificate
from signing.qr import qr_svg
from tests.conftest import Live, sample
from tests.tools import pdftotext

# Every shipped template version, layout package version and font, by content. A certificate
# re-renders from its record only if these never change: a change to a template is a new version
# file (birth/2.typ; a new current `template_version` on the type), a change to the layout is a
# new package version (1.1.0). Add the new file's hash here; never edit a line.
SHIPPED = {
    "birth/1.typ":
        "37ac02c0df8e2ef1fbfc49b4cf4c7648680f720dd3b3ef3af0c2226f5c2be893",
    "birth/2.typ":
        "bdc22534ded9bb98b4d78e87bc9f0bdd921f89be2fec3df55c89edd63c8546bc",
    "birth/3.typ":
        "de2ff34e6d8158306b897ef352158644a8e89a48e1763c45f52485ff07a7706f",
    "death/1.typ":
        "7d1ad77f05f60047391b548c7941f5a8faaacd99af93915b9f3a875fb6551ee8",
    "death/2.typ":
        "728d0aa8c5b9dd45e0428ea08177fc9c4339133dfa5e0f94cbd9804500f148af",
    "death/3.typ":
        "817ed3a7bb6e012c7b6c326060e740a3f042f51b9cb3725825bef88436d053f3",
    "fonts/NotoSans-Bold.ttf":
        "e83493c945848ecd4a9ad0f6d19164541a0d3e23a9c952304a00a46e00272ac5",
    "fonts/NotoSans-Regular.ttf":
        "89c3c497f618fdaa0b2d1e98fef93582f28c71debd2c4a8cdf41f190ced2909d",
    "fonts/NotoSansDevanagari-Bold.ttf":
        "77ad688cfe1dc55185bf4edb4db3c614202c65dd23a1463ad0e23fc52bcc9a5c",
    "fonts/NotoSansDevanagari-Regular.ttf":
        "79a470365ccb210fa3c7d8d8ff2e005ef9d983cfd067f735a0caf7e15070ca9f",
    "packages/pramaan/certificate/1.0.0/lib.typ":
        "6dbd3f3e134a790d2892c6b44afa8a1a50c8878adabf5955349339529024c3b6",
    "packages/pramaan/certificate/1.0.0/typst.toml":
        "2d43c5bde1ddf61b8f527546ad83e72045fe621d401bd426ef45bec03fa77fa9",
    "packages/pramaan/certificate/1.1.0/lib.typ":
        "799381d708dbd88d08e8b52c4b726941813b5cffc00d38530878000f9073769b",
    "packages/pramaan/certificate/1.1.0/typst.toml":
        "75ed3dd474b30b3be2521998aeabf49ccd042f7f6d874b4b2bc59aa231780d02",
    "packages/pramaan/certificate/1.2.0/lib.typ":
        "de5e45bc2e2ab5c27424dcd2f2ad71ed86f6b62e0b0a93df8ef39a4a7163c681",
    "packages/pramaan/certificate/1.2.0/typst.toml":
        "0d61c7a8d0e3246cb4925b4824d5c74fe5e674d275d456133438356d7cbcbe11",
    "property_no_dues/1.typ":
        "bd3aac0482d98fec3bacf2f2bb983e2f39f97dc449ac97e3223b00336875db40",
    "property_no_dues/2.typ":
        "c006fd908e994eed768f076dbcef5de658ea7f7cb283ba9862eb1a54a63298ab",
    "property_no_dues/3.typ":
        "444594ad27c9ac1b1d866979e1276aeb940acdd5a51ce6853ba856b4c652fc96",
}
# What render_data takes from the type rather than the record: versioned with the templates.
AUTHORITIES = {
    "birth": {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"},
    "death": {"en": "Registrar of Births and Deaths", "mr": "जन्म-मृत्यू निबंधक"},
    "property_no_dues": {"en": "Property Tax Department", "mr": "मालमत्ता कर विभाग"},
}


def shipped_files() -> dict[str, str]:
    root = templates.templates_dir()
    paths = [p for p in root.rglob("*") if p.is_file()
             and (p.suffix in (".typ", ".ttf") or p.name == "typst.toml")]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(paths)}


def test_shipped_templates_layout_and_fonts_never_change() -> None:
    assert shipped_files() == SHIPPED


def test_authority_wording_never_changes() -> None:
    found = {code: dict(kind.authority) for code in AUTHORITIES if (kind := cert_type(code))}
    assert found == AUTHORITIES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def issue(live: Live, data: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    created = live.post_json("/api/v1/certificates", data)
    assert created.status_code == 202, created.text
    record = live.get(created.json()["status_url"]).json()
    assert record["state"] == "issued", record
    return record, live.get(record["links"]["pdf"]).content


def rerender(live: Live, cert_id: str, version: str | None = None) -> bytes:
    """The unsigned PDF from the stored record alone (with another version, if given)."""
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None
        intent = Intent.of(record)
    return live.runtime.renderer.render(version or intent.template_version,
                                        render_data(live.runtime.settings, intent),
                                        qr_svg(intent.seal_text))


def current_birth() -> str:
    shipped = cert_type("birth")
    assert shipped is not None
    return shipped.template_version


def next_birth() -> str:
    return f"birth/{int(current_birth().split('/')[1]) + 1}"


@pytest.fixture
def birth_2(tmp_path: Path) -> Iterator[CertType]:
    """Ship the next birth version: a new release's templates root (everything shipped, plus
    birth/<n+1>.typ, a changed title) with a birth type whose current version is it. Restored
    afterwards."""
    root = tmp_path / "templates"
    shutil.copytree(templates.templates_dir(), root,
                    ignore=shutil.ignore_patterns("fonts", "web", "*.py", "__pycache__"))
    current, following = current_birth(), next_birth()
    v1 = (root / f"{current}.typ").read_text(encoding="utf-8")
    v2 = v1.replace("[BIRTH CERTIFICATE]", "[BIRTH CERTIFICATE (EXTRACT)]")
    assert v2 != v1
    (root / f"{following}.typ").write_text(v2, encoding="utf-8")

    class BirthNext(Birth):
        template_version = following
        templates_root = root

    shipped = cert_type("birth")
    assert shipped is not None
    register(BirthNext(), replace=True)
    yield BirthNext()
    register(shipped, replace=True)


def test_old_certificate_re_renders_byte_for_byte_after_a_new_version_ships(
    live: Live, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    old, signed = issue(live, sample("birth-1"))
    current, following = current_birth(), next_birth()
    assert old["template_version"] == current
    assert signed.startswith(rerender(live, old["id"]))  # before anything changed

    request.getfixturevalue("birth_2")  # a new version ships

    unsigned = rerender(live, old["id"])
    assert sha256(signed[: len(unsigned)]) == sha256(unsigned)  # (no 90 kB diff on failure)
    update = signed[len(unsigned):]
    assert b"/ByteRange" in update and b"/PramaanSeal" in update  # only the signature was added
    # The current version would not give the signed bytes back: the recorded one is used.
    assert not signed.startswith(rerender(live, old["id"], following))

    new, new_pdf = issue(live, sample("birth-2"))
    assert new["template_version"] == following
    assert new_pdf.startswith(rerender(live, new["id"]))
    path = tmp_path / "new.pdf"
    path.write_bytes(new_pdf)
    assert "BIRTH CERTIFICATE (EXTRACT)" in pdftotext(path)
    path.write_bytes(signed)
    assert "(EXTRACT)" not in pdftotext(path) and "BIRTH CERTIFICATE" in pdftotext(path)


def test_a_record_without_its_template_cannot_be_re_rendered(
    live: Live, birth_2: CertType
) -> None:
    # A version the type's root lacks is an error, never a silent fallback to another version.
    record, _ = issue(live, sample("birth-1"))
    following = birth_2.template_version
    assert record["template_version"] == following
    (Path(str(birth_2.templates_root)) / f"{following}.typ").unlink()
    with pytest.raises(ValueError, match=f"template '{following}' has no file"):
        rerender(live, record["id"])
