"""delivery.bounces.mailboxes over IMAP: the corpus through a real Dovecot, TLS verified.

Debian's dovecot-imapd runs in the test's tmp folder with its own config and
a self-signed certificate made here; the client trusts it only through
SSL_CERT_FILE (the system's CA bundle otherwise), so the TLS check is the
one `bounces process` makes against any server.
"""

from __future__ import annotations

import imaplib
import re

import pytest
from support.bounces import CORPUS, corpus_message
from support.cli import invoke
from support.imap_server import PASSWORD, USER, imap_server

from publisher import tokens
from publisher.config import load_config
from publisher.store import open_store

NAMES = ("postfix-hard", "gmail-soft", "arf-complaint", "vacation", "forged-token", "malformed")


def _folder(conn: imaplib.IMAP4_SSL, name: str) -> list[bytes]:
    kind, _ = conn.select(f'"{name}"')
    assert kind == "OK", name
    _kind, data = conn.uid("SEARCH", "ALL")
    ids = []
    for uid in (data[0] or b"").split():
        _kind, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        header = next(part[1] for part in fetched if isinstance(part, tuple))
        match = re.search(rb"<[^>]+>", header)
        ids.append(match.group(0) if match else b"(none)")
    return sorted(ids)


@pytest.mark.sqlite_only
def test_the_corpus_through_a_real_imap_server_is_applied_and_moved(
    runner, sent_site, tmp_path, monkeypatch
):
    secret = tokens.load_secret(sent_site / ".publisher")
    with imap_server(tmp_path / "dovecot") as server:
        client = server.client()
        for name in NAMES:
            data = corpus_message(f"{name}.eml", secret).replace(b"\n", b"\r\n")  # IMAP's CRLF
            kind, _ = client.append("INBOX", None, None, data)
            assert kind == "OK"
        client.logout()
        source = f"imaps://{USER.replace('@', '%40')}@127.0.0.1:{server.port}/INBOX"

        monkeypatch.setenv("PUBLISHER_IMAP_PASSWORD", "wrong")
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        refused = invoke(runner, sent_site, "bounces", "process", source)
        assert refused.exit_code == 1
        assert refused.stderr.startswith(f"error: imaps://127.0.0.1:{server.port}: {USER}: ")

        monkeypatch.delenv("SSL_CERT_FILE")  # the system's CAs do not know this server
        monkeypatch.setenv("PUBLISHER_IMAP_PASSWORD", PASSWORD)
        untrusted = invoke(runner, sent_site, "bounces", "process", source)
        assert untrusted.exit_code == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr

        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        result = invoke(runner, sent_site, "bounces", "process", source)
        assert (result.exit_code, result.stderr) == (0, "")
        lines = result.stdout.splitlines()
        assert lines[-1] == (
            f"imap:{USER}@127.0.0.1/INBOX: 1 auto-reply, 1 complaint, 1 hard bounce, "
            "1 malformed, 1 not attributable, 1 soft bounce"
        )
        assert lines[0].startswith("UID ")  # the malformed message, named by its UID
        assert lines[0].endswith("→ malformed, left in place: a multipart/report without "
                                 "its boundary (StartBoundaryNotFoundDefect)")  # fmt: skip

        check = server.client()
        assert _folder(check, "INBOX") == [b"<broken-1@broken.example.net>"]
        expected = sorted(
            re.search(
                rb"^Message-I[dD]: (<[^>]+>)", (CORPUS / f"{n}.eml").read_bytes(), re.M
            ).group(1)
            for n in NAMES
            if n != "malformed"
        )
        assert _folder(check, "Processed") == expected
        check.logout()

        again = invoke(runner, sent_site, "bounces", "process", source)
        assert again.stdout.splitlines()[-1] == f"imap:{USER}@127.0.0.1/INBOX: 1 malformed"

    site = load_config(sent_site / "publisher.toml")
    with open_store(site.state) as store:
        assert [s.status for s in store.iter_subscribers()] == [
            "bounced", "active", "active", "active", "active", "unsubscribed",
        ]  # fmt: skip
