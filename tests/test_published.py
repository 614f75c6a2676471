"""The signed trust list and status list at /.well-known/pramaan/, and verifying with them alone
(`pramaan verify --qr --published`): served over real HTTP, checked with joserfc's JWS
(authlib's JOSE library) as an independent reader, and refused when tampered, unsigned, signed
by a stranger, or stale."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import ECKey

from issuer import published
from issuer.issue import issue_certificate
from issuer.models import Certificate
from issuer.offline_verify import Published, verify_with_published
from signing.devpki import DevPki
from signing.errors import SigningError
from signing.seal import SealKey
from signing.signed_json import DocumentRefused, open_document, sign_document
from signing.status_list import Status, StatusList, StatusListRefused
from tests.conftest import Live
from tests.test_issue_once import approved, correct

ORG = "Pune Municipal Corporation (DEVELOPMENT)"
ROOT = Path(__file__).resolve().parents[1]


def seal_of(pki: DevPki) -> tuple[SealKey, list[x509.Certificate]]:
    key = SealKey.load(pki.seal_key, pki.seal_cert)
    return key, [key.certificate, x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())]


def root_of(pki: DevPki) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.root_cert.read_bytes())


# --- the status list -------------------------------------------------------------------------

def test_the_status_list_packs_two_bits_per_index_as_the_draft_does() -> None:
    # draft-ietf-oauth-status-list's 2-bit example: these twelve statuses are C9 44 F9.
    example = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    built = StatusList.build({i: Status(v) for i, v in enumerate(example) if v}, len(example))
    assert built.packed == bytes([0xC9, 0x44, 0xF9])
    read = StatusList.from_json({"bits": 2, "size": 12, "lst": "eNo76fITAAPfAgc"})
    assert [read.status(i) for i in range(12)] == [Status(v) for v in example]
    assert read.status(12) is None and read.status(-1) is None
    again = StatusList.from_json(built.to_json())
    assert again == built


_ZEROS_8 = base64.urlsafe_b64encode(zlib.compress(bytes(8))).decode().rstrip("=")
_GOOD = "eNo76fITAAPfAgc"
# Five bytes (two more than 12 entries need) with a broken checksum: refused for its length, as
# the read stops one byte past what the list can hold, before the checksum.
_LONGER = bytearray(zlib.compress(bytes(5)))
_LONGER[-1] ^= 1
_LONGER_BROKEN = base64.urlsafe_b64encode(bytes(_LONGER)).decode().rstrip("=")
# What verify_with_published gives as the reason (after "published documents: ").
_NOT_BASE64URL = "lst is not base64url of zlib data: a character that is not base64url"


@pytest.mark.parametrize(("claim", "says"), [
    ({"bits": 1, "size": 8, "lst": "eNoDAAAAAAE"}, "only 2-bit status lists are read"),
    ({"bits": 2.0, "size": 12, "lst": _GOOD}, "only 2-bit status lists are read"),
    ({"bits": 2, "size": 12}, "a status list holds exactly bits, size and lst"),
    ({"bits": 2, "size": 12, "lst": _GOOD, "extra": 1},
     "a status list holds exactly bits, size and lst"),
    ([], "a status list holds exactly bits, size and lst"),
    ({"bits": 2, "size": 13, "lst": _GOOD}, "lst does not inflate to exactly 4 bytes"),
    ({"bits": 2, "size": 12, "lst": "eNo76fITAAPf"}, "lst does not inflate to exactly 3 bytes"),
    ({"bits": 2, "size": 28, "lst": _ZEROS_8}, "lst does not inflate to exactly 7 bytes"),
    ({"bits": 2, "size": -1, "lst": _GOOD}, "size must be an integer in 0..67108864"),
    ({"bits": 2, "size": True, "lst": _GOOD}, "size must be an integer in 0..67108864"),
    ({"bits": 2, "size": "12", "lst": _GOOD}, "size must be an integer in 0..67108864"),
    ({"bits": 2, "size": (1 << 26) + 1, "lst": _GOOD}, "size must be an integer in 0..67108864"),
    ({"bits": 2, "size": 12, "lst": 12}, "size must be an integer in 0..67108864"),
    ({"bits": 2, "size": 12, "lst": "not base64!"}, _NOT_BASE64URL),
    # A stray character: 14 letters and a dot do not make base64 (the padding counts it).
    ({"bits": 2, "size": 8, "lst": "eNpjZA.AAAAQAAg"}, _NOT_BASE64URL),
    # ... nor where the rest is a whole number of base64 quanta (lenient decoding skipped it)
    ({"bits": 2, "size": 4, "lst": "eNpjBA.AAAgAC"}, _NOT_BASE64URL),
    ({"bits": 2, "size": 4, "lst": "eNpjBA=AAAgAC"}, _NOT_BASE64URL),
    # base64's own alphabet for base64url's: the same bytes, and not what the draft says
    ({"bits": 2, "size": 4, "lst": "eJyzBQAAPgA+"}, _NOT_BASE64URL),
    # One character past whole quanta: no padding makes it base64 (13 characters)
    ({"bits": 2, "size": 12, "lst": "eNo76fITAAPfA"},
     "lst is not base64url of zlib data: Invalid base64-encoded string: number of data "
     "characters (13) cannot be 1 more than a multiple of 4"),
    ({"bits": 2, "size": 12, "lst": _LONGER_BROKEN}, "lst does not inflate to exactly 3 bytes"),
])
def test_a_status_list_that_is_not_exactly_what_it_says_is_refused(claim: dict,
                                                                    says: str) -> None:
    with pytest.raises(StatusListRefused) as refusal:
        StatusList.from_json(claim)
    message = str(refusal.value)
    assert message == says or message.startswith(f"{says}: "), message


@pytest.mark.parametrize(("statuses", "size"), [
    ({}, -1), ({}, (1 << 26) + 1), ({10: Status.REVOKED}, 10), ({-1: Status.REVOKED}, 10),
])
def test_a_status_list_is_not_built_with_indices_it_cannot_hold(statuses: dict,
                                                                size: int) -> None:
    with pytest.raises(SigningError) as refusal:
        StatusList.build(statuses, size)
    assert refusal.value.code == "invalid_status_list"
    assert str(refusal.value) == (f"status indices must lie in 0..{size - 1} "
                                  f"(size at most {1 << 26})")


def test_the_largest_list_is_built_and_its_last_index_set() -> None:
    most = 1 << 26
    built = StatusList.build({most - 1: Status.SUPERSEDED}, most)
    assert len(built.packed) == most // 4 and built.status(most - 1) == Status.SUPERSEDED
    assert len(StatusList.build({}, 13).packed) == 4  # 26 bits: whole bytes


def test_a_published_list_is_unpadded_base64url_of_zlib_at_its_best_compression() -> None:
    # Lists whose encoding needs padding (which the draft leaves out), and one whose encoding
    # ends in "X" (a base64 letter, which stripping the padding must leave).
    seen = set()
    for size in range(1, 2000):
        built = StatusList.build({i: Status.REVOKED for i in range(0, size, 7)}, size)
        claim = built.to_json()
        full = base64.urlsafe_b64encode(zlib.compress(built.packed, 9)).decode()
        assert claim == {"bits": 2, "size": size, "lst": full.rstrip("=")}
        assert StatusList.from_json(claim) == built
        seen |= {"padded"} if full.endswith("=") else {"X"} if full.endswith("X") else set()
        if seen == {"padded", "X"}:
            break
    else:
        raise AssertionError(f"only {seen} among these lists")


def test_status_lists_of_no_entries_and_of_the_most_entries_are_read() -> None:
    empty = base64.urlsafe_b64encode(zlib.compress(b"")).decode().rstrip("=")
    assert StatusList.from_json({"bits": 2, "size": 0, "lst": empty}).status(0) is None
    most = 1 << 26
    full = base64.urlsafe_b64encode(zlib.compress(bytes(most // 4), 9)).decode().rstrip("=")
    read = StatusList.from_json({"bits": 2, "size": most, "lst": full})
    assert read.status(most - 1) == Status.CURRENT and read.status(most) is None


def test_a_status_list_that_would_inflate_into_a_bomb_is_refused_after_a_bounded_read() -> None:
    import tracemalloc

    bomb = base64.urlsafe_b64encode(zlib.compress(bytes(50_000_000), 9)).decode().rstrip("=")
    with pytest.raises(StatusListRefused):  # once untraced: whatever it imports, imported
        StatusList.from_json({"bits": 2, "size": 40, "lst": bomb})
    tracemalloc.start()
    try:
        with pytest.raises(StatusListRefused):
            StatusList.from_json({"bits": 2, "size": 40, "lst": bomb})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16_000_000  # read no further than the list can be: not 50 MB


# --- the signed documents --------------------------------------------------------------------

def test_a_signed_document_reads_back_and_joserfc_verifies_it_independently(pki: DevPki) -> None:
    key, chain = seal_of(pki)
    document = sign_document({"hello": "नमस्ते", "n": 1}, typ="t+jws", key=key.private_key,
                             chain=chain)
    opened = open_document(json.dumps(document), typ="t+jws", roots=[root_of(pki)],
                           organisation=ORG)
    assert opened.payload == {"hello": "नमस्ते", "n": 1}
    assert opened.signer == key.certificate
    public = key.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # joserfc (authlib's JOSE library, a reader we did not write) verifies it too.
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 8192  # its default, 512 bytes, leaves no room for x5c
    data = jws.deserialize_json(document, ECKey.import_key(public), registry=registry)
    assert json.loads(data.payload) == {"hello": "नमस्ते", "n": 1}
    assert data.headers()["typ"] == "t+jws"


def test_the_header_and_the_payload_are_signed_as_compact_json(pki: DevPki) -> None:
    # What is published is exactly what we signed, without a byte of whitespace to spare.
    key, chain = seal_of(pki)
    document = sign_document({"n": [1, 2], "hello": "नमस्ते"}, typ="t+jws", key=key.private_key,
                             chain=chain)

    def unb64url(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    leaf, ca = (base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                for c in chain)
    assert unb64url(document["protected"]) == (
        f'{{"alg":"ES256","typ":"t+jws","x5c":["{leaf}","{ca}"]}}'.encode())
    assert unb64url(document["payload"]) == '{"hello":"नमस्ते","n":[1,2]}'.encode()


def test_a_document_is_signed_only_by_a_p256_key_with_its_certificate(pki: DevPki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key, chain = seal_of(pki)
    for signer, certs in ((key.private_key, []), (ec.generate_private_key(ec.SECP384R1()),
                                                   chain)):
        with pytest.raises(SigningError) as refusal:
            sign_document({"a": 1}, typ="t+jws", key=signer, chain=certs)  # type: ignore[arg-type]
        assert refusal.value.code == "invalid_signing_config"
        assert str(refusal.value) == ("a published document is signed by a P-256 key with "
                                      "its certificate")


def _resigned(document: dict, key: SealKey, header: dict | None = None,
              payload: bytes | None = None) -> dict:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    protected = b64(json.dumps(header).encode()) if header is not None else document["protected"]
    body = b64(payload) if payload is not None else document["payload"]
    r, s = decode_dss_signature(key.private_key.sign(f"{protected}.{body}".encode(),
                                                     ec.ECDSA(hashes.SHA256())))
    return {"protected": protected, "payload": body,
            "signature": b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}


def test_documents_not_signed_exactly_as_we_sign_are_refused(pki: DevPki,
                                                             stranger: DevPki) -> None:
    key, chain = seal_of(pki)
    document = sign_document({"a": 1}, typ="t+jws", key=key.private_key, chain=chain)
    header = json.loads(base64.urlsafe_b64decode(document["protected"] + "=="))
    roots = [root_of(pki)]

    def refused(doc: object, says: str, **kw: object) -> None:
        with pytest.raises(DocumentRefused) as refusal:
            open_document(doc if isinstance(doc, str) else json.dumps(doc),
                          **{"typ": "t+jws", "roots": roots, "organisation": ORG,
                             **kw})  # type: ignore[arg-type]
        assert str(refusal.value).startswith(says), str(refusal.value)

    def der(cert: x509.Certificate) -> str:
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    body = json.dumps({"a": 2}).encode()
    mismatch = "the signature does not match the document"
    refused({**document, "payload": base64.urlsafe_b64encode(body).decode().rstrip("=")},
            mismatch)
    refused({**document, "signature": document["signature"][:-4] + "AAAA"}, mismatch)
    refused({**document, "signature": document["signature"] + "="}, "not unpadded base64url")
    refused({**document, "payload": document["payload"] + "="}, mismatch)  # signed as it is
    refused({**document, "signature": ""}, "not unpadded base64url")
    refused({**document, "signature": "AAAAA"}, "not unpadded base64url")  # 5 = 1 mod 4
    refused({**document, "signature": document["signature"][:-1] + "é"},
            "not unpadded base64url")
    refused({**document, "header": {}}, "not a flattened JWS")
    refused({**document, "payload": 1}, "not a flattened JWS")
    refused("[1]", "the document is not a JSON object")
    refused({**document, "protected": base64.urlsafe_b64encode(b"[1]").decode()},
            "the protected header is not a JSON object")
    largest = 4 * 1024 * 1024
    refused(" " * (largest + 1), f"the document is larger than {largest} bytes")
    refused(" " * largest, "the document is not JSON")  # the largest is read
    refused("{", "the document is not JSON")
    refused('{"a": Infinity}', "the document is not JSON: Infinity is not JSON")
    refused(_resigned(document, key, {**header, "alg": "none"}), "the header must be exactly")
    refused(_resigned(document, key, {**header, "kid": "x"}), "the header must be exactly")
    refused(_resigned(document, key, {**header, "x5c": []}), "x5c must hold 1 to 4")
    refused(_resigned(document, key, {**header, "x5c": [der(chain[0])] * 5}),
            "x5c must hold 1 to 4")
    refused(_resigned(document, key, {**header, "x5c": ["AAAA"]}),
            "x5c holds something that is not a certificate")
    spaced = der(chain[0])
    refused(_resigned(document, key, {**header, "x5c": [spaced[:40] + "!" + spaced[40:]]}),
            "x5c holds something that is not a certificate")  # not skipped over
    # A certificate whose key is of a type nobody reads (id-ecPublicKey's arc, .9).
    unknown_key = base64.b64encode(chain[0].public_bytes(serialization.Encoding.DER).replace(
        bytes.fromhex("06072A8648CE3D0201"), bytes.fromhex("06072A8648CE3D0209"))).decode()
    refused(_resigned(document, key, {**header, "x5c": [unknown_key]}),
            "the signer's key cannot be read: Unknown key type: 1.2.840.10045.2.9")
    refused(_resigned(document, key, payload=b"[1, 2]"), "the payload is not a JSON object")
    refused(_resigned(document, key, payload=b'{"a": NaN}'),
            "the payload is not JSON: NaN is not JSON")
    refused(document, "the header must be exactly alg ES256, typ other+jws", typ="other+jws")
    subject = key.certificate.subject.rfc4514_string()
    refused(document, f"signed by {subject}, not by Another Corporation",
            organisation="Another Corporation")
    refused(document, "the signer is not trusted", roots=[root_of(stranger)])
    refused(document, "the signer is not trusted",
            at=dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 30))
    # Another PKI's seal key, signing a document naming our organisation, does not chain.
    other, other_chain = seal_of(stranger)
    refused(sign_document({"a": 1}, typ="t+jws", key=other.private_key, chain=other_chain),
            "the signer is not trusted")
    # Our root, but the CA's own (RSA) certificate cannot be the signer; nor a short signature.
    es256 = "the signature must be ES256 by a P-256 key"
    refused(_resigned(document, key, {**header, "x5c": [der(chain[1])]}), es256)
    refused({**document, "signature": "AAAA"}, es256)
    # The seal's own key in a certificate our CA issued without digitalSignature: the
    # signature matches and it chains, but the key is not for signing.
    no_usage = _certificate_for(pki, key, x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False))
    refused(_resigned(document, key, {**header, "x5c": [der(no_usage), der(chain[1])]}),
            "the signer is not trusted")


def _certificate_for(pki: DevPki, key: SealKey, usage: x509.KeyUsage,
                     *extensions: x509.ExtensionType) -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes

    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(key.certificate.subject)
               .issuer_name(ca.subject).public_key(key.certificate.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(usage, True))
    for extension in extensions:
        builder = builder.add_extension(extension, False)
    return builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]


def test_a_chain_of_four_certificates_and_a_four_letter_payload_are_read(pki: DevPki) -> None:
    key, chain = seal_of(pki)
    document = sign_document({}, typ="t+jws", key=key.private_key, chain=[*chain, *chain[1:] * 2])
    header = json.loads(base64.urlsafe_b64decode(document["protected"] + "=="))
    assert len(header["x5c"]) == 4
    spaced = _resigned(document, key, payload=b"{ }")  # "eyB9": four base64url letters
    opened = open_document(json.dumps(spaced), typ="t+jws", roots=[root_of(pki)],
                           organisation=ORG)
    assert opened.payload == {}


def test_verifying_a_document_fetches_nothing(pki: DevPki) -> None:
    # A signer whose certificate names where its issuer's can be fetched, sent without it:
    # the verifier must not go and get it (it would also be a request to anyone's address).
    import threading

    from werkzeug.serving import make_server

    asked: list[str] = []
    ca_der = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER)

    def app(environ: dict, start: Any) -> list[bytes]:
        asked.append(environ["PATH_INFO"])
        start("200 OK", [("Content-Type", "application/pkix-cert")])
        return [ca_der]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        key, _ = seal_of(pki)
        from cryptography.x509.oid import AuthorityInformationAccessOID

        pointing = _certificate_for(pki, key, x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False),
            x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(
                    f"http://127.0.0.1:{server.server_port}/ca.crt"))]))
        document = sign_document({"a": 1}, typ="t+jws", key=key.private_key, chain=[pointing])
        with pytest.raises(DocumentRefused) as refusal:
            open_document(json.dumps(document), typ="t+jws", roots=[root_of(pki)],
                          organisation=ORG)
        assert "the signer is not trusted" in str(refusal.value) and asked == []
    finally:
        server.shutdown()
        server.server_close()


# --- served, and verified with them alone ----------------------------------------------------

def _fetch(live: Live) -> Published:
    trust = live.get("/.well-known/pramaan/trust-list.json")
    status = live.get("/.well-known/pramaan/status-list.json")
    for answer in (trust, status):
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/jose+json"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
    return Published(trust_list=trust.content, status_list=status.content)


def _verdict(live: Live, qr: str, docs: Published, keys: Path,
             now: dt.datetime | None = None) -> dict:
    root = x509.load_pem_x509_certificate((keys / "root.crt").read_bytes())
    return verify_with_published(qr, docs, roots=[root], organisation=ORG, now=now)


def _qr(live: Live, cert_id: str) -> str:
    with live.runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.seal_text is not None
        return record.seal_text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_published_lists_follow_issue_revocation_and_correction(live: Live, keys_dir: Path) -> None:
    from issuer.workflow import revoke

    runtime = live.runtime
    first = approved(runtime)
    assert issue_certificate(runtime, first)
    docs = _fetch(live)
    trust = open_document(docs.trust_list, typ=published.TRUST_LIST_TYPE,
                          roots=[x509.load_pem_x509_certificate(
                              (keys_dir / "root.crt").read_bytes())], organisation=ORG)
    assert [k["kid"] for k in trust.payload["keys"]] == [
        entry.kid.hex() for entry in runtime.trust.seal_trust.entries]
    assert trust.payload["status_list"] == published.url_of(runtime, published.STATUS_LIST)
    verdict = _verdict(live, _qr(live, first), docs, keys_dir)
    assert (verdict["genuine"], verdict["status"], verdict["current"]) == (True, "current", True)
    assert verdict["certificate"]["number"] == runtime.sessions().get(Certificate, first).number

    # A certificate sealed after the list was signed: the old list cannot speak for it, even
    # though it covers its index (drawn at approval, "not issued" in that list).
    second = approved(runtime, "birth-2")
    with runtime.sessions() as session:
        published.publish(runtime, session, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10))
        session.commit()
    before = _fetch(live)
    assert issue_certificate(runtime, second)
    stale = _verdict(live, _qr(live, second), before, keys_dir)
    assert (stale["genuine"], stale["status"], stale["current"]) == (True, "unknown", False)
    assert "older than this certificate" in stale["reason"]

    # Revoked: the list is due at once, and the next fetch says so.
    with runtime.sessions() as session, session.begin():
        target = session.get(Certificate, first)
        assert target is not None
        revoke(session, target, "test:officer", "registered in error")
    later = _fetch(live)
    assert _verdict(live, _qr(live, first), later, keys_dir)["status"] == "revoked"
    assert _verdict(live, _qr(live, second), later, keys_dir)["status"] == "current"

    # A correction supersedes the second; a record not yet issued is "not issued".
    fixed = correct(runtime, second, "birth-2")
    assert issue_certificate(runtime, fixed)
    pending = approved(runtime, "death-1")
    latest = _fetch(live)
    assert _verdict(live, _qr(live, second), latest, keys_dir)["status"] == "superseded"
    assert _verdict(live, _qr(live, fixed), latest, keys_dir)["status"] == "current"
    with runtime.sessions() as session:
        index = session.get(Certificate, pending).status_index
    lst = StatusList.from_json(json.loads(base64.urlsafe_b64decode(
        json.loads(latest.status_list)["payload"] + "==="))["status_list"])
    assert lst.status(index) == Status.NOT_ISSUED

    # An expired status list gives no status; a tampered seal is not genuine.
    expired = _verdict(live, _qr(live, fixed), latest, keys_dir,
                       now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert (expired["status"], expired["current"]) == ("unknown", False)
    assert "expired" in expired["reason"]
    qr = _qr(live, fixed)
    forged = qr[:-3] + ("000" if qr[-3:] != "000" else "111")
    assert _verdict(live, forged, latest, keys_dir)["genuine"] is False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lists_signed_by_a_key_they_do_not_list_are_refused(live: Live, keys_dir: Path,
                                                             pki: DevPki) -> None:
    # `pki` is another dev set under another root: re-rooted here by trusting both roots, its
    # seal key still is not one the trust list names.
    runtime = live.runtime
    first = approved(runtime)
    assert issue_certificate(runtime, first)
    docs = _fetch(live)
    other, chain = seal_of(pki)
    payload = json.loads(base64.urlsafe_b64decode(json.loads(docs.status_list)["payload"] + "==="))
    foreign = json.dumps(sign_document(payload, typ=published.STATUS_LIST_TYPE,
                                       key=other.private_key, chain=chain)).encode()
    roots = [x509.load_pem_x509_certificate((keys_dir / "root.crt").read_bytes()), root_of(pki)]
    verdict = verify_with_published(_qr(live, first), Published(docs.trust_list, foreign),
                                    roots=roots, organisation=ORG)
    assert verdict["genuine"] is False and "not signed by a listed seal key" in verdict["reason"]
    honest = verify_with_published(_qr(live, first), docs, roots=roots, organisation=ORG)
    assert honest["current"] is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pramaan_verify_published_fetches_keeps_and_then_works_offline(
        live: Live, keys_dir: Path, tmp_path: Path) -> None:
    runtime = live.runtime
    cert = approved(runtime)
    assert issue_certificate(runtime, cert)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRAMAAN_")}
    env["PRAMAAN_HOME"] = str(tmp_path / "verifier")  # a verifier with no keys and no database
    base = ["--qr", _qr(live, cert), "--root", str(keys_dir / "root.crt"),
            "--organisation", ORG]

    def pramaan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "verify", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    online = pramaan(*base, "--published", live.base, "--keep", str(tmp_path / "kept"))
    assert online.returncode == 0, online.stderr
    assert json.loads(online.stdout)["status"] == "current"
    offline = pramaan(*base, "--published", str(tmp_path / "kept"))
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["current"] is True
    missing = pramaan(*base, "--published", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_without_keys_and_nothing_signed_the_api_says_not_published(
        tmp_path: Path, keys_dir: Path) -> None:
    from api import create_app
    from issuer.bootstrap import initialise
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", keys_dir,
                             redis_url="redis://127.0.0.1:6379/9")
    app = create_app(settings)
    initialise(app.extensions["pramaan"])
    answer = app.test_client().get("/.well-known/pramaan/status-list.json")
    assert answer.status_code == 503 and answer.json["code"] == "not_published"
    assert app.test_client().get("/.well-known/pramaan/other.json").status_code == 404
    app.extensions["pramaan"].close()


def test_a_worker_publishes_when_due_one_at_a_time(sqlite_runtime, redis_url: str) -> None:
    from redis import Redis

    redis = Redis.from_url(redis_url)
    now = dt.datetime.now(dt.UTC)
    with sqlite_runtime.sessions() as session:
        assert published.due(session, now)
    redis.set(published.PUBLISH_LOCK, "another-worker")
    assert published.publish_if_due(sqlite_runtime, redis, now) is False  # its turn, not ours
    redis.delete(published.PUBLISH_LOCK)
    assert published.publish_if_due(sqlite_runtime, redis, now) is True
    assert redis.get(published.PUBLISH_LOCK) is None
    with sqlite_runtime.sessions() as session:
        assert not published.due(session, now)
        assert published.due(session, now + published.STATUS_TTL)
        published.mark_status_changed(session)
        session.commit()
        assert published.due(session, now)
    redis.close()


def test_trust_list_entries_that_widen_their_window_or_lie_about_their_kid_are_refused(
        pki: DevPki) -> None:
    from signing.trust_list import TrustList

    key, _ = seal_of(pki)
    good = TrustList([key.trust_entry(doc_types=("birth", "death"))]).to_json()
    read = TrustList.from_json(good).entries[0]
    assert read.kid == key.kid and read.doc_types == ("birth", "death")
    entry = good["keys"][0]
    early = (key.certificate.not_valid_before_utc - dt.timedelta(days=1)).isoformat()
    narrowed = (key.certificate.not_valid_after_utc - dt.timedelta(days=1)).isoformat()
    assert TrustList.from_json({**good, "keys": [{**entry, "signing_until": narrowed}]}
                               ).entries[0].not_after.isoformat() == narrowed
    # A key retired the moment it began: an empty window, still a window.
    instant = {**entry, "signing_until": entry["signing_from"]}
    assert TrustList.from_json({**good, "keys": [instant]}).entries[0].doc_types == (
        "birth", "death")
    window = f"trust list entry {entry['kid']!r}: its kid or window does not match"
    unreadable = "a trust list entry cannot be read"
    not_an_entry = f"{unreadable}: TypeError('an entry is an object with a list of doc_types')"
    stray = entry["certificate"][:40] + "!" + entry["certificate"][40:]
    for bad, says in (({**entry, "signing_from": early}, window),
                      ({**entry, "kid": "00" * 8}, "trust list entry '0000000000000000'"),
                      ({**entry, "signing_until": "2030-01-01T00:00:00"}, window),
                      ({**entry, "doc_types": [1]}, not_an_entry),
                      ([], not_an_entry),
                      ({**entry, "certificate": "***"}, unreadable),
                      ({**entry, "certificate": stray}, unreadable)):
        with pytest.raises(SigningError) as refusal:
            TrustList.from_json({**good, "keys": [bad]})
        assert refusal.value.code == "document_refused" and says in str(refusal.value), (
            str(refusal.value))
    for not_a_list in ({"version": 2, "keys": []}, {"version": 1}, []):
        with pytest.raises(SigningError) as refusal:
            TrustList.from_json(not_a_list)
        assert refusal.value.code == "document_refused"
        assert str(refusal.value) == "not a version 1 trust list"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_times_a_list_claims_are_checked(live: Live, keys_dir: Path) -> None:
    # The signer chooses iat and exp: a trust list past its exp, a list made "in the future",
    # one valid longer than the issuer ever makes them, are refused; and a list signed by a key
    # whose window has ended (retired) is refused whatever time it claims.
    runtime = live.runtime
    cert_id = approved(runtime)
    assert issue_certificate(runtime, cert_id)
    docs = _fetch(live)
    seal = runtime.keyring.seal_key
    chain = [seal.certificate, x509.load_pem_x509_certificate(
        (keys_dir / "ca.crt").read_bytes())]

    def payload_of(document: bytes) -> dict:
        return json.loads(base64.urlsafe_b64decode(json.loads(document)["payload"] + "==="))

    def resigned(document: bytes, typ: str, **changes: object) -> bytes:
        return json.dumps(sign_document({**payload_of(document), **changes}, typ=typ,
                                        key=seal.private_key, chain=chain)).encode()

    now = int(dt.datetime.now(dt.UTC).timestamp())
    qr = _qr(live, cert_id)
    trust_typ, status_typ = published.TRUST_LIST_TYPE, published.STATUS_LIST_TYPE
    cases = {
        "the trust list has expired": Published(
            resigned(docs.trust_list, trust_typ, iat=now - 40 * 86400, exp=now - 10 * 86400),
            docs.status_list),
        "trust list claims impossible times": Published(
            resigned(docs.trust_list, trust_typ, iat=now + 3600, exp=now + 7200),
            docs.status_list),
        "status list claims impossible times": Published(
            docs.trust_list,
            resigned(docs.status_list, status_typ, exp=now + 10 * 365 * 86400)),
    }
    for reason, documents in cases.items():
        verdict = _verdict(live, qr, documents, keys_dir)
        assert verdict["genuine"] is False and reason in verdict["reason"], verdict
    # The same seal key, its window ended (as a retired key's is) before now: refused, though
    # the list claims a time inside the window.
    trust = payload_of(docs.trust_list)
    start = seal.certificate.not_valid_before_utc
    ended = start + (dt.datetime.now(dt.UTC) - start) / 2
    trust["keys"] = [{**entry, "signing_until": ended.isoformat()} for entry in trust["keys"]]
    inside = int((start + (ended - start) / 2).timestamp())
    retired = json.dumps(sign_document({**trust, "iat": inside, "exp": inside + 86400},
                                       typ=trust_typ, key=seal.private_key,
                                       chain=chain)).encode()
    verdict = _verdict(live, qr, Published(retired, docs.status_list), keys_dir)
    assert verdict["genuine"] is False and (
        "the trust list is not signed by a listed seal key in its window" in verdict["reason"])
    assert _verdict(live, qr, docs, keys_dir)["current"] is True


def test_a_chain_of_one_certificate_is_read(pki: DevPki) -> None:
    # x5c may hold the signer alone when the verifier's anchor issued it directly.
    key, chain = seal_of(pki)
    document = sign_document({"a": 1}, typ="t+jws", key=key.private_key, chain=chain[:1])
    opened = open_document(json.dumps(document), typ="t+jws", roots=[chain[1]],
                           organisation=ORG)
    assert opened.payload == {"a": 1}
