"""A development time-stamping authority over HTTP, for trials of the container stack.

Serves RFC 3161 (POST application/timestamp-query) at http://HOST:PORT/tsa with the development
TSA of a `pramaan init --dev-pki` key set (keys/tsa.key, tsa.crt, tsa-ca.crt), so that API and
workers run with PRAMAAN_ENV=production and PRAMAAN_TSA_URL=http://dev-tsa:8318/tsa exactly as
they would against a licensed TSA. Never for certificates anyone relies on: its root is the
development root. Usage: python docker/dev_tsa.py [--keys DIR] [--host H] [--port N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from werkzeug.serving import run_simple

from signing.timestamps import DevTimeStampAuthority, tsa_wsgi_app


def main() -> None:
    home = Path(os.environ.get("PRAMAAN_HOME") or ".")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path,
                        default=Path(os.environ.get("PRAMAAN_KEYS_DIR") or home / "keys"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8318)
    args = parser.parse_args()
    keys: Path = args.keys
    authority = DevTimeStampAuthority.load(keys / "tsa.key", keys / "tsa.crt",
                                           [keys / "tsa-ca.crt"])
    print(f"development TSA on http://{args.host}:{args.port}/tsa ({keys / 'tsa.crt'})",
          flush=True)
    # PID 1 of a container gets no default SIGTERM action: stop at once when asked.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(args.host, args.port, tsa_wsgi_app(authority), threaded=True)


if __name__ == "__main__":
    main()
