"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load on loopback.

The load client shares the machine's two cores with the server it measures, so every
millisecond it spends is taken from the server. aiohttp costs about a millisecond of CPU per
request; this client writes the request bytes and reads the status line, the headers and
exactly Content-Length bytes, a few hundred microseconds. It speaks only what gunicorn answers
here: no chunked bodies, no redirects; a closed connection is reopened.
"""

from __future__ import annotations

import asyncio


class Connection:
    """One keep-alive connection to `host:port`; `post` is one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(HTTP status, body) of POST `path`; reconnects once if the server closed the
        connection between requests."""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        message = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host,
                                                                           self.port)
            try:
                return await self._exchange(message)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, message: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(message)
        status_line = await self._reader.readuntil(b"\r\n")
        if not status_line.strip():
            raise ConnectionError("closed")
        status = int(status_line.split(b" ", 2)[1])
        length, keep = 0, True
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        body = await self._reader.readexactly(length)
        if not keep:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        self._reader = self._writer = None
