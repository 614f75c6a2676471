"""The verify page's check of the published documents (templates/web/published.js, in Debian's
Chromium) against `pramaan verify --published` (issuer/offline_verify.py): the signed trust list
must chain to the page's roots and name the issuer, be current and be signed by a key it lists;
the status list likewise. Tampered, expired, foreign, retired-signer and stale documents, each
put to both. One difference by design: a status list the page cannot use leaves the seal genuine
with its status unknown (amber), where the command refuses the whole verdict."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from issuer import published
from issuer.db import as_utc
from issuer.models import Certificate
from issuer.offline_verify import Published, verify_with_published
from signing.devpki import DevPki
from signing.signed_json import sign_document
from tests.browser import browser, off_the_loop, page  # noqa: F401 - fixtures
from tests.conftest import Live, sample
from tests.test_published import ORG, _fetch, _qr, root_of, seal_of

if TYPE_CHECKING:
    from playwright.sync_api import Page

IN_BROWSER = """async ({link, trust, status, organisation, roots}) => {
    const {checkWithPublished, readRoots} = await import('/v/assets/published.js');
    const v = await checkWithPublished(link, {trust, status}, readRoots({organisation, roots}),
                                       Date.now());
    return {state: v.state, status: v.status ? v.status.status : null,
            why: v.why || v.reason || (v.status && v.status.reason) || null}; }"""


def der64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def payload_of(document: bytes) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(json.loads(document)["payload"] + "==="))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_page_and_the_command_agree_on_the_published_documents(
        live: Live, keys_dir: Path, pki: DevPki, page: Page) -> None:  # noqa: F811
    runtime = live.runtime
    made = live.post_json("/api/v1/certificates", sample("birth-1"))
    assert made.status_code == 202 and made.json()["state"] == "issued", made.text
    cert_id = made.json()["id"]
    docs = _fetch(live)
    qr = _qr(live, cert_id)
    seal = runtime.keyring.seal_key
    chain = [seal.certificate, x509.load_pem_x509_certificate((keys_dir / "ca.crt").read_bytes())]
    ours = x509.load_pem_x509_certificate((keys_dir / "root.crt").read_bytes())
    now = int(dt.datetime.now(dt.UTC).timestamp())

    def resigned(document: bytes, typ: str, key: Any = seal.private_key,
                 signer_chain: list[x509.Certificate] = chain, **changes: object) -> bytes:
        return json.dumps(sign_document({**payload_of(document), **changes}, typ=typ, key=key,
                                        chain=signer_chain)).encode()

    trust_typ, status_typ = published.TRUST_LIST_TYPE, published.STATUS_LIST_TYPE
    tampered = json.loads(docs.trust_list)
    tampered["payload"] = tampered["payload"][:-2] + ("A" if tampered["payload"][-2] != "A"
                                                      else "B") + tampered["payload"][-1]
    start = seal.certificate.not_valid_before_utc
    # Both inside the key's window (it began 5 minutes before the key was made).
    with runtime.sessions() as session:
        record = session.get(Certificate, cert_id)
        assert record is not None and record.issued_at is not None
        sealed_at = int(as_utc(record.issued_at).timestamp())  # the seal's iat
    ended = start + (dt.datetime.now(dt.UTC) - start) / 2
    retired_keys = [{**entry, "signing_until": ended.isoformat()}
                    for entry in payload_of(docs.trust_list)["keys"]]
    inside = int((start + (ended - start) / 2).timestamp())
    stranger, stranger_chain = seal_of(pki)
    window_start = int(start.timestamp())
    honest_keys = payload_of(docs.trust_list)["keys"]
    no_usage = _without_digital_signature(seal.certificate, keys_dir)
    misnamed, expired = _ca_again(keys_dir, issuer="Another Root"), _ca_again(keys_dir,
                                                                                expired=True)
    cases: dict[str, tuple[Published, list[x509.Certificate], str]] = {
        "honest": (docs, [ours], ORG),
        "trust list tampered": (Published(json.dumps(tampered).encode(), docs.status_list),
                                [ours], ORG),
        # Inside the key's window (which began minutes ago), so only its exp refuses it.
        "trust list expired": (Published(resigned(docs.trust_list, trust_typ,
                                                  iat=window_start + 1, exp=window_start + 2),
                                         docs.status_list), [ours], ORG),
        "the CA's certificate names another issuer": (Published(resigned(
            docs.trust_list, trust_typ, signer_chain=[chain[0], misnamed]), docs.status_list),
            [ours], ORG),
        "signed by a listed key not for signatures": (Published(resigned(
            docs.trust_list, trust_typ, keys=[entry_of(no_usage)],
            signer_chain=[no_usage, chain[1]]), docs.status_list), [ours], ORG),
        "lists a key not for signatures": (Published(resigned(
            docs.trust_list, trust_typ, keys=[*honest_keys, entry_of(no_usage)]),
            docs.status_list), [ours], ORG),
        "the CA's certificate expired": (Published(resigned(
            docs.trust_list, trust_typ, signer_chain=[chain[0], expired]), docs.status_list),
            [ours], ORG),
        "trust list from the future": (Published(resigned(docs.trust_list, trust_typ,
                                                          iat=now + 3600, exp=now + 7200),
                                                 docs.status_list), [ours], ORG),
        "trust list signed by a retired key": (Published(resigned(
            docs.trust_list, trust_typ, keys=retired_keys, iat=inside, exp=inside + 86400),
            docs.status_list), [ours], ORG),
        "another organisation expected": (docs, [ours], "Another Corporation"),
        "a stranger's root only": (docs, [root_of(pki)], ORG),
        "status list valid too long": (Published(docs.trust_list, resigned(
            docs.status_list, status_typ, exp=now + 10 * 365 * 86400)), [ours], ORG),
        "status list signed by an unlisted key": (Published(docs.trust_list, resigned(
            docs.status_list, status_typ, key=stranger.private_key,
            signer_chain=stranger_chain)), [ours, root_of(pki)], ORG),
        "status list older than the seal": (Published(docs.trust_list, resigned(
            docs.status_list, status_typ, iat=sealed_at - 1, exp=now + 3600)), [ours], ORG),
        "status list expired": (Published(docs.trust_list, resigned(
            docs.status_list, status_typ, iat=sealed_at - 1, exp=sealed_at)), [ours], ORG),
    }
    page.goto(f"{live.base}/v")
    seen: dict[str, tuple[Any, Any]] = {}
    for name, (documents, roots, organisation) in cases.items():
        command = off_the_loop(lambda d=documents, r=roots, o=organisation: verify_with_published(
            qr, d, roots=r, organisation=o))
        browser_says = page.evaluate(IN_BROWSER, {
            "link": qr, "trust": documents.trust_list.decode(),
            "status": documents.status_list.decode(), "organisation": organisation,
            "roots": [der64(root) for root in roots]})
        seen[name] = (command["genuine"], command["status"], browser_says)
    expected = {
        "honest": (True, "current", "genuine", "current"),
        "trust list tampered": (False, "invalid", "unavailable", None),
        "the CA's certificate names another issuer": (False, "invalid", "unavailable", None),
        "the CA's certificate expired": (False, "invalid", "unavailable", None),
        "signed by a listed key not for signatures": (False, "invalid", "unavailable", None),
        "lists a key not for signatures": (False, "invalid", "unavailable", None),
        "trust list expired": (False, "invalid", "unavailable", None),
        "trust list from the future": (False, "invalid", "unavailable", None),
        "trust list signed by a retired key": (False, "invalid", "unavailable", None),
        "another organisation expected": (False, "invalid", "unavailable", None),
        "a stranger's root only": (False, "invalid", "unavailable", None),
        # By design: the seal is genuine; only its status cannot be told.
        "status list valid too long": (False, "invalid", "genuine", "unknown"),
        "status list signed by an unlisted key": (False, "invalid", "genuine", "unknown"),
        "status list older than the seal": (True, "unknown", "genuine", "unknown"),
        "status list expired": (True, "unknown", "genuine", "unknown"),
    }
    got = {name: (genuine, status, b["state"], b["status"])
           for name, (genuine, status, b) in seen.items()}
    assert got == expected, {n: seen[n] for n in got if got[n] != expected[n]}
    assert "older than this certificate" in seen["status list older than the seal"][2]["why"]
    assert "expired" in seen["status list expired"][2]["why"]


def _ca_again(keys_dir: Path, *, issuer: str | None = None,
              expired: bool = False) -> x509.Certificate:
    """Our CA's certificate signed again by our root's key, naming another issuer or expired
    yesterday: the signature is the root's, the names or the dates do not hold."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate((keys_dir / "ca.crt").read_bytes())
    root_key = serialization.load_pem_private_key((keys_dir / "root.key").read_bytes(), None)
    named = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]) if issuer else ca.issuer
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(ca.subject).issuer_name(named)
               .public_key(ca.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(ca.not_valid_before_utc if not expired
                                 else yesterday - dt.timedelta(days=1))
               .not_valid_after(yesterday if expired else ca.not_valid_after_utc))
    for extension in ca.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(root_key, hashes.SHA256())  # type: ignore[arg-type]


def _without_digital_signature(seal: x509.Certificate, keys_dir: Path) -> x509.Certificate:
    """The seal key in a certificate our CA issued for key agreement only."""
    from cryptography.hazmat.primitives import hashes

    ca = x509.load_pem_x509_certificate((keys_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((keys_dir / "ca.key").read_bytes(), None)
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=True,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    return (x509.CertificateBuilder().subject_name(seal.subject).issuer_name(ca.subject)
            .public_key(seal.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(seal.not_valid_before_utc)
            .not_valid_after(seal.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(usage, True)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]


def entry_of(cert: x509.Certificate) -> dict[str, Any]:
    """A trust list entry for `cert`, as the issuer writes one (signing/trust_list.py)."""
    from signing.trust_list import kid_for

    der = cert.public_bytes(serialization.Encoding.DER)
    return {"kid": kid_for(der).hex(), "alg": "ES256", "certificate": der64(cert),
            "signing_from": cert.not_valid_before_utc.isoformat(),
            "signing_until": cert.not_valid_after_utc.isoformat(), "doc_types": []}
