"""A fourth certificate type needs only a schema, a template and one registry entry.

`Marriage` below and tests/data/templates/marriage/1.typ are all there is of it: registered here,
it is validated, numbered (PMC/M/...), sealed, rendered with the shipped layout package, signed
and verified through the real HTTP API like the shipped types; unregistered, it is refused again.
No core code mentions it (checked below)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from issuer.applicant import check_applicant
from issuer.bootstrap import DEV_DEPARTMENT
from issuer.certtypes import CertType, SealFacts, cert_type, register, unregister
from issuer.errors import FieldError
from issuer.fields import Checker
from issuer.models import Certificate, Department
from issuer.verify import verify_qr
from tests.conftest import ROOT, Live, sample
from tests.tools import nss_db_with_root, pdfsig, pdftotext, qr_from_pdf

TEMPLATES = ROOT / "tests" / "data" / "templates"


class Marriage:
    """Marriage certificate (Maharashtra Regulation of Marriage Bureaus and Registration of
    Marriages Act, 1998), as a deployment would add it."""

    code = "marriage"
    number_prefix = "M"
    seal_date = "marriage"
    rts_days = 5
    doc_type = "MRCER"
    authority: Mapping[str, str] = {"en": "Registrar of Marriages", "mr": "विवाह निबंधक"}
    template_version = "marriage/1"
    templates_root = TEMPLATES

    def validate(self, data: Any) -> list[FieldError]:
        check = Checker(data)
        check.unknown(data, "", {"type", "registration_number", "registration_date",
                                 "ward_office", "husband", "wife", "date_of_marriage",
                                 "place_of_marriage", "applicant"})
        check.text(data, "registration_number", "registration_number", max_len=40,
                   letters=False)
        registered = check.day(data, "registration_date", "registration_date")
        married = check.day(data, "date_of_marriage", "date_of_marriage")
        for key in ("ward_office", "husband", "wife", "place_of_marriage"):
            check.bilingual(data, key, key, max_len=100)
        check_applicant(check, data)
        if registered and married and registered < married:
            check.fail("registration_date", "before_marriage",
                       "the registration date is before the marriage")
        return check.errors

    def canonical(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def registration_number(self, data: Mapping[str, Any]) -> str:
        return str(data["registration_number"])

    def ward_office(self, data: Mapping[str, Any]) -> Mapping[str, str]:
        return dict(data["ward_office"])

    def seal_facts(self, data: Mapping[str, Any]) -> SealFacts:
        husband, wife = data["husband"], data["wife"]
        return SealFacts(
            holder={"en": f"{husband['en']} and {wife['en']}",
                    "mr": f"{husband['mr']} व {wife['mr']}"},
            dates={"marriage": data["date_of_marriage"]},
            ward=data["ward_office"]["en"],
        )


def request() -> dict[str, Any]:
    return {
        "type": "marriage",
        "registration_number": "M-2026-PMC-000311",
        "registration_date": "2026-05-04",
        "ward_office": sample("birth-1")["ward_office"],
        "husband": {"en": "Shrinivas Trimbak Deshpande", "mr": "श्रीनिवास त्र्यंबक देशपांडे"},
        "wife": {"en": "Dnyaneshwari Prashant Kshirsagar", "mr": "ज्ञानेश्वरी प्रशांत क्षीरसागर"},
        "date_of_marriage": "2026-04-26",
        "place_of_marriage": {"en": "Shri Ganesh Karyalay, Kothrud, Pune",
                              "mr": "श्री गणेश कार्यालय, कोथरूड, पुणे"},
        "applicant": {"name": "Shrinivas Trimbak Deshpande", "mobile": "+919800000041"},
    }


@pytest.fixture
def marriage() -> Iterator[CertType]:
    """The type, registered for one test (before `live` sets up its department) and removed."""
    kind = Marriage()
    register(kind)
    yield kind
    if cert_type("marriage") is kind:
        unregister("marriage")


def test_a_fourth_type_issues_end_to_end(
    marriage: CertType, live: Live, tmp_path: Path, keys_dir: Path
) -> None:
    with live.runtime.sessions() as session:
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None and "marriage" in department.cert_types

    created = live.post_json("/api/v1/certificates", request())
    assert created.status_code == 202, created.text
    record = live.get(created.json()["status_url"]).json()
    assert record["state"] == "issued", record
    assert record["number"].startswith("PMC/M/")
    assert record["template_version"] == "marriage/1"

    pdf = live.get(record["links"]["pdf"]).content
    path = tmp_path / "marriage.pdf"
    path.write_bytes(pdf)
    out = pdfsig(path, nss_db_with_root(tmp_path / "nss", keys_dir / "root.crt"))
    assert "Signature is Valid" in out and "Certificate is Trusted" in out, out
    text = unicodedata.normalize("NFC", pdftotext(path))
    squeezed = "".join(text.split())
    for expected in ("MARRIAGE CERTIFICATE", "विवाह प्रमाणपत्र", "Registrar of Marriages",
                     "Shrinivas Trimbak Deshpande", "ज्ञानेश्वरी प्रशांत क्षीरसागर", "26-04-2026",
                     "M-2026-PMC-000311", record["number"], "marriage/1"):
        assert "".join(expected.split()) in squeezed, expected

    (scanned,) = qr_from_pdf(path, tmp_path)
    verdict = verify_qr(live.runtime, scanned)
    assert verdict.current, verdict.as_dict()
    assert verdict.certificate is not None and verdict.certificate["type"] == "marriage"
    assert verdict.certificate["holder"] == {
        "en": "Shrinivas Trimbak Deshpande and Dnyaneshwari Prashant Kshirsagar",
        "mr": "श्रीनिवास त्र्यंबक देशपांडे व ज्ञानेश्वरी प्रशांत क्षीरसागर"}
    assert verdict.certificate["dates"] == {"marriage": "2026-04-26"}

    # Its own schema's rules apply, with field paths, over HTTP.
    late = request()
    late["registration_number"] = "M-2026-PMC-000312"
    late["registration_date"] = "2026-04-01"
    refused = live.post_json("/api/v1/certificates", late)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("registration_date", "before_marriage")]

    # Unregistered, the type is unknown again; its certificate stays on record.
    unregister("marriage")
    again = request()
    again["registration_number"] = "M-2026-PMC-000313"
    gone = live.post_json("/api/v1/certificates", again)
    assert gone.status_code == 422
    assert [(e["field"], e["code"]) for e in gone.json()["errors"]] == [("type", "choice")]
    with live.runtime.sessions() as session:
        assert session.get(Certificate, record["id"]) is not None


def test_no_core_code_mentions_the_extra_type() -> None:
    core = [ROOT / name for name in ("api.py", "cli.py", "worker.py", "web_server.py")]
    for folder in ("issuer", "signing", "digilocker", "templates", "bench"):
        core += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".typ", ".js",
                                                                         ".html", ".toml")]
    mentions = [str(p.relative_to(ROOT)) for p in core if "marriage" in p.read_text().lower()]
    assert mentions == []
