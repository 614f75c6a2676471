"""`pramaan serve`: the API under gunicorn (gthread workers), configured from Settings.

gunicorn runs in-process (`gunicorn.app.base.BaseApplication`), so there is no second
configuration file: workers, threads and timeouts come from PRAMAAN_WEB_* like everything else.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import socket
import tempfile
import threading
import time
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from issuer.errors import ConfigError, PramaanError
from issuer.log_format import JsonFormatter
from issuer.log_format import configure as configure_logs
from issuer.settings import Settings
from signing.errors import SigningError

# Seconds an idle keep-alive connection is kept (gunicorn's default, 2, is for servers behind a
# balancer; 5 lets a browser fetch the verify page's script and style on one connection).
KEEPALIVE = 5
# Request line and headers: enough for our API (the QR seal travels after '#', never to us) and
# far below what a header flood would need.
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190
# A request head is collected in memory, outside any thread, up to this size (nginx's default
# for large headers); a longer one goes on to gunicorn's parser, which holds a thread for it
# (until the deadline at most). Bounds the memory a crowd of slow connections can pin.
HEAD_BUFFER = 32 * 1024
# Requests the app logs itself, one line each with what was decided (digilocker/pull_endpoint.py:
# the operation, the outcome, DigiLocker's txn). gunicorn's access line would be a second line
# per request, and at Pull Doc's rate it cost a tenth of the server's CPU (py-spy, README).
SELF_LOGGED = frozenset((method, path, status) for method in ("POST",)
                        for path in ("/digilocker/pulluri", "/digilocker/pulldoc")
                        for status in (200, 401))


class AccessLog(Logger):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's logger, without the access line of a request the app has logged itself
    (SELF_LOGGED: the answers the pull endpoint gives; anything else there, a 405 or a 500,
    keeps its access line). It also gives the app's own loggers (the root logger) a handler
    in each worker, in the format of PRAMAAN_LOG_FORMAT (issuer/log_format.py)."""

    as_json = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logs(self.as_json)
        if self.as_json:
            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if (req.method, req.path, resp.status_code) in SELF_LOGGED:
            return
        if self.as_json:
            self._json_access(resp, req, request_time)
            return
        super().access(resp, req, environ, request_time)

    def _json_access(self, resp: Any, req: Any, request_time: Any) -> None:
        """One line: method, path (without the query string, which may carry what a person
        typed), status, duration and the request id the app gave (its response header)."""
        if not self.access_log_enabled:
            return
        request_id = next((value for name, value in resp.headers
                           if name.lower() == "x-request-id"), None)
        self.access_log.info("%s %s %s", req.method, req.path, resp.status_code, extra={
            "method": req.method, "path": req.path, "status": resp.status_code,
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": request_id})


class JsonAccessLog(AccessLog):
    """AccessLog writing one JSON object a line (PRAMAAN_LOG_FORMAT=json)."""

    as_json = True


class DeadlineWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    """gthread, where a slow or stalled client cannot hold a thread.

    A stock gthread worker hands a connection to a thread as soon as its first bytes arrive, and
    the thread then reads the rest of the request head with a blocking socket and no time limit.
    A client that sends half a request and stalls holds that thread for good, and requests queued
    behind it wait for good; gunicorn's own `timeout` only watches the worker's main loop, which
    stays alive meanwhile. Here:

    - the request head is collected without blocking: a thread takes what has arrived and, if the
      head is not complete, gives the connection back to the worker's poller (holding the bytes)
      until more arrives; only a complete head goes on to gunicorn's parser and the app;
    - every request has a deadline of PRAMAAN_WEB_TIMEOUT seconds from the moment its connection
      is handed to the pool (accepted, or readable again for its next request): a watchdog thread
      shuts down the socket of every request still open after it, which ends a stalled head, a
      body that stopped coming, or an answer the client stopped reading.
    """

    def init_process(self) -> None:
        self._deadline = float(self.cfg.timeout)
        self._open: dict[int, tuple[float, Any]] = {}
        self._open_lock = threading.Lock()
        watchdog = threading.Thread(target=self._watch, name="deadline-watchdog", daemon=True)
        watchdog.start()
        super().init_process()  # runs the worker loop; returns when the worker stops

    def enqueue_req(self, conn: Any) -> None:
        with self._open_lock:
            # A connection back from the poller with more of its head keeps its deadline.
            self._open.setdefault(id(conn), (time.monotonic() + self._deadline, conn))
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        # Runs on the main thread once a thread is done with the connection.
        deferred = not fs.cancelled() and fs.exception() is None and fs.result() is _DEFER
        if not deferred:
            with self._open_lock:
                self._open.pop(id(conn), None)
        super().finish_request(conn, fs)

    def handle(self, conn: Any) -> Any:
        if not self.cfg.is_ssl:  # TLS ends at the reverse proxy; we never configure it
            head = self._collect_head(conn)
            if head is not _HEAD_READY:
                return head
        return super().handle(conn)

    def _collect_head(self, conn: Any) -> object:
        """_HEAD_READY once the whole request head is buffered in the connection's parser;
        _DEFER (wait in the poller for more) or False (the client closed: close) otherwise."""
        data = bytearray(getattr(conn, "pramaan_head", b""))
        if conn.parser is not None:
            data[:0] = conn.parser.unreader.take_buffered()  # pipelined after the last request
        conn.sock.setblocking(False)
        try:
            while not _head_complete(data) and len(data) < HEAD_BUFFER:
                chunk = conn.sock.recv(8192)
                if not chunk:
                    return False
                data += chunk
        except BlockingIOError:
            conn.pramaan_head = bytes(data)
            return _DEFER
        except OSError:
            return False
        conn.pramaan_head = b""
        conn.init()  # the parser, once per connection
        conn.parser.unreader.unread(bytes(data))
        return _HEAD_READY

    def _watch(self) -> None:
        tick = min(1.0, self._deadline / 4)
        while True:
            time.sleep(tick)
            now = time.monotonic()
            with self._open_lock:
                late = [key for key, (deadline, _) in self._open.items() if deadline < now]
                # Dropped here: a connection gunicorn closes itself (an idle one waiting for
                # more of its head) never comes back through finish_request.
                late_conns = [self._open.pop(key)[1] for key in late]
            for conn in late_conns:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed meanwhile


_HEAD_READY = object()


def _head_complete(data: bytearray) -> bool:
    return b"\r\n\r\n" in data or b"\n\n" in data


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for `settings` (see README, Configuration)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "bind": [f"{host}:{settings.port}"],
        "worker_class": DeadlineWorker,
        "workers": settings.web_workers,
        "threads": settings.web_threads,
        "timeout": settings.web_timeout,
        "graceful_timeout": settings.web_timeout,
        "keepalive": KEEPALIVE,
        # Each worker listens on its own SO_REUSEPORT socket and the kernel spreads connections
        # evenly over them. On one shared socket the busier worker wins most accepts: 50
        # keep-alive clients split 11/39 and the 39 waited (Pull Doc bench: p99 109-177 ms
        # against 89-139 balanced, README "DigiLocker"). serve() checks the port is free first.
        "reuse_port": True,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        # Each worker builds its own app after the fork: its own database pool, and (later)
        # its own PKCS#11 session, which must never be shared across a fork.
        "preload_app": False,
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": JsonAccessLog if settings.logs_as_json else AccessLog,
        "proc_name": "pramaan",
        # gunicorn 27 would open a management socket under $HOME by default (workers up and
        # down, shutdown): nothing of ours uses it.
        "control_socket_disable": True,
    }


class PramaanServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, in this process, serving `api.create_app(settings)` in every worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from api import create_app

        return create_app(self.settings)


def serve(settings: Settings) -> None:
    """Check the keys once, then serve until stopped (SIGTERM/SIGINT: graceful)."""
    from api import create_app

    # Refuse bad keys or settings here, before gunicorn starts: a worker that fails to boot
    # only says so in the log. The check's app (and its database pool) is dropped again.
    if settings.signer_backend == "pkcs11" or settings.pkcs11_seal_key_label:
        # A PKCS#11 library initialised here would be inherited, initialised, by the forked
        # workers, which PKCS#11 forbids: the check runs in a fresh process instead.
        _check_in_fresh_process(settings)
    else:
        create_app(settings).extensions["pramaan"].close()
    check_port_free(settings.host, settings.port)
    made, master = shared_metrics_directory(), os.getpid()
    try:
        PramaanServer(settings).run()
    finally:
        # gunicorn's workers are forks of this frame: only the master, on its way out,
        # removes the directory it made.
        if made is not None and os.getpid() == master:
            shutil.rmtree(made, ignore_errors=True)


def shared_metrics_directory() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR for gunicorn's workers: each writes its render and sign
    histograms there and /metrics adds them up, whichever worker is scraped (issuer/metrics.py).
    A fresh directory unless one is given (then clearing it before a start is the operator's
    job). Set before any worker imports prometheus_client, which reads it once. The directory
    made here, or None."""
    from issuer.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        return None
    made = tempfile.mkdtemp(prefix="pramaan-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


STARTUP_CHECK_SECONDS = 120


def _check_in_fresh_process(settings: Settings) -> None:
    """Build the app once in a spawned process and raise here what it refused with (as a
    ConfigError or SigningError with the same code and message)."""
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_startup_check, args=(settings, writer))
    child.start()
    writer.close()
    ready = multiprocessing.connection.wait([reader, child.sentinel],
                                            timeout=STARTUP_CHECK_SECONDS)
    refusal = None
    if reader in ready:
        try:
            refusal = reader.recv()
        except EOFError:  # the child closed the pipe without a word: the check passed
            refusal = None
    child.join(timeout=10)
    if child.is_alive():
        child.terminate()
        raise ConfigError(f"the startup check of the keys did not finish in "
                          f"{STARTUP_CHECK_SECONDS} s (is the token's library hanging?)")
    if refusal is not None:
        kind, code, message = refusal
        if kind == "config":
            raise ConfigError(message)
        raise SigningError(message, code=code)
    if child.exitcode != 0:
        raise ConfigError(f"the startup check of the keys failed (exit {child.exitcode})")


def _startup_check(settings: Settings, writer: Any) -> None:
    from api import create_app

    try:
        create_app(settings).extensions["pramaan"].close()
    except PramaanError as exc:  # the parent raises it again: the kind, code and message only
        writer.send(("config", exc.code, str(exc.detail)))
    except SigningError as exc:
        writer.send(("signing", exc.code, str(exc)))
    finally:
        writer.close()


def check_port_free(host: str, port: int) -> None:
    """Refuse to start on an address something already listens on. With SO_REUSEPORT the
    workers' bind would succeed beside another server of the same user, and the two would
    share the traffic without a word; a plain bind, as here, fails instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; another "
                              "server is listening there (stop it, or set PORT)") from exc
