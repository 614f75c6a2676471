"""The verdict document that `/api/v1/verify`, the `/v` page and `pramaan verify` show: every check
with its name, a boolean `ok` and its reason, and what the seal says about the certificate,
exactly. Seals and PDFs made in process with our own keys, claims chosen to fail one check each."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from issuer import migrate
from issuer.runtime import Runtime
from issuer.verify import verify_pdf, verify_qr
from signing.seal import PRIVATE_CLAIM
from tests.conftest import make_settings
from tests.test_signing_support import minimal_pdf

CERT_ID = uuid.UUID("5b0c6f4e-8a8e-4a51-9a38-3f1f2f6f0c11")


@pytest.fixture
def runtime(tmp_path: Path, sqlite_url: str, keys_dir: Path) -> Iterator[Runtime]:
    runtime = Runtime(make_settings(tmp_path, sqlite_url, keys_dir))
    migrate.upgrade(runtime.engine)
    yield runtime
    runtime.close()


def claims(runtime: Runtime, **ours: Any) -> dict[int, Any]:
    fields = {"id": CERT_ID.bytes, "t": "birth", "n": {"en": "Aarav Kulkarni"},
              "d": {"birth": "2026-01-15"}, "r": "R-1", "no": "PMC/B/2026/000001", "w": "W-14",
              "si": 7, "h": b"\x01" * 32}
    fields.update(ours)
    return {1: runtime.settings.issuer_id, 6: int(time.time()), PRIVATE_CLAIM: fields}


def check(name: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
    return {"name": name, "ok": ok, "reason": reason}


def not_genuine(reason: str, checks: list[dict[str, Any]],
                certificate: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"genuine": False, "status": "invalid", "current": False, "reason": reason,
            "checks": checks, "certificate": certificate}


def test_a_foreign_link_to_a_broken_seal_lists_both_failed_checks(runtime: Runtime) -> None:
    verdict = verify_qr(runtime, "https://pmc-verify.example.net/v#0123").as_dict()

    assert verdict == not_genuine("link: foreign_link", [check("link", False, "foreign_link"),
                                                         check("seal", False, "malformed")])


def test_a_seal_of_another_issuer(runtime: Runtime) -> None:
    sealed = claims(runtime)
    sealed[1] = "in.gov.pcmc"
    verdict = verify_qr(runtime, runtime.keyring.sealer.seal(sealed)).as_dict()

    assert verdict == not_genuine("issuer: foreign_issuer", [
        check("link", True), check("seal", True), check("issuer", False, "foreign_issuer")])


def test_a_seal_without_a_certificate_id(runtime: Runtime) -> None:
    sealed = claims(runtime)
    del sealed[PRIVATE_CLAIM]["id"], sealed[PRIVATE_CLAIM]["no"]
    verdict = verify_qr(runtime, runtime.keyring.sealer.seal(sealed)).as_dict()

    assert verdict == not_genuine("claims: no_certificate_id", [
        check("link", True), check("seal", True), check("claims", False, "no_certificate_id")])


def test_a_seal_of_a_certificate_we_never_recorded_shows_what_it_claims(
    runtime: Runtime,
) -> None:
    sealed = claims(runtime)
    text = runtime.keyring.sealer.seal(sealed)
    verdict = verify_qr(runtime, text).as_dict()

    assert verdict == not_genuine(
        "record: unknown_certificate",
        [check("link", True), check("seal", True), check("record", False, "unknown_certificate")],
        {"id": str(CERT_ID), "type": "birth", "number": "PMC/B/2026/000001",
         "holder": {"en": "Aarav Kulkarni"}, "dates": {"birth": "2026-01-15"},
         "registration_number": "R-1", "ward": "W-14", "issuer": runtime.settings.issuer_id,
         "issued_at": sealed[6], "seal_kid": runtime.keyring.sealer.kid.hex()},
    )


@pytest.mark.parametrize("info", [None, {"PramaanSeal": ""}, {"PramaanOther": "x"}])
def test_a_signed_pdf_without_a_seal(runtime: Runtime, info: dict[str, str] | None) -> None:
    pdf = runtime.keyring.pades.sign(minimal_pdf(), reason="r", location="Pune", info=info)

    assert verify_pdf(runtime, pdf).as_dict() == not_genuine(
        "seal: missing", [check("pdf_signature", True), check("seal", False, "missing")])
