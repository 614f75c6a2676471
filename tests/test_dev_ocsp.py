"""The development OCSP responder (docker/dev_ocsp.py) run as its own process: a dev PKI made
with its address signs certificates at PAdES B-LT whose status is fetched from it over HTTP, as
the container stack does; openssl and pdfsig (NSS) ask it too, and see a revocation. Its code
in this process (what mutation testing can trace): tests/test_dev_ocsp_in_process.py."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko.pdf_utils.reader import PdfFileReader

from issuer.bootstrap import initialise
from issuer.runtime import Runtime
from issuer.settings import ConfigError, Settings
from signing.devpki import DevPki, ensure_dev_pki
from signing.timestamps import DevTimeStampAuthority, tsa_wsgi_app
from signing.validate import validate_pdf
from tests.conftest import Live, make_settings, serve
from tests.fixture_scope import shared
from tests.test_issue_end_to_end import issue
from tests.test_signing_support import pdfsig_report
from tests.test_signing_timestamps import serve as serve_wsgi
from tests.tools import need

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Responder:
    url: str
    pki: DevPki
    log: Path
    revocations: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope=shared("module"))
def responder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    home = tmp_path_factory.mktemp("dev-ocsp")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/ocsp"
    pki = ensure_dev_pki(home / "keys", ocsp_url=url)
    log = home / "responder.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "docker" / "dev_ocsp.py"), "--keys", str(pki.keys_dir),
             "--port", str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Responder(url, pki, log, pki.keys_dir / "dev-ocsp-revoked.txt")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def live_at_b_lt(tmp_path: Path, responder: Responder) -> Iterator[Live]:
    authority = DevTimeStampAuthority.load(responder.pki.tsa_key, responder.pki.tsa_cert,
                                           [responder.pki.tsa_ca_cert])
    for tsa_url in serve_wsgi(tsa_wsgi_app(authority)):
        # A TSA's URL, as in the container stack: status is fetched from the certificates'
        # addresses (signing/revocation.py, FetchingRevocation), never made in process.
        settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}",
                                 responder.pki.keys_dir, tsa_url=tsa_url,
                                 signature_level="B-LT")
        yield from serve(settings)


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _openssl_status(responder: Responder, issuer: Path, cert: Path) -> str:
    done = subprocess.run(
        [need("openssl"), "ocsp", "-issuer", str(issuer), "-cert", str(cert), "-url",
         responder.url, "-CAfile", str(responder.pki.root_cert)],
        capture_output=True, text=True, check=False, timeout=30)
    assert "Response verify OK" in done.stderr + done.stdout, done.stderr + done.stdout
    return done.stdout.splitlines()[0].rsplit(": ", 1)[1]


def test_the_certificates_name_the_responder(responder: Responder) -> None:
    pki = responder.pki
    for path in (pki.signer_cert, pki.seal_cert, pki.tsa_cert):
        access = x509.load_pem_x509_certificate(path.read_bytes()).extensions \
            .get_extension_for_class(x509.AuthorityInformationAccess).value
        assert [d.access_location.value for d in access] == [responder.url], path


def test_a_b_lt_certificate_embeds_the_responders_answers(
        live_at_b_lt: Live, responder: Responder, tmp_path: Path) -> None:
    _record, pdf = issue(live_at_b_lt)
    pki = responder.pki
    report = validate_pdf(pdf, [pki.root_cert])
    assert report.ok, report
    dss = PdfFileReader(BytesIO(pdf)).root["/DSS"]
    answers = [ocsp.load_der_ocsp_response(stream.get_object().data)
               for stream in dss["/OCSPs"]]
    assert all(a.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL for a in answers)
    assert all(a.certificate_status == ocsp.OCSPCertStatus.GOOD for a in answers)
    answered = {a.serial_number for a in answers}
    assert _serial(pki.signer_cert) in answered, answered
    log = responder.log.read_text()
    for serial in answered:  # each one made by the responder process, over HTTP
        assert f"OCSP good: serial {serial:x} " in log, log
    # The CAs' status: the root's CRL, which their certificates name, fetched from it too.
    crls = [x509.load_der_x509_crl(stream.get_object().data) for stream in dss["/CRLs"]]
    root = x509.load_pem_x509_certificate(pki.root_cert.read_bytes())
    assert [crl.issuer for crl in crls] == [root.subject]
    assert '"GET /crl/root.crl HTTP/1.1" 200' in log, log

    path = tmp_path / "b-lt.pdf"
    path.write_bytes(pdf)
    output = pdfsig_report(path, pki.root_cert, tmp_path / "nss")
    assert "Signature is Valid" in output and "Certificate is Trusted" in output, output


def test_openssl_sees_good_then_revoked(responder: Responder, tmp_path: Path) -> None:
    pki = responder.pki
    assert _openssl_status(responder, pki.ca_cert, pki.seal_cert) == "good"
    assert _openssl_status(responder, pki.root_cert, pki.tsa_ca_cert) == "good"
    responder.revocations.write_text(f"{_serial(pki.seal_cert):x}\n", encoding="utf-8")
    try:
        assert _openssl_status(responder, pki.ca_cert, pki.seal_cert) == "revoked"
        assert _openssl_status(responder, pki.root_cert, pki.tsa_ca_cert) == "good"
    finally:
        responder.revocations.unlink()
    assert _openssl_status(responder, pki.ca_cert, pki.seal_cert) == "good"


def test_a_stranger_or_garbage_is_refused(responder: Responder, tmp_path: Path) -> None:
    stranger = ensure_dev_pki(tmp_path / "stranger")
    issued = x509.load_pem_x509_certificate(stranger.signer_cert.read_bytes())
    issuer = x509.load_pem_x509_certificate(stranger.ca_cert.read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(
        issued, issuer, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    for body, status in ((request, ocsp.OCSPResponseStatus.UNAUTHORIZED),
                         (b"\x30\x03junk", ocsp.OCSPResponseStatus.MALFORMED_REQUEST)):
        answer = requests.post(responder.url, data=body, timeout=10,
                               headers={"Content-Type": "application/ocsp-request"})
        assert answer.status_code == 200
        assert ocsp.load_der_ocsp_response(answer.content).response_status == status


def test_the_setting_must_be_an_http_url(tmp_path: Path) -> None:
    assert Settings.from_env(env={"PRAMAAN_DEV_OCSP_URL": "http://dev-ocsp:8319/ocsp"},
                             overrides={"home": tmp_path}).dev_ocsp_url == (
        "http://dev-ocsp:8319/ocsp")
    with pytest.raises(ConfigError, match="PRAMAAN_DEV_OCSP_URL"):
        Settings.from_env(env={"PRAMAAN_DEV_OCSP_URL": "dev-ocsp:8319"},
                          overrides={"home": tmp_path})


def test_init_makes_a_dev_pki_naming_the_configured_responder(tmp_path: Path) -> None:
    url = "http://dev-ocsp:8319/ocsp"
    runtime = Runtime(make_settings(tmp_path, f"sqlite:///{tmp_path / 'p.db'}",
                                    tmp_path / "keys", dev_ocsp_url=url))
    try:
        initialise(runtime, dev_pki=True)
    finally:
        runtime.close()
    pki = DevPki.at(tmp_path / "keys")
    signer = x509.load_pem_x509_certificate(pki.signer_cert.read_bytes())
    access = signer.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in access] == [url]
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    points = ca.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in points if p.full_name] == [
        "http://dev-ocsp:8319/crl/root.crl"]
