"""The development OCSP responder's own code (signing/dev_ocsp.py) in this process, as mutation
testing can trace it: its answers (RFC 6960) and CRLs checked with cryptography against the dev
CAs, and its WSGI application served over HTTP on 127.0.0.1. tests/test_dev_ocsp.py runs the
responder as the process the container stack starts, and lets openssl and NSS ask it."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from signing.dev_ocsp import DevOcspResponder, ocsp_wsgi_app
from signing.devpki import DevPki
from signing.revocation import OCSP_VALIDITY
from tests.test_signing_timestamps import serve

GOOD, REVOKED = ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED
SINCE = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _request(cert: Path, issuer: Path, algorithm: hashes.HashAlgorithm | None = None,
             nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        _cert(cert), _cert(issuer), algorithm or hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _signed_by(answer: ocsp.OCSPResponse, issuer: Path) -> None:
    """Raises unless the CA of `issuer` signed `answer` and names itself by its key hash."""
    ca = _cert(issuer)
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and answer.signature_hash_algorithm
    assert isinstance(answer.signature_hash_algorithm, hashes.SHA256)
    key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(),
               answer.signature_hash_algorithm)
    assert answer.responder_key_hash == ca.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    assert answer.responder_name is None


@pytest.fixture
def revocations(tmp_path: Path) -> Path:
    return tmp_path / "revoked.txt"


@pytest.fixture
def responder(pki: DevPki, revocations: Path) -> DevOcspResponder:
    return DevOcspResponder.of(pki, revocations)


def test_each_ca_answers_good_for_what_it_issued(pki: DevPki, responder: DevOcspResponder,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signing.dev_ocsp")
    for cert, issuer in ((pki.signer_cert, pki.ca_cert), (pki.seal_cert, pki.ca_cert),
                         (pki.tsa_cert, pki.tsa_ca_cert), (pki.ca_cert, pki.root_cert),
                         (pki.tsa_ca_cert, pki.root_cert)):
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            before = dt.datetime.now(dt.UTC).replace(microsecond=0)
            answer = ocsp.load_der_ocsp_response(
                responder.respond(_request(cert, issuer, algorithm)))
            assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            assert answer.certificate_status == GOOD, cert
            assert answer.serial_number == _cert(cert).serial_number
            assert isinstance(answer.hash_algorithm, type(algorithm))
            assert answer.revocation_time_utc is None and answer.revocation_reason is None
            assert before <= answer.this_update_utc <= dt.datetime.now(dt.UTC)
            assert answer.next_update_utc == answer.this_update_utc + OCSP_VALIDITY
            assert len(answer.extensions) == 0
            _signed_by(answer, issuer)
        serial = _cert(cert).serial_number
        subject = _cert(issuer).subject.rfc4514_string()
        assert f"OCSP good: serial {serial:x} of {subject}" in caplog.messages


def test_a_revoked_serial_is_revoked_from_the_time_listed(
        pki: DevPki, responder: DevOcspResponder, revocations: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signing.dev_ocsp")
    serial = _cert(pki.signer_cert).serial_number
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    revocations.write_text(
        f"# lost laptop\n\n{serial:x} {SINCE.isoformat()}  # lost\n"
        f"{_cert(pki.seal_cert).serial_number:X} {later.isoformat()}\n", encoding="utf-8")
    answer = ocsp.load_der_ocsp_response(responder.respond(_request(pki.signer_cert,
                                                                    pki.ca_cert)))
    assert answer.certificate_status == REVOKED
    assert answer.revocation_time_utc == SINCE
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    _signed_by(answer, pki.ca_cert)
    assert f"OCSP revoked: serial {serial:x} of {_cert(pki.ca_cert).subject.rfc4514_string()}" \
        in caplog.messages
    # Revoked from a time still to come: good until then.
    assert ocsp.load_der_ocsp_response(responder.respond(_request(
        pki.seal_cert, pki.ca_cert))).certificate_status == GOOD


def test_a_listed_serial_without_a_time_is_revoked_since_the_file_changed(
        pki: DevPki, responder: DevOcspResponder, revocations: Path) -> None:
    serial = _cert(pki.tsa_cert).serial_number
    revocations.write_text(f"{serial:x}\n", encoding="utf-8")
    changed = dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    os.utime(revocations, (changed.timestamp() + 0.75, changed.timestamp() + 0.75))
    assert responder.revoked() == {serial: changed}
    answer = ocsp.load_der_ocsp_response(responder.respond(_request(pki.tsa_cert,
                                                                    pki.tsa_ca_cert)))
    assert answer.certificate_status == REVOKED
    assert answer.revocation_time_utc == changed
    # Times are kept in UTC, whole seconds, whatever zone the file wrote them in.
    revocations.write_text(f"{serial:x} 2026-01-02T08:34:05.250+05:30\n", encoding="utf-8")
    assert responder.revoked() == {serial: SINCE}
    revocations.unlink()
    assert responder.revoked() == {}
    assert DevOcspResponder.of(pki).revoked() == {}


def test_a_nonce_is_echoed(pki: DevPki, responder: DevOcspResponder) -> None:
    nonce = b"\x01" * 16
    answer = ocsp.load_der_ocsp_response(responder.respond(
        _request(pki.seal_cert, pki.ca_cert, nonce=nonce)))
    assert answer.certificate_status == GOOD
    echoed = answer.extensions.get_extension_for_class(x509.OCSPNonce)
    assert echoed.value.nonce == nonce and not echoed.critical


def test_garbage_and_strangers_are_refused(tmp_path: Path, pki: DevPki,
                                           responder: DevOcspResponder) -> None:
    from signing.devpki import ensure_dev_pki

    stranger = ensure_dev_pki(tmp_path / "stranger")
    for body, status in (
            (b"\x30\x03junk", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
            (b"", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
            (_request(stranger.signer_cert, stranger.ca_cert),
             ocsp.OCSPResponseStatus.UNAUTHORIZED),
            # The stranger's CA bears our CA's name: its key must match too.
            (_request(pki.signer_cert, stranger.ca_cert), ocsp.OCSPResponseStatus.UNAUTHORIZED)):
        assert ocsp.load_der_ocsp_response(responder.respond(body)).response_status == status


def test_the_crl_of_each_ca_lists_the_revoked_serials(pki: DevPki, responder: DevOcspResponder,
                                                     revocations: Path) -> None:
    serial = _cert(pki.seal_cert).serial_number
    revocations.write_text(f"{serial:x} {SINCE.isoformat()}\n", encoding="utf-8")
    for stem, path in (("root", pki.root_cert), ("ca", pki.ca_cert),
                       ("tsa-ca", pki.tsa_ca_cert)):
        der = responder.crl(stem)
        assert der is not None
        crl = x509.load_der_x509_crl(der)
        ca = _cert(path)
        key = ca.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        assert crl.issuer == ca.subject and crl.is_signature_valid(key)
        listed = crl.get_revoked_certificate_by_serial_number(serial)
        assert listed is not None and listed.revocation_date_utc == SINCE, stem
    for other in ("signer", "seal", "tsa", "", "../root"):
        assert responder.crl(other) is None
    revocations.unlink()
    empty = responder.crl("ca")
    assert empty is not None and len(x509.load_der_x509_crl(empty)) == 0


@pytest.fixture
def base(responder: DevOcspResponder) -> Iterator[str]:
    for url in serve(ocsp_wsgi_app(responder)):
        yield url.removesuffix("/tsa")


def test_over_http_post_and_get(base: str, pki: DevPki) -> None:
    request = _request(pki.seal_cert, pki.ca_cert)
    for answer in (
            requests.post(f"{base}/ocsp", data=request, timeout=10,
                          headers={"Content-Type": "application/ocsp-request; charset=x"}),
            requests.post(f"{base}/any/path", data=request, timeout=10,
                          headers={"Content-Type": "application/ocsp-request"}),
            requests.get(f"{base}/ocsp/{base64.b64encode(request).decode()}", timeout=10)):
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/ocsp-response"
        assert answer.headers["Content-Length"] == str(len(answer.content))
        parsed = ocsp.load_der_ocsp_response(answer.content)
        assert parsed.certificate_status == GOOD
        assert parsed.serial_number == _cert(pki.seal_cert).serial_number
    for path in ("/ocsp/not*base64", "/ocsp/"):
        answer = requests.get(base + path, timeout=10)
        assert answer.headers["Content-Type"] == "application/ocsp-response"
        assert ocsp.load_der_ocsp_response(answer.content).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_over_http_crls_and_health(base: str, pki: DevPki) -> None:
    got = requests.get(f"{base}/crl/root.crl", timeout=10)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/pkix-crl"
    assert got.headers["Content-Length"] == str(len(got.content))
    assert x509.load_der_x509_crl(got.content).issuer == _cert(pki.root_cert).subject
    missing = requests.get(f"{base}/crl/nobody.crl", timeout=10)
    assert (missing.status_code, missing.content) == (404, b"")
    for path in ("/healthz", "/crl/root.pem", "/", "/ocsp"):
        health = requests.get(base + path, timeout=10)
        assert (health.status_code, health.content) == (200, b"ok"), path
        assert health.headers["Content-Type"] == "text/plain"


def test_over_http_what_is_refused(base: str, pki: DevPki) -> None:
    request = _request(pki.seal_cert, pki.ca_cert)
    kind = {"Content-Type": "application/ocsp-request"}
    put = requests.put(f"{base}/ocsp", data=request, headers=kind, timeout=10)
    assert (put.status_code, put.headers["Allow"], put.content) == (405, "GET, POST", b"")
    for headers in ({}, {"Content-Type": "application/octet-stream"}):
        answer = requests.post(f"{base}/ocsp", data=request, headers=headers, timeout=10)
        assert (answer.status_code, answer.content) == (415, b"")
    for body in (b"0" * (16 * 1024 + 1), b""):
        answer = requests.post(f"{base}/ocsp", data=body, headers=kind, timeout=10)
        assert (answer.status_code, answer.content) == (413, b""), len(body)
    largest = requests.post(f"{base}/ocsp", data=b"0" * (16 * 1024), headers=kind, timeout=10)
    assert largest.status_code == 200  # read, and answered malformedRequest
    assert ocsp.load_der_ocsp_response(largest.content).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
