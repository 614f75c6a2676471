"""Validation paths kept with the validation context (signing/kept_paths.py): a long-term signer
validates the signer's chain and the TSA's once per context, not for every document (three
times a document before), and still validates afresh with a new context, once a kept path's
first certificate has expired, and after a failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.path import ValidationPath

from signing.backend import load_backend
from signing.config import SignerConfig
from signing.devpki import DevPki
from signing.kept_paths import KeptPaths, expiry
from signing.pades import PadesSigner
from signing.revocation import DevRevocationAuthority, ReusedContext
from signing.sample_pdf import minimal_pdf
from signing.timestamps import DevTimeStampAuthority, InProcessTimeStamper
from signing.validate import validate_pdf
from tests.test_long_term import cert, dev_config, fresh

SIGNER_USAGE = {"digital_signature", "non_repudiation"}


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every chain pyHanko validates from now on, by the common name of its certificate (the
    validation itself runs as ever)."""
    seen: Counter[str] = Counter()
    validate = CertificateValidator.async_validate_usage

    async def counted(self: CertificateValidator, *args: Any, **kwargs: Any) -> Any:
        seen[self._certificate.subject.native["common_name"]] += 1
        return await validate(self, *args, **kwargs)

    monkeypatch.setattr(CertificateValidator, "async_validate_usage", counted)
    return seen


def context_of(pki: DevPki, source: DevRevocationAuthority) -> ValidationContext:
    return source.validation_context(
        [cert(pki.root_cert)], [cert(pki.ca_cert), cert(pki.tsa_ca_cert), cert(pki.tsa_cert),
                                cert(pki.signer_cert)])


@pytest.fixture
def lta_signer(pki: DevPki) -> Iterator[tuple[PadesSigner, ReusedContext]]:
    config: SignerConfig = dev_config(pki.keys_dir)
    backend = load_backend(config)
    authority = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])
    source = fresh(pki)
    context = ReusedContext(lambda: context_of(pki, source))
    yield PadesSigner(backend, bytes_reserved=config.bytes_reserved,
                      timestamper=InProcessTimeStamper(authority), revocation=context,
                      archival=True), context
    close = getattr(backend, "close", None)
    if close is not None:
        close()


def test_a_long_term_signer_validates_each_chain_once_per_context(
        lta_signer: tuple[PadesSigner, ReusedContext], validations: Counter[str],
        pki: DevPki) -> None:
    signer, context = lta_signer
    signed = [signer.sign(minimal_pdf(), reason="r", location="Pune") for _ in range(3)]
    assert validations == {"Pramaan Dev Document Signer": 1,
                           "Pramaan Dev Time Stamping Authority": 1}
    for pdf in signed:  # the same validation data in each: every one holds
        report = validate_pdf(pdf, [pki.root_cert])
        assert report.ok and report.level == "B-LTA"
    context.forget()  # a new context (as after a failure, or five minutes on): validated anew
    signer.sign(minimal_pdf(), reason="r", location="Pune")
    assert validations == {"Pramaan Dev Document Signer": 2,
                           "Pramaan Dev Time Stamping Authority": 2}


def signer_path(context: ValidationContext, pki: DevPki) -> ValidationPath:
    from signing.file_backend import to_asn1_certificate

    validator = CertificateValidator(to_asn1_certificate(cert(pki.signer_cert)),
                                     intermediate_certs=[to_asn1_certificate(cert(pki.ca_cert))],
                                     validation_context=context)
    return asyncio.run(validator.async_validate_usage(SIGNER_USAGE))


def test_a_kept_path_serves_its_context_until_a_certificate_of_it_expires(
        pki: DevPki) -> None:
    context = context_of(pki, fresh(pki))
    path = signer_path(context, pki)
    ends = expiry([path])
    # The first to expire of the path's certificates: here the signer's own.
    assert ends == min(c.not_valid_after_utc for c in (
        cert(pki.signer_cert), cert(pki.ca_cert), cert(pki.root_cert)))
    assert expiry([]) == dt.datetime.max.replace(tzinfo=dt.UTC)
    clock = [ends - dt.timedelta(seconds=1)]
    kept = KeptPaths(clock=lambda: clock[0])
    calls: list[int] = []

    async def validate() -> list[ValidationPath]:
        calls.append(1)
        return [path]

    def ask(on: ValidationContext, key: str = "signer") -> list[ValidationPath]:
        return asyncio.run(kept.paths(on, key, validate))

    assert ask(context) == [path] and len(calls) == 1
    assert ask(context) == [path] and len(calls) == 1  # kept
    assert ask(context, "tsa") == [path] and len(calls) == 2  # another key: its own
    other = context_of(pki, fresh(pki))
    assert ask(other) == [path] and len(calls) == 3  # another context: its own
    clock[0] = ends  # the signer's certificate has expired: validated again
    assert ask(context) == [path] and len(calls) == 4
    assert len(kept) == 2
    del other
    gc.collect()
    assert len(kept) == 1  # a context no longer used takes its paths with it


def test_a_failed_validation_is_not_kept(pki: DevPki) -> None:
    context = context_of(pki, fresh(pki))
    kept = KeptPaths()
    tries: list[int] = []

    async def refuse() -> list[ValidationPath]:
        tries.append(1)
        raise ValueError("revoked")

    for _ in range(2):
        with pytest.raises(ValueError, match="revoked"):
            asyncio.run(kept.paths(context, "signer", refuse))
    assert len(tries) == 2


def test_a_signer_revoked_in_a_new_context_is_refused_despite_a_kept_path(
        pki: DevPki, lta_signer: tuple[PadesSigner, ReusedContext]) -> None:
    from signing.errors import SigningError
    from tests.test_long_term import revoking

    signer, context = lta_signer
    signer.sign(minimal_pdf(), reason="r", location="Pune")  # a path kept with this context
    revoked = revoking(pki, cert(pki.signer_cert), dt.timedelta(hours=1))
    context._make = lambda: context_of(pki, revoked)  # type: ignore[method-assign]
    context.forget()
    with pytest.raises(SigningError) as refused:
        signer.sign(minimal_pdf(), reason="r", location="Pune")
    assert refused.value.code == "signer_unvalidated"


def test_a_path_expires_with_its_root_when_the_root_expires_first(pki: DevPki) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from pyhanko_certvalidator.authority import CertTrustAnchor

    from signing.file_backend import to_asn1_certificate

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Short-lived root")])
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    leaf = to_asn1_certificate(cert(pki.signer_cert))  # valid for years
    path = ValidationPath(CertTrustAnchor(to_asn1_certificate(root)), [], leaf)
    assert expiry([path]) == start + dt.timedelta(days=1)


def test_pyhankos_notice_of_an_offline_context_is_not_logged_per_document(
        lta_signer: tuple[PadesSigner, ReusedContext], caplog: pytest.LogCaptureFixture) -> None:
    signer, _ = lta_signer
    with caplog.at_level(logging.INFO):
        signer.sign(minimal_pdf(), reason="r", location="Pune")
        logging.getLogger("pyhanko.sign.signers.pdf_signer").warning("another warning")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pyhanko")] == [
        "another warning"]
