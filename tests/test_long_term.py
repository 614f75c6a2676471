"""PAdES B-LT and B-LTA: revocation information for the whole chain embedded (the dev CAs' own
CRLs, made in process), and for B-LTA a document timestamp over it all. Validated offline with
pyHanko's ETSI AdES validation (nothing fetched), now and at simulated future dates: after the
signer's certificate has expired the certificate still verifies; after the TSA's has, it does
not, unless archival rounds (new document timestamps from a renewed TSA certificate) were added
in time: two rounds carry it past the first and the second TSA certificate's expiry. Later
revisions that change the page, or bring a seal of their own, are refused or ignored; pdfsig
accepts the signature itself."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, ocsp, tsp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.ocsp import OCSPCertStatus, load_der_ocsp_response
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko_certvalidator import ValidationContext

from issuer.bootstrap import initialise
from issuer.runtime import Runtime
from issuer.verify import verify_pdf
from signing.archival import ArchivalStamper
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import ServiceUnavailable, SigningError
from signing.key_files import load_pem_private_key
from signing.keyring import Keyring, revocation_of
from signing.pades import PadesSigner
from signing.revocation import (
    CONTEXT_REUSE,
    OCSP_VALIDITY,
    DevRevocationAuthority,
    ReusedContext,
    Revoked,
)
from signing.sample_pdf import minimal_pdf
from signing.timestamps import (
    REPLY_TYPE,
    DevTimeStampAuthority,
    InProcessTimeStamper,
    StrictTimeStamper,
    TsaUnavailable,
    tsa_wsgi_app,
)
from signing.validate import validate_pdf
from tests.conftest import make_settings
from tests.fixture_scope import shared
from tests.test_issue_timestamped import _issued_as
from tests.test_ltv_refresh import tsa_identity
from tests.test_signing_support import pdfsig_report
from tests.test_signing_timestamps import WsgiApp, _closed_port, serve

NOW = dt.datetime.now(dt.UTC)
YEAR = dt.timedelta(days=365)


def dev_config(keys: Path) -> SignerConfig:
    return replace(SignerConfig.from_keys_dir(keys), dev_tsa=True, bytes_reserved=24576)


@pytest.fixture(scope=shared("module"))
def keyring(pki: DevPki) -> Iterator[Keyring]:
    keys = Keyring.from_config(dev_config(pki.keys_dir), verify_base_url="https://v.example")
    yield keys
    keys.close()


@pytest.fixture(scope=shared("module"))
def signed(keyring: Keyring) -> dict[str, bytes]:
    return {level: keyring.pades_at(level).sign(
        minimal_pdf(), reason="Birth certificate issued", location="Pune",
        info={"PramaanSeal": "https://v.example/v#1234"}) for level in ("B-B", "B-LT", "B-LTA")}


def fresh(pki: DevPki) -> DevRevocationAuthority:
    source = revocation_of(dev_config(pki.keys_dir))
    assert isinstance(source, DevRevocationAuthority)
    return source


def revoking(pki: DevPki, certificate: x509.Certificate, since: dt.timedelta,
             reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise
             ) -> DevRevocationAuthority:
    """The dev CAs' revocation information, naming `certificate` revoked `since` ago (for
    `reason`)."""
    keys = [(cert(p), load_pem_private_key(k)) for p, k in (
        (pki.root_cert, pki.root_key), (pki.ca_cert, pki.ca_key),
        (pki.tsa_ca_cert, pki.tsa_ca_key))]
    return DevRevocationAuthority(
        keys,  # type: ignore[arg-type]
        revoked={(certificate.issuer, certificate.serial_number): Revoked(NOW - since, reason)})


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_each_level_has_the_revisions_and_signatures_it_should(signed: dict[str, bytes],
                                                               keyring: Keyring) -> None:
    assert [keyring.pades_at(level).level for level in ("B-B", "B-T", "B-LT", "B-LTA")] == [
        "B-B", "B-T", "B-LT", "B-LTA"]
    lt = PdfFileReader(BytesIO(signed["B-LT"]))
    lta = PdfFileReader(BytesIO(signed["B-LTA"]))
    assert (len(lt.embedded_regular_signatures), len(lt.embedded_timestamp_signatures)) == (1, 0)
    assert (len(lta.embedded_regular_signatures), len(lta.embedded_timestamp_signatures)) == (1, 1)
    for reader in (lt, lta):
        dss = reader.root["/DSS"]
        # Revocation information for the chain: the dev CAs' CRLs, and OCSP answers on the
        # signer and the TSA. No VRI dictionary (deprecated by PAdES).
        assert len(dss["/CRLs"]) == 3 and len(dss["/Certs"]) >= 2 and len(dss["/OCSPs"]) == 2
        assert "/VRI" not in dss
        # The unsigned input, the signed revision, then one with the validation data (B-LT);
        # at B-LTA the same revision holds the document timestamp, which covers it all.
        assert reader.xrefs.total_revisions == 3
        assert "/DSS" not in reader.get_historical_resolver(1).root
    stamp = lta.embedded_timestamp_signatures[0]
    assert stamp.signed_revision == 2
    assert stamp.evaluate_signature_coverage().name == "ENTIRE_FILE"


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_long_term_signatures_validate_offline_now_and_after_the_signer_expires(
        signed: dict[str, bytes], pki: DevPki, level: str) -> None:
    roots = [pki.root_cert]
    signer_expires = cert(pki.signer_cert).not_valid_after_utc
    tsa_expires = cert(pki.tsa_cert).not_valid_after_utc
    crls = fresh(pki)
    now = validate_pdf(signed[level], roots)
    assert now.ok and now.level == level and now.info == {"PramaanSeal": "https://v.example/v#1234"}
    assert now.timestamp is not None and now.signing_time is not None
    assert abs(now.signing_time - now.timestamp) < dt.timedelta(minutes=1)
    # Eight days on, the embedded CRLs (a week) and OCSP answers (a day) are stale: a
    # verifier's current ones are needed.
    later = NOW + dt.timedelta(days=8)
    assert validate_pdf(signed[level], roots, at=later, fresh_revinfo=crls).ok
    assert validate_pdf(signed[level], roots, at=later).reason == "untrusted"
    # After the signer's certificate has expired: still valid (the timestamp proves the
    # signature existed while it was valid, and the CRLs then said it was not revoked).
    expired = signer_expires + dt.timedelta(days=30)
    assert validate_pdf(signed[level], roots, at=expired, fresh_revinfo=crls).ok
    # After the TSA's certificate has expired, nothing vouches for the timestamp any more.
    beyond = tsa_expires + dt.timedelta(days=30)
    assert validate_pdf(signed[level], roots, at=beyond, fresh_revinfo=crls).reason == "untrusted"


def archival_stamper(pki: DevPki, tsa: tuple[rsa.RSAPrivateKey, x509.Certificate],
                     moment: dt.datetime,
                     revocation: DevRevocationAuthority | None = None) -> ArchivalStamper:
    """Rounds with a TSA whose key and certificate are `tsa`, both it and the CAs' revocation
    answers (`revocation`, else `fresh`) dated `moment`."""
    key, tsa_cert = tsa
    authority = DevTimeStampAuthority(key, tsa_cert, [cert(pki.tsa_ca_cert)], clock=lambda: moment)
    return ArchivalStamper(InProcessTimeStamper(authority), revocation or fresh(pki),
                           [cert(pki.root_cert)],
                           [cert(pki.ca_cert), cert(pki.tsa_ca_cert), tsa_cert],
                           cert(pki.signer_cert).issuer)


def asking(pki: DevPki, url: str) -> ArchivalStamper:
    """Rounds with the TSA at `url`, over HTTP."""
    return ArchivalStamper(StrictTimeStamper(url, timeout=5), fresh(pki), [cert(pki.root_cert)],
                           [cert(pki.ca_cert), cert(pki.tsa_ca_cert)], cert(pki.signer_cert).issuer)


def test_the_tsa_s_current_certificate_is_the_one_its_token_names(pki: DevPki) -> None:
    # A renewed TSA that carries its previous certificate (from the same CA) and its CA's too.
    # A token's certificates are a DER SET, sorted by their encodings: of the two TSA
    # certificates, the other one comes first in one of the two tokens.
    first_key = load_pem_private_key(pki.tsa_key)
    assert isinstance(first_key, rsa.RSAPrivateKey)
    first = (first_key, cert(pki.tsa_cert))
    second = tsa_identity(pki, NOW, years=5)
    for (key, own), (_, other) in ((first, second), (second, first)):
        authority = DevTimeStampAuthority(key, own, [cert(pki.tsa_ca_cert), other])
        for url in serve(tsa_wsgi_app(authority)):
            assert asking(pki, url).current_tsa_certificate() == own


def _without_its_certificate(authority: DevTimeStampAuthority) -> WsgiApp:
    """A TSA whose tokens carry its CA's certificate but not its own."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = tsp.TimeStampReq.load(environ["wsgi.input"].read(
            int(environ["CONTENT_LENGTH"])))
        granted = authority.respond(request)
        signed = granted["time_stamp_token"]["content"]
        issuer = signed["signer_infos"][0]["sid"].chosen["issuer"]
        kept = cms.SignedData({
            **{f: signed[f] for f in ("version", "digest_algorithms", "encap_content_info",
                                      "signer_infos")},
            "certificates": [c for c in signed["certificates"] if c.chosen.subject == issuer]})
        answer = tsp.TimeStampResp({"status": granted["status"], "time_stamp_token": {
            "content_type": "signed_data", "content": kept}}).dump()
        start_response("200 OK", [("Content-Type", REPLY_TYPE),
                                  ("Content-Length", str(len(answer)))])
        return [answer]
    return app


def test_without_a_timestamp_or_its_certificate_the_current_one_is_not_known(
        pki: DevPki) -> None:
    for url in _closed_port():
        with pytest.raises(TsaUnavailable) as waiting:
            asking(pki, url).current_tsa_certificate()
        assert str(waiting.value).startswith("no timestamp from the TSA: cannot reach the TSA at ")
    authority = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])
    for url in serve(_without_its_certificate(authority)):
        with pytest.raises(SigningError) as refused:
            asking(pki, url).current_tsa_certificate()
        assert not isinstance(refused.value, ServiceUnavailable)  # the TSA's fault, for good
        assert refused.value.code == "archival_failed"
        assert str(refused.value) == "the TSA's timestamp does not carry its certificate"


@pytest.fixture(scope=shared("module"))
def signed_with_an_older_crl(pki: DevPki, keyring: Keyring) -> bytes:
    """B-LTA with the dev CAs' CRLs made 59 minutes before the OCSP answers (a CRL is reused
    for an hour): pyHanko's time slide then moves the signer's control time to the end of its
    OCSP answer, where those CRLs must still be current."""
    authority = fresh(pki)
    authority.crls(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=59))
    roots = [cert(pki.root_cert)]
    others = [cert(pki.ca_cert), cert(pki.tsa_ca_cert), cert(pki.signer_cert)]
    pades = PadesSigner(keyring.backend, bytes_reserved=24576,
                        timestamper=keyring.pades_at("B-LTA")._timestamper,
                        revocation=lambda: authority.validation_context(roots, others),
                        archival=True)
    return pades.sign(minimal_pdf(), reason="r", location="l",
                      info={"PramaanSeal": "https://v.example/v#1234"})


@pytest.mark.parametrize("source", ["keyring", "older_crl"])
def test_archival_rounds_carry_a_b_lta_certificate_past_each_tsa_s_expiry(
        signed: dict[str, bytes], signed_with_an_older_crl: bytes, pki: DevPki,
        source: str) -> None:
    original = signed["B-LTA"] if source == "keyring" else signed_with_an_older_crl
    roots = [pki.root_cert]
    revinfo = fresh(pki)
    first_tsa = cert(pki.tsa_cert)
    # Half a year before the first TSA certificate expires (the signer's has long expired), a
    # round with a renewed TSA certificate lasting five years.
    first_round = first_tsa.not_valid_after_utc - YEAR / 2
    second_tsa = tsa_identity(pki, first_round, years=5)
    once = archival_stamper(pki, second_tsa, first_round).refresh(original, first_round)
    past_first = first_tsa.not_valid_after_utc + dt.timedelta(days=30)
    assert validate_pdf(original, roots, at=past_first,
                        fresh_revinfo=revinfo).reason == "untrusted"
    assert validate_pdf(once, roots, at=past_first, fresh_revinfo=revinfo).ok
    # And again before that one expires: the chain of rounds holds past the second too.
    second_round = second_tsa[1].not_valid_after_utc - YEAR / 2
    third_tsa = tsa_identity(pki, second_round, years=5)
    twice = archival_stamper(pki, third_tsa, second_round).refresh(once, second_round)
    past_second = second_tsa[1].not_valid_after_utc + dt.timedelta(days=30)
    assert validate_pdf(once, roots, at=past_second, fresh_revinfo=revinfo).reason == "untrusted"
    verdict = validate_pdf(twice, roots, at=past_second, fresh_revinfo=revinfo)
    assert verdict.ok and verdict.level == "B-LTA"
    assert verdict.info == {"PramaanSeal": "https://v.example/v#1234"}
    assert len(PdfFileReader(BytesIO(twice)).embedded_timestamp_signatures) == 3


def answered(pdf: bytes) -> set[tuple[int, dt.datetime]]:
    """The OCSP answers the file's DSS holds: the serial number of the certificate each is on,
    and when it was made."""
    found: set[tuple[int, dt.datetime]] = set()
    for stream in PdfFileReader(BytesIO(pdf)).root["/DSS"]["/OCSPs"]:
        answer = ocsp.OCSPResponse.load(stream.get_object().data).basic_ocsp_response[
            "tbs_response_data"]["responses"][0]
        found.add((answer["cert_id"]["serial_number"].native, answer["this_update"].native))
    return found


def test_a_round_answers_for_a_tsa_certificate_in_its_first_and_last_second(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # Validity includes both ends (RFC 5280): a round at the very second a renewed TSA
    # certificate becomes valid, or the newest timestamp's expires, embeds an OCSP answer on it.
    original = signed["B-LTA"]
    first_tsa = cert(pki.tsa_cert)
    renewed = tsa_identity(pki, first_tsa.not_valid_after_utc - YEAR / 2, years=5)
    starts = renewed[1].not_valid_before_utc
    once = archival_stamper(pki, renewed, starts).refresh(original, starts)
    assert (renewed[1].serial_number, starts) in answered(once)
    ends = first_tsa.not_valid_after_utc
    last = archival_stamper(pki, tsa_identity(pki, ends, years=5), ends).refresh(original, ends)
    assert (first_tsa.serial_number, ends) in answered(last)


def test_a_round_judges_a_revoked_ca_as_of_its_moment(signed: dict[str, bytes],
                                                     pki: DevPki) -> None:
    # The TSA CA revoked at a whole second: a round in that very second still goes (pyHanko's
    # CRL check: revoked strictly before the moment), one a second later is refused.
    moment = cert(pki.tsa_cert).not_valid_after_utc - YEAR / 2
    revocation = revoking(pki, cert(pki.tsa_ca_cert), NOW - moment)
    renewed = tsa_identity(pki, moment, years=5)
    once = archival_stamper(pki, renewed, moment, revocation).refresh(signed["B-LTA"], moment)
    assert len(PdfFileReader(BytesIO(once)).embedded_timestamp_signatures) == 2
    later = moment + dt.timedelta(seconds=1)
    with pytest.raises(SigningError) as refused:
        archival_stamper(pki, renewed, later, revocation).refresh(signed["B-LTA"], later)
    assert "revoked" in str(refused.value), str(refused.value)


class _OwnSource:
    """A revocation source other than the dev authority (an operator's own): the dev CAs'
    CRLs and OCSP answers, as of the moment it is asked for (else its clock, the real one)."""

    def __init__(self, authority: DevRevocationAuthority) -> None:
        self._authority = authority

    def validation_context(self, roots: Sequence[x509.Certificate],
                           others: Sequence[x509.Certificate],
                           now: dt.datetime | None = None) -> ValidationContext:
        return self._authority.validation_context(roots, others, now)


def test_a_round_asks_another_revocation_source_as_of_the_simulated_moment(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # Years on, answers made at the real time are long stale: the round needs the moment's.
    first_tsa = cert(pki.tsa_cert)
    moment = first_tsa.not_valid_after_utc - YEAR / 2
    key, renewed = tsa_identity(pki, moment, years=5)
    authority = DevTimeStampAuthority(key, renewed, [cert(pki.tsa_ca_cert)], clock=lambda: moment)
    stamper = ArchivalStamper(InProcessTimeStamper(authority), _OwnSource(fresh(pki)),
                              [cert(pki.root_cert)],
                              [cert(pki.ca_cert), cert(pki.tsa_ca_cert), renewed],
                              cert(pki.signer_cert).issuer)
    once = stamper.refresh(signed["B-LTA"], moment)
    assert len(PdfFileReader(BytesIO(once)).embedded_timestamp_signatures) == 2
    assert (renewed.serial_number, moment) in answered(once)


def test_a_b_b_signature_does_not_outlive_its_signer(signed: dict[str, bytes],
                                                    pki: DevPki) -> None:
    expired = cert(pki.signer_cert).not_valid_after_utc + dt.timedelta(days=30)
    assert validate_pdf(signed["B-B"], [pki.root_cert]).ok
    assert validate_pdf(signed["B-B"], [pki.root_cert], at=expired).reason == "untrusted"


def test_pdfsig_accepts_the_signature_of_a_long_term_file(signed: dict[str, bytes], pki: DevPki,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "lta.pdf"
    path.write_bytes(signed["B-LTA"])
    output = pdfsig_report(path, pki.root_cert, tmp_path / "nss")
    first = output.split("Signature #2")[0]
    # pdfsig knows no LTV and cannot check document timestamps (SIGNING.md): the signature
    # itself is valid and trusted, and covers all but the later revisions.
    assert "Signature is Valid" in first and "Certificate is Trusted" in first, output
    assert "Signature #2" in output


def _append(pdf: bytes, change: str) -> bytes:
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    if change == "info":
        info = writer.trailer["/Info"]
        info[generic.NameObject("/PramaanSeal")] = generic.TextStringObject(
            "https://v.example/v#9999")
        writer.mark_update(writer.trailer.raw_get("/Info"))
    else:
        page = writer.root["/Pages"]["/Kids"][0]
        stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (FORGED) Tj ET")
        page[generic.NameObject("/Contents")] = writer.add_object(stream)
        writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_later_revision_that_changes_the_page_is_refused(signed: dict[str, bytes],
                                                           pki: DevPki) -> None:
    report = validate_pdf(_append(signed["B-LTA"], "page"), [pki.root_cert])
    assert not report.ok and report.reason == "modified"


def test_a_seal_brought_by_a_later_revision_is_never_read(signed: dict[str, bytes],
                                                          pki: DevPki) -> None:
    # pyHanko counts any /Info change as a long-term update; what we read is the signed
    # revision's own /Info, so the forged seal is not seen.
    report = validate_pdf(_append(signed["B-LTA"], "info"), [pki.root_cert])
    assert report.info.get("PramaanSeal") != "https://v.example/v#9999"
    assert not report.ok or report.info == {"PramaanSeal": "https://v.example/v#1234"}


def test_a_signer_revoked_before_signing_cannot_sign_long_term(pki: DevPki,
                                                                keyring: Keyring) -> None:
    signer = cert(pki.signer_cert)
    authority = revoking(pki, signer, dt.timedelta(hours=1))
    roots, others = [cert(pki.root_cert)], [cert(pki.ca_cert), cert(pki.tsa_ca_cert)]
    pades = PadesSigner(keyring.backend, bytes_reserved=24576,
                        timestamper=keyring.pades_at("B-LTA")._timestamper,
                        revocation=lambda: authority.validation_context(roots, others),
                        archival=True)
    with pytest.raises(SigningError) as refused:
        pades.sign(minimal_pdf(), reason="r", location="l")
    assert refused.value.code == "signer_unvalidated"


def test_a_signature_whose_signer_was_revoked_before_it_is_reported_revoked(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # A key compromise found later and dated back before the signature: the verifier's current
    # CRL names the signer, so the file's own older CRLs do not save it.
    authority = revoking(pki, cert(pki.signer_cert), dt.timedelta(days=1))
    report = validate_pdf(signed["B-LTA"], [pki.root_cert], fresh_revinfo=authority)
    assert not report.ok and report.reason == "revoked"
    assert validate_pdf(signed["B-LTA"], [pki.root_cert], fresh_revinfo=fresh(pki)).ok


def test_a_b_lta_certificate_issued_and_verified_by_the_service(
        tmp_path: Path, sqlite_url: str, keys_dir: Path) -> None:
    built = Runtime(make_settings(tmp_path, sqlite_url, keys_dir, tsa_url="dev",
                                  signature_levels={"birth": "B-LTA"}))
    try:
        initialise(built)
        pdf = _issued_as(built, "birth-1")
        verdict = verify_pdf(built, pdf)
        assert verdict.current, verdict.as_dict()
        assert validate_pdf(pdf, [keys_dir / "root.crt"]).level == "B-LTA"
        later = cert(keys_dir / "signer.crt").not_valid_after_utc + dt.timedelta(days=1)
        assert verify_pdf(built, pdf, at=later).genuine, "the service's own current CRLs"
    finally:
        built.close()


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_the_once_encoded_signing_certificate_attribute_is_pyhankos_own_at_every_level(
        keyring: Keyring, level: str) -> None:
    # signing/cms_attributes.py hooks pyHanko's signed-attribute provider: at every level the
    # attribute it writes must equal what pyHanko builds itself, the second time (cached) too.
    from pyhanko.sign.general import as_signing_certificate_v2

    expected = as_signing_certificate_v2(keyring.backend.signer.signing_cert).dump()
    for _ in range(2):
        signed = keyring.pades_at(level).sign(minimal_pdf(), reason="r", location="Pune")
        signer_info: cms.SignerInfo = PdfFileReader(
            BytesIO(signed)).embedded_regular_signatures[0].signer_info
        attributes = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
        assert attributes["signing_certificate_v2"].dump() == expected


def test_a_revocation_is_judged_by_the_crls_of_the_simulated_moment(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # The TSA's CA revoked tomorrow: today's CRLs do not name it yet, those of the day after
    # do, and end the signature before any fallback to the file's own CRLs accepts it.
    authority = revoking(pki, cert(pki.tsa_ca_cert), -dt.timedelta(days=1))
    assert validate_pdf(signed["B-LTA"], [pki.root_cert], fresh_revinfo=authority).ok
    report = validate_pdf(signed["B-LTA"], [pki.root_cert], at=NOW + dt.timedelta(days=2),
                          fresh_revinfo=authority)
    assert not report.ok and report.reason == "revoked"


@pytest.mark.parametrize("which", ["tsa_cert", "tsa_ca_cert", "ca_cert"])
def test_a_revoked_tsa_or_ca_the_verifier_knows_of_ends_it(signed: dict[str, bytes], pki: DevPki,
                                                           which: str) -> None:
    # No fallback to the file's own (older) data past a revocation the verifier knows: a
    # revoked TSA could have backdated its timestamps.
    authority = revoking(pki, cert(getattr(pki, which)), dt.timedelta(days=1))
    for level in ("B-LT", "B-LTA"):
        report = validate_pdf(signed[level], [pki.root_cert], fresh_revinfo=authority)
        assert not report.ok and report.reason == "revoked", (level, report)


def test_the_validation_clock_is_never_seen_by_another_thread() -> None:
    from pyhanko_certvalidator import ValidationContext

    from signing.long_term import _clock_at

    inside, seen = threading.Event(), threading.Event()
    moments: list[dt.datetime] = []

    def other() -> None:
        inside.wait(10)
        moments.append(ValidationContext(trust_roots=[]).moment)
        seen.set()

    thread = threading.Thread(target=other)
    thread.start()
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with _clock_at(past):
        assert ValidationContext(trust_roots=[]).moment == past  # this context: its moment
        inside.set()
        seen.wait(10)
    thread.join(10)
    assert moments and moments[0] > NOW - dt.timedelta(minutes=5)  # the other: the real time


class _OcspKnowsFirst:
    """A verifier whose OCSP answers already name a revocation its CRLs do not yet list."""

    def __init__(self, clean: DevRevocationAuthority, revoking: DevRevocationAuthority) -> None:
        self.crls = clean.crls
        self.ocsp = revoking.ocsp


def test_a_tsa_revoked_in_ocsp_alone_ends_a_b_lt_signature(signed: dict[str, bytes],
                                                          pki: DevPki) -> None:
    # B-LT has no document timestamp: its TSA is the one of the signature's own timestamp.
    verifier = _OcspKnowsFirst(fresh(pki), revoking(pki, cert(pki.tsa_cert),
                                                    dt.timedelta(days=1)))
    report = validate_pdf(signed["B-LT"], [pki.root_cert], fresh_revinfo=verifier)
    assert not report.ok and report.reason == "revoked"


def test_a_byte_changed_in_the_document_timestamp_s_contents_is_modified(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # The zero padding after the timestamp's DER is not covered by any signature.
    pdf = signed["B-LTA"]
    stamp = PdfFileReader(BytesIO(pdf)).embedded_timestamp_signatures[0]
    end = int(stamp.byte_range[2]) - 2  # the last hex digit before '>'
    assert pdf[end:end + 1] == b"0"
    tampered = pdf[:end] + b"1" + pdf[end + 1:]
    report = validate_pdf(tampered, [pki.root_cert])
    assert not report.ok and report.reason == "modified"


def test_the_dev_authority_s_ocsp_answers_go_by_whole_seconds_like_its_crls(pki: DevPki) -> None:
    # The signer revoked a microsecond into a second: within that second neither its OCSP
    # answer nor its CA's CRL (both dated the whole second) names it; from the next, OCSP does.
    signer = cert(pki.signer_cert)
    second = NOW.replace(microsecond=0)
    authority = revoking(pki, signer, NOW - second - dt.timedelta(microseconds=1))
    within = second + dt.timedelta(microseconds=1)
    assert authority.crls(within)[1].get_revoked_certificate_by_serial_number(
        signer.serial_number) is None
    for moment, status in ((within, OCSPCertStatus.GOOD),
                           (second + dt.timedelta(seconds=1), OCSPCertStatus.REVOKED)):
        answer = authority.ocsp(signer, moment)
        assert answer is not None
        parsed = load_der_ocsp_response(answer)
        assert (parsed.certificate_status, parsed.this_update_utc) == (
            status, moment.replace(microsecond=0))


def test_the_dev_authority_s_ocsp_answer_names_a_revocation_from_its_very_second(
        pki: DevPki) -> None:
    # The signer revoked at a whole second, for a reason of its own: an answer dated that
    # very second says revoked, since then, for that reason, and is valid OCSP_VALIDITY.
    signer = cert(pki.signer_cert)
    second = NOW.replace(microsecond=0)
    authority = revoking(pki, signer, NOW - second, x509.ReasonFlags.superseded)
    answer = authority.ocsp(signer, second)
    assert answer is not None
    parsed = load_der_ocsp_response(answer)
    assert (parsed.certificate_status, parsed.revocation_time_utc, parsed.revocation_reason,
            parsed.this_update_utc, parsed.next_update_utc) == (
        OCSPCertStatus.REVOKED, second, x509.ReasonFlags.superseded, second,
        second + OCSP_VALIDITY)


def test_the_dev_authority_has_no_ocsp_answer_on_a_certificate_no_ca_of_its_issued(
        pki: DevPki) -> None:
    root_only = DevRevocationAuthority([(cert(pki.root_cert), load_pem_private_key(pki.root_key))])
    assert root_only.ocsp(cert(pki.signer_cert), NOW) is None  # issued by the CA below the root


def test_a_validation_context_serves_one_thread_for_five_minutes() -> None:
    made: list[object] = []
    clock = [NOW]

    def make() -> Any:
        made.append(object())
        return made[-1]

    context = ReusedContext(make, clock=lambda: clock[0])
    first = context()
    assert context() is first and len(made) == 1  # the same instant: reused
    clock[0] = NOW + CONTEXT_REUSE - dt.timedelta(seconds=1)
    assert context() is first and len(made) == 1
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(context()))
    other.start()
    other.join()
    assert seen[0] is not first and len(made) == 2  # another thread: its own
    clock[0] = NOW + CONTEXT_REUSE
    assert context() is not first and len(made) == 3
    clock[0] = NOW - dt.timedelta(seconds=1)  # the clock went back: made afresh
    context()
    assert len(made) == 4
    context.forget()  # after a failure
    context()
    assert len(made) == 5


def test_a_round_s_refusals_say_why(signed: dict[str, bytes], pki: DevPki) -> None:
    for url in _closed_port():
        with pytest.raises(TsaUnavailable) as waiting:
            asking(pki, url).refresh(signed["B-LTA"])
        assert str(waiting.value).startswith(
            "no archival timestamp from the TSA: cannot reach the TSA at ")
        with pytest.raises(SigningError) as unreadable:
            asking(pki, url).refresh(b"not a PDF")
        assert not isinstance(unreadable.value, ServiceUnavailable)  # the file's fault, for good
        assert unreadable.value.code == "unreadable_pdf"
        assert str(unreadable.value) == "the PDF cannot be read: Illegal PDF header"


def test_a_round_that_cannot_be_made_is_a_signing_error_saying_why(
        signed: dict[str, bytes], pki: DevPki, stranger: DevPki) -> None:
    ours = InProcessTimeStamper(DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert,
                                                           [pki.tsa_ca_cert]))
    theirs = InProcessTimeStamper(DevTimeStampAuthority.load(
        stranger.tsa_key, stranger.tsa_cert, [stranger.tsa_ca_cert]))
    others = [cert(pki.ca_cert), cert(pki.tsa_ca_cert)]
    for tsa, root, pdf, says in (
            # The newest timestamp's chain does not build to the roots given.
            (ours, stranger.root_cert, signed["B-LTA"],
             "the archival round failed: the newest timestamp's chain does not build to a "
             "trusted root"),
            # The new timestamp's TSA does not chain to them either.
            (theirs, pki.root_cert, signed["B-LTA"],
             "the archival round failed: Unable to build a validation path for the certificate "
             '"Common Name: Pramaan Dev Time Stamping Authority, '),
            (ours, pki.root_cert, minimal_pdf(), "the PDF holds no signature to keep")):
        stamper = ArchivalStamper(tsa, fresh(pki), [cert(root)], others,
                                  cert(pki.signer_cert).issuer)
        with pytest.raises(SigningError) as refused:
            stamper.refresh(pdf)
        assert str(refused.value).startswith(says), str(refused.value)
        assert refused.value.code == ("unreadable_pdf" if "no signature" in says
                                      else "archival_failed")


def test_a_tsa_revoked_in_ocsp_alone_is_judged_as_of_the_simulated_moment(
        signed: dict[str, bytes], pki: DevPki) -> None:
    # The TSA revoked tomorrow, and only its OCSP answers say so: today's answer is good, the
    # one of the day after ends the signature (the CRLs of every day would accept it).
    verifier = _OcspKnowsFirst(fresh(pki), revoking(pki, cert(pki.tsa_cert),
                                                    -dt.timedelta(days=1)))
    assert validate_pdf(signed["B-LT"], [pki.root_cert], fresh_revinfo=verifier).ok
    later = NOW + dt.timedelta(days=2)
    assert validate_pdf(signed["B-LT"], [pki.root_cert], at=later,
                        fresh_revinfo=fresh(pki)).ok
    report = validate_pdf(signed["B-LT"], [pki.root_cert], at=later, fresh_revinfo=verifier)
    assert not report.ok and report.reason == "revoked"


def test_a_revoked_certificate_beside_the_tsa_s_in_its_token_is_not_taken_for_the_tsa_s(
        pki: DevPki, keyring: Keyring) -> None:
    # A TSA whose tokens still carry its previous certificate (same CA, same name), revoked
    # since in OCSP alone: the token's signer is the current one, so the signature stands.
    key = load_pem_private_key(pki.tsa_key)
    assert isinstance(key, rsa.RSAPrivateKey)
    _, previous = tsa_identity(pki, NOW - YEAR, years=5)
    authority = DevTimeStampAuthority(key, cert(pki.tsa_cert), [cert(pki.tsa_ca_cert), previous])
    roots, others = [cert(pki.root_cert)], [cert(pki.ca_cert), cert(pki.tsa_ca_cert)]
    clean = fresh(pki)
    pades = PadesSigner(keyring.backend, bytes_reserved=24576,
                        timestamper=InProcessTimeStamper(authority),
                        revocation=lambda: clean.validation_context(roots, others))
    pdf = pades.sign(minimal_pdf(), reason="r", location="l")
    token = PdfFileReader(BytesIO(pdf)).embedded_regular_signatures[0].signer_info[
        "unsigned_attrs"][0]["values"][0]["content"]
    assert previous.serial_number in {c.chosen.serial_number for c in token["certificates"]}
    verifier = _OcspKnowsFirst(clean, revoking(pki, previous, dt.timedelta(days=1)))
    report = validate_pdf(pdf, [pki.root_cert], fresh_revinfo=verifier)
    assert report.ok and report.level == "B-LT", report
    own = _OcspKnowsFirst(clean, revoking(pki, cert(pki.tsa_cert), dt.timedelta(days=1)))
    assert validate_pdf(pdf, [pki.root_cert], fresh_revinfo=own).reason == "revoked"
