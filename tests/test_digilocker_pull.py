"""Pull URI and Pull Doc over real HTTP (PROTOCOL.md §2-3, §5, §9): each certificate type found by
its search parameters, the document byte-identical to our download and valid under pdfsig, the
formats, DataContent, doc ids with hyphens, supersession and revocation, and a log line per
document handed over (and no audit-chain event)."""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
import requests
from sqlalchemy import select

from issuer.models import AuditEvent
from issuer.settings import Settings
from tests.conftest import Live, make_settings, sample
from tests.digilocker_pull_requests import (
    KEY,
    Reply,
    doc_request,
    issue,
    officer_token,
    our_pdf,
    post,
    reply,
    uri_request,
)
from tests.tools import nss_db_with_root, pdfsig

BIRTH = {"RegistrationNumber": "B-2026-PMC-004512", "DateOfBirth": "21-02-2026"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, keys_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, keys_dir, digilocker_api_key=KEY)


def pull_uri(live: Live, doc_type: str, params: dict[str, str], **kwargs: Any) -> Reply:
    return reply(post(live, "pulluri", uri_request(doc_type, params, **kwargs)))


def pull_doc(live: Live, uri: str, **kwargs: Any) -> Reply:
    return reply(post(live, "pulldoc", doc_request(uri, **kwargs)))


def test_pull_uri_finds_each_type_by_its_search_parameters(live: Live) -> None:
    searches = {
        "birth-1": ("BTCER", BIRTH),
        "death-1": ("DTCER", {"RegistrationNumber": "d-2026-pmc-001877 ",
                              "DateOfDeath": "09-04-2026"}),
        "property-1": ("PRTAX", {"PropertyId": "pmc/pt/12/0456/00078123"}),
    }
    for name, (doc_type, params) in searches.items():
        record = issue(live, sample(name))
        raw = uri_request(doc_type, params, txn="77" + uuid.uuid4().hex[:8])
        answer = reply(post(live, "pulluri", raw))
        assert answer.status == "1", (name, answer)
        assert answer.root == "PullURIResponse"
        assert answer.details["URI"] == f"in.gov.pmc-{doc_type}-{record['id']}"
        assert answer.details["DocType"] == doc_type
        assert answer.content("DocContent") == our_pdf(live, record)
        assert "DataContent" not in answer.details  # format="pdf"
        sent = SafeET.fromstring(raw)
        assert (answer.ts, answer.txn) == (sent.get("ts"), sent.get("txn"))
    # A date that is not the registration's, or a number never registered: nothing.
    assert pull_uri(live, "BTCER", {**BIRTH, "DateOfBirth": "22-02-2026"}).status == "0"
    assert pull_uri(live, "BTCER", {**BIRTH, "RegistrationNumber": "B-1"}).status == "0"
    assert pull_uri(live, "DTCER", BIRTH).status == "0"  # a birth registration is no death
    assert pull_uri(live, "BTCER", {"RegistrationNumber": BIRTH["RegistrationNumber"]}).status \
        == "0"  # a search parameter missing
    assert pull_uri(live, "XXCER", BIRTH).status == "0"  # a doc type we do not publish


def test_search_parameters_positional_udfs_and_configured_names(
        tmp_path: Path, sqlite_url: str, keys_dir: Path) -> None:
    from tests.conftest import serve
    custom = make_settings(tmp_path, sqlite_url, keys_dir, digilocker_api_key=KEY,
                           digilocker_search={"birth": ("RegNo", "DOBChild")})
    for live in serve(custom):
        record = issue(live, sample("birth-1"))
        configured = pull_uri(live, "BTCER", {"RegNo": BIRTH["RegistrationNumber"],
                                              "DOBChild": BIRTH["DateOfBirth"]})
        assert configured.details["URI"].endswith(record["id"])
        assert configured.details["RegNo"] == BIRTH["RegistrationNumber"]  # echoed
        positional = pull_uri(live, "BTCER", {"UDF1": BIRTH["RegistrationNumber"],
                                              "UDF2": BIRTH["DateOfBirth"]})
        assert positional.status == "1"
        assert pull_uri(live, "BTCER", BIRTH).status == "0"  # the default names are not these


def test_pull_doc_is_our_download_byte_for_byte_and_validates(live: Live, tmp_path: Path,
                                                               keys_dir: Path) -> None:
    record = issue(live, sample("birth-1"))
    uri = f"in.gov.pmc-BTCER-{record['id']}"
    answer = pull_doc(live, uri, fmt=None)  # format absent: the PDF
    pdf = answer.content("DocContent")
    assert pdf == our_pdf(live, record)
    path = tmp_path / "pulled.pdf"
    path.write_bytes(pdf)
    out = pdfsig(path, nss_db_with_root(tmp_path / "nss", keys_dir / "root.crt"))
    assert "Signature is Valid" in out and "Certificate is Trusted" in out, out

    assert set(pull_doc(live, uri, fmt="pdf").details) == {"DocContent"}
    assert set(pull_doc(live, uri, fmt="PDF").details) == {"DocContent"}
    assert set(pull_doc(live, uri, fmt="xml").details) == {"DataContent"}
    both = pull_doc(live, uri, fmt="both")
    assert set(both.details) == {"DocContent", "DataContent"}
    assert both.content("DocContent") == pdf
    assert pull_doc(live, uri, fmt="json").status == "0"


def data_content(answer: Reply) -> Any:
    return SafeET.fromstring(base64.b64decode(answer.details["DataContent"], validate=True))


def test_data_content_is_the_certificate_format_for_each_type(live: Live) -> None:
    birth = issue(live, sample("birth-1"))
    xml = data_content(pull_doc(live, f"in.gov.pmc-BTCER-{birth['id']}", fmt="xml"))
    assert xml.tag == "Certificate"
    assert (xml.get("type"), xml.get("number"), xml.get("status"), xml.get("language")) == \
        ("BTCER", birth["number"], "A", "99")
    organisation = xml.find("IssuedBy/Organization")
    assert organisation is not None and organisation.get("code") == "in.gov.pmc"
    person = xml.find("IssuedTo/Person")
    assert person is not None
    assert (person.get("name"), person.get("dob"), person.get("gender")) == \
        ("Aarav Sandeep Kulkarni", "21-02-2026", "M")
    child = xml.find("CertificateData/Birth/Child")
    assert child is not None and child.get("nameMr") == "आरव संदीप कुलकर्णी"
    assert child.get("dateOfBirth") == "21-02-2026"
    assert xml.find("CertificateData/Birth").get("registrationNumber") == "B-2026-PMC-004512"

    death = issue(live, sample("death-1"))
    xml = data_content(pull_doc(live, f"in.gov.pmc-DTCER-{death['id']}", fmt="xml"))
    assert xml.find("CertificateData/Death/Deceased").get("dateOfDeath") == "09-04-2026"
    prop = issue(live, sample("property-1"))
    xml = data_content(pull_doc(live, f"in.gov.pmc-PRTAX-{prop['id']}", fmt="both"))
    data = xml.find("CertificateData/PropertyTaxNoDues")
    assert data.get("propertyId") == "PMC/PT/12/0456/00078123"
    assert [p.get("name") for p in xml.findall("IssuedTo/Person")] == \
        ["Rukhsana Imtiaz Shaikh", "Imtiaz Yusuf Shaikh"]
    text = base64.b64decode(pull_doc(live, f"in.gov.pmc-PRTAX-{prop['id']}", fmt="xml")
                            .details["DataContent"]).decode()
    assert "+919800000031" not in text and "example.in" not in text  # never contact details


def test_uris_split_at_the_first_two_hyphens_and_name_only_our_documents(live: Live) -> None:
    record = issue(live, sample("birth-1"))
    doc_id = record["id"]
    assert doc_id.count("-") == 4  # the doc id has hyphens of its own
    assert pull_doc(live, f"in.gov.pmc-BTCER-{doc_id}").status == "1"
    for uri in (f"in.gov.pmc-DTCER-{doc_id}",  # another type's code
                f"in.gov.other-BTCER-{doc_id}",  # another issuer
                f"in.gov.pmc-BTCER-{doc_id}-1", f"in.gov.pmc-BTCER-{doc_id[:-1]}",
                f"in.gov.pmc-BTCER-{uuid.uuid4()}", "in.gov.pmc-BTCER-", "in.gov.pmc-BTCER",
                f"in.gov.pmc--{doc_id}", "", f"BTCER-{doc_id}",
                f"in.gov.pmc-BTCER-{doc_id.upper()}x"):
        assert pull_doc(live, uri).status == "0", uri


def revoke(live: Live, cert_id: str) -> None:
    response = requests.post(live.url(f"/api/v1/certificates/{cert_id}/revoke"),
                             json={"reason": "registered twice"}, timeout=60,
                             headers={"Authorization": f"Bearer {officer_token(live)}"})
    assert response.status_code == 200, response.text


def test_a_superseded_uri_gives_the_current_certificate_and_a_revoked_one_nothing(
        live: Live) -> None:
    original = issue(live, sample("birth-1"))
    fixed = sample("birth-1")
    fixed["child"]["place_of_birth"]["en"] = "Sassoon General Hospital, Pune"
    correction = issue(live, {**fixed, "corrects": original["id"]})
    old_uri = f"in.gov.pmc-BTCER-{original['id']}"
    answer = pull_doc(live, old_uri, fmt="both")
    assert answer.status == "1"
    assert answer.content("DocContent") == our_pdf(live, correction)
    xml = data_content(answer)
    assert (xml.get("number"), xml.get("prevNumber")) == (correction["number"],
                                                         original["number"])
    # Pull URI finds the correction, under its own URI.
    assert pull_uri(live, "BTCER", BIRTH).details["URI"].endswith(correction["id"])

    revoke(live, correction["id"])
    assert pull_doc(live, old_uri).status == "0"
    assert pull_doc(live, f"in.gov.pmc-BTCER-{correction['id']}").status == "0"
    assert pull_uri(live, "BTCER", BIRTH).status == "0"
    assert "DocContent" not in pull_doc(live, old_uri).details


def test_every_document_handed_over_is_logged_without_personal_data(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    record = issue(live, sample("birth-1"))
    caplog.set_level(logging.INFO, logger="digilocker")
    caplog.clear()
    pull_uri(live, "BTCER", {**BIRTH, "FullName": "Aarav Sandeep Kulkarni"}, txn="4242")
    pull_doc(live, f"in.gov.pmc-BTCER-{record['id']}", txn="4343")
    pull_doc(live, f"in.gov.pmc-BTCER-{uuid.uuid4()}", txn="4444")  # nothing handed over
    handed = [r.getMessage() for r in caplog.records if "handed over" in r.getMessage()]
    assert handed == [
        f"digilocker pulluri handed over certificate {record['id']} ({record['number']}) "
        "txn='4242'",
        f"digilocker pulldoc handed over certificate {record['id']} ({record['number']}) "
        "txn='4343'",
    ]
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("digilocker"))
    assert "4444" in text  # the refused one is logged too, as an outcome
    for personal in ("Aarav", "B-2026-PMC-004512", "21-02-2026", "Kulkarni"):
        assert personal not in text
    # Pulls change nothing: no audit-chain event.
    with live.runtime.sessions() as session:
        assert not session.scalars(select(AuditEvent).where(
            AuditEvent.action.like("digilocker%"))).all()


def test_the_variants_protocol_md_lists_are_all_accepted(live: Live) -> None:
    """§11.7-8: a root bound into the tempuri namespace, attribute names in either case
    (`keyHash`), `ts` in UTC, `format` in capitals; §4.2: keyhash alone authenticates."""
    from datetime import UTC, datetime

    from tests.digilocker_pull_requests import DECLARATION, keyhash_of, new_txn
    record = issue(live, sample("birth-1"))
    uri = f"in.gov.pmc-BTCER-{record['id']}"
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = (f'{DECLARATION}<ns2:PullDocRequest xmlns:ns2="http://tempuri.org/" ver="1.0" '
           f'ts="{ts}" txn="{new_txn()}" orgid="in.gov.pmc" FORMAT="BOTH" '
           f'keyHash="{keyhash_of(ts)}"><ns2:DocDetails><ns2:URI>{uri}</ns2:URI>'
           "</ns2:DocDetails></ns2:PullDocRequest>").encode()
    answer = reply(post(live, "pulldoc", raw, encoding=None))
    assert answer.status == "1" and answer.ts == ts
    assert set(answer.details) == {"DocContent", "DataContent"}
