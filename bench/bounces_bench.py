"""Bounce intake benchmark: `publisher bounces process` over a Maildir of N DSNs.

    python bench/bounces_bench.py [--n 10000] [--runs 1] [--keep]

In a temporary folder: a site with N subscribers and digest 1 "sent" to
each (ledger rows written through the store), and a Maildir holding one
returned message per subscriber, made from the corpus in tests/data/bounces/
(Postfix, Gmail, Microsoft and Exim reports and Yahoo's own format, in turn),
each with its own Message-ID and the subscriber's real bounce token. Then
`python -m publisher … bounces process` runs as a whole process, timed with
time.perf_counter around the child; its report must have N lines, every
message must be in .Processed/cur/ and the store must hold N bounce events.
The target (issue "Reach the inbox"): 10,000 messages in under 30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from publisher import tokens  # noqa: E402 (after the path is set)
from publisher.store import open_store  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "bounces"
TEMPLATES = ("postfix-hard", "gmail-soft", "outlook-hard", "exim-hard", "yahoo-hard")
_PLACEHOLDER = re.compile(rb"@@TOKEN:\d+:\d+@@")
_MESSAGE_ID = re.compile(rb"^(Message-I[Dd]): <[^>]*>", re.MULTILINE)
SECRET = "bench-secret-of-a-good-length-0123456789"


def make_site(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    (folder / "content").mkdir()
    (folder / "publisher.toml").write_text(
        '[site]\ntitle = "Bench"\nbase_url = "https://bench.example/"\n'
        '[bounces]\naddress = "bounces@bench.example"\n',
        encoding="utf-8",
    )
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    with open_store(folder / ".publisher" / "state.db") as store, store.transaction():
        for number in range(1, count + 1):
            store.insert_subscriber(f"reader{number}@example.org", "", status="active", now=now)
        store.conn.execute(
            "INSERT INTO digests (id, created_at, watermark, articles) VALUES (1, ?, ?, '[]')",
            (now.isoformat(), now.isoformat()),
        )
        store.create_deliveries(1, lambda d, s: f"<digest-{d}-{s}@bench.example>", now=now)
        store.conn.execute("UPDATE deliveries SET status = 'sent'")


def make_maildir(path: Path, count: int, secret: bytes) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    templates = [(CORPUS / f"{name}.eml").read_bytes() for name in TEMPLATES]
    for number in range(1, count + 1):
        template = templates[number % len(templates)]
        token = tokens.bounce_token(secret, 1, number).encode()
        data = _PLACEHOLDER.sub(token, template)
        data = _MESSAGE_ID.sub(rb"\1: <bench-%d@mx.example>" % number, data, count=1)
        data = data.replace(b"reader1@", b"reader%d@" % number)
        data = data.replace(b"@gazette.example", b"@bench.example")  # the bench's bounce address
        (path / "new" / f"{number:06d}.bench").write_bytes(data)


def run(folder: Path, maildir: Path) -> tuple[float, list[str]]:
    env = {**os.environ, "PUBLISHER_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "publisher", "--config", str(folder / "publisher.toml")]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "bounces", "process", str(maildir)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return time.perf_counter() - started, result.stdout.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    os.environ["PUBLISHER_SECRET"] = SECRET
    secret = SECRET.encode()
    for attempt in range(options.runs):
        base = Path(tempfile.mkdtemp(prefix="bounces-bench-"))
        try:
            folder = base / "site"
            make_site(folder, options.n)
            maildir = base / "Maildir"
            make_maildir(maildir, options.n, secret)
            seconds, lines = run(folder, maildir)
            moved = len(list((maildir / ".Processed" / "cur").iterdir()))
            with open_store(folder / ".publisher" / "state.db") as store:
                events = store.count_bounce_events()
            assert len(lines) == options.n + 1, lines[-3:]
            assert moved == events == options.n, (moved, events)
            print(
                f"run {attempt + 1}: {options.n} messages in {seconds:.2f} s "
                f"({options.n / seconds:.0f} messages/s); {lines[-1]}"
            )
        finally:
            if options.keep:
                print(f"kept {base}")
            else:
                shutil.rmtree(base)


if __name__ == "__main__":
    main()
