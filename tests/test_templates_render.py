"""The death and property no-dues certificates as a reader, a printer and a phone see them: the
wording a registrar prints (pdftotext), one A4 page (pdfinfo), the QR (pdftoppm + zbarimg).
Real typst, real fonts; the template input is built by the issue job's own render_data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from issuer.render import Renderer
from tests.certificate_pdfs import SEAL, pages, qr_text, render, squash, text_of
from tests.conftest import sample
from tests.fixture_scope import shared

TOOLS = ("pdftotext", "pdftoppm", "pdfinfo", "zbarimg")


@pytest.fixture(scope=shared("module"), autouse=True)
def _tools() -> None:
    """The independent checkers are part of the suite (make debian-tools): fail, never skip."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"install {', '.join(missing)} (poppler-utils, zbar-tools)"


@pytest.fixture(scope=shared("module"))
def renderer() -> Renderer:
    return Renderer()


def text(renderer: Renderer, tmp_path: Path, request: dict[str, Any]) -> str:
    return text_of(tmp_path, render(renderer, request))


# ---------------------------------------------------------------- death
def test_death_certificate_prints_what_the_register_says(
    renderer: Renderer, tmp_path: Path
) -> None:
    req = sample("death-1")
    out = text(renderer, tmp_path, req)
    flat = squash(out)
    for expected in (
        "DEATH CERTIFICATE", "मृत्यू प्रमाणपत्र",
        "Sections 12/17 of the Registration of Births and Deaths Act, 1969",
        "Rule 13 of the Maharashtra Registration of Births and Deaths Rules, 2000",
        "जन्म व मृत्यू नोंदणी अधिनियम, १९६९ चे कलम १२/१७",
        "original record of death in the register of Shivajinagar-Ghole Road Ward Office",
        "Registrar of Births and Deaths", "जन्म-मृत्यू निबंधक",
        "Vishwanath Dattatray Joshi", "विश्वनाथ दत्तात्रय जोशी",
        "Male", "पुरुष", "84 years", "८४ वर्षे", "09-04-2026",
        "Ruby Hall Clinic, Sassoon Road, Pune", "रुबी हॉल क्लिनिक, ससून रस्ता, पुणे",
        "Name of the spouse", "पती/पत्नीचे नाव", "Sushama Vishwanath Joshi",
        "22 Prabhat Road, Lane 4, Erandwane, Pune 411004",
        "D-2026-PMC-001877", "11-04-2026", "PMC/D/2026/000001", "28-11-2026", "death/3",
        "Scan to verify at", "127.0.0.1:8000",
    ):
        assert squash(expected) in flat, expected
    # Empty remarks print no row; the applicant's contact details never print.
    assert "Remarks" not in out
    assert "+919800000021" not in out and "Applicant" not in out


def test_cause_of_death_never_prints_even_if_the_template_is_given_one(
    renderer: Renderer, tmp_path: Path
) -> None:
    # Validation drops it before storage (test_certtypes); the template has no place for it.
    req = sample("death-1")
    req["cause_of_death"] = {"en": "Cardiac arrest", "mr": "हृदयविकाराचा झटका"}
    req["remarks"] = {"en": "Late registration.", "mr": "उशिरा नोंदणी."}
    out = text(renderer, tmp_path, req)
    assert "Cardiac" not in out and "arrest" not in out
    assert squash("हृदयविकाराचा") not in squash(out)
    assert "Cause" not in out and "कारण" not in out
    assert "Remarks" in out and "Late registration." in out


@pytest.mark.parametrize(
    ("age", "en", "mr"),
    [(0, "Under one year", "एक वर्षापेक्षा कमी"), (1, "1 year", "१ वर्ष"),
     (125, "125 years", "१२५ वर्षे")],
)
def test_age_is_worded_in_both_languages(
    renderer: Renderer, tmp_path: Path, age: int, en: str, mr: str
) -> None:
    req = sample("death-1")
    req["deceased"]["age_years"] = age
    out = text(renderer, tmp_path, req)
    assert en in out and squash(mr) in squash(out)
    if age != 1:
        assert "1 year\n" not in out


@pytest.mark.parametrize(
    ("relation", "en", "mr"),
    [("father", "Name of the father", "वडिलांचे नाव"), ("mother", "Name of the mother", "आईचे नाव"),
     ("husband", "Name of the husband", "पतीचे नाव"), ("wife", "Name of the wife", "पत्नीचे नाव"),
     ("guardian", "Name of the guardian", "पालकाचे नाव")],
)
def test_relative_row_names_the_relation(
    renderer: Renderer, tmp_path: Path, relation: str, en: str, mr: str
) -> None:
    req = sample("death-1")
    req["relative"]["relation"] = relation
    req["deceased"]["sex"] = "female"
    out = text(renderer, tmp_path, req)
    assert en in out and squash(mr) in squash(out)
    assert "spouse" not in out
    assert "Female" in out and "स्त्री" in out


# ---------------------------------------------------------------- property no-dues
def test_no_dues_certificate_prints_property_payment_and_nil_arrears(
    renderer: Renderer, tmp_path: Path
) -> None:
    out = text(renderer, tmp_path, sample("property-1"))
    flat = squash(out)
    for expected in (
        "PROPERTY TAX NO-DUES CERTIFICATE", "मालमत्ता कर थकबाकी नसल्याचे प्रमाणपत्र",
        "Property Tax Department", "मालमत्ता कर विभाग",
        "Maharashtra Municipal Corporations Act, 1949",
        "has been paid up to 31-03-2027 and no arrears are outstanding",
        "Property number", "PMC/PT/12/0456/00078123",
        "Owners", "1. Rukhsana Imtiaz Shaikh", "१. रुखसाना इम्तियाज शेख",
        "2. Imtiaz Yusuf Shaikh", "२. इम्तियाज युसूफ शेख",
        "Unit 403, Sai Srushti, Baner Road, Baner, Pune 411045",
        "Residential", "निवासी", "Aundh-Baner Ward Office", "औंध-बाणेर क्षेत्रीय कार्यालय",
        "Assessment year", "2026-27", "Property tax paid up to", "31-03-2027",
        "No. RCPT-2026-88123 dated 14-05-2026, ₹ 18,452.00",
        "क्रमांक RCPT-2026-88123 दिनांक 14-05-2026, ₹ 18,452.00",
        "Arrears", "थकबाकी", "NIL", "निरंक",
        "PT-ND-2026-000341", "PMC/P/2026/000001", "property_no_dues/3",
        "Property Tax Department, Pune Municipal Corporation",
    ):
        assert squash(expected) in flat, expected
    assert "Registrar" not in out
    assert "+919800000031" not in out and "r.shaikh@example.in" not in out


def test_a_single_owner_is_not_numbered(renderer: Renderer, tmp_path: Path) -> None:
    req = sample("property-1")
    req["owners"] = req["owners"][1:]
    out = text(renderer, tmp_path, req)
    assert "Owner\n" in out or "Owner " in out
    assert "Owners" not in out and "1. " not in out
    assert "Imtiaz Yusuf Shaikh" in out


@pytest.mark.parametrize(
    ("amount", "printed"),
    [("1.00", "₹ 1.00"), ("0.50", "₹ 0.50"), ("999.00", "₹ 999.00"), ("1000.00", "₹ 1,000.00"),
     ("100000.00", "₹ 1,00,000.00"), ("123456789.05", "₹ 12,34,56,789.05"),
     ("99999999999.99", "₹ 99,99,99,99,999.99")],
)
def test_amount_prints_with_indian_grouping(
    renderer: Renderer, tmp_path: Path, amount: str, printed: str
) -> None:
    req = sample("property-1")
    req["last_receipt"]["amount_inr"] = amount
    assert f"{printed}\n" in text(renderer, tmp_path, req)


@pytest.mark.parametrize(
    ("usage", "en", "mr"),
    [("commercial", "Commercial", "वाणिज्यिक"), ("industrial", "Industrial", "औद्योगिक"),
     ("mixed", "Mixed (residential and commercial)", "मिश्र (निवासी व वाणिज्यिक)"),
     ("open_plot", "Open plot", "मोकळा भूखंड")],
)
def test_usage_is_translated(
    renderer: Renderer, tmp_path: Path, usage: str, en: str, mr: str
) -> None:
    req = sample("property-1")
    req["usage"] = usage
    out = text(renderer, tmp_path, req)
    assert en in out and squash(mr) in squash(out)


# ---------------------------------------------------------------- both
@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_one_page_and_the_qr_reads_back(renderer: Renderer, tmp_path: Path, name: str) -> None:
    pdf = render(renderer, sample(name))
    assert pages(tmp_path, pdf) == 1
    assert qr_text(tmp_path, pdf) == SEAL


@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_markup_in_data_prints_literally(renderer: Renderer, tmp_path: Path, name: str) -> None:
    req = sample(name)
    injection = "*bold* #set text(red) [x] $y$ <z>"
    req["ward_office"]["en"] = injection
    req["ward_office"]["mr"] = '#panic("x") ]) // ' + "औंध"
    out = text(renderer, tmp_path, req)
    assert injection in out and '#panic("x") ]) // औंध' in out


@pytest.mark.parametrize("name", ["death-1", "property-1"])
def test_same_input_renders_identically(renderer: Renderer, name: str) -> None:
    assert render(renderer, sample(name)) == render(Renderer(), sample(name))
