"""RFC 3161 timestamps: the client that signing uses (PAdES B-T) and the development TSA.

`StrictTimeStamper` is the HTTP client: every way a TSA can fail (down, an HTTP error,
garbage, a refusal, a token for another digest) is one `TimestampRequestError`, which signing
turns into `TsaUnavailable`; pyHanko's own clients let garbage through as a bare ValueError and
write a token for the wrong digest into the PDF without a word
(docs/long-term-signatures-spike.md, Q8).

`DevTimeStampAuthority` answers timestamp requests with tokens signed by the development TSA
key (`keys/tsa.key`, made by signing.devpki), loaded once. Tests serve it over HTTP on
127.0.0.1 (`tsa_wsgi_app`); `InProcessTimeStamper` hands it requests without a network.
Production points PRAMAAN_TSA_URL at a licensed TSA instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import urllib3
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.path import ValidationPath

from signing.errors import BadKeyUsage, ServiceUnavailable, SigningError
from signing.file_backend import (
    load_pem_certificate,
    load_pem_certificates,
    require_key_matches,
    to_asn1_certificate,
)
from signing.kept_paths import KeptPaths
from signing.key_files import load_pem_private_key

QUERY_TYPE: Final = "application/timestamp-query"
REPLY_TYPE: Final = "application/timestamp-reply"
# The development TSA's policy: under ITU-T's example arc (2.999), so no real policy is claimed.
DEV_POLICY: Final = "2.999.1"
_MAX_QUERY: Final = 4096
_MAX_REPLY: Final = 65536
_DIGESTS: Final = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                   "sha512": hashes.SHA512()}


class TsaUnavailable(ServiceUnavailable):
    """No usable timestamp came back from the TSA; the document was not signed."""

    code = "tsa_unavailable"


class _KeptPathsTimeStamper(TimeStamper):
    """A timestamper whose TSA chain, validated with a validation context (B-LT, B-LTA: before
    the signature, and again before the document timestamp), is kept with that context
    (signing/kept_paths.py)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._kept_paths = KeptPaths()

    async def validation_paths(
            self, validation_context: ValidationContext) -> AsyncIterator[ValidationPath]:
        found = super().validation_paths  # pyHanko's: validates every TSA certificate

        async def validate() -> list[ValidationPath]:
            return [path async for path in found(validation_context)]  # type: ignore[no-untyped-call]

        for path in await self._kept_paths.paths(validation_context, "tsa", validate):
            yield path


class StrictTimeStamper(_KeptPathsTimeStamper):
    """An RFC 3161 client over HTTP with kept-alive connections (urllib3's pool: a new
    connection per request, as pyHanko's own clients make, cost 30 ms of a 40 ms B-T signature
    on loopback), every failure a `TimestampRequestError`, and the token checked to be for the
    digest that was sent."""

    # equivalent: 11 s; the default is the tests' (keyring and tsa_probe pass their own)
    def __init__(self, url: str, *, timeout: float = 10) -> None:  # equivalent: a default
        super().__init__()
        self.url = url
        self._timeout = urllib3.Timeout(total=timeout)
        self._pool = urllib3.PoolManager(
            # Worker threads share the client: up to 8 at once keep their connections.
            maxsize=8,  # equivalent: 9 (only a ninth connection kept: speed only)
            # Nothing asked again at once (the job retries, with backoff), and a redirect is an
            # answer to refuse, not followed: the configured TSA is the one asked.
            retries=False)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            answer = self._pool.request(
                "POST",  # equivalent: "post" (urllib3 upper-cases the method)
                self.url, body=req.dump(),
                headers={"Content-Type": QUERY_TYPE},  # equivalent: names ignore case
                timeout=self._timeout,
                preload_content=False)  # equivalent: None (urllib3 tests it for truth)
            try:
                body = answer.read(_MAX_REPLY + 1)  # equivalent: + 2 (a test measures memory)
                # equivalent: >=; a reply of exactly 64 KiB is read whole, and urllib3 has
                # already put its connection back in the pool (close() no longer reaches it).
                if len(body) > _MAX_REPLY:  # equivalent: >=
                    answer.close()  # the rest is never read: the connection goes with it
            finally:
                answer.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TimestampRequestError(f"cannot reach the TSA at {self.url}: {exc}") from exc
        kind = (answer.headers.get("Content-Type") or "").split(";")[0].strip()  # equivalent: case
        if answer.status != 200 or kind != REPLY_TYPE or len(body) > _MAX_REPLY:
            raise TimestampRequestError(
                f"the TSA at {self.url} answered HTTP {answer.status}, {kind or 'no type'}, "
                f"{len(body)} bytes: not a timestamp reply")
        return tsp.TimeStampResp.load(body)

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        return await _checked(super().async_timestamp(message_digest, md_algorithm),
                              message_digest, md_algorithm)


class InProcessTimeStamper(_KeptPathsTimeStamper):
    """A pyHanko timestamper that asks `authority` directly, without HTTP, with the same
    checks as `StrictTimeStamper`."""

    def __init__(self, authority: DevTimeStampAuthority, *, delay: float = 0.0) -> None:
        """`delay` seconds before each answer: what a distant TSA's round trip costs
        (PRAMAAN_DEV_TSA_DELAY_MS, to see how it paces issuing; `make bench-overlap`)."""
        super().__init__()
        self._authority = authority
        self._delay = delay

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        if self._delay:
            time.sleep(self._delay)  # as the HTTP client's blocking request would wait
        return self._authority.respond(req)

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        return await _checked(super().async_timestamp(message_digest, md_algorithm),
                              message_digest, md_algorithm)


async def _checked(asked: Awaitable[cms.ContentInfo], message_digest: bytes,
                   md_algorithm: str) -> cms.ContentInfo:
    try:
        token = await asked
        imprint = _tst_info(token)["message_imprint"]
        same = (imprint["hashed_message"].native == message_digest
                and imprint["hash_algorithm"]["algorithm"].native == md_algorithm)
    except TimestampRequestError:
        raise
    except (ValueError, KeyError, TypeError) as exc:  # asn1crypto on a garbled answer
        raise TimestampRequestError(f"the TSA's answer is malformed: {exc}") from exc
    if not same:
        raise TimestampRequestError("the TSA's token is for a different message digest")
    return token


def _tst_info(token: cms.ContentInfo) -> Any:
    return token["content"]["encap_content_info"]["content"].parsed


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DevTimeStampAuthority:
    """Signs RFC 3161 tokens with the development TSA's key (RSA, SHA-256).

    Times are whole seconds in UTC: poppler's pdfsig reports "Unknown issue" for a token time
    with microseconds. Every token embeds the TSA's certificate and its CA's, so a verifier
    needs only the root.
    """

    def __init__(self, key: rsa.RSAPrivateKey, cert: x509.Certificate,
                 chain: Iterable[x509.Certificate] = (),
                 clock: Callable[[], dt.datetime] = _now) -> None:
        require_key_matches(key, cert, "TSA key")
        _require_time_stamping(cert)
        self._key = key
        self._cert = to_asn1_certificate(cert)
        self._certs = [self._cert, *(to_asn1_certificate(c) for c in chain)]
        self._clock = clock
        # Encoded once: asn1crypto takes 1.3 ms to encode this attribute, a third of a token.
        self._signing_certificate_der = _attribute(
            "signing_certificate_v2", tsp.SigningCertificateV2({"certs": [{
                "hash_algorithm": {"algorithm": "sha256"},
                "cert_hash": hashlib.sha256(self._cert.dump()).digest(),
            }]})).dump()
        # The parts every token repeats, encoded once: asn1crypto re-encodes a parsed value it
        # has looked into each time it is dumped again (9 ms a token, mostly certificates), and
        # decodes a freshly loaded one lazily, so each token loads these afresh.
        self._certs_der = cms.CertificateSet(
            [cms.CertificateChoices(name="certificate", value=c) for c in self._certs],
            implicit=0).dump()  # tagged as SignedData holds it: never retagged (copied)
        self._tsa_name_der = asn1_x509.GeneralName(
            name="directory_name", value=self._cert.subject).dump()
        self._sid_der = cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": self._cert.issuer, "serial_number": self._cert.serial_number})}).dump()

    @classmethod
    def load(cls, key_path: Path, cert_path: Path, chain_paths: Sequence[Path] = (),
             clock: Callable[[], dt.datetime] = _now) -> DevTimeStampAuthority:
        """The authority of key and certificate files (signing.devpki's tsa.key, tsa.crt and
        tsa-ca.crt); refuses a key that is not RSA or a certificate not for time stamping."""
        key = load_pem_private_key(key_path, "TSA key")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningError(f"the TSA key {key_path} is not an RSA key", code="unsupported_key")
        chain = [c for path in chain_paths for c in load_pem_certificates(path, "TSA chain")]
        return cls(key, load_pem_certificate(cert_path, "TSA certificate"), chain, clock)

    def respond(self, request: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """A token for `request`, or a refusal (badAlg) for a digest algorithm we do not
        take, or a digest of the wrong length."""
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        digest = imprint["hashed_message"].native
        hash_type = _DIGESTS.get(algorithm)
        if hash_type is None or len(digest) != hash_type.digest_size:
            return refusal("bad_alg", f"unsupported message imprint ({algorithm})")
        moment = self._clock().astimezone(dt.UTC).replace(microsecond=0)
        info: dict[str, Any] = {
            "version": "v1",
            "policy": DEV_POLICY,
            "message_imprint": imprint,
            "serial_number": int.from_bytes(os.urandom(16), "big") >> 1,
            "gen_time": moment,
            "tsa": asn1_x509.GeneralName.load(self._tsa_name_der),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"]
        content = tsp.TSTInfo(info).dump()
        signed_attrs = cms.CMSAttributes([
            _attribute("content_type", "tst_info"),
            _attribute("signing_time", cms.Time({"utc_time": core.UTCTime(moment)})),
            cms.CMSAttribute.load(self._signing_certificate_der),
            _attribute("message_digest", hashlib.sha256(content).digest()),
        ]).dump()
        signature = self._key.sign(signed_attrs, padding.PKCS1v15(), hashes.SHA256())
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier.load(self._sid_der),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signature_algorithm": algos.SignedDigestAlgorithm(
                {"algorithm": "sha256_rsa"}),
            "signed_attrs": cms.CMSAttributes.load(signed_attrs),  # as signed, not re-encoded
            "signature": signature,
        })
        signed_data = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info",
                                   "content": cms.ParsableOctetString(content)},
            "certificates": cms.CertificateSet.load(self._certs_der, implicit=0),
            "signer_infos": [signer],
        })
        # Each wrapper takes the part below as freshly loaded DER: one it had to copy would be
        # re-encoded whole, certificates included.
        token = cms.ContentInfo({"content_type": "signed_data",
                                 "content": cms.SignedData.load(signed_data.dump())})
        return tsp.TimeStampResp({"status": {"status": "granted"},
                                  "time_stamp_token": cms.ContentInfo.load(token.dump())})

    def respond_der(self, body: bytes) -> bytes:
        """The DER answer to a DER request (what travels over HTTP); a request that cannot be
        read is refused (badDataFormat), never an exception."""
        try:
            request = tsp.TimeStampReq.load(body, strict=True)
            request.native  # noqa: B018  (parses every field now, so damage shows here)
        except (ValueError, TypeError, KeyError) as exc:
            answer: bytes = refusal("bad_data_format", f"unreadable request: {exc}").dump()
            return answer
        answer = self.respond(request).dump()
        return answer


class _Refusal(tsp.TimeStampResp):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 3161's TimeStampResp with its token optional, as the RFC has it (asn1crypto's
    declares it mandatory, so it will neither encode nor read a refusal)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def refusal(fail_info: str, text: str) -> tsp.TimeStampResp:
    """A TimeStampResp refusing the request, with no token. (It was once written by hand
    around the encoded status; asn1crypto then took a length ending in 0x80, as for a status
    of 128 bytes, for the indefinite form and failed to encode it.)"""
    return _Refusal({"status": {
        "status": "rejection",
        "status_string": [text],
        "fail_info": tsp.PKIFailureInfo({fail_info}),
    }})


def _attribute(kind: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": [value]})


def _require_time_stamping(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.critical or list(usage.value) != [
            x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]:
        raise BadKeyUsage("the TSA certificate must have exactly one extended key usage, "
                          "timeStamping, marked critical (RFC 3161 section 2.3)")


def tsa_wsgi_app(authority: DevTimeStampAuthority) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering RFC 3161 requests over HTTP (POST, application/
    timestamp-query) with `authority`; what tests serve on 127.0.0.1."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Allow", "POST"),
                                                      ("Content-Length", "0")])
            return [b""]
        content_type = environ.get("CONTENT_TYPE", "")  # equivalent: "XXXX" (refused alike)
        if content_type.split(";")[0].strip() != QUERY_TYPE:
            start_response("415 Unsupported Media Type", [("Content-Length", "0")])
            return [b""]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1  # equivalent: 0, refused alike
        if not 0 < length <= _MAX_QUERY:
            start_response("413 Content Too Large", [("Content-Length", "0")])
            return [b""]
        answer = authority.respond_der(environ["wsgi.input"].read(length))
        start_response("200 OK", [("Content-Type", REPLY_TYPE),
                                  ("Content-Length", str(len(answer)))])
        return [answer]

    return app
