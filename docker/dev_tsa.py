"""A development time-stamping authority over HTTP, for trials of the container stack.

Serves RFC 3161 (POST application/timestamp-query) at http://HOST:PORT/tsa with the development
TSA of a `pramaan init --dev-pki` key set (keys/tsa.key, tsa.crt, tsa-ca.crt), so that API and
workers run with PRAMAAN_ENV=production and PRAMAAN_TSA_URL=http://dev-tsa:8318/tsa exactly as
they would against a licensed TSA. Never for certificates anyone relies on: its root is the
development root. Usage: python docker/dev_tsa.py [--keys DIR] [--host H] [--port N]
"""

from __future__ import annotations

from dev_service import arguments, serve

from signing.timestamps import DevTimeStampAuthority, tsa_wsgi_app


def main() -> None:
    args = arguments(__doc__ or "", 8318).parse_args()
    keys = args.keys
    authority = DevTimeStampAuthority.load(keys / "tsa.key", keys / "tsa.crt",
                                           [keys / "tsa-ca.crt"])
    serve(args.host, args.port, tsa_wsgi_app(authority),
          f"development TSA on http://{args.host}:{args.port}/tsa ({keys / 'tsa.crt'})")


if __name__ == "__main__":
    main()
