"""cli.digests: the digest commands, as an operator sees them.

`digest preview`, `send`, `test`, `status` and `failures`.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from support.cli import invoke
from support.mailing import STATUS_HEADER, offer_choices
from support.smtp_server import Faults, SmtpServer

from publisher.config import load_config
from publisher.store import open_store


def _subscribe(runner, site_dir, *addresses):
    for address in addresses:
        result = invoke(runner, site_dir, "subscribers", "add", address)
        assert result.exit_code == 0, result.output


def test_digest_preview_send_status(runner, site_dir, tmp_path):
    _subscribe(runner, site_dir, "a@example.org", "b@example.org")
    preview = invoke(runner, site_dir, "digest", "preview")
    assert preview.exit_code == 0, preview.output
    assert preview.stderr == (
        "digest 1 (everything · weekly on monday at 07:00): 3 articles; "
        "subject: Test Gazette: 3 new articles\n"
    )
    assert "Observers find an orderly vote" in preview.stdout
    out = tmp_path / "preview.html"
    to_file = invoke(runner, site_dir, "digest", "preview", "--out", str(out))
    assert to_file.exit_code == 0, to_file.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")

    dry = invoke(runner, site_dir, "digest", "send", "--dry-run")
    assert dry.stdout == "would make digest 1 with 3 article(s) for 2 active subscriber(s)\n"
    assert not (site_dir / "outbox").exists()

    sent = invoke(runner, site_dir, "digest", "send")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout == (
        "made digest 1 with 3 articles\nsent 2, failed 0, deferred 0, uncertain 0\n"
    )
    assert len(list((site_dir / "outbox").rglob("*.eml"))) == 2
    again = invoke(runner, site_dir, "digest", "send")
    assert again.stdout == "nothing new since the last digest\n"

    status = invoke(runner, site_dir, "digest", "status")
    lines = status.stdout.splitlines()
    assert lines[0].split() == STATUS_HEADER
    assert lines[1].split()[0] == "1"
    assert lines[1].split()[3:10] == ["3", "2", "0", "0", "0", "0", "0"]


EXAMPLE_UNSUBSCRIBE = "https://gazette.example/news/unsubscribe?token=EXAMPLE"
EXAMPLE_PREFERENCES = "https://gazette.example/news/preferences?token=EXAMPLE"


def test_digest_preview_shows_example_unsubscribe_and_preferences_links(runner, site_dir):
    result = invoke(runner, site_dir, "digest", "preview")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"Unsubscribe: {EXAMPLE_UNSUBSCRIBE}" in lines
    assert f"Choose what you receive: {EXAMPLE_PREFERENCES}" in lines
    assert "__" not in result.stdout


def test_digest_preview_out_writes_the_html_and_the_text_as_file_txt(runner, site_dir, tmp_path):
    out = tmp_path / "digest.html"
    result = invoke(runner, site_dir, "digest", "preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    text_path = tmp_path / "digest.html.txt"
    size = len(out.read_bytes())
    assert result.stdout == (
        "digest 1 (everything · weekly on monday at 07:00): 3 articles; "
        "subject: Test Gazette: 3 new articles\n"
        f"wrote {out} ({size / 1024:.1f} KB HTML) and {text_path}\n"
    )
    assert result.stderr == ""
    assert not (tmp_path / "digest.txt").exists()
    html = out.read_text(encoding="utf-8")
    assert f'href="{EXAMPLE_UNSUBSCRIBE}"' in html
    assert "__" not in html
    text = text_path.read_text(encoding="utf-8")
    assert f"Unsubscribe: {EXAMPLE_UNSUBSCRIBE}" in text.splitlines()
    assert "Observers find an orderly vote" in text


def test_digest_preview_out_names_the_text_file_it_cannot_write(runner, site_dir, tmp_path):
    (tmp_path / "digest.html.txt").mkdir()
    result = invoke(runner, site_dir, "digest", "preview", "--out", str(tmp_path / "digest.html"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path}/digest.html.txt: cannot write (Is a directory)\n"


def test_digest_test_sends_one_message_and_records_nothing(runner, site_dir):
    result = invoke(runner, site_dir, "digest", "test", "--to", "Editor@Example.org")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"sent a test digest to Editor@example\.org: stored as "
        r"tests/\d{8}-\d{6}-Editor-at-example\.org-[0-9a-f]{16}\.eml\n",
        result.stdout,
    )
    status = invoke(runner, site_dir, "digest", "status")
    assert status.stdout == "no digest made yet\n"


def test_digest_test_messages_are_marked_and_never_share_a_message_id(runner, site_dir):
    # Mail providers thread (or drop) messages that share a Message-ID.
    received = []
    for _ in range(2):
        result = invoke(runner, site_dir, "digest", "test", "--to", "editor@example.org")
        assert result.exit_code == 0, result.output
        stored = result.stdout.rstrip("\n").rpartition(": stored as ")[2]
        data = (site_dir / "outbox" / stored).read_bytes()
        received.append(email.message_from_bytes(data, policy=email.policy.default))
    ids = [str(message["Message-ID"]) for message in received]
    assert ids[0] != ids[1]
    for message_id in ids:
        assert re.fullmatch(r"<test-[0-9a-f]{16}@gazette\.example>", message_id)
    assert [str(m["Subject"]) for m in received] == ["[Test] Test Gazette: 3 new articles"] * 2


def test_digest_test_refuses_a_bad_address(runner, site_dir):
    result = invoke(runner, site_dir, "digest", "test", "--to", "editor@")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --to: 'editor@' is not a valid email address")


def test_digest_without_a_sender(runner, make_site):
    site_dir = make_site("relative-base-url")
    config = site_dir / "publisher.toml"
    config.write_text(
        '[site]\ntitle = "No Sender"\nbase_url = "https://x.example/"\n', encoding="utf-8"
    )
    result = invoke(runner, site_dir, "digest", "send")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}: [digest] from: missing; digests need a sender such as "
        "'Meridian Briefing <briefing@example.org>' (or set [site] author_email)\n"
    )


# -- digest failures ---------------------------------------------------------------


def _smtp(site_dir, port: int) -> None:
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + f'\n[delivery]\nmethod = "smtp"\nbackoff = 0.01\n\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 5\n',
        encoding="utf-8",
    )


DROPPED = (
    "connection lost after the message was sent and before the server's reply "
    "(Connection unexpectedly closed)"
)


def test_digest_failures_lists_who_failed_and_why(runner, site_dir, monkeypatch, now):
    monkeypatch.setattr("publisher.cli._common.now", lambda: now)
    # d@ is refused at RCPT (a 550), c@'s message is the 2nd DATA and its reply
    # never comes (uncertain); a@ and e@ arrive.
    faults = Faults(
        reject_recipients={"d@example.org": "550 5.1.1 <d@example.org>: no such user"},
        drop_after_store_at={2},
    )
    with SmtpServer(faults) as server:
        _smtp(site_dir, server.port)
        _subscribe(runner, site_dir, "e@example.org", "d@example.org", "c@example.org")
        _subscribe(runner, site_dir, "a.long.address@example.org")
        sent = invoke(runner, site_dir, "digest", "send")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.splitlines()[-1] == "sent 2, failed 1, deferred 0, uncertain 1"
    assert sent.stderr.splitlines()[-1] == (
        "warning: 1 message may or may not have been delivered (the connection dropped before "
        "the server's reply); see `publisher digest failures`, and send them with "
        "--resend-uncertain if they did not arrive"
    )
    header = "digest  address        status     when              reply"
    expected = [
        header,
        f"     1  c@example.org  uncertain  2026-11-27 13:00  {DROPPED}",
        "     1  d@example.org  failed     2026-11-27 13:00  "
        "550 5.1.1 <d@example.org>: no such user",
    ]
    for args in ([], ["1"]):
        result = invoke(runner, site_dir, "digest", "failures", *args)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout.splitlines() == expected


def test_digest_failures_with_nothing_to_show(runner, site_dir):
    assert invoke(runner, site_dir, "digest", "failures").stdout == "no digest made yet\n"
    _subscribe(runner, site_dir, "a@example.org")
    assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    for args, line in (
        ([], "no failed or uncertain deliveries\n"),
        (["1"], "no failed or uncertain deliveries in digest 1\n"),
    ):
        result = invoke(runner, site_dir, "digest", "failures", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, line, "")


@pytest.mark.parametrize(
    ("make_one", "args", "code", "stderr"),
    [
        (False, ["7"], 1, "error: DIGEST: no digest 7 (none made yet)\n"),
        (True, ["7"], 1, "error: DIGEST: no digest 7 (the latest is 1)\n"),
        (True, ["2"], 1, "error: DIGEST: no digest 2 (the latest is 1)\n"),
    ],
)
def test_digest_failures_refuses_an_unknown_digest(runner, site_dir, make_one, args, code, stderr):
    if make_one:
        _subscribe(runner, site_dir, "a@example.org")
        assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    result = invoke(runner, site_dir, "digest", "failures", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", stderr)


@pytest.mark.parametrize("bad", ["0", "x", "1.5"])
def test_digest_failures_leaves_a_malformed_number_to_click(runner, site_dir, bad):
    result = invoke(runner, site_dir, "digest", "failures", bad)
    assert result.exit_code == 2
    assert "Invalid value for '[DIGEST]'" in result.stderr


def test_digest_failures_prints_each_reply_as_one_harmless_line(runner, site_dir, now):
    # A hostile or broken server's reply, and a row a killed run left `sending`.
    _subscribe(runner, site_dir, "a@example.org", "b@example.org")
    with open_store(site_dir / ".publisher" / "state.db") as store, store.transaction():
        digest_id = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(digest_id, lambda d, s: f"<{d}.{s}@x>", now=now)
        store.set_delivery(
            digest_id, 1, "failed", now=now, error="550 no\r\n  such\x1b[2J user\x9b"
        )
        store.set_delivery(digest_id, 2, "sending", now=now)
    result = invoke(runner, site_dir, "digest", "failures")
    assert result.stdout.splitlines()[1:] == [
        "     1  a@example.org  failed     2026-11-27 13:00  550 no such\\x1b[2J user\\x9b",
        "     1  b@example.org  uncertain  2026-11-27 13:00  (no reply recorded)",
    ]


def test_digest_send_no_new_only_helps_and_needs_no_content(runner, site_dir, now):
    # A sending machine has the state and the config, not the articles.
    from publisher.config import load_config
    from publisher.pipelines import digests

    _subscribe(runner, site_dir, "a@example.org", "b@example.org")
    content = site_dir / "content"
    content.rename(site_dir / "elsewhere")
    idle = invoke(runner, site_dir, "digest", "send", "--no-new")
    assert idle.exit_code == 0, idle.output
    assert idle.stdout == "no digest to help send\n"
    assert not (site_dir / "outbox").exists()

    # The builder makes digest 1 and stops before its first message ...
    (site_dir / "elsewhere").rename(content)
    site = load_config(site_dir / "publisher.toml")
    made = digests.send_digests(site, now=lambda: now, should_stop=lambda: True)
    assert made.made == [1]
    assert made.sent == 0
    content.rename(site_dir / "elsewhere")
    # ... and the sender sends it, making none.
    helped = invoke(runner, site_dir, "digest", "send", "--no-new")
    assert helped.exit_code == 0, helped.output
    assert helped.stdout == "resumed digest 1\nsent 2, failed 0, deferred 0, uncertain 0\n"
    assert len(list((site_dir / "outbox").rglob("*.eml"))) == 2
    with open_store(site_dir / ".publisher" / "state.db") as store:
        assert store.unfinished_digests() == []


def test_digest_preview_of_a_segment(runner, site_dir):
    offer_choices(site_dir)
    result = invoke(
        runner, site_dir, "digest", "preview", "--topics", "arms", "--cadence", "daily at 07:00"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("digest 1 (Arms control · daily at 07:00): 1 article;")
    assert "Observers find an orderly vote" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--topics", "sport"),
            "error: --topics: unknown topic 'sport' (topics: arms, asia; or 'everything')",
        ),
        (
            ("--cadence", "hourly"),
            "error: --cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or "
            "'each article' ('hourly')",
        ),
        (
            ("--cadence", "each article"),
            "error: --cadence: 'each article' is not offered ([digest] cadences: "
            "'weekly on monday at 07:00', 'daily at 07:00')",
        ),
    ],
)
def test_digest_preview_names_a_bad_segment(runner, site_dir, args, message):
    offer_choices(site_dir)
    result = invoke(runner, site_dir, "digest", "preview", *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_digest_status_names_each_digests_segment(runner, site_dir, now):
    offer_choices(site_dir)
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store, store.transaction():
        store.insert_subscriber("a@example.org", "", status="active", now=now, topics=("asia",))
        store.insert_subscriber("b@example.org", "", status="active", now=now)
    assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    lines = invoke(runner, site_dir, "digest", "status").stdout.splitlines()
    assert lines[0].split()[-1] == "segment"
    segments = sorted(line.split(None, 10)[10] for line in lines[1:])
    assert segments == [
        "Asia-Pacific · weekly on monday at 07:00",
        "everything · weekly on monday at 07:00",
    ]


def test_digest_failures_count_each_segments_share(runner, site_dir, now):
    offer_choices(site_dir)
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store, store.transaction():
        asia = store.insert_subscriber(
            "a@example.org", "", status="active", now=now, topics=("asia",)
        )
        other = store.insert_subscriber("b@example.org", "", status="active", now=now)
        again = store.insert_subscriber("c@example.org", "", status="active", now=now)
    assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    with open_store(site.state) as store, store.transaction():
        for sid in (asia, other, again):
            rows = store.conn.execute(
                "SELECT digest_id FROM deliveries WHERE subscriber_id = ?", (sid,)
            ).fetchall()
            store.set_delivery(rows[0][0], sid, "failed", now=now, reply="550 5.1.1 no such user")
    result = invoke(runner, site_dir, "digest", "failures")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == [
        "by segment:",
        "  everything · weekly on monday at 07:00: 2 failed",
        "  Asia-Pacific · weekly on monday at 07:00: 1 failed",
    ]
