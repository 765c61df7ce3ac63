"""The bounce corpus (tests/data/bounces/) with real tokens, in Maildirs and mboxes."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

from publisher import tokens

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bounces"
BOUNCE_ADDRESS = "bounces@gazette.example"
_PLACEHOLDER = re.compile(rb"@@(TOKEN|FORGED):(\d+):(\d+)@@")


def forged(secret: bytes, digest_id: int, subscriber_id: int) -> str:
    """A token of the right shape whose MAC is wrong (its last hex digit changed)."""
    token = tokens.bounce_token(secret, digest_id, subscriber_id)
    return token[:-1] + ("0" if token[-1] != "0" else "1")


def corpus_message(name: str, secret: bytes) -> bytes:
    """The corpus file *name*, its placeholders filled with tokens under *secret*."""

    def fill(match: re.Match[bytes]) -> bytes:
        kind, digest_id, subscriber_id = match.group(1), int(match.group(2)), int(match.group(3))
        make = tokens.bounce_token if kind == b"TOKEN" else forged
        return make(secret, digest_id, subscriber_id).encode()

    data = (CORPUS / name).read_bytes()
    return _PLACEHOLDER.sub(fill, data)


def make_maildir(path: Path, messages: dict[str, bytes]) -> Path:
    """A Maildir with each message in new/ under its name."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for name, data in messages.items():
        (path / "new" / name).write_bytes(data)
    return path


def make_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    box.lock()
    try:
        for data in messages:
            box.add(data)
        box.flush()
    finally:
        box.unlock()
        box.close()
    return path
