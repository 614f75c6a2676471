"""What the development TSA and OCSP responder (docker/dev_tsa.py, dev_ocsp.py) share: their
command line (where the keys are, where to listen) and serving a WSGI app until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


def arguments(doc: str, port: int) -> argparse.ArgumentParser:
    """--keys (default $PRAMAAN_KEYS_DIR, else $PRAMAAN_HOME/keys), --host, --port."""
    home = Path(os.environ.get("PRAMAAN_HOME") or ".")
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--keys", type=Path,
                        default=Path(os.environ.get("PRAMAAN_KEYS_DIR") or home / "keys"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    return parser


def serve(host: str, port: int, app: WSGIApplication, banner: str) -> None:
    """Print `banner`, then serve `app` (a thread per request) until SIGTERM or Ctrl-C."""
    from werkzeug.serving import run_simple

    print(banner, flush=True)
    # PID 1 of a container gets no default SIGTERM action: stop at once when asked.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(host, port, app, threaded=True)
