"""A production verifier's current revocation information (signing/fetched_revinfo.py), fetched
over real HTTP on 127.0.0.1 from the addresses a certificate names: believed only when signed
by the issuer (a CRL) or the issuer or its delegated responder (OCSP), kept until nextUpdate
(at most an hour), a failing server left alone for a minute, oversized bodies refused."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from werkzeug.serving import make_server

import signing.fetched_revinfo as fetched
from signing.fetched_revinfo import MAX_AGE, RETRY_AFTER, FetchedRevinfo
from signing.revocation import issuer_of

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Served:
    """What the test server answers at each path, and how often it was asked."""

    base: str
    bodies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    """Each request's method, path and Content-Type, in turn."""
    stalled: set[str] = field(default_factory=set)
    """Paths answered only once `release` is set (at the latest after `stall` seconds)."""
    stall: float = 5
    unfinished: set[str] = field(default_factory=set)
    """Paths whose body is sent without an end: the answer then hangs like a stalled one."""
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def server() -> Iterator[Served]:
    served = Served(base="")

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        served.hits[path] = served.hits.get(path, 0) + 1
        served.requests.append((environ["REQUEST_METHOD"], path,
                                environ.get("CONTENT_TYPE", "")))
        if path in served.stalled:
            served.release.wait(served.stall)
        status, body = served.bodies.get(path, (404, b""))
        if path not in served.unfinished:
            start(f"{status} X", [("Content-Length", str(len(body)))])
            return [body]
        start(f"{status} X", [])

        def endless() -> Iterator[bytes]:
            yield body
            served.release.wait(5)
        return endless()

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    served.base = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield served
    served.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _cert(subject: str, key: CertificateIssuerPrivateKeyTypes, issuer: str,
          issuer_key: CertificateIssuerPrivateKeyTypes, *extensions: x509.ExtensionType,
          ca: bool = False) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, _hash(issuer_key))


@dataclass
class Pki:
    ca_key: CertificateIssuerPrivateKeyTypes
    ca: x509.Certificate
    leaf: x509.Certificate


@pytest.fixture
def pki(server: Served) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", ca_key,
                 x509.CRLDistributionPoints([x509.DistributionPoint(
                     [x509.UniformResourceIdentifier(f"{server.base}/crl")], None, None, None)]),
                 x509.AuthorityInformationAccess([x509.AccessDescription(
                     AuthorityInformationAccessOID.OCSP,
                     x509.UniformResourceIdentifier(f"{server.base}/ocsp"))]))
    return Pki(ca_key, ca, leaf)


def _crl(issuer: str, key: CertificateIssuerPrivateKeyTypes, *, next_update: dt.timedelta,
         encoding: serialization.Encoding = serialization.Encoding.DER) -> bytes:
    return (x509.CertificateRevocationListBuilder().issuer_name(_name(issuer))
            .last_update(NOW).next_update(NOW + next_update)
            .sign(key, _hash(key)).public_bytes(encoding))


def _answer(pki: Pki, key: CertificateIssuerPrivateKeyTypes, responder: x509.Certificate,
            *, about: x509.Certificate | None = None,
            include: list[x509.Certificate] | None = None,
            next_update: dt.timedelta | None = dt.timedelta(hours=4)) -> bytes:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=about or pki.leaf, issuer=pki.ca, algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=NOW,
        next_update=None if next_update is None else NOW + next_update,
        revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
    if include:
        builder = builder.certificates(include)
    return builder.sign(key, _hash(key)).public_bytes(serialization.Encoding.DER)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_crl_signed_by_the_issuer_is_taken_and_kept_until_its_next_update(
        server: Served, pki: Pki) -> None:
    server.bodies["/crl"] = (200, _crl("Test CA", pki.ca_key, next_update=dt.timedelta(
        minutes=30)))
    clock = Clock()
    source = FetchedRevinfo(clock=clock)
    crls = source.crls(NOW, [pki.leaf, pki.ca])
    assert [c.issuer for c in crls] == [pki.ca.subject]
    assert source.crls(NOW, [pki.leaf, pki.ca]) == crls and server.hits["/crl"] == 1
    clock.now = NOW + dt.timedelta(minutes=31)  # past its nextUpdate: fetched again
    source.crls(NOW, [pki.leaf, pki.ca])
    assert server.hits["/crl"] == 2
    # Without the issuer among the certificates, nothing can be checked: nothing is fetched.
    assert FetchedRevinfo().crls(NOW, [pki.leaf]) == [] and server.hits["/crl"] == 2


def test_a_crl_lasting_a_week_is_asked_again_after_an_hour(server: Served, pki: Pki) -> None:
    server.bodies["/crl"] = (200, _crl("Test CA", pki.ca_key, next_update=dt.timedelta(days=7)))
    clock = Clock()
    source = FetchedRevinfo(clock=clock)
    source.crls(NOW, [pki.leaf, pki.ca])
    clock.now = NOW + MAX_AGE - dt.timedelta(seconds=1)
    source.crls(NOW, [pki.leaf, pki.ca])
    assert server.hits["/crl"] == 1
    clock.now = NOW + MAX_AGE
    source.crls(NOW, [pki.leaf, pki.ca])
    assert server.hits["/crl"] == 2


def test_a_crl_not_signed_by_the_issuer_is_refused(server: Served, pki: Pki,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    url = f"{server.base}/crl"
    unsigned = f"the CRL at {url} is not signed by CN=Test CA"
    forger = ec.generate_private_key(ec.SECP256R1())
    server.bodies["/crl"] = (200, _crl("Test CA", forger, next_update=dt.timedelta(days=1)))
    assert FetchedRevinfo().crls(NOW, [pki.leaf, pki.ca]) == []
    assert caplog.messages == [unsigned]
    server.bodies["/crl"] = (200, _crl("Other CA", pki.ca_key, next_update=dt.timedelta(days=1)))
    assert FetchedRevinfo().crls(NOW, [pki.leaf, pki.ca]) == []
    assert caplog.messages == [unsigned, unsigned]
    server.bodies["/crl"] = (200, b"not a CRL")
    assert FetchedRevinfo().crls(NOW, [pki.leaf, pki.ca]) == []
    with pytest.raises(ValueError, match="asn1") as unreadable:
        x509.load_der_x509_crl(b"not a CRL")
    assert caplog.messages[2:] == [f"the CRL at {url} cannot be read: {unreadable.value}"]


def test_a_pem_crl_is_taken_even_after_blank_lines(server: Served, pki: Pki) -> None:
    pem = _crl("Test CA", pki.ca_key, next_update=dt.timedelta(days=1),
               encoding=serialization.Encoding.PEM)
    server.bodies["/crl"] = (200, b"\r\n  " + pem)
    assert [c.public_bytes(serialization.Encoding.PEM) for c in FetchedRevinfo().crls(
        NOW, [pki.leaf, pki.ca])] == [pem]


def test_a_certificate_without_its_issuer_does_not_stop_the_others(server: Served,
                                                                   pki: Pki) -> None:
    server.bodies["/crl"] = (200, _crl("Test CA", pki.ca_key, next_update=dt.timedelta(days=1)))
    stranger = ec.generate_private_key(ec.SECP256R1())
    orphan = _cert("Orphan", stranger, "Unknown CA", stranger)
    crls = FetchedRevinfo().crls(NOW, [orphan, pki.leaf, pki.ca])
    assert [c.issuer for c in crls] == [pki.ca.subject]


def test_the_issuer_is_the_certificate_whose_key_signed_not_just_its_name(pki: Pki) -> None:
    assert issuer_of(pki.leaf, [pki.leaf, pki.ca]) == pki.ca
    # A self-signed root is not its own issuer among the certificates.
    assert issuer_of(pki.ca, [pki.ca]) is None
    # A CA re-keyed under the same name: the old certificate is passed over for the new one.
    new_key = ec.generate_private_key(ec.SECP256R1())
    rekeyed = _cert("Test CA", new_key, "Test CA", new_key, ca=True)
    leaf = _cert("New Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", new_key)
    assert issuer_of(leaf, [leaf, pki.ca, rekeyed]) == rekeyed
    assert issuer_of(leaf, [leaf, pki.ca]) is None


def test_an_ocsp_answer_is_taken_only_when_signed_for_the_issuer(server: Served,
                                                                 pki: Pki) -> None:
    source = FetchedRevinfo
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca))
    assert source().ocsp(pki.leaf, NOW, pki.ca) == server.bodies["/ocsp"][1]
    assert source().ocsp(pki.leaf, NOW, None) is None  # no issuer: no request can be made
    # A delegated responder: issued by the CA for OCSP signing, sent with the answer.
    key = ec.generate_private_key(ec.SECP256R1())
    delegate = _cert("Responder", key, "Test CA", pki.ca_key,
                     x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    server.bodies["/ocsp"] = (200, _answer(pki, key, delegate, include=[delegate]))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is not None
    # Refused: a responder without the OCSP signing usage, a stranger's key, an answer on
    # another certificate, an unsuccessful answer.
    plain = _cert("Responder", key, "Test CA", pki.ca_key)
    server.bodies["/ocsp"] = (200, _answer(pki, key, plain, include=[plain]))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None
    client = _cert("Responder", key, "Test CA", pki.ca_key,
                   x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))
    server.bodies["/ocsp"] = (200, _answer(pki, key, client, include=[client]))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None
    other_ca = ec.generate_private_key(ec.SECP256R1())
    foreign = _cert("Responder", key, "Test CA", other_ca,
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    server.bodies["/ocsp"] = (200, _answer(pki, key, foreign, include=[foreign]))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None
    stranger = ec.generate_private_key(ec.SECP256R1())
    impostor = _cert("Test CA", stranger, "Test CA", stranger, ca=True)  # the CA's name only
    server.bodies["/ocsp"] = (200, _answer(pki, stranger, impostor))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca, about=pki.ca))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None
    server.bodies["/ocsp"] = (200, ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER))
    assert source().ocsp(pki.leaf, NOW, pki.ca) is None


def test_a_delegated_responder_is_found_after_certificates_that_are_not_one(
        server: Served, pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    delegate = _cert("Responder", key, "Test CA", pki.ca_key,
                     x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    foreign = _cert("Responder", key, "Other CA", ec.generate_private_key(ec.SECP256R1()),
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    plain = _cert("Responder", key, "Test CA", pki.ca_key)  # no extended key usage
    answer = _answer(pki, key, delegate, include=[foreign, plain, delegate])
    server.bodies["/ocsp"] = (200, answer)
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) == answer


def test_an_ed25519_issuer_s_answers_are_checked_by_its_delegate_only(server: Served) -> None:
    # The issuer's key is neither RSA nor EC: it verifies nothing (a forger's Ed25519 answer
    # is refused); its EC delegate's answer is still believed.
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", ca_key,
                 x509.AuthorityInformationAccess([x509.AccessDescription(
                     AuthorityInformationAccessOID.OCSP,
                     x509.UniformResourceIdentifier(f"{server.base}/ocsp"))]))
    pki = Pki(ca_key, ca, leaf)
    forger = ed25519.Ed25519PrivateKey.generate()
    server.bodies["/ocsp"] = (200, _answer(pki, forger, _cert("Test CA", forger, "Test CA",
                                                               forger, ca=True)))
    assert FetchedRevinfo().ocsp(leaf, NOW, ca) is None
    key = ec.generate_private_key(ec.SECP256R1())
    delegate = _cert("Responder", key, "Test CA", ca_key,
                     x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]))
    answer = _answer(pki, key, delegate, include=[delegate])
    server.bodies["/ocsp"] = (200, answer)
    assert FetchedRevinfo().ocsp(leaf, NOW, ca) == answer


def test_ocsp_refusals_say_why_in_the_log(server: Served, pki: Pki,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    url = f"{server.base}/ocsp"
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca, about=pki.ca))
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
    assert caplog.messages == [f"the OCSP answer from {url} is not on CN=Test Leaf or not "
                               "signed for its issuer"]
    server.bodies["/ocsp"] = (200, b"not an answer")
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
    with pytest.raises(ValueError, match="asn1") as unreadable:
        ocsp.load_der_ocsp_response(b"not an answer")
    assert caplog.messages[1:] == [f"the OCSP answer from {url} cannot be read: "
                                   f"{unreadable.value}"]
    server.bodies["/ocsp"] = (200, ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER))
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
    assert caplog.messages[2:] == [f"the OCSP responder at {url} answered "
                                   f"{ocsp.OCSPResponseStatus.TRY_LATER}"]


def test_ocsp_needs_an_address_and_tries_each_in_turn(server: Served, pki: Pki) -> None:
    no_address = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA",
                       pki.ca_key)
    assert FetchedRevinfo().ocsp(no_address, NOW, pki.ca) is None
    leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", pki.ca_key,
                 x509.AuthorityInformationAccess([x509.AccessDescription(
                     AuthorityInformationAccessOID.OCSP,
                     x509.UniformResourceIdentifier(f"{server.base}/{path}"))
                     for path in ("down", "ocsp", "spare")]))
    answer = _answer(pki, pki.ca_key, pki.ca, about=leaf)
    server.bodies["/down"] = (500, b"")
    server.bodies["/ocsp"] = server.bodies["/spare"] = (200, answer)
    assert FetchedRevinfo().ocsp(leaf, NOW, pki.ca) == answer
    assert server.hits == {"/down": 1, "/ocsp": 1}  # the first answer ends the search


def test_an_ocsp_answer_is_kept_until_its_next_update(server: Served, pki: Pki) -> None:
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca,
                                           next_update=dt.timedelta(minutes=30)))
    clock = Clock()
    source = FetchedRevinfo(clock=clock)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None
    clock.now = NOW + dt.timedelta(minutes=30) - dt.timedelta(seconds=1)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 1
    clock.now = NOW + dt.timedelta(minutes=30)  # its nextUpdate, before MAX_AGE: asked again
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 2


def test_a_failing_server_is_left_alone_for_a_minute(server: Served, pki: Pki) -> None:
    server.bodies["/ocsp"] = (500, b"")
    clock = Clock()
    source = FetchedRevinfo(clock=clock)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is None
    assert source.ocsp(pki.leaf, NOW, pki.ca) is None and server.hits["/ocsp"] == 1
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca))
    clock.now = NOW + RETRY_AFTER
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 2
    # A good answer is kept (until its nextUpdate, four hours, but at most an hour).
    clock.now = NOW + RETRY_AFTER + MAX_AGE - dt.timedelta(seconds=1)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 2


def test_an_oversized_body_is_refused(server: Served, pki: Pki,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _answer(pki, pki.ca_key, pki.ca)
    server.bodies["/ocsp"] = (200, answer)
    monkeypatch.setattr(fetched, "MAX_OCSP_BYTES", len(answer) - 1)
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
    monkeypatch.setattr(fetched, "MAX_OCSP_BYTES", len(answer))
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) == answer


def test_only_http_addresses_are_followed(tmp_path: Path, pki: Pki) -> None:
    # A certificate naming a local file: never read, even if it holds a good CRL.
    crl = tmp_path / "crl.der"
    crl.write_bytes(_crl("Test CA", pki.ca_key, next_update=dt.timedelta(days=1)))
    leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", pki.ca_key,
                 x509.CRLDistributionPoints([x509.DistributionPoint(
                     [x509.UniformResourceIdentifier(crl.as_uri())], None, None, None)]))
    assert FetchedRevinfo().crls(NOW, [leaf, pki.ca]) == []


def test_a_crl_is_got_and_an_ocsp_request_posted_as_rfc_6960_says(server: Served,
                                                                   pki: Pki) -> None:
    server.bodies["/crl"] = (200, _crl("Test CA", pki.ca_key, next_update=dt.timedelta(days=1)))
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca))
    source = FetchedRevinfo()
    assert source.crls(NOW, [pki.leaf, pki.ca]) != []
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None
    assert server.requests == [("GET", "/crl", ""),
                               ("POST", "/ocsp", "application/ocsp-request")]


def test_only_the_ocsp_address_of_the_authority_information_is_asked(server: Served,
                                                                     pki: Pki) -> None:
    # The CA certificate's address (caIssuers) is no OCSP responder: never asked.
    leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA", pki.ca_key,
                 x509.AuthorityInformationAccess([x509.AccessDescription(
                     method, x509.UniformResourceIdentifier(f"{server.base}{path}"))
                     for method, path in ((AuthorityInformationAccessOID.CA_ISSUERS, "/ca.der"),
                                          (AuthorityInformationAccessOID.OCSP, "/ocsp"))]))
    answer = _answer(pki, pki.ca_key, pki.ca, about=leaf)
    server.bodies["/ca.der"] = (200, pki.ca.public_bytes(serialization.Encoding.DER))
    server.bodies["/ocsp"] = (200, answer)
    assert FetchedRevinfo().ocsp(leaf, NOW, pki.ca) == answer
    assert server.hits == {"/ocsp": 1}


def test_an_ocsp_answer_without_a_next_update_is_kept_an_hour(server: Served, pki: Pki) -> None:
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca, next_update=None))
    clock = Clock()
    source = FetchedRevinfo(clock=clock)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None
    clock.now = NOW + MAX_AGE - dt.timedelta(seconds=1)
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 1
    clock.now = NOW + MAX_AGE
    assert source.ocsp(pki.leaf, NOW, pki.ca) is not None and server.hits["/ocsp"] == 2


def test_https_addresses_are_followed(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    with socket.socket() as closed:  # bound, not listening: a connection is refused at once
        closed.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{closed.getsockname()[1]}/ocsp"
        leaf = _cert("Test Leaf", ec.generate_private_key(ec.SECP256R1()), "Test CA",
                     pki.ca_key, x509.AuthorityInformationAccess([x509.AccessDescription(
                         AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))]))
        assert FetchedRevinfo().ocsp(leaf, NOW, pki.ca) is None
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(f"revocation information from {url} unavailable: ")
    assert "refused" in caplog.messages[0]


def test_an_unavailable_server_says_so_in_the_log(server: Served, pki: Pki,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    server.bodies["/ocsp"] = (500, b"")
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
    assert caplog.messages == [f"revocation information from {server.base}/ocsp unavailable: "
                               "HTTP Error 500: X"]


def test_a_server_that_does_not_answer_costs_only_the_timeout(
        server: Served, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca))
    server.stalled.add("/ocsp")  # its good answer comes five seconds late
    started = time.monotonic()
    assert FetchedRevinfo(timeout=0.5).ocsp(pki.leaf, NOW, pki.ca) is None
    assert time.monotonic() - started < 4
    assert caplog.messages == [f"revocation information from {server.base}/ocsp unavailable: "
                               "timed out"]


def test_a_body_going_on_past_the_limit_is_refused_without_waiting_for_its_end(
        server: Served, pki: Pki, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, logger="signing.fetched_revinfo")
    answer = _answer(pki, pki.ca_key, pki.ca)
    server.bodies["/ocsp"] = (200, answer)
    server.unfinished.add("/ocsp")  # one byte past the limit, then nothing for five seconds
    monkeypatch.setattr(fetched, "MAX_OCSP_BYTES", len(answer) - 1)
    assert FetchedRevinfo(timeout=2).ocsp(pki.leaf, NOW, pki.ca) is None
    assert caplog.messages == [f"revocation information from {server.base}/ocsp is larger "
                               f"than {len(answer) - 1} bytes"]


def test_a_verifier_waits_five_seconds_for_a_server_by_default(server: Served, pki: Pki) -> None:
    # issuer/runtime.py takes the default: an answer five and a half seconds late is not waited
    # for.
    server.bodies["/ocsp"] = (200, _answer(pki, pki.ca_key, pki.ca))
    server.stalled.add("/ocsp")
    server.stall = 5.5
    assert FetchedRevinfo().ocsp(pki.leaf, NOW, pki.ca) is None
