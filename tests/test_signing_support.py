"""Helpers shared by the tests/test_signing_*.py modules (no tests here).

Real PDFs and real certificates only: a typst-rendered bilingual page, a hand-written minimal PDF
without a document information dictionary, and certificates issued by the dev CA.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import typst
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from signing.devpki import DevPki
from signing.sample_pdf import minimal_pdf  # noqa: F401 - used from here by the tests

FONTS_DIR = Path(__file__).resolve().parent.parent / "templates" / "fonts"

TYPST_SOURCE = """
#set page(paper: "a4", margin: 2cm)
#set text(font: ("Noto Sans", "Noto Sans Devanagari"), size: 11pt)
= Birth Certificate / जन्म प्रमाणपत्र
Name / नाव: Aishwarya Deshpande / ऐश्वर्या देशपांडे \\
Date of birth / जन्म दिनांक: 2025-11-20 \\
Pune Municipal Corporation / पुणे महानगरपालिका
"""


def typst_pdf() -> bytes:
    """A small real bilingual PDF (typst output: object streams, XMP, an indirect /Info)."""
    # typst's stub ties the source and the font paths to one type variable; bytes source with
    # str font paths is what its runtime accepts.
    pdf = typst.compile(  # type: ignore[misc]
        TYPST_SOURCE.encode(), font_paths=[str(FONTS_DIR)], ignore_system_fonts=True
    )
    assert isinstance(pdf, bytes)
    return pdf




def issue_end_entity(
    pki: DevPki,
    directory: Path,
    *,
    name: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    digital_signature: bool = True,
    non_repudiation: bool = True,
    ca: bool = False,
    expired: bool = False,
) -> tuple[Path, Path]:
    """Issue a certificate for `key` from the dev intermediate CA (valid for 30 days, or, if
    `expired`, until yesterday); return (key path, cert path)."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "IN"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30 if expired else 0, minutes=5))
        .not_valid_after(now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"{name}.key"
    cert_path = directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def pdfsig_report(pdf_path: Path, root_cert: Path, nss_dir: Path) -> str:
    """Run poppler's pdfsig with an NSS database that trusts only `root_cert`."""
    certutil = shutil.which("certutil")
    pdfsig = shutil.which("pdfsig")
    assert certutil and pdfsig, "poppler-utils and libnss3-tools are required"
    nss_dir.mkdir(parents=True, exist_ok=True)
    database = f"sql:{nss_dir}"
    subprocess.run([certutil, "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-A", "-n", "root", "-t", "CT,C,C", "-a", "-i", str(root_cert), "-d", database],
        check=True,
    )
    done = subprocess.run(
        [pdfsig, "-nssdir", database, str(pdf_path)], capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr
