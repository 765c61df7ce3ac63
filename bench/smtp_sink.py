"""A discarding SMTP sink for the delivery benchmarks: aiosmtpd on 127.0.0.1, its own process.

    python bench/smtp_sink.py --port 2525 [--delay-ms 20]

Accepts every message, counts it and throws it away. It runs in a process of
its own so that it never shares a GIL with the sender being measured. It
prints "ready <port>" once listening; the extra command XSTAT answers
"250 <messages> <bytes>" (totals since start), so a benchmark can check that
every message arrived without parsing anything. SIGTERM or SIGINT stop it.

With --delay-ms it waits that long after each message's body before it
answers, as a remote relay does (the round trip and its queueing); each
connection waits on its own, so many senders at once are served in parallel.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session


class _Counter:
    def __init__(self, delay: float) -> None:
        self.messages = 0
        self.bytes = 0
        self.delay = delay

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        envelope.content = envelope.original_content = None  # discard
        return f"250 2.0.0 Ok: queued as {self.messages}"


class _Sink(SMTP):
    def __init__(self, counter: _Counter) -> None:
        super().__init__(counter, decode_data=False, hostname="sink.localhost")
        self.counter = counter

    async def smtp_XSTAT(self, _arg: str) -> None:  # noqa: N802 - aiosmtpd's verb naming
        await self.push(f"250 {self.counter.messages} {self.counter.bytes}")


async def _serve(host: str, port: int, delay: float) -> _Counter:
    counter = _Counter(delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Sink(counter), host=host, port=port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await stop.wait()
    return counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="wait this long before answering each message"
    )
    args = parser.parse_args()
    counter = asyncio.run(_serve(args.host, args.port, args.delay_ms / 1000))
    print(f"received {counter.messages} messages, {counter.bytes} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
