"""An HTTP server of the tests' own on loopback, port 0, in a daemon thread: the one start/stop.

The fakes that answer HTTP in-process (the Azure emulator, the Azure scoring router, the release
fake's endpoints, the workflow rehearsal's GitHub API) all run a ``ThreadingHTTPServer`` this way:
bound to ``127.0.0.1`` on a port the OS picks (never a fixed one: suites run side by side),
request threads as daemons, and stopped for good - ``shutdown`` (ends ``serve_forever``),
``server_close`` (frees the socket), the thread joined.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """``start()`` serves ``handler`` until ``stop()``; ``wrap`` may replace the listening socket
    (e.g. ``ssl_context.wrap_socket(sock, server_side=True)`` for HTTPS)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str,
                 wrap: Callable[[socket.socket], socket.socket] | None = None, poll_interval: float = 0.5) -> None:
        self._handler = handler
        self._name = name
        self._wrap = wrap
        self._poll_interval = poll_interval
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler)
        server.daemon_threads = True
        if self._wrap is not None:
            server.socket = self._wrap(server.socket)
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": self._poll_interval},
                                        name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError(f"{self._name} is not started")
        return int(self.server.server_address[1])
