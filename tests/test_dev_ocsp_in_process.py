"""The development OCSP responder's own code (signing/dev_ocsp.py) in this process, as mutation
testing can trace it: its answers (RFC 6960) and CRLs checked with cryptography against the dev
CAs, and its WSGI application served over HTTP on 127.0.0.1. tests/test_dev_ocsp.py runs the
responder as the process the container stack starts, and lets openssl and NSS ask it."""

from __future__ import annotations

import base64
import datetime as dt
import locale
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from signing.dev_ocsp import DevOcspResponder, ocsp_wsgi_app
from signing.devpki import DevPki, dev_crl_url
from signing.errors import KeyMaterialMissing
from signing.key_files import load_pem_private_key
from signing.revocation import OCSP_VALIDITY, CaKey
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


def _at(pki: DevPki, revocations: Path, now: dt.datetime) -> DevOcspResponder:
    """The responder of the three CAs of `pki` whose clock always says `now`."""
    cas: dict[str, tuple[x509.Certificate, CaKey]] = {}
    for cert, key in ((pki.root_cert, pki.root_key), (pki.ca_cert, pki.ca_key),
                      (pki.tsa_ca_cert, pki.tsa_ca_key)):
        private = load_pem_private_key(key, "CA key")
        assert isinstance(private, rsa.RSAPrivateKey)
        cas[cert.stem] = (_cert(cert), private)
    return DevOcspResponder(cas, revocations, clock=lambda: now)


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


def test_a_damaged_ca_file_is_named(tmp_path: Path, pki: DevPki) -> None:
    keys = DevPki.at(shutil.copytree(pki.keys_dir, tmp_path / "keys"))
    for path, problem in ((keys.tsa_ca_key, "CA key {} is not a PEM private key"),
                          (keys.root_cert, "CA certificate {} holds no valid PEM certificate")):
        kept = path.read_bytes()
        path.write_text("damaged\n", encoding="utf-8")
        with pytest.raises(KeyMaterialMissing) as raised:
            DevOcspResponder.of(keys)
        assert str(raised.value) == problem.format(path)
        path.write_bytes(kept)
    assert DevOcspResponder.of(keys).crl("tsa-ca") is not None


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


def test_the_clock_dates_answers_and_crls(pki: DevPki, revocations: Path) -> None:
    serial = _cert(pki.signer_cert).serial_number
    revocations.write_text(f"{serial:x} {SINCE.isoformat()}\n", encoding="utf-8")
    request = _request(pki.signer_cert, pki.ca_cert)
    # Revoked from this very second: revoked; a second before it: good.
    at_since = _at(pki, revocations, SINCE)
    answer = ocsp.load_der_ocsp_response(at_since.respond(request))
    assert (answer.certificate_status, answer.revocation_time_utc) == (REVOKED, SINCE)
    assert answer.this_update_utc == SINCE
    before = _at(pki, revocations, SINCE - dt.timedelta(seconds=1))
    assert ocsp.load_der_ocsp_response(before.respond(request)).certificate_status == GOOD
    # The CRLs too are made as of the clock, listing what is revoked by then.
    for responder, now, listed in ((at_since, SINCE, True),
                                   (before, SINCE - dt.timedelta(seconds=1), False)):
        der = responder.crl("ca")
        assert der is not None
        crl = x509.load_der_x509_crl(der)
        assert crl.last_update_utc == now
        assert (crl.get_revoked_certificate_by_serial_number(serial) is not None) == listed


@pytest.fixture
def west_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local zone five hours behind UTC (a POSIX TZ), as on a host abroad."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("west_of_utc")
def test_times_are_kept_in_utc_whatever_the_local_zone(pki: DevPki, revocations: Path) -> None:
    assert time.localtime(0).tm_hour == 19  # 1970-01-01T00:00Z is 19:00 the day before here
    serial = _cert(pki.seal_cert).serial_number
    revocations.write_text(f"{serial:x} 2026-01-01T22:04:05-05:00\n", encoding="utf-8")
    since = DevOcspResponder({}, revocations).revoked()
    assert since == {serial: SINCE} and since[serial].utcoffset() == dt.timedelta(0)
    # The clock's time is taken in UTC, never in the local zone: the first hour of year 1 is
    # a time here (it would be year 0 in the local zone).
    first = dt.datetime(1, 1, 1, 1, tzinfo=dt.UTC)
    answer = ocsp.load_der_ocsp_response(_at(pki, revocations, first).respond(
        _request(pki.seal_cert, pki.ca_cert)))
    assert (answer.certificate_status, answer.this_update_utc) == (GOOD, first)


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The C locale, whose encoding is ASCII, for this process (started in a UTF-8 one)."""
    kept = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    yield
    locale.setlocale(locale.LC_CTYPE, kept)


@pytest.mark.usefixtures("ascii_locale")
def test_the_revocations_file_is_utf8_whatever_the_locale(
        pki: DevPki, responder: DevOcspResponder, revocations: Path) -> None:
    assert locale.getencoding() == "ANSI_X3.4-1968"
    serial = _cert(pki.signer_cert).serial_number
    revocations.write_text(f"# हरवलेला लॅपटॉप (lost laptop)\n{serial:x} {SINCE.isoformat()}\n",
                           encoding="utf-8")
    assert responder.revoked() == {serial: SINCE}


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
    # A character outside base64's alphabet spoils the request rather than being skipped.
    spoilt = base64.b64encode(request).decode()
    spoilt = f"{spoilt[:8]}*{spoilt[8:]}"
    for path in ("/ocsp/not*base64", "/ocsp/", f"/ocsp/{spoilt}"):
        answer = requests.get(base + path, timeout=10)
        assert answer.headers["Content-Type"] == "application/ocsp-response"
        assert ocsp.load_der_ocsp_response(answer.content).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_over_http_crls_and_health(base: str, pki: DevPki) -> None:
    got = requests.get(dev_crl_url(f"{base}/ocsp", "root"), timeout=10)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/pkix-crl"
    assert got.headers["Content-Length"] == str(len(got.content))
    assert x509.load_der_x509_crl(got.content).issuer == _cert(pki.root_cert).subject
    missing = requests.get(f"{base}/crl/nobody.crl", timeout=10)
    assert (missing.status_code, missing.content) == (404, b"")
    assert missing.headers["Content-Length"] == "0"
    for path in ("/healthz", "/crl/root.pem", "/", "/ocsp"):
        health = requests.get(base + path, timeout=10)
        assert (health.status_code, health.content) == (200, b"ok"), path
        assert health.headers["Content-Type"] == "text/plain"
        assert health.headers["Content-Length"] == "2"


def test_over_http_what_is_refused(base: str, pki: DevPki) -> None:
    request = _request(pki.seal_cert, pki.ca_cert)
    kind = {"Content-Type": "application/ocsp-request"}
    put = requests.put(f"{base}/ocsp", data=request, headers=kind, timeout=10)
    assert (put.status_code, put.headers["Allow"], put.content) == (405, "GET, POST", b"")
    assert put.headers["Content-Length"] == "0"
    for headers in ({}, {"Content-Type": "application/octet-stream"}):
        answer = requests.post(f"{base}/ocsp", data=request, headers=headers, timeout=10)
        assert (answer.status_code, answer.content) == (415, b"")
        assert answer.headers["Content-Length"] == "0"
    # Too long, empty, or of no stated length (chunked): refused unread.
    for body in (b"0" * (16 * 1024 + 1), b"", iter([request])):
        answer = requests.post(f"{base}/ocsp", data=body, headers=kind, timeout=10)
        assert (answer.status_code, answer.content) == (413, b""), body
        assert answer.headers["Content-Length"] == "0"
    for body in (b"0" * (16 * 1024), b"0"):  # the longest and the shortest are read
        answer = requests.post(f"{base}/ocsp", data=body, headers=kind, timeout=10)
        assert answer.status_code == 200, len(body)
        assert ocsp.load_der_ocsp_response(answer.content).response_status == \
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def _raw(base: str, request: str) -> tuple[str, bytes]:
    """The status line and the body, as sent, of the answer to the HTTP `request` (no
    client reading it by its headers, which would not see bytes beyond its Content-Length)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request.replace("\n", "\r\n").encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head.decode().split("\r\n")[0], body


def test_over_http_refusals_have_no_body(base: str) -> None:
    close = "Host: ocsp\nConnection: close\n"
    kind = "Content-Type: application/ocsp-request\n"
    for request, status in (
            (f"GET /crl/nobody.crl HTTP/1.1\n{close}\n", "404"),
            (f"DELETE /ocsp HTTP/1.1\n{close}\n", "405"),
            (f"POST /ocsp HTTP/1.1\n{close}Content-Length: 2\n\n00", "415"),
            (f"POST /ocsp HTTP/1.1\n{close}{kind}Content-Length: 0\n\n", "413"),
            # A length that is no number: refused as too large, not failed on.
            (f"POST /ocsp HTTP/1.1\n{close}{kind}Content-Length: two\n\n00", "413")):
        line, body = _raw(base, request)
        assert (line.split(" ")[1], body) == (status, b""), request


def test_a_wsgi_server_may_leave_out_an_empty_path(responder: DevOcspResponder) -> None:
    # PEP 3333: a variable whose value would be empty may be left out (a CGI server does).
    started: list[Any] = []
    body = ocsp_wsgi_app(responder)({"REQUEST_METHOD": "GET"},
                                    lambda status, headers: started.append(status))
    assert (started, list(body)) == (["200 OK"], [b"ok"])
