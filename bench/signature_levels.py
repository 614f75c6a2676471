"""`make bench`, signature levels: what a timestamp costs (PAdES B-T against B-B), our signer
beside pyHanko's stock SimpleSigner on the same PDFs, and issuing end to end at B-T against B-B,
and the dev signer's key in a SoftHSM2 token (PKCS#11) beside the same key in a file, in one
run, round-robin (ratios hold; absolute times drift on shared machines).

The TSA is the development one, served over HTTP on 127.0.0.1 (werkzeug, threaded) from this
process, so a timestamp costs one loopback round trip plus the TSA's RSA signature. B-LT and
B-LT and B-LTA sign with the development TSA in process and the dev CAs' CRLs made in process
(what `make run` does), beside pyHanko's stock signer given the same TSA and revocation
information."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402
from pyhanko.sign.timestamps import HTTPTimeStamper  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench.pipeline import request  # noqa: E402
from issuer.bootstrap import DEV_DEPARTMENT, initialise  # noqa: E402
from issuer.issue import Intent, issue_certificate, render_data  # noqa: E402
from issuer.models import Certificate, Department  # noqa: E402
from issuer.runtime import Runtime  # noqa: E402
from issuer.settings import Settings  # noqa: E402
from issuer.submit import submit  # noqa: E402
from signing.backend import load_backend  # noqa: E402
from signing.config import SignerConfig  # noqa: E402
from signing.devpki import DevPki  # noqa: E402
from signing.pades import PadesSigner  # noqa: E402
from signing.qr import qr_svg  # noqa: E402
from signing.timestamps import DevTimeStampAuthority, tsa_wsgi_app  # noqa: E402


def serve_tsa(keys: Path) -> tuple[str, Callable[[], None]]:
    pki = DevPki.at(keys)
    authority = DevTimeStampAuthority.load(pki.tsa_key, pki.tsa_cert, [pki.tsa_ca_cert])
    server = make_server("127.0.0.1", 0, tsa_wsgi_app(authority), threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per timestamp
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}/tsa", stop


def softhsm_signer(keys: Path, tmp: Path) -> Callable[[bytes], bytes] | None:
    """Our PAdES signer with the dev signer key in a SoftHSM2 token, if SoftHSM2 is here."""
    module = "/usr/lib/softhsm/libsofthsm2.so"
    tool = shutil.which("softhsm2-util")
    if tool is None or not Path(module).exists():
        return None
    (tmp / "tokens").mkdir()
    (tmp / "softhsm2.conf").write_text(f"directories.tokendir = {tmp / 'tokens'}\n")
    os.environ["SOFTHSM2_CONF"] = str(tmp / "softhsm2.conf")
    os.environ["PRAMAAN_PKCS11_PIN"] = "2468"
    for args in (("--init-token", "--free", "--label", "pramaan", "--pin", "2468",
                  "--so-pin", "1357"),
                 ("--import", str(keys / "signer.key"), "--token", "pramaan", "--label",
                  "signer", "--id", "01", "--pin", "2468")):
        subprocess.run([tool, *args], check=True, capture_output=True)
    config = dataclasses.replace(SignerConfig.from_keys_dir(keys), backend="pkcs11",
                                 pkcs11_module=module)
    signer = PadesSigner(load_backend(config))
    return lambda pdf: signer.sign(pdf, reason="bench", location="Pune")


def runtime_at(home: Path, keys: Path, tsa_url: str | None) -> Runtime:
    env = {"PRAMAAN_HOME": str(home), "PRAMAAN_KEYS_DIR": str(keys),
           "PRAMAAN_TSA_URL": tsa_url or "none"}
    runtime = Runtime(Settings.from_env(env=env))
    initialise(runtime)
    runtime.keyring  # noqa: B018 - keys and typst loaded before timing
    runtime.renderer  # noqa: B018
    return runtime


def issue_one(runtime: Runtime, i: int) -> tuple[float, str]:
    start = time.perf_counter()
    with runtime.sessions() as session, session.begin():
        department = session.get(Department, DEV_DEPARTMENT)
        assert department is not None
        cert_id = submit(session, department, "bench", request(i)).id
    assert issue_certificate(runtime, cert_id)
    return time.perf_counter() - start, cert_id


def unsigned_pdfs(runtime: Runtime, ids: list[str]) -> list[bytes]:
    pdfs = []
    with runtime.sessions() as session:
        for cert_id in ids:
            record = session.get(Certificate, cert_id)
            assert record is not None
            intent = Intent.of(record)
            pdfs.append(runtime.renderer.render(intent.template_version,
                                                render_data(runtime.settings, intent),
                                                qr_svg(intent.seal_text)))
    return pdfs


def stock(keys: Path, timestamper: Any) -> Callable[[bytes], bytes]:
    signer = signers.SimpleSigner.load(str(keys / "signer.key"), str(keys / "signer.crt"),
                                       ca_chain_files=(str(keys / "ca.crt"),))
    assert signer is not None
    meta = signers.PdfSignatureMetadata(field_name="Stock",
                                        subfilter=fields.SigSeedSubFilter.PADES)

    def sign(pdf: bytes) -> bytes:
        out = io.BytesIO()
        signers.PdfSigner(meta, signer=signer, timestamper=timestamper).sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out)
        return out.getvalue()

    return sign


def stock_long_term(keys: Path, runtime: Runtime) -> Callable[[bytes], bytes]:
    from cryptography import x509
    from pyhanko.sign.fields import SigSeedSubFilter

    from signing.keyring import revocation_of

    signer = signers.SimpleSigner.load(str(keys / "signer.key"), str(keys / "signer.crt"),
                                       ca_chain_files=(str(keys / "ca.crt"),))
    assert signer is not None
    timestamper = runtime.keyring.pades_at("B-LTA")._timestamper
    source = revocation_of(dataclasses.replace(SignerConfig.from_keys_dir(keys), dev_tsa=True))
    assert source is not None

    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((keys / name).read_bytes())

    roots = [cert("root.crt")]
    others = [cert("ca.crt"), cert("tsa-ca.crt"), cert("tsa.crt")]

    def sign(pdf: bytes) -> bytes:
        meta = signers.PdfSignatureMetadata(
            field_name="Stock", subfilter=SigSeedSubFilter.PADES, embed_validation_info=True,
            use_pades_lta=True, validation_context=source.validation_context(roots, others))
        out = io.BytesIO()
        signers.PdfSigner(meta, signer=signer, timestamper=timestamper).sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out)
        return out.getvalue()

    return sign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=40, help="certificates per level")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pramaan-bench-levels-") as tmp:
        keys = Path(tmp) / "keys"
        plain = runtime_at(Path(tmp) / "bb", keys, None)  # makes the dev PKI
        tsa_url, stop_tsa = serve_tsa(keys)
        stamped = runtime_at(Path(tmp) / "bt", keys, tsa_url)
        archived = runtime_at(Path(tmp) / "blta", keys, "dev")  # B-LTA, as `make run` signs
        issue_one(plain, 10_000)  # warm-up
        issue_one(stamped, 10_001)
        issue_one(archived, 10_002)
        issued: dict[str, list[float]] = {"B-B": [], "B-T": [], "B-LTA": []}
        ids: list[str] = []
        for i in range(args.count):  # round-robin, so drift hits both alike
            seconds, cert_id = issue_one(plain, i)
            issued["B-B"].append(seconds)
            ids.append(cert_id)
            issued["B-T"].append(issue_one(stamped, args.count + i)[0])
            issued["B-LTA"].append(issue_one(archived, 2 * args.count + i)[0])
            print(f"\rissued {i + 1}/{args.count} at each level", end="", file=sys.stderr,
                  flush=True)
        print(file=sys.stderr)
        pdfs = unsigned_pdfs(plain, ids)
        sign_with: dict[str, Callable[[bytes], bytes]] = {
            "ours B-B": lambda pdf: plain.keyring.pades.sign(pdf, reason="bench",
                                                             location="Pune"),
            "ours B-T": lambda pdf: stamped.keyring.pades.sign(pdf, reason="bench",
                                                               location="Pune"),
            "stock B-B": stock(keys, None),
            "stock B-T": stock(keys, HTTPTimeStamper(tsa_url)),
            "ours B-LT": lambda pdf: archived.keyring.pades_at("B-LT").sign(
                pdf, reason="bench", location="Pune"),
            "ours B-LTA": lambda pdf: archived.keyring.pades_at("B-LTA").sign(
                pdf, reason="bench", location="Pune"),
            "stock B-LTA": stock_long_term(keys, archived),
        }
        hsm = softhsm_signer(keys, Path(tmp))
        if hsm is not None:
            sign_with["ours B-B, key in SoftHSM2 (PKCS#11)"] = hsm
        times: dict[str, list[float]] = {name: [] for name in sign_with}
        sizes: dict[str, int] = {}
        for pdf in pdfs:
            for name, sign in sign_with.items():
                start = time.perf_counter()
                signed = sign(pdf)
                times[name].append(time.perf_counter() - start)
                sizes[name] = len(signed) - len(pdf)
        stop_tsa()
        plain.close()
        stamped.close()
        archived.close()

    def median_ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 2)

    figures = {
        "documents": len(pdfs),
        "sign_median_ms": {name: median_ms(v) for name, v in times.items()},
        "bytes_added": sizes,
        "pkcs11_b_b_vs_file_b_b": (
            round(statistics.median(times["ours B-B, key in SoftHSM2 (PKCS#11)"])
                  / statistics.median(times["ours B-B"]), 2)
            if "ours B-B, key in SoftHSM2 (PKCS#11)" in times else "SoftHSM2 not installed"),
        "b_t_speedup_vs_stock_b_t": round(statistics.median(times["stock B-T"])
                                          / statistics.median(times["ours B-T"]), 1),
        "issue_end_to_end_median_ms": {level: median_ms(v) for level, v in issued.items()},
        "issue_b_t_per_second_vs_b_b": round(statistics.median(issued["B-B"])
                                             / statistics.median(issued["B-T"]), 2),
        "b_lta_speedup_vs_stock_b_lta": round(statistics.median(times["stock B-LTA"])
                                              / statistics.median(times["ours B-LTA"]), 1),
        "issue_b_lta_per_second_vs_b_b": round(statistics.median(issued["B-B"])
                                               / statistics.median(issued["B-LTA"]), 2),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
