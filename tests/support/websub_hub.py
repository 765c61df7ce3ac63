"""WebSub hubs on 127.0.0.1: one that records pings and answers, one that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # pings come in together; a short backlog would drop some


class Hub:
    """A WebSub hub on 127.0.0.1 that records publish pings and answers `status`."""

    def __init__(self) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.status = 204
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(hub.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def urls(self) -> list[str]:
        return sorted(url for ping in self.pings for url in ping["hub.url"])


class SilentHub:
    """Accepts TCP connections on 127.0.0.1 and never answers a byte.

    *on_connect* runs in the accepting thread each time a connection comes in.
    """

    def __init__(self, on_connect: Callable[[], None] = lambda: None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.connections: list[socket.socket] = []
        self.on_connect = on_connect
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)
            self.on_connect()

    def __enter__(self) -> SilentHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=10)
        for connection in self.connections:
            connection.close()
