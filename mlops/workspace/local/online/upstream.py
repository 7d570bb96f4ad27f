"""A minimal HTTP/1.1 client for the router's hop to a deployment instance (and for probes).

Why not ``aiohttp.ClientSession``: the instances run ``azmlinfsrv`` (gunicorn, sync workers), which
closes the connection after every response, so a pooled keep-alive client buys nothing and its
per-request machinery is a large share of the router's CPU (measured: a fresh loopback TCP
connection per request costs the caller ~300 us of CPU through aiohttp, ~150 us through a bare
asyncio protocol, ~70-130 us over a unix socket). This client sends one request with
``Connection: close`` on a bare ``asyncio.Protocol`` and completes at EOF or once the
``Content-Length`` body is in; it decodes a chunked body too. Bodies are bytes in memory (scoring
payloads are small); headers pass through unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass


class UpstreamError(Exception):
    """The instance could not be reached or sent no complete response.

    ``sent`` is False when the connection failed before the request was written, so the request
    certainly did not reach the deployment."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _encode_request(method: str, target: str, host: str, port: int,
                    headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def _decode_chunked(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";", 1)[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += data[pos:pos + size]
        pos += size + 2


def parse_response(raw: bytes, *, head: bool = False) -> UpstreamResponse:
    """Parse a complete HTTP/1.x response read up to EOF (``head``: the answer to a HEAD, no body)."""
    head_bytes, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise UpstreamError("incomplete response from the instance (no header end)", sent=True)
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise UpstreamError(f"malformed status line from the instance: {status_line[:80]!r}", sent=True)
    headers: list[tuple[str, str]] = []
    chunked = False
    length: int | None = None
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        lower = name.lower()
        if lower == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif lower == "content-length":
            length = int(value)
        headers.append((name, value))
    status = int(parts[1])
    if head or status in (204, 304):
        body = b""
    elif chunked:
        body = _decode_chunked(body)
    elif length is not None:
        if len(body) < length:
            raise UpstreamError(f"the instance closed after {len(body)} of {length} body bytes", sent=True)
        body = body[:length]
    return UpstreamResponse(status, parts[2] if len(parts) > 2 else "", headers, body)


class _OneExchange(asyncio.Protocol):
    """Writes one request when connected, collects the response, resolves ``done`` at EOF or when the
    ``Content-Length`` body is complete (whichever comes first)."""

    def __init__(self, payload: bytes, done: asyncio.Future[bytes], *, head: bool = False) -> None:
        self._payload = payload
        self._done = done
        self._buffer = bytearray()
        self._expected = -1  # total bytes once the head and Content-Length are known
        self._head_only = head
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._payload)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._expected < 0:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            marker = head.find(b"\r\ncontent-length:")
            if self._head_only:
                self._expected = end + 4
            elif marker < 0 or b"transfer-encoding:" in head:
                self._expected = 0  # read to EOF
            else:
                line_end = head.find(b"\r\n", marker + 2)
                value = head[marker + 17:line_end if line_end >= 0 else len(head)]
                self._expected = end + 4 + int(value.strip())
        if 0 < self._expected <= len(self._buffer) and not self._done.done():
            self._done.set_result(bytes(self._buffer))

    def eof_received(self) -> bool:
        if not self._done.done():
            self._done.set_result(bytes(self._buffer))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            if exc is not None:
                self._done.set_exception(UpstreamError(f"connection lost: {exc}", sent=True))
            else:
                self._done.set_result(bytes(self._buffer))


async def request(host: str, port: int, method: str, target: str, headers: Iterable[tuple[str, str]],
                  body: bytes = b"", *, unix_socket: str | None = None) -> UpstreamResponse:
    """Send one request on a fresh connection and return the whole response.

    With ``unix_socket`` the connection goes to that socket (cheaper than loopback TCP: no handshake,
    no TIME_WAIT) and ``host:port`` only fills the ``Host`` header. Cancellation (the router's
    timeout) aborts the connection, which is how the instance learns the caller is gone."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    payload = _encode_request(method, target, host, port, headers, body)
    is_head = method.upper() == "HEAD"
    try:
        if unix_socket:
            transport, _ = await loop.create_unix_connection(
                lambda: _OneExchange(payload, done, head=is_head), unix_socket)
        else:
            transport, _ = await loop.create_connection(lambda: _OneExchange(payload, done, head=is_head), host, port)
    except OSError as exc:
        raise UpstreamError(f"cannot connect to {unix_socket or f'{host}:{port}'}: {exc}", sent=False) from exc
    try:
        raw = await done
    except BaseException:
        transport.abort()
        raise
    if not raw:
        raise UpstreamError(f"{unix_socket or f'{host}:{port}'} closed the connection without a response", sent=True)
    return parse_response(raw, head=is_head)


async def probe(host: str, port: int, path: str, timeout: float) -> bool:
    """One HTTP probe: True when ``GET path`` answers 200 within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            response = await request(host, port, "GET", path, [("User-Agent", "mlops-probe")])
    except (TimeoutError, UpstreamError, ValueError):
        return False
    return response.status == 200
