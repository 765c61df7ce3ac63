"""The web application served by a real uvicorn on a free 127.0.0.1 port.

Used as a context manager: `create_app(site, ...)` runs in a background
thread until the block ends, so tests talk to it over real HTTP with httpx
(or a raw socket when the client must not touch the path). The socket is
bound before uvicorn starts and handed to it, so the port cannot be taken
between finding it free and listening on it, and the block begins when
uvicorn says it is listening.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp

from publisher.config import SiteConfig
from publisher.web import create_app


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening, so a test waits for exactly that."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()  # listening, or given up

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.settled.set()

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets)
        finally:
            self.settled.set()  # it failed before start-up, or has stopped


class AppServer:
    """`with AppServer(app) as server:` serves any ASGI *app*; then `server.url("/")`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))  # ours from here on: no race for the port
        self.port = int(self.socket.getsockname()[1])
        self.server = _Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="uvicorn", daemon=True
        )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def __enter__(self) -> Self:
        self.thread.start()
        if not self.server.settled.wait(10) or not self.server.started:
            self.server.should_exit = True
            self.thread.join(5)
            self.socket.close()
            message = f"uvicorn did not start on 127.0.0.1:{self.port}"
            raise RuntimeError(message)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send *request* bytes as they are; (status, headers, body) of the answer.

        For paths a client would normalise (`..`, `%2e%2e`) and bodies framed by hand.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        data = b"".join(chunks)
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, body


class WebServer(AppServer):
    """`with WebServer(site, now=clock) as server:` then `server.url("/news/")`."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        now: Callable[[], datetime],
        client_limit: int | None = None,
        webhooks: Any = None,
    ) -> None:
        options: dict[str, Any] = {"now": now, "webhooks": webhooks}
        if client_limit is not None:
            options["client_limit"] = client_limit
        super().__init__(create_app(site, **options))
