"""The folders bounces arrive in: Maildir, mbox and IMAP, read and then moved, never deleted.

A message is moved only after the store has committed what it said; a crash
in between leaves it where it was, and reading it again counts nothing twice
(its idempotency key). A message that cannot be read stays where it is.

- Maildir: from `new/` and `cur/` into the Maildir++ sub-folder `.<FOLDER>`
  (its `cur/`), by rename.
- mbox: under the mbox lock (fcntl and a dot-lock, as mail delivery agents
  take it) for the whole run; read messages are appended to the sibling
  mbox `<mbox>.<FOLDER>` (flushed and fsynced), then removed from the
  source, which Python's mailbox rewrites into a new file and renames over.
- IMAP (imaps:// only, the certificate verified): UID MOVE to FOLDER where
  the server offers MOVE (RFC 6851), else UID COPY, then \\Deleted and UID
  EXPUNGE (RFC 4315) of that one UID.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import mailbox
import os
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from publisher.errors import BounceError, ConfigError

logger = logging.getLogger(__name__)

IMAP_PASSWORD_VARIABLE = "PUBLISHER_IMAP_PASSWORD"
IMAP_TIMEOUT = 60.0
_SOURCE = "SOURCE"


@dataclass(frozen=True, slots=True)
class Item:
    """One message of a folder: how it is named, and its bytes."""

    ref: str  # the folder's own key: a file name, an mbox key, an IMAP UID
    name: str  # how the report names it when it has no Message-ID
    data: bytes


class Folder(Protocol):
    description: str  # "maildir:/srv/mail/bounces", for the history's source

    def items(self) -> Iterator[Item]: ...
    def move(self, items: list[Item]) -> None: ...
    def close(self) -> None: ...


def open_folder(source: str, *, processed: str, environ: Mapping[str, str] | None = None) -> Folder:
    """The folder *source* names: an imaps:// URL, a Maildir (cur/ new/ tmp/) or an mbox file.

    :raises ConfigError: for a SOURCE that is none of them, or an IMAP URL without its password.
    :raises BounceError: when the mbox cannot be locked or the IMAP server reached.
    """
    if "://" in source:
        return ImapFolder.connect(source, processed=processed, environ=environ or os.environ)
    path = Path(source)
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            return MaildirFolder(path, processed)
        message = f"a folder, but not a Maildir (it has no cur/, new/ and tmp/) ({source!r})"
        raise ConfigError(_SOURCE, message)
    if path.is_file():
        return MboxFolder(path, processed)
    message = (
        f"no such Maildir or mbox file ({source!r}); expected a Maildir path, an mbox "
        "file or imaps://user@host[:port]/FOLDER"
    )
    raise ConfigError(_SOURCE, message)


class MaildirFolder:
    def __init__(self, path: Path, processed: str) -> None:
        self.path = path
        self.description = f"maildir:{path}"
        self.target = path / f".{processed}"

    def items(self) -> Iterator[Item]:
        for sub in ("new", "cur"):
            folder = self.path / sub
            for name in sorted(os.listdir(folder)):
                if name.startswith("."):
                    continue
                try:
                    data = (folder / name).read_bytes()
                except FileNotFoundError:  # moved by another reader meanwhile
                    continue
                yield Item(f"{sub}/{name}", name, data)

    def move(self, items: list[Item]) -> None:
        for sub in ("cur", "new", "tmp"):
            (self.target / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        for item in items:
            sub, _slash, name = item.ref.partition("/")
            # A message out of new/ has been seen: cur/ wants the info suffix.
            moved = name if ":" in name else f"{name}:2,S"
            try:
                os.rename(self.path / sub / name, self.target / "cur" / moved)
            except FileNotFoundError:
                logger.info("%s: %s was moved by another reader", self.description, item.ref)

    def close(self) -> None:
        return None


class MboxFolder:
    def __init__(self, path: Path, processed: str) -> None:
        self.path = path
        self.description = f"mbox:{path}"
        self.target = path.with_name(f"{path.name}.{processed}")
        self.box = mailbox.mbox(path, create=False)
        try:
            self.box.lock()
        except (mailbox.ExternalClashError, OSError) as err:
            self.box.close()
            message = f"cannot lock the mbox ({err}); is another program writing it?"
            raise BounceError(str(path), message) from err

    def items(self) -> Iterator[Item]:
        for number, key in enumerate(self.box.keys(), 1):
            yield Item(str(key), f"message {number}", self.box.get_bytes(key))

    def move(self, items: list[Item]) -> None:
        if not items:
            return
        target = mailbox.mbox(self.target, create=True)
        target.lock()
        try:
            for item in items:
                target.add(self.box.get_message(_key(item.ref)))
            target.flush()
        finally:
            target.unlock()
            target.close()
        _fsync(self.target)
        for item in items:
            self.box.discard(_key(item.ref))
        self.box.flush()  # a new file renamed over the old one

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.box.unlock()
        self.box.close()


def _key(ref: str) -> Any:
    """An mbox key back from its text (typeshed calls the keys str; mbox uses ints)."""
    return int(ref)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImapFolder:
    """One IMAP folder over TLS (certificate and host name verified by the system's CAs)."""

    def __init__(self, conn: imaplib.IMAP4_SSL, description: str, processed: str) -> None:
        self.conn = conn
        self.description = description
        self.processed = processed
        self.created = False

    @classmethod
    def connect(cls, url: str, *, processed: str, environ: Mapping[str, str]) -> ImapFolder:
        user, host, port, folder = parse_imap_url(url)
        password = environ.get(IMAP_PASSWORD_VARIABLE, "")
        if not password:
            message = f"not set: the password of {user} on {host} for {url}"
            raise ConfigError(IMAP_PASSWORD_VARIABLE, message)
        where = f"imaps://{host}:{port}"
        try:
            conn = imaplib.IMAP4_SSL(
                host, port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
            )
        except (OSError, ssl.SSLError) as err:
            message = f"cannot connect ({err})"
            raise BounceError(where, message) from err
        try:
            conn.login(user, password)
            _refresh_capabilities(conn)  # MOVE and UIDPLUS are announced after login
            kind, _data = conn.select(_quote(folder))
            if kind != "OK":
                message = f"no folder {folder!r} for {user}"
                raise BounceError(where, message)
        except (imaplib.IMAP4.error, OSError) as err:
            with contextlib.suppress(Exception):
                conn.logout()
            message = f"{user}: {err}"
            raise BounceError(where, message) from err
        return cls(conn, f"imap:{user}@{host}/{folder}", processed)

    def items(self) -> Iterator[Item]:
        kind, data = self.conn.uid("SEARCH", "ALL")
        if kind != "OK":
            raise BounceError(self.description, f"SEARCH failed ({data!r})")
        for uid in (data[0] or b"").split():
            kind, fetched = self.conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            body = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if kind != "OK" or not isinstance(body, bytes):
                logger.warning("%s: UID %s could not be fetched", self.description, uid.decode())
                continue
            yield Item(uid.decode(), f"UID {uid.decode()}", body)

    def move(self, items: list[Item]) -> None:
        if not items:
            return
        self._create_target()
        can_move = "MOVE" in self.conn.capabilities
        for item in items:
            if can_move:
                kind, data = self.conn.uid("MOVE", item.ref, _quote(self.processed))
            else:
                kind, data = self._copy_and_expunge(item.ref)
            if kind != "OK":
                message = f"UID {item.ref} not moved to {self.processed!r} ({data!r})"
                raise BounceError(self.description, message)

    def _copy_and_expunge(self, uid: str) -> tuple[str, list[object]]:
        if "UIDPLUS" not in self.conn.capabilities:
            # A plain EXPUNGE would remove every \Deleted message, not this one alone.
            message = "the server offers neither MOVE nor UIDPLUS: cannot move one message"
            raise BounceError(self.description, message)
        kind, data = self.conn.uid("COPY", uid, _quote(self.processed))
        if kind != "OK":
            return kind, data
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        result: tuple[str, list[object]] = self.conn.uid("EXPUNGE", uid)  # this UID only
        return result

    def _create_target(self) -> None:
        if self.created:
            return
        kind, _data = self.conn.create(_quote(self.processed))
        if kind != "OK":  # usually: it exists already
            logger.debug("%s: CREATE %s: %s", self.description, self.processed, kind)
        self.created = True

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError, socket.timeout):
            self.conn.close()
            self.conn.logout()


def _refresh_capabilities(conn: imaplib.IMAP4_SSL) -> None:
    kind, data = conn.capability()
    if kind == "OK" and data and isinstance(data[-1], bytes):
        conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())


def parse_imap_url(url: str) -> tuple[str, str, int, str]:
    """`imaps://user@host[:port]/FOLDER` → (user, host, port, folder); port 993, folder INBOX.

    :raises ConfigError: for another scheme, a missing user or host, or a password in the URL.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or 993
    except ValueError:
        port = 0
    if parts.scheme != "imaps" or not parts.hostname or not parts.username or not port:
        message = (
            f"expected imaps://user@host[:port]/FOLDER (TLS only; the password in "
            f"{IMAP_PASSWORD_VARIABLE}) ({url!r})"
        )
        raise ConfigError(_SOURCE, message)
    if parts.password:
        message = f"must not hold a password: put it in {IMAP_PASSWORD_VARIABLE} ({url!r})"
        raise ConfigError(_SOURCE, message)
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return unquote(parts.username), parts.hostname, port, folder


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
