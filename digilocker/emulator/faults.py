"""Fault injection in front of the emulator's partner API (see config.Faults for the knobs).

Dropping a connection: werkzeug's development server hands the WSGI app the client socket as
environ["werkzeug.socket"]. We shut it down in both directions, so the caller reads EOF with no
status line (requests raises ConnectionError: RemoteDisconnected), and werkzeug's own attempt to
write our placeholder response then fails with BrokenPipeError, which it treats as a dropped
connection and logs nothing. Under a server without that key (gunicorn), a "drop" degrades to an
HTTP 502 answer and is counted as `drop_unsupported`."""

from __future__ import annotations

import socket
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request

from digilocker.emulator.state import State


def install(app: Flask, state: State) -> None:
    """Register the hooks on `app`. /emulator/* (the admin API) is never faulted."""

    @app.before_request
    def inject() -> Any:
        path = request.path
        if not path.startswith("/public/"):
            return None
        with state.lock:
            faults = state.faults
            if faults.down:
                state.injected["down"] += 1
                return _drop(state) if faults.down_mode == "drop" else _error(
                    503, "service_unavailable", "DigiLocker is down (emulated)")
            if not any(path.startswith(p) for p in faults.paths):
                return None
            if state.fail_next > 0:
                state.fail_next -= 1
                state.injected["error"] += 1
                return _error(faults.error_status, "unexpected_error", "injected failure")
            pick, slow = state.draw()
            sleep = faults.delay if slow < faults.slow_rate and faults.delay > 0 else 0.0
            outcome = _outcome(pick, faults.drop_rate, faults.error_rate, faults.lost_reply_rate)
            if sleep:
                state.injected["slow"] += 1
            if outcome:
                state.injected[outcome] += 1
        if sleep:
            time.sleep(sleep)
        if outcome == "drop":
            return _drop(state)
        if outcome == "error":
            return _error(faults.error_status, "unexpected_error", "injected failure")
        g.lose_reply = outcome == "lost_reply"
        return None

    @app.after_request
    def lose_reply(response: Response) -> Response:
        if g.get("lose_reply"):
            return _drop(state)
        return response


def _outcome(pick: float, drop: float, error: float, lost: float) -> str | None:
    """One draw decides the fate: [0, drop) drop, then error, then lost reply, else none."""
    if pick < drop:
        return "drop"
    if pick < drop + error:
        return "error"
    if pick < drop + error + lost:
        return "lost_reply"
    return None


def _error(status: int, code: str, text: str) -> Response:
    response = jsonify(error=code, error_description=text)
    response.status_code = status
    return response


def _drop(state: State) -> Response:
    sock = request.environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        with state.lock:
            state.injected["drop_unsupported"] += 1
        return _error(502, "connection_dropped", "emulated drop (server cannot close sockets)")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the caller already went away: the drop happened anyway
    return Response(b"", status=500)
