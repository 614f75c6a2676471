"""Long-term signatures on production's path: the TSA reached over HTTP and the revocation
information fetched from the addresses the certificates name (OCSP, CRLs), from a PKI declared
with certomancer and served on 127.0.0.1 by the test (tests/certomancer_pki.py). The signed file
then validates with every server stopped; a signer revoked before signing cannot sign; pdfsig
checks the signer live against the OCSP responder. Later, a verifier fetches current status
from the same addresses (signing/fetched_revinfo.py); an archival round with the TSA's renewed
certificate, its validation data fetched, carries the file past the first TSA certificate's
expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from signing.archival import ArchivalStamper
from signing.backend import load_backend
from signing.config import SignerConfig
from signing.errors import RevocationUnavailable, ServiceUnavailable, SigningError
from signing.fetched_revinfo import FetchedRevinfo
from signing.pades import PadesSigner
from signing.revocation import FetchingRevocation
from signing.sample_pdf import minimal_pdf
from signing.timestamps import StrictTimeStamper
from signing.validate import validate_pdf
from tests.certomancer_pki import ServedPki, served_pki
from tests.fixture_scope import shared
from tests.test_signing_support import pdfsig_report


@pytest.fixture(scope=shared("module"))
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPki]:
    with served_pki(tmp_path_factory.mktemp("certomancer")) as served:
        yield served


def cert(pki: ServedPki, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((pki.folder / f"{name}.crt").read_bytes())


def signer_for(pki: ServedPki, name: str) -> PadesSigner:
    folder = pki.folder
    config = replace(SignerConfig.from_keys_dir(folder), key_path=folder / f"{name}.key",
                     cert_path=folder / f"{name}.crt", chain_paths=(folder / "interm.crt",),
                     trust_root_paths=(folder / "root.crt",), tsa_url=pki.tsa_url)
    backend = load_backend(config)
    roots = [x509.load_pem_x509_certificate((folder / "root.crt").read_bytes())]
    others = [x509.load_pem_x509_certificate((folder / f).read_bytes())
              for f in ("interm.crt", "tsa-ca.crt", "tsa.crt")]
    return PadesSigner(backend, bytes_reserved=32768,
                       timestamper=StrictTimeStamper(pki.tsa_url),
                       revocation=lambda: FetchingRevocation().validation_context(roots, others),
                       archival=True)


@pytest.fixture(scope=shared("module"))
def signed(pki: ServedPki) -> bytes:
    return signer_for(pki, "signer").sign(minimal_pdf(), reason="Birth certificate issued",
                                          location="Pune", info={"PramaanSeal": "x#1"})


def test_a_b_lta_signature_with_fetched_revocation_data_validates_offline(
        pki: ServedPki, signed: bytes) -> None:
    report = validate_pdf(signed, [pki.folder / "root.crt"])
    assert report.ok and report.level == "B-LTA", report
    assert report.info == {"PramaanSeal": "x#1"}


def test_pdfsig_checks_the_signer_live_against_the_ocsp_responder(
        pki: ServedPki, signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fetched.pdf"
    path.write_bytes(signed)
    output = pdfsig_report(path, pki.folder / "root.crt", tmp_path / "nss")
    first = output.split("Signature #2")[0]
    assert "Signature is Valid" in first and "Certificate is Trusted" in first, output


def test_a_signer_revoked_before_signing_cannot_sign(pki: ServedPki) -> None:
    with pytest.raises(SigningError) as refused:
        signer_for(pki, "revoked").sign(minimal_pdf(), reason="r", location="l")
    assert refused.value.code == "signer_unvalidated"  # for good: not a service outage
    assert not isinstance(refused.value, ServiceUnavailable)


def test_with_the_responders_down_signing_waits_for_them(tmp_path: Path) -> None:
    with served_pki(tmp_path / "pki") as served:
        signer = signer_for(served, "signer")
    with pytest.raises(RevocationUnavailable) as waiting:
        signer.sign(minimal_pdf(), reason="r", location="l")
    assert waiting.value.code == "revocation_unavailable"
    assert isinstance(waiting.value, ServiceUnavailable)  # the issue job waits, uncounted


def test_with_every_server_stopped_it_still_validates(tmp_path: Path) -> None:
    with served_pki(tmp_path / "pki") as served:
        pdf = signer_for(served, "signer").sign(minimal_pdf(), reason="r", location="l")
    report = validate_pdf(pdf, [tmp_path / "pki" / "root.crt"])
    assert report.ok and report.level == "B-LTA", report


def test_a_week_later_the_verifier_fetches_current_status(tmp_path: Path) -> None:
    roots = [tmp_path / "pki" / "root.crt"]
    with served_pki(tmp_path / "pki") as served:
        pdf = signer_for(served, "signer").sign(minimal_pdf(), reason="r", location="l")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
        served.travel(later)
        # The file's own OCSP answers and CRLs are stale by then.
        assert validate_pdf(pdf, roots, at=later).reason == "untrusted"
        assert validate_pdf(pdf, roots, at=later, fresh_revinfo=FetchedRevinfo()).ok
    # With the servers gone, nothing current is known: not trusted (and no hang).
    assert validate_pdf(pdf, roots, at=later,
                        fresh_revinfo=FetchedRevinfo(timeout=2)).reason == "untrusted"


def test_a_production_archival_round_carries_it_past_the_tsa_s_expiry(tmp_path: Path) -> None:
    roots = [tmp_path / "pki" / "root.crt"]
    with served_pki(tmp_path / "pki") as served:
        pdf = signer_for(served, "signer").sign(minimal_pdf(), reason="r", location="l",
                                                info={"PramaanSeal": "x#1"})
        first_tsa, renewed = cert(served, "tsa"), cert(served, "tsa2")
        at_round = first_tsa.not_valid_after_utc - dt.timedelta(days=180)
        assert renewed.not_valid_before_utc < at_round
        served.travel(at_round)
        stamper = ArchivalStamper(
            StrictTimeStamper(served.renewed_tsa_url), FetchingRevocation(),
            [cert(served, "root")], [cert(served, n) for n in ("interm", "tsa-ca", "tsa2")],
            cert(served, "signer").issuer)
        assert stamper.current_tsa_certificate() == renewed
        refreshed = stamper.refresh(pdf, at_round)
        past = first_tsa.not_valid_after_utc + dt.timedelta(days=30)
        served.travel(past)
        fresh = FetchedRevinfo()
        verdict = validate_pdf(refreshed, roots, at=past, fresh_revinfo=fresh)
        assert verdict.ok and verdict.level == "B-LTA" and verdict.info == {"PramaanSeal": "x#1"}
        assert validate_pdf(pdf, roots, at=past, fresh_revinfo=fresh).reason == "untrusted"


def test_the_fetching_context_validates_at_the_moment_it_is_given() -> None:
    # An archival round at a simulated time validates as of that time, not the real clock.
    then = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    context = FetchingRevocation().validation_context([], [], then)
    assert context.moment == then and context.fetching_allowed
    assert context.timing_params.point_in_time_validation


@pytest.mark.parametrize("revoked", ["tsa_revoked_after", "tsa_ca_revoked_after"])
def test_a_tsa_or_its_ca_revoked_since_is_ended_by_what_is_fetched(tmp_path: Path,
                                                                  revoked: str) -> None:
    # The TSA has no CRL, only its CA's OCSP responder: asked on the TSA's certificate (the
    # request names its issuer's key). The TSA's CA is named by the root's CRL, fetched from the
    # address in its certificate. Either, the day after the revocation, ends the file stamped
    # before.
    roots = [tmp_path / "pki" / "root.crt"]
    with served_pki(tmp_path / "pki", **{revoked: dt.timedelta(days=1)}) as served:
        pdf = signer_for(served, "signer").sign(minimal_pdf(), reason="r", location="l")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        served.travel(later)
        report = validate_pdf(pdf, roots, at=later, fresh_revinfo=FetchedRevinfo())
        assert not report.ok and report.reason == "revoked", report
