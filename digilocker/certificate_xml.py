"""`DataContent`: the certificate as XML in DigiLocker's `Certificate` format (PROTOCOL.md §9).

The envelope follows the published generic structure: `Certificate` (language "99" as every
implementation writes it, name, type = DigiLocker doc type, number, prevNumber = the number this
one corrects, issuedAt, issueDate/validFromDate DD-MM-YYYY, status "A" = active, the only status
we ever send, since a revoked certificate is never pulled), `IssuedBy/Organization` with its
official `Address`, `IssuedTo/Person` (the child, the deceased, each owner) and a
`CertificateData` of our own per type, since none is published for birth, death or property tax
(§9 UNCONFIRMED; README "DigiLocker" documents ours). Text in both scripts: English attributes
as they are named, Marathi ones with the suffix `Mr`. Only what the certificate prints: never
the applicant's contact details or Aadhaar. Unsigned, as every issuer's is (§9).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from digilocker.xml_body import DECLARATION

_GENDER = {"male": "M", "female": "F", "other": "T"}
_TITLES = {"birth": "Birth Certificate", "death": "Death Certificate",
           "property_no_dues": "Property Tax No-Dues Certificate"}


@dataclass(frozen=True)
class Issuer:
    """Who issues: the organisation block of every certificate."""

    name: str
    code: str  # our DigiLocker issuer id
    district: str = "Pune"
    state: str = "Maharashtra"


@dataclass(frozen=True)
class Facts:
    """The record's facts the XML needs besides its stored request."""

    kind: str
    doc_type: str
    number: str
    prev_number: str
    issued: date
    issued_at: str  # the place of issue (the ward office)


def certificate_xml(issuer: Issuer, facts: Facts, request: Mapping[str, Any]) -> bytes:
    """The UTF-8 XML document DigiLocker receives base64-encoded as `DataContent`."""
    issued = _day(facts.issued.isoformat())
    root = ET.Element("Certificate", {
        "language": "99", "name": _TITLES.get(facts.kind, facts.kind), "type": facts.doc_type,
        "number": facts.number, "prevNumber": facts.prev_number, "issuedAt": facts.issued_at,
        "issueDate": issued, "validFromDate": issued, "expiryDate": "", "status": "A",
    })
    organisation = ET.SubElement(ET.SubElement(root, "IssuedBy"), "Organization", {
        "name": issuer.name, "code": issuer.code, "tin": "", "uid": "", "type": "SG"})
    ET.SubElement(organisation, "Address", {
        "type": "official", "line1": "", "line2": "", "house": "", "landmark": "",
        "locality": "", "vtc": issuer.district, "district": issuer.district, "pin": "",
        "state": issuer.state, "country": "IN"})
    issued_to = ET.SubElement(root, "IssuedTo")
    for person in _persons(facts.kind, request):
        ET.SubElement(issued_to, "Person", person)
    _certificate_data(ET.SubElement(root, "CertificateData"), facts.kind, request)
    return DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8")


def _persons(kind: str, request: Mapping[str, Any]) -> list[dict[str, str]]:
    if kind == "birth":
        child = request["child"]
        return [_person(child["name"], child.get("sex"), _day(child.get("date_of_birth")))]
    if kind == "death":
        deceased = request["deceased"]
        return [_person(deceased["name"], deceased.get("sex"), "")]
    if kind == "property_no_dues":
        return [_person(owner["name"], None, "") for owner in request.get("owners", ())]
    return []


def _person(name: Mapping[str, str], sex: Any, dob: str) -> dict[str, str]:
    return {"uid": "", "title": "", "name": name.get("en", ""), "nameMr": name.get("mr", ""),
            "dob": dob, "gender": _GENDER.get(sex, "") if isinstance(sex, str) else "",
            "phone": "", "email": ""}


def _certificate_data(data: ET.Element, kind: str, request: Mapping[str, Any]) -> None:
    ward = request.get("ward_office") or {}
    if kind in ("birth", "death"):
        record = ET.SubElement(data, "Birth" if kind == "birth" else "Death", {
            "registrationNumber": str(request.get("registration_number", "")),
            "registrationDate": _day(request.get("registration_date")),
            **_both("wardOffice", ward)})
        if kind == "birth":
            child = request["child"]
            ET.SubElement(record, "Child", {
                **_both("name", child["name"]), "sex": str(child.get("sex", "")),
                "dateOfBirth": _day(child.get("date_of_birth")),
                **_both("placeOfBirth", child.get("place_of_birth"))})
            for parent in ("mother", "father"):
                if isinstance(request.get(parent), Mapping):
                    ET.SubElement(record, parent.capitalize(),
                                  _both("name", request[parent].get("name")))
        else:
            deceased = request["deceased"]
            ET.SubElement(record, "Deceased", {
                **_both("name", deceased["name"]), "sex": str(deceased.get("sex", "")),
                "ageYears": str(deceased.get("age_years", "")),
                "dateOfDeath": _day(deceased.get("date_of_death")),
                **_both("placeOfDeath", deceased.get("place_of_death"))})
            relative = request.get("relative") or {}
            ET.SubElement(record, "Relative", {"relation": str(relative.get("relation", "")),
                                               **_both("name", relative.get("name"))})
        ET.SubElement(record, "PermanentAddress", _both("text", request.get("permanent_address")))
        ET.SubElement(record, "Remarks", _both("text", request.get("remarks")))
        return
    if kind == "property_no_dues":
        receipt = request.get("last_receipt") or {}
        record = ET.SubElement(data, "PropertyTaxNoDues", {
            "reference": str(request.get("certificate_reference", "")),
            "propertyId": str(request.get("property_id", "")),
            "usage": str(request.get("usage", "")),
            "assessmentYear": str(request.get("assessment_year", "")),
            "taxPaidUpTo": _day(request.get("tax_paid_up_to")), **_both("wardOffice", ward)})
        owners = ET.SubElement(record, "Owners")
        for owner in request.get("owners", ()):
            ET.SubElement(owners, "Owner", _both("name", owner.get("name")))
        ET.SubElement(record, "PropertyAddress", _both("text", request.get("property_address")))
        ET.SubElement(record, "LastReceipt", {"number": str(receipt.get("number", "")),
                                              "date": _day(receipt.get("date")),
                                              "amountInr": str(receipt.get("amount_inr", ""))})


def _both(name: str, value: Any) -> dict[str, str]:
    """A bilingual {"en", "mr"} value as two attributes, `name` and `name`+"Mr"."""
    value = value if isinstance(value, Mapping) else {}
    return {name: str(value.get("en", "")), f"{name}Mr": str(value.get("mr", ""))}


def _day(iso: Any) -> str:
    """YYYY-MM-DD as DigiLocker writes dates, DD-MM-YYYY; "" when absent."""
    if not isinstance(iso, str) or len(iso) != 10:
        return ""
    return f"{iso[8:10]}-{iso[5:7]}-{iso[0:4]}"
