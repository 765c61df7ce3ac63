"""The command line: exit codes, one-line errors, summaries."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest
import yaml
from support.smtp_server import Faults, SmtpServer

from publisher import __version__
from publisher.cli import cli
from publisher.errors import ConfigError
from publisher.store import open_store

COMMANDS = ["build", "check", "new"]
DRAFT_LINE = (
    "it is a draft: to publish it, set `draft: false` in its front matter "
    "(or create it with --publish), then run `publisher build`\n"
)


def _invoke(runner, site_dir: Path, *args: str):
    return runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *args])


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"publisher, version {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert (
        f"Usage: cli {command}" in result.stdout or f"Usage: publisher {command}" in result.stdout
    )
    assert len(result.stdout.splitlines()) > 4


def test_build_then_rebuild(runner, site_dir):
    first = _invoke(runner, site_dir, "build")
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "5 articles loaded (3 published, 1 draft, 1 scheduled), 0 skipped with errors, "
        "18 files written, 0 unchanged\n"
    )
    assert first.stderr == ""
    second = _invoke(runner, site_dir, "build")
    assert second.stdout == (
        "5 articles loaded (3 published, 1 draft, 1 scheduled), 0 skipped with errors, "
        "0 files written, 18 unchanged\n"
    )


def test_bad_article_is_a_warning_unless_strict(runner, site_dir):
    (site_dir / "content" / "2024-02-02-broken.md").write_text(
        "---\ntitle: Broken\ndate: May 1st\n---\nText\n", encoding="utf-8"
    )
    result = _invoke(runner, site_dir, "build")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: content/2024-02-02-broken.md: date: not an ISO 8601 date ('May 1st'); "
        "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'\n"
    )
    assert ", 1 skipped with errors," in result.stdout
    strict = _invoke(runner, site_dir, "build", "--strict")
    assert strict.exit_code == 1


def test_config_typo_exits_2(runner, make_site):
    site_dir = make_site("typo-in-config")
    result = _invoke(runner, site_dir, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {site_dir / 'publisher.toml'}: [feeds] unknown key 'max_item' "
        "(did you mean 'max_items'?); "
        "known keys: content, formats, max_items, tag_feeds, url, websub_hub\n"
    )
    assert not (site_dir / "feeds").exists()


def test_relative_base_url_exits_2(runner, make_site, monkeypatch):
    site_dir = make_site("relative-base-url")
    monkeypatch.chdir(site_dir)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: publisher.toml: [site] base_url: must be an absolute http(s) URL such as "
        "'https://example.org/' ('relative.example/news')\n"
    )


def test_missing_config(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: publisher.toml: not found (run publisher in a site folder, or pass --config PATH)\n"
    )


def test_missing_content_folder(runner, site_dir):
    for path in (site_dir / "content").iterdir():
        path.unlink()
    (site_dir / "content").rmdir()
    result = _invoke(runner, site_dir, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: content: content folder not found (set [paths] content in publisher.toml)\n"
    )


def test_unwritable_output_folder(runner, site_dir):
    # A file where the output folder should be: mkdir fails even for root.
    (site_dir / "feeds").write_text("not a folder", encoding="utf-8")
    result = _invoke(runner, site_dir, "build")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: feeds: exists but is not a folder; remove it or set [paths] output\n"
    )
    assert (site_dir / "feeds").read_text(encoding="utf-8") == "not a folder"


def test_unwritable_output_file_leaves_the_old_one_whole(runner, site_dir):
    assert _invoke(runner, site_dir, "build").exit_code == 0
    rss = site_dir / "feeds" / "rss.xml"
    before = rss.read_bytes()
    (site_dir / "feeds" / "tags" / "vienna").rename(site_dir / "feeds" / "tags" / "moved")
    (site_dir / "feeds" / "tags" / "vienna").write_text("blocker", encoding="utf-8")
    path = site_dir / "content" / "2020-06-22-vienna-talks.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Arms talks", "Arms control talks"),
        encoding="utf-8",
    )
    result = _invoke(runner, site_dir, "build")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: feeds/tags/vienna/")
    # Files written before the failure are complete, and no temp file is left behind.
    assert rss.read_bytes() != before
    assert b"Arms control talks" in rss.read_bytes()
    assert rss.read_bytes().rstrip().endswith(b"</rss>")
    assert list((site_dir / "feeds").rglob("*.tmp")) == []


def test_check_lists_problems_and_writes_nothing(runner, site_dir):
    (site_dir / "content" / "2024-02-02-broken.md").write_text(
        "---\ndate: 2024-02-02\n---\nText\n", encoding="utf-8"
    )
    result = _invoke(runner, site_dir, "check")
    assert result.exit_code == 1
    assert result.stderr == "error: content/2024-02-02-broken.md: title: missing (required)\n"
    assert result.stdout == "checked publisher.toml and 6 article files: 1 with problems\n"
    assert not (site_dir / "feeds").exists()
    assert not (site_dir / ".publisher").exists()


def test_check_passes_on_a_good_site(runner, site_dir):
    result = _invoke(runner, site_dir, "check")
    assert result.exit_code == 0
    assert result.stdout == "checked publisher.toml and 5 article files: 0 with problems\n"


def test_new_creates_a_dated_draft(runner, site_dir):
    result = _invoke(
        runner, site_dir, "new", 'Talks resume: "round two" in Vienna', "--tag", "vienna"
    )
    assert result.exit_code == 0, result.output
    match = re.fullmatch(
        r"created (content/(\d{4}-\d{2}-\d{2})-talks-resume-round-two-in-vienna\.md)\n"
        + re.escape(DRAFT_LINE),
        result.stdout,
    )
    assert match
    text = (site_dir / match.group(1)).read_text(encoding="utf-8")
    front_matter = yaml.safe_load(text.split("---\n")[1])
    assert front_matter["title"] == 'Talks resume: "round two" in Vienna'
    assert front_matter["date"].startswith(match.group(2) + "T")
    assert front_matter["date"][-6:] in ("+01:00", "+02:00")  # Europe/Vienna
    assert front_matter["tags"] == ["vienna"]
    assert front_matter["draft"] is True
    assert _invoke(runner, site_dir, "check").exit_code == 0
    again = _invoke(runner, site_dir, "new", 'Talks resume: "round two" in Vienna')
    assert again.exit_code == 1
    assert (
        again.stderr
        == f"error: {match.group(1)}: already exists; choose another title or edit that file\n"
    )


def test_new_gives_the_article_an_explicit_id_that_the_build_keeps(runner, site_dir):
    """Identity written into the file: no rename, retitle or rewrite can lose it."""
    result = _invoke(runner, site_dir, "new", "Talks resume in Vienna", "--publish")
    assert result.exit_code == 0, result.output
    path = next((site_dir / "content").glob("*-talks-resume-in-vienna.md"))
    front_matter = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
        front_matter["id"],
    )
    other = _invoke(runner, site_dir, "new", "Another article", "--publish")
    assert other.exit_code == 0, other.output
    other_path = next((site_dir / "content").glob("*-another-article.md"))
    other_id = yaml.safe_load(other_path.read_text(encoding="utf-8").split("---\n")[1])["id"]
    assert other_id != front_matter["id"]
    assert _invoke(runner, site_dir, "build").exit_code == 0
    feed = json.loads((site_dir / "feeds" / "feed.json").read_text(encoding="utf-8"))
    ids = {item["title"]: item["id"] for item in feed["items"]}
    assert ids["Talks resume in Vienna"] == front_matter["id"]


def test_build_and_check_warn_of_markup_removed_from_a_title(runner, site_dir):
    path = site_dir / "content" / "2021-03-04-observers.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "title: Observers find an orderly vote",
            "title: Observers find an orderly vote <script>alert(1)</script>",
        ),
        encoding="utf-8",
    )
    warning = (
        "warning: content/2021-03-04-observers.md: title: HTML tags removed, it is plain text "
        "('Observers find an orderly vote <script>alert(1)</script>' became "
        "'Observers find an orderly vote')\n"
    )
    built = _invoke(runner, site_dir, "build")
    assert built.exit_code == 0
    assert built.stderr == warning
    checked = _invoke(runner, site_dir, "check")
    assert (checked.exit_code, checked.stderr) == (0, warning)
    for name in ("rss.xml", "atom.xml", "feed.json"):
        assert "alert(1)" not in (site_dir / "feeds" / name).read_text(encoding="utf-8")


def test_new_with_publish_says_only_what_it_created(runner, site_dir):
    result = _invoke(runner, site_dir, "new", "Ferries resume", "--publish")
    assert result.exit_code == 0, result.output
    (path,) = (site_dir / "content").glob("*-ferries-resume.md")
    assert result.stdout == f"created content/{path.name}\n"
    assert "draft: false" in path.read_text(encoding="utf-8")


def test_new_with_an_unusable_title(runner, site_dir):
    result = _invoke(runner, site_dir, "new", "!!!")
    assert result.exit_code == 2
    assert (
        result.stderr == "error: TITLE: '!!!' has no letters or digits to make a file name from\n"
    )


def test_debug_shows_the_traceback(runner, make_site):
    site_dir = make_site("typo-in-config")
    result = runner.invoke(cli, ["--debug", "--config", str(site_dir / "publisher.toml"), "build"])
    assert isinstance(result.exception, ConfigError)


def test_usage_errors_keep_clicks_exit_code(runner):
    result = runner.invoke(cli, ["publish"])
    assert result.exit_code == 2
    assert "No such command 'publish'" in result.stderr


def _subscribe(runner, site_dir, *addresses):
    for address in addresses:
        result = _invoke(runner, site_dir, "subscribers", "add", address)
        assert result.exit_code == 0, result.output


def test_digest_preview_send_status(runner, site_dir, tmp_path):
    _subscribe(runner, site_dir, "a@example.org", "b@example.org")
    preview = _invoke(runner, site_dir, "digest", "preview")
    assert preview.exit_code == 0, preview.output
    assert preview.stderr == "digest 1: 3 articles; subject: Test Gazette: 3 new articles\n"
    assert "Observers find an orderly vote" in preview.stdout
    out = tmp_path / "preview.html"
    to_file = _invoke(runner, site_dir, "digest", "preview", "--out", str(out))
    assert to_file.exit_code == 0, to_file.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")

    dry = _invoke(runner, site_dir, "digest", "send", "--dry-run")
    assert dry.stdout == "would make digest 1 with 3 article(s) for 2 active subscriber(s)\n"
    assert not (site_dir / "outbox").exists()

    sent = _invoke(runner, site_dir, "digest", "send")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout == (
        "made digest 1 with 3 articles\nsent 2, failed 0, deferred 0, uncertain 0\n"
    )
    assert len(list((site_dir / "outbox").rglob("*.eml"))) == 2
    again = _invoke(runner, site_dir, "digest", "send")
    assert again.stdout == "nothing new since the last digest\n"

    status = _invoke(runner, site_dir, "digest", "status")
    lines = status.stdout.splitlines()
    assert lines[0].split() == [
        "digest",
        "created",
        "articles",
        "sent",
        "pending",
        "uncertain",
        "failed",
    ]
    assert lines[1].split()[0] == "1"
    assert lines[1].split()[3:] == ["3", "2", "0", "0", "0"]


EXAMPLE_UNSUBSCRIBE = "https://gazette.example/news/unsubscribe?token=EXAMPLE"


def test_digest_preview_shows_an_example_unsubscribe_link(runner, site_dir):
    result = _invoke(runner, site_dir, "digest", "preview")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"Unsubscribe: {EXAMPLE_UNSUBSCRIBE}" in lines
    assert "__" not in result.stdout


def test_digest_preview_out_writes_the_html_and_the_text_as_file_txt(runner, site_dir, tmp_path):
    out = tmp_path / "digest.html"
    result = _invoke(runner, site_dir, "digest", "preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    text_path = tmp_path / "digest.html.txt"
    size = len(out.read_bytes())
    assert result.stdout == (
        "digest 1: 3 articles; subject: Test Gazette: 3 new articles\n"
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
    result = _invoke(runner, site_dir, "digest", "preview", "--out", str(tmp_path / "digest.html"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path}/digest.html.txt: cannot write (Is a directory)\n"


def test_digest_test_sends_one_message_and_records_nothing(runner, site_dir):
    result = _invoke(runner, site_dir, "digest", "test", "--to", "Editor@Example.org")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"sent a test digest to Editor@example\.org: stored as "
        r"tests/\d{8}-\d{6}-Editor-at-example\.org-[0-9a-f]{16}\.eml\n",
        result.stdout,
    )
    status = _invoke(runner, site_dir, "digest", "status")
    assert status.stdout == "no digest made yet\n"


def test_digest_test_messages_are_marked_and_never_share_a_message_id(runner, site_dir):
    # Mail providers thread (or drop) messages that share a Message-ID.
    received = []
    for _ in range(2):
        result = _invoke(runner, site_dir, "digest", "test", "--to", "editor@example.org")
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
    result = _invoke(runner, site_dir, "digest", "test", "--to", "editor@")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --to: 'editor@' is not a valid email address")


def test_digest_without_a_sender(runner, make_site):
    site_dir = make_site("relative-base-url")
    config = site_dir / "publisher.toml"
    config.write_text(
        '[site]\ntitle = "No Sender"\nbase_url = "https://x.example/"\n', encoding="utf-8"
    )
    result = _invoke(runner, site_dir, "digest", "send")
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
        sent = _invoke(runner, site_dir, "digest", "send")
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
        result = _invoke(runner, site_dir, "digest", "failures", *args)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout.splitlines() == expected


def test_digest_failures_with_nothing_to_show(runner, site_dir):
    assert _invoke(runner, site_dir, "digest", "failures").stdout == "no digest made yet\n"
    _subscribe(runner, site_dir, "a@example.org")
    assert _invoke(runner, site_dir, "digest", "send").exit_code == 0
    for args, line in (
        ([], "no failed or uncertain deliveries\n"),
        (["1"], "no failed or uncertain deliveries in digest 1\n"),
    ):
        result = _invoke(runner, site_dir, "digest", "failures", *args)
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
        assert _invoke(runner, site_dir, "digest", "send").exit_code == 0
    result = _invoke(runner, site_dir, "digest", "failures", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", stderr)


@pytest.mark.parametrize("bad", ["0", "x", "1.5"])
def test_digest_failures_leaves_a_malformed_number_to_click(runner, site_dir, bad):
    result = _invoke(runner, site_dir, "digest", "failures", bad)
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
    result = _invoke(runner, site_dir, "digest", "failures")
    assert result.stdout.splitlines()[1:] == [
        "     1  a@example.org  failed     2026-11-27 13:00  550 no such\\x1b[2J user\\x9b",
        "     1  b@example.org  uncertain  2026-11-27 13:00  (no reply recorded)",
    ]
