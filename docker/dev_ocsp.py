"""A development OCSP responder over HTTP, for trials of the container stack.

Serves RFC 6960 (POST application/ocsp-request) at http://HOST:PORT/ocsp for the CAs of a
`pramaan init --dev-pki` key set (keys/root, ca, tsa-ca: .crt and .key), signing each answer
with the key of the CA that issued the certificate asked about (signing/dev_ocsp.py). The set
must have been made with PRAMAAN_DEV_OCSP_URL naming this address, so that its certificates
send long-term signatures (PAdES B-LT, B-LTA) here for their status, as a licensed CA's would.
A GET answers "ok" (health check). To revoke a certificate, add its serial in hex to the
revocations file (default keys/dev-ocsp-revoked.txt), one per line. Never for certificates
anyone relies on. Usage: python docker/dev_ocsp.py [--keys DIR] [--host H] [--port N]
[--revocations FILE]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from werkzeug.serving import run_simple

from signing.dev_ocsp import DevOcspResponder, ocsp_wsgi_app
from signing.devpki import DevPki


def main() -> None:
    home = Path(os.environ.get("PRAMAAN_HOME") or ".")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path,
                        default=Path(os.environ.get("PRAMAAN_KEYS_DIR") or home / "keys"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8319)
    parser.add_argument("--revocations", type=Path, default=None)
    args = parser.parse_args()
    keys: Path = args.keys
    revocations: Path = args.revocations or keys / "dev-ocsp-revoked.txt"
    responder = DevOcspResponder.of(DevPki.at(keys), revocations)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"development OCSP responder on http://{args.host}:{args.port}/ocsp "
          f"(CAs in {keys}, revocations in {revocations})", flush=True)
    # PID 1 of a container gets no default SIGTERM action: stop at once when asked.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, ocsp_wsgi_app(responder), threaded=True)


if __name__ == "__main__":
    main()
