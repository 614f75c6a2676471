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

import logging
from pathlib import Path

from dev_service import arguments, serve

from signing.dev_ocsp import DevOcspResponder, ocsp_wsgi_app
from signing.devpki import DevPki


def main() -> None:
    parser = arguments(__doc__ or "", 8319)
    parser.add_argument("--revocations", type=Path, default=None)
    args = parser.parse_args()
    keys: Path = args.keys
    revocations: Path = args.revocations or keys / "dev-ocsp-revoked.txt"
    responder = DevOcspResponder.of(DevPki.at(keys), revocations)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(args.host, args.port, ocsp_wsgi_app(responder),
          f"development OCSP responder on http://{args.host}:{args.port}/ocsp "
          f"(CAs in {keys}, revocations in {revocations})")


if __name__ == "__main__":
    main()
