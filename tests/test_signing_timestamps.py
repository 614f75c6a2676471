"""PAdES B-T: signatures timestamped by the development TSA served over HTTP on 127.0.0.1, every
way a TSA can fail turned into one clean error, and what `validate_pdf` accepts of a signature
timestamp. Checked with pyHanko's validator and poppler's pdfsig."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import http.server
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import requests
from asn1crypto import cms, core, tsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from werkzeug.serving import make_server

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.errors import BadKeyUsage
from signing.file_backend import load_pem_certificate, to_asn1_certificate
from signing.key_files import load_pem_private_key
from signing.pades import PadesSigner
from signing.timestamps import (
    QUERY_TYPE,
    REPLY_TYPE,
    DevTimeStampAuthority,
    InProcessTimeStamper,
    StrictTimeStamper,
    TsaUnavailable,
    refusal,
    tsa_wsgi_app,
)
from signing.validate import validate_pdf
from tests.fixture_scope import shared
from tests.test_signing_envelope import signer_info, with_envelope_der
from tests.test_signing_support import minimal_pdf, pdfsig_report

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def authority_of(pki: DevPki) -> DevTimeStampAuthority:
    return DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])


def serve(app: WsgiApp) -> Iterator[str]:
    return _running(make_server("127.0.0.1", 0, app, threaded=True))


def _running(server: Any) -> Iterator[str]:
    """The TSA URL of `server` (a werkzeug or http.server one) served in a thread meanwhile."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope=shared("module"))
def tsa_url(pki: DevPki) -> Iterator[str]:
    yield from serve(tsa_wsgi_app(authority_of(pki)))


def signer_with(pki: DevPki, timestamper: Any) -> PadesSigner:
    # Room for a second token, so the envelope tests below can add one in place.
    return PadesSigner(load_backend(SignerConfig.from_keys_dir(pki.keys_dir)),
                       timestamper=timestamper, bytes_reserved=32768)


def sign(signer: PadesSigner) -> bytes:
    return signer.sign(minimal_pdf(), reason="Birth certificate issued", location="Pune",
                       info={"PramaanSeal": "https://verify.pmc.example/v#1123"})


@pytest.fixture(scope=shared("module"))
def timestamped(pki: DevPki, tsa_url: str) -> bytes:
    return sign(signer_with(pki, StrictTimeStamper(tsa_url)))


# --- B-T, validated ----------------------------------------------------------------------------


def test_a_b_t_signature_validates_with_its_timestamp(timestamped: bytes, pki: DevPki) -> None:
    report = validate_pdf(timestamped, [pki.root_cert])
    assert report.ok, report
    assert report.info == {"PramaanSeal": "https://verify.pmc.example/v#1123"}
    assert report.timestamp is not None and report.signing_time is not None
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(minutes=5) < report.timestamp <= now
    assert report.timestamp.microsecond == 0  # whole seconds (pdfsig needs them)
    # pyHanko's own reading: the timestamp is intact, valid and from the trusted dev TSA.
    signature = PdfFileReader(BytesIO(timestamped)).embedded_signatures[0]
    root = to_asn1_certificate(load_pem_certificate(pki.root_cert))
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[root]))
    stamp = status.timestamp_validity
    assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    assert "Pramaan Dev Time Stamping Authority" in stamp.signing_cert.subject.human_friendly
    assert status.bottom_line


def test_a_signature_timestamp_alone_does_not_outlive_the_signer(timestamped: bytes,
                                                                  pki: DevPki) -> None:
    # B-T proves when the signature existed, but validation still needs the signer's chain
    # valid (and its revocation status) at the time of checking: that is B-LT/B-LTA's work.
    signer = load_pem_certificate(pki.signer_cert)
    later = signer.not_valid_after_utc + dt.timedelta(days=1)
    assert validate_pdf(timestamped, [pki.root_cert], at=later).reason == "untrusted"


def test_a_b_b_signature_has_no_timestamp(pki: DevPki) -> None:
    report = validate_pdf(sign(signer_with(pki, None)), [pki.root_cert])
    assert report.ok and report.timestamp is None


def test_pdfsig_says_the_timestamped_signature_is_valid_and_trusted(
    timestamped: bytes, pki: DevPki, tmp_path: Path
) -> None:
    path = tmp_path / "bt.pdf"
    path.write_bytes(timestamped)
    output = pdfsig_report(path, pki.root_cert, tmp_path / "nss")
    assert "Signature is Valid" in output, output
    assert "Certificate is Trusted" in output, output
    assert "Total document signed" in output, output


def test_the_in_process_timestamper_gives_the_same_kind_of_signature(pki: DevPki) -> None:
    pdf = sign(signer_with(pki, InProcessTimeStamper(authority_of(pki))))
    report = validate_pdf(pdf, [pki.root_cert])
    assert report.ok and report.timestamp is not None


def test_a_timestamp_from_a_tsa_the_roots_do_not_know_is_refused(
    pki: DevPki, stranger: DevPki
) -> None:
    pdf = sign(signer_with(pki, InProcessTimeStamper(authority_of(stranger))))
    assert validate_pdf(pdf, [pki.root_cert]).reason == "bad_timestamp"
    # ... and is fine where its root is trusted too.
    assert validate_pdf(pdf, [pki.root_cert, stranger.root_cert]).ok


# --- the unsigned attributes a signature may carry ------------------------------------------


def with_unsigned(pdf: bytes, change: Callable[[cms.CMSAttributes], list[Any]]) -> bytes:
    """`pdf` with the unsigned attributes of its signer replaced by `change(attributes)`.

    Rebuilt from the parsed parts rather than re-encoded with force=True, which asn1crypto
    takes tens of seconds over for an envelope holding a timestamp token."""
    signature = PdfFileReader(BytesIO(pdf)).embedded_signatures[0]
    signed_data = cms.ContentInfo.load(bytes(signature.pkcs7_content))["content"]
    info = signer_info(signed_data)
    new_info = cms.SignerInfo({**{name: info[name] for name in (
        "version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm",
        "signature")}, "unsigned_attrs": cms.CMSAttributes(change(info["unsigned_attrs"]))})
    new_data = cms.SignedData({**{name: signed_data[name] for name in (
        "version", "digest_algorithms", "encap_content_info", "certificates")},
        "signer_infos": [new_info]})
    return with_envelope_der(
        pdf, cms.ContentInfo({"content_type": "signed_data", "content": new_data}).dump())


def test_only_one_signature_timestamp_holding_one_token_is_accepted(
    timestamped: bytes, pki: DevPki
) -> None:
    roots = [pki.root_cert]
    assert validate_pdf(with_unsigned(timestamped, list), roots).ok  # as it was

    def two_tokens(attrs: cms.CMSAttributes) -> list[Any]:
        token = attrs[0]["values"][0]
        return [{"type": "signature_time_stamp_token", "values": [token, token]}]

    def twice(attrs: cms.CMSAttributes) -> list[Any]:
        return [attrs[0], attrs[0]]

    def another_kind(attrs: cms.CMSAttributes) -> list[Any]:
        # The same token under another (private) attribute type.
        return [{"type": "1.3.6.1.4.1.99999.1",
                 "values": [core.Any.load(attrs[0]["values"][0].dump())]}]

    def one_more(attrs: cms.CMSAttributes) -> list[Any]:
        return [attrs[0], *another_kind(attrs)]

    for change in (two_tokens, twice, another_kind, one_more):
        report = validate_pdf(with_unsigned(timestamped, change), roots)
        assert not report.ok, change.__name__
        assert report.reason in {"modified", "malformed"}, (change.__name__, report)


def test_a_timestamp_whose_tsa_signature_is_broken_is_refused(timestamped: bytes,
                                                              pki: DevPki) -> None:
    # The token's imprint still matches (intact) and its TSA is trusted, but the TSA's own
    # signature value has one bit flipped: not valid.
    def broken(attrs: cms.CMSAttributes) -> list[Any]:
        token = attrs[0]["values"][0]
        signed = token["content"]
        info = signed["signer_infos"][0]
        value = bytearray(info["signature"].native)
        value[10] ^= 0x01
        new_info = cms.SignerInfo({**{name: info[name] for name in (
            "version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm")},
            "signature": bytes(value)})
        new_signed = cms.SignedData({**{name: signed[name] for name in (
            "version", "digest_algorithms", "encap_content_info", "certificates")},
            "signer_infos": [new_info]})
        return [{"type": "signature_time_stamp_token", "values": [cms.ContentInfo(
            {"content_type": "signed_data", "content": new_signed})]}]

    report = validate_pdf(with_unsigned(timestamped, broken), [pki.root_cert])
    assert report.reason == "bad_timestamp"


def test_a_timestamp_of_another_signature_is_refused(timestamped: bytes, pki: DevPki,
                                                     tsa_url: str) -> None:
    # A genuine token, but over other bytes: moved from another signed PDF into this one.
    other = sign(signer_with(pki, StrictTimeStamper(tsa_url)))
    foreign = signer_info(cms.ContentInfo.load(bytes(
        PdfFileReader(BytesIO(other)).embedded_signatures[0].pkcs7_content))["content"])
    swapped = with_unsigned(timestamped, lambda _: list(foreign["unsigned_attrs"]))
    assert validate_pdf(swapped, [pki.root_cert]).reason == "bad_timestamp"


# --- a TSA that fails -----------------------------------------------------------------------


def _answer(status: str, body: bytes, content_type: str = REPLY_TYPE) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", str(len(body)))])
        return [body]
    return app


def _stamping_altered(authority: DevTimeStampAuthority,
                      alter: Callable[[Any], None]) -> WsgiApp:
    """A working TSA that stamps the request's imprint after `alter` changed it."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = tsp.TimeStampReq.load(environ["wsgi.input"].read(
            int(environ["CONTENT_LENGTH"])))
        alter(request["message_imprint"])
        answer = authority.respond(request).dump()
        start_response("200 OK", [("Content-Type", REPLY_TYPE),
                                  ("Content-Length", str(len(answer)))])
        return [answer]
    return app


def _other_digest(authority: DevTimeStampAuthority) -> WsgiApp:
    """A working TSA that stamps a digest other than the one asked for."""
    def alter(imprint: Any) -> None:
        imprint["hashed_message"] = bytes(32)
    return _stamping_altered(authority, alter)


def _other_algorithm(authority: DevTimeStampAuthority) -> WsgiApp:
    """A working TSA that stamps, instead of the SHA-256 digest asked for, a SHA-512 one."""
    def alter(imprint: Any) -> None:
        imprint["hash_algorithm"] = {"algorithm": "sha512"}
        imprint["hashed_message"] = imprint["hashed_message"].native * 2  # 64 bytes
    return _stamping_altered(authority, alter)


def _padded(authority: DevTimeStampAuthority) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = authority.respond_der(environ["wsgi.input"].read(
            int(environ["CONTENT_LENGTH"]))) + bytes(70_000)
        start_response("200 OK", [("Content-Type", REPLY_TYPE),
                                  ("Content-Length", str(len(answer)))])
        return [answer]
    return app


def _closed_port() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _answer("200 OK", b""))
    port = server.server_port
    server.server_close()
    yield f"http://127.0.0.1:{port}/tsa"


@pytest.mark.parametrize("failing", ["down", "http 500", "html", "garbage", "refusal",
                                     "other digest", "other algorithm", "huge"])
def test_every_tsa_failure_is_one_clean_error_and_nothing_is_signed(
    pki: DevPki, failing: str
) -> None:
    servers: dict[str, Callable[[], Iterator[str]]] = {
        "down": _closed_port,
        "http 500": lambda: serve(_answer("500 Internal Server Error", b"oops", "text/plain")),
        "html": lambda: serve(_answer("200 OK", b"<html></html>", "text/html")),
        "garbage": lambda: serve(_answer("200 OK", b"\x30\x82\x01")),
        "refusal": lambda: serve(_answer("200 OK", refusal("system_failure", "busy").dump())),
        "other digest": lambda: serve(_other_digest(authority_of(pki))),
        "other algorithm": lambda: serve(_other_algorithm(authority_of(pki))),
        # The right token, then 70 KB more: no TSA answers that much; read no further.
        "huge": lambda: serve(_padded(authority_of(pki))),
    }
    for url in servers[failing]():
        signer = signer_with(pki, StrictTimeStamper(url, timeout=5))
        with pytest.raises(TsaUnavailable) as refused:
            sign(signer)
        assert refused.value.code == "tsa_unavailable"
        assert str(refused.value).startswith("no timestamp from the TSA: ")


def _shaped(authority: DevTimeStampAuthority, *, size: int | None = None,
            status: str = "200 OK", content_type: str | None = REPLY_TYPE,
            wait: float = 0.0) -> WsgiApp:
    """The dev TSA's real answer, padded to `size` bytes, with this status and type (None:
    no Content-Type), after `wait` seconds."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = authority.respond_der(environ["wsgi.input"].read(
            int(environ["CONTENT_LENGTH"])))
        if size is not None:
            answer += bytes(size - len(answer))
        time.sleep(wait)
        headers = [("Content-Length", str(len(answer)))]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        start_response(status, headers)
        return [answer]
    return app


@pytest.mark.parametrize("shape, says", [
    ({"size": 65537}, "answered HTTP 200, application/timestamp-reply, 65537 bytes: not a "
                      "timestamp reply"),
    ({"status": "500 Internal Server Error"}, "answered HTTP 500, application/timestamp-reply"),
    ({"content_type": None}, "answered HTTP 200, no type, "),
    ({"content_type": "text/html; charset=utf-8"}, "answered HTTP 200, text/html, "),
])
def test_an_answer_that_is_not_a_timestamp_reply_says_what_it_was(
        pki: DevPki, shape: dict[str, Any], says: str) -> None:
    for url in serve(_shaped(authority_of(pki), **shape)):
        with pytest.raises(TsaUnavailable) as refused:
            sign(signer_with(pki, StrictTimeStamper(url, timeout=5)))
        assert says in str(refused.value), str(refused.value)


def serve_kept_alive(respond: Callable[[bytes], bytes], ports: list[int]) -> Iterator[str]:
    """A TSA answering `respond(query)` over HTTP/1.1 with kept-alive connections (werkzeug's
    development server closes each one), noting in `ports` the client's port of each request:
    one port per TCP connection."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            ports.append(self.client_address[1])
            answer = respond(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", REPLY_TYPE)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return _running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))


def test_a_reply_of_the_largest_size_with_parameters_is_taken(pki: DevPki) -> None:
    # Exactly 64 KiB (the token, then padding), typed with a parameter: a timestamp reply.
    app = _shaped(authority_of(pki), size=65536,
                  content_type="application/timestamp-reply; charset=binary")
    for url in serve(app):
        report = validate_pdf(sign(signer_with(pki, StrictTimeStamper(url, timeout=5))),
                              [pki.root_cert])
        assert report.ok and report.timestamp is not None


def _stamp(stamper: StrictTimeStamper, n: int) -> cms.ContentInfo:
    digest = hashlib.sha256(bytes([n])).digest()
    return asyncio.run(stamper.async_timestamp(digest, "sha256"))


def test_workers_asking_at_once_keep_their_connections(pki: DevPki) -> None:
    # One client serves every worker thread of a process (the keyring's): requests made at
    # the same time each keep their connection for the next ones.
    authority = authority_of(pki)
    together = threading.Barrier(4, timeout=10)

    def respond(query: bytes) -> bytes:
        together.wait()  # the four requests of a round are in flight at once
        return authority.respond_der(query)

    ports: list[int] = []
    for url in serve_kept_alive(respond, ports):
        stampers = [StrictTimeStamper(url, timeout=10)] * 4  # one, for four threads
        with ThreadPoolExecutor(4) as pool:
            for _ in range(2):
                assert len(list(pool.map(_stamp, stampers, range(4)))) == 4
    assert len(ports) == 8 and len(set(ports)) == 4, ports


def test_a_redirect_is_not_followed(pki: DevPki, tsa_url: str) -> None:
    # The configured TSA is the one asked: an answer sending the request elsewhere (here to a
    # working TSA) is a failure to see, not a path to take.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("307 Temporary Redirect", [("Location", tsa_url),
                                                  ("Content-Length", "0")])
        return [b""]

    for url in serve(app):
        with pytest.raises(TsaUnavailable, match="answered HTTP 307, no type"):
            sign(signer_with(pki, StrictTimeStamper(url, timeout=5)))


def test_an_endless_answer_is_read_no_further_than_a_reply_can_be(pki: DevPki) -> None:
    import tracemalloc

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", REPLY_TYPE)])  # no length: streamed
        return (bytes(65536) for _ in range(500))  # 32 MB, a chunk at a time

    for url in serve(app):
        signer = signer_with(pki, StrictTimeStamper(url, timeout=10))
        with pytest.raises(TsaUnavailable):  # once untraced: whatever it imports, imported
            sign(signer)
        tracemalloc.start()
        try:
            with pytest.raises(TsaUnavailable, match="65537 bytes: not a timestamp reply"):
                sign(signer)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16_000_000  # not the 32 MB sent


def test_a_tsa_slower_than_the_timeout_is_given_up(pki: DevPki) -> None:
    for url in serve(_shaped(authority_of(pki), wait=3)):
        with pytest.raises(TsaUnavailable, match="cannot reach the TSA at"):
            sign(signer_with(pki, StrictTimeStamper(url, timeout=1)))


def test_a_dropped_connection_is_one_failure_not_retried_in_the_client(pki: DevPki) -> None:
    # The job retries with backoff (the record stays approved); the client asking again at
    # once would hide a failing TSA and stack requests on it.
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def drop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.recv(65536)
            conn.close()  # no answer at all

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/tsa"
        with pytest.raises(TsaUnavailable, match=f"cannot reach the TSA at {url}"):
            sign(signer_with(pki, StrictTimeStamper(url, timeout=5)))
        time.sleep(0.2)  # a retry would have connected by now
        assert accepted == [1]
    finally:
        listener.close()
        thread.join(timeout=5)


def test_pyhankos_own_client_would_write_a_token_for_another_digest(pki: DevPki) -> None:
    """Why StrictTimeStamper exists: the plain client signs with a token that does not match,
    and only validation notices."""
    for url in serve(_other_digest(authority_of(pki))):
        pdf = sign(signer_with(pki, HTTPTimeStamper(url)))
        assert validate_pdf(pdf, [pki.root_cert]).reason == "bad_timestamp"


# --- the development TSA itself -------------------------------------------------------------


def status_of(answer: bytes) -> tuple[str, set[str]]:
    """The status of a TimeStampResp, read without asn1crypto's TimeStampResp (which insists
    on a token, and a refusal has none)."""
    status = tsp.PKIStatusInfo.load(core.Sequence.load(answer).contents)
    return status["status"].native, status["fail_info"].native


def test_the_dev_tsa_over_http_answers_only_timestamp_queries(tsa_url: str) -> None:
    assert requests.get(tsa_url, timeout=10).status_code == 405
    assert requests.post(tsa_url, data=b"x", timeout=10,
                         headers={"Content-Type": "text/plain"}).status_code == 415
    assert requests.post(tsa_url, data=b"x" * 5000, timeout=10,
                         headers={"Content-Type": QUERY_TYPE}).status_code == 413
    garbled = requests.post(tsa_url, data=b"\x30\x03\x02\x01", timeout=10,
                            headers={"Content-Type": QUERY_TYPE})
    assert garbled.status_code == 200 and garbled.headers["Content-Type"] == REPLY_TYPE
    assert status_of(garbled.content) == ("rejection", {"bad_data_format"})


def test_the_dev_tsa_refuses_a_digest_it_does_not_take(pki: DevPki) -> None:
    authority = authority_of(pki)
    request = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "md5"}, "hashed_message": bytes(16)}})
    assert status_of(authority.respond(request).dump()) == ("rejection", {"bad_alg"})
    short = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes(20)}})
    assert status_of(authority.respond(short).dump()) == ("rejection", {"bad_alg"})


def test_the_dev_tsa_stamps_the_time_of_its_clock_in_whole_seconds(pki: DevPki) -> None:
    moment = dt.datetime(2031, 5, 6, 7, 8, 9, 987654, tzinfo=dt.UTC)
    authority = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert],
                                           clock=lambda: moment)
    request = tsp.TimeStampReq({"version": "v1", "nonce": 77, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes(range(32))}})
    token = authority.respond(request)["time_stamp_token"]
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == moment.replace(microsecond=0)
    assert info["nonce"].native == 77
    assert info["message_imprint"]["hashed_message"].native == bytes(range(32))
    assert info["policy"].dotted == "2.999.1"
    certificates = {c.chosen.subject.human_friendly for c in token["content"]["certificates"]}
    assert any("Time Stamping Authority" in name for name in certificates)
    assert any("CA for Time Stamping" in name for name in certificates)


def test_only_a_time_stamping_certificate_with_its_own_key_makes_an_authority(
    pki: DevPki,
) -> None:
    with pytest.raises(BadKeyUsage, match="timeStamping"):
        DevTimeStampAuthority.load(pki.signer_key, pki.signer_cert)
    key = load_pem_private_key(pki.signer_key)
    with pytest.raises(Exception, match=r"does not match|belong"):
        DevTimeStampAuthority(key, load_pem_certificate(pki.tsa_cert))  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 1, *range(95, 135), 200, 255, 256, 300, 65535, 70000])
def test_a_refusal_of_any_length_is_encoded_as_der(length: int) -> None:
    # The outer SEQUENCE is written by hand: short and long length forms, one to three octets
    # (the lengths around 100 put the encoded status at 127, 128 and 129 bytes).
    text = "x" * length
    answer = refusal("system_failure", text)
    der = answer.dump()
    assert status_of(der) == ("rejection", {"system_failure"})
    body = len(der) - 2 if len(der) - 2 < 0x80 else None
    header = 2 if body is not None else 2 + (der[1] & 0x7F)
    inner = tsp.PKIStatusInfo.load(der[header:], strict=True)  # exactly what the length says
    assert inner["status_string"].native == [text]
    if body is not None:  # the short form: one octet, the length itself
        assert der[1] == body
    else:
        octets = der[1] & 0x7F
        assert der[1] & 0x80 and int.from_bytes(der[2:2 + octets], "big") == len(der) - 2 - octets
        assert der[2] != 0  # minimal: no leading zero octet


def test_the_dev_tsa_s_http_answers_are_exact(pki: DevPki) -> None:
    # Called as a WSGI server would: each refusal's status line and headers, then a token.
    import io

    from signing.timestamps import QUERY_TYPE, REPLY_TYPE

    app = tsa_wsgi_app(authority_of(pki))

    def call(method: str, content_type: str | None = QUERY_TYPE, length: str | None = None,
             body: bytes = b"", *, sized: bool = True) -> tuple[str, dict[str, str], bytes]:
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            seen["status"], seen["headers"] = status, dict(headers)

        environ: dict[str, Any] = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body)}
        if content_type is not None:  # a request without the header has no key at all
            environ["CONTENT_TYPE"] = content_type
        if sized:
            environ["CONTENT_LENGTH"] = str(len(body)) if length is None else length
        answer = b"".join(app(environ, start_response))
        return seen["status"], seen["headers"], answer

    empty = {"Content-Length": "0"}
    assert call("GET") == ("405 Method Not Allowed", {"Allow": "POST", **empty}, b"")
    assert call("POST", "text/plain", body=b"x") == ("415 Unsupported Media Type", empty, b"")
    assert call("POST", body=b"") == ("413 Content Too Large", empty, b"")
    assert call("POST", None, body=b"x") == ("415 Unsupported Media Type", empty, b"")
    assert call("POST", sized=False, body=b"x") == ("413 Content Too Large", empty, b"")
    assert call("POST", length="lots", body=b"x") == ("413 Content Too Large", empty, b"")
    assert call("POST", body=b"x" * 4097) == ("413 Content Too Large", empty, b"")
    query = tsp.TimeStampReq({"version": 1, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"},
        "hashed_message": hashlib.sha256(b"page").digest()}, "cert_req": True}).dump()
    status, headers, answer = call("POST", f"{QUERY_TYPE}; charset=binary", body=query)
    assert (status, headers) == ("200 OK", {"Content-Type": REPLY_TYPE,
                                            "Content-Length": str(len(answer))})
    assert status_of(answer) == ("granted", None)
    status, _, garbled = call("POST", body=b"x" * 4096)  # the largest query read, unreadable
    assert status == "200 OK" and status_of(garbled) == ("rejection", {"bad_data_format"})
    status, _, garbled = call("POST", body=b"0")  # the smallest query read, unreadable
    assert status == "200 OK" and status_of(garbled) == ("rejection", {"bad_data_format"})
    # A query with anything after it is refused, not answered for the part that parses.
    status, _, trailed = call("POST", body=query + b"\x00")
    assert status == "200 OK" and status_of(trailed) == ("rejection", {"bad_data_format"})
