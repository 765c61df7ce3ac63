"""delivery.bounces: the bounce corpus through a Maildir and an mbox (`bounces process`).

The site sent digest 1 to reader1…reader6 (ids 1-6) through its outbox; the
corpus (tests/data/bounces/) answers those deliveries with real tokens.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from support.bounces import BOUNCE_ADDRESS, CORPUS, corpus_message, make_maildir, make_mbox
from support.cli import invoke
from support.clock import NOW

from publisher import tokens
from publisher.config import load_config
from publisher.delivery.bounces import intake
from publisher.delivery.bounces.mailboxes import MaildirFolder
from publisher.store import open_store

READERS = [f"reader{n}@example.org" for n in range(1, 7)]

# What each corpus message does to the site (its report line after the name).
EXPECTED = {
    "arf-complaint": "complaint (reader6@example.org: active→unsubscribed)",
    "exim-hard": "hard bounce (reader2@example.org: active→bounced)",
    "foreign": "hard not attributable, ignored",
    "forged-token": "hard not attributable, ignored",
    "gmail-soft": "soft bounce (reader3@example.org)",
    "outlook-hard": "hard bounce (reader4@example.org: active→bounced)",
    "postfix-hard": "hard bounce (reader1@example.org: active→bounced)",
    "vacation": "auto-reply ignored",
    "yahoo-hard": "hard bounce (reader5@example.org: active→bounced)",
}
LABELS = {
    "arf-complaint": "<2026120108154173.arf.1764576941@yahoo.com>",
    "exim-hard": "<E1vQ3aX-000F2k-2T@relay.example.net>",
    "foreign": "<20261201061000.4Q2kXy2AbCz9vNp@mail.example.org>",
    "forged-token": "<20261201060014.4Q2kZZ9yY1z1vAa@mail.example.org>",
    "gmail-soft": "<674cb3f4.050a0220.2d1b3c.9f21.GMR@mx.google.com>",
    "outlook-hard": (
        "<7a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b@AM6PR05MB1234.eurprd05.prod.outlook.com>"
    ),
    "postfix-hard": "<20261201060014.4Q2kLm1xZ3z9vJx@mail.example.org>",
    "vacation": "<vacation-8f2a1c@example.org>",
    "yahoo-hard": "<1764568839.61442.yahoo.failure@mta1012.mail.bf1.yahoo.com>",
}
MALFORMED_LINE = (
    "malformed → malformed, left in place: a multipart/report without its boundary "
    "(StartBoundaryNotFoundDefect)"
)


def _secret(site_dir: Path) -> bytes:
    return tokens.load_secret(site_dir / ".publisher")


def _corpus(site_dir: Path) -> dict[str, bytes]:
    secret = _secret(site_dir)
    return {path.stem: corpus_message(path.name, secret) for path in sorted(CORPUS.glob("*.eml"))}


def _ledger(site_dir: Path) -> list[tuple]:
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store:
        return store.conn.execute(
            "SELECT subscriber_id, status, bounce FROM deliveries WHERE digest_id = 1 "
            "ORDER BY subscriber_id"
        ).fetchall()


def _statuses(site_dir: Path) -> list[str]:
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store:
        return [s.status for s in store.iter_subscribers()]


def _report(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()[:-1]  # the last is the summary
    by_label = {label: name for name, label in LABELS.items()}
    report = {}
    for line in lines:
        label, _arrow, what = line.partition(" → ")
        report[by_label.get(label, label)] = what
    return report


def _expected_report() -> dict[str, str]:
    return {**EXPECTED, "malformed": MALFORMED_LINE.partition(" → ")[2]}


def test_the_corpus_from_a_maildir_is_applied_once_and_moved(runner, sent_site):
    maildir = make_maildir(sent_site / "Maildir", _corpus(sent_site))
    result = invoke(runner, sent_site, "bounces", "process", str(maildir))
    assert (result.exit_code, result.stderr) == (0, "")
    assert _report(result.stdout) == _expected_report()
    assert result.stdout.splitlines()[-1] == (
        f"maildir:{maildir}: 1 auto-reply, 1 complaint, 4 hard bounce, 1 malformed, "
        "2 not attributable, 1 soft bounce"
    )
    # Read messages moved into the Maildir++ folder .Processed; the malformed one stays.
    assert sorted(p.name for p in (maildir / "new").iterdir()) == ["malformed"]
    moved = sorted(p.name for p in (maildir / ".Processed" / "cur").iterdir())
    assert moved == sorted(f"{name}:2,S" for name in EXPECTED)
    assert _statuses(sent_site) == [
        "bounced", "bounced", "active", "bounced", "bounced", "unsubscribed",
    ]  # fmt: skip
    # The ledger rows stay `sent` (they went out once) and show what came back.
    assert _ledger(sent_site) == [
        (1, "sent", "hard 5.1.1"),
        (2, "sent", "hard 5.1.1"),
        (3, "sent", "soft 4.2.2"),
        (4, "sent", "hard 5.1.10"),
        (5, "sent", "hard"),
        (6, "sent", "complaint"),
    ]

    again = invoke(runner, sent_site, "bounces", "process", str(maildir))
    assert again.stdout == f"{MALFORMED_LINE}\nmaildir:{maildir}: 1 malformed\n"


def test_messages_read_twice_count_once(runner, sent_site):
    corpus = _corpus(sent_site)
    # The same bounce delivered twice (two copies, as a retrying relay leaves them).
    maildir = make_maildir(
        sent_site / "Maildir", {"a": corpus["gmail-soft"], "b": corpus["gmail-soft"]}
    )
    result = invoke(runner, sent_site, "bounces", "process", str(maildir))
    assert result.stdout.splitlines()[:2] == [
        f"{LABELS['gmail-soft']} → soft bounce (reader3@example.org)",
        f"{LABELS['gmail-soft']} → duplicate (reader3@example.org): counted before, "
        "nothing changed",
    ]
    site = load_config(sent_site / "publisher.toml")
    with open_store(site.state) as store:
        assert store.soft_bounces(3) == 1
        assert store.count_bounce_events() == 1


def test_a_crash_between_commit_and_move_reprocesses_harmlessly(sent_site):
    corpus = _corpus(sent_site)
    maildir = make_maildir(sent_site / "Maildir", {"postfix": corpus["postfix-hard"]})
    site = load_config(sent_site / "publisher.toml")
    rules = intake.IntakeRules(_secret(sent_site), BOUNCE_ADDRESS, 3)

    class Crashing(MaildirFolder):
        def move(self, _items):
            raise KeyboardInterrupt  # the process dies after the commit, before the move

    with open_store(site.state) as store, pytest.raises(KeyboardInterrupt):
        intake.process_folder(store, Crashing(maildir, "Processed"), rules, now=lambda: NOW)
    assert (maildir / "new" / "postfix").exists()  # not moved, not lost
    assert _statuses(sent_site)[0] == "bounced"  # but committed
    lines = []
    with open_store(site.state) as store:
        folder = MaildirFolder(maildir, "Processed")
        tally = intake.process_folder(store, folder, rules, now=lambda: NOW, report=lines.append)
    assert lines == [
        f"{LABELS['postfix-hard']} → duplicate (reader1@example.org): counted before, "
        "nothing changed"
    ]
    assert tally.counts == {"duplicate": 1}
    assert not (maildir / "new" / "postfix").exists()
    with open_store(site.state) as store:
        history = store.subscriber_events(tokens.suppression_key(_secret(sent_site), READERS[0]))
    assert [event.change for event in history] == ["→active", "active→bounced"]


def test_the_corpus_from_an_mbox_is_applied_and_moved_to_its_processed_mbox(runner, sent_site):
    corpus = _corpus(sent_site)
    names = sorted(corpus)
    path = make_mbox(sent_site / "bounces.mbox", [corpus[name] for name in names])
    result = invoke(runner, sent_site, "bounces", "process", str(path), "--move-to", "Done")
    assert (result.exit_code, result.stderr) == (0, "")
    # A message that cannot be read is named by its place in the mbox.
    number = names.index("malformed") + 1
    expected = _expected_report()
    expected[f"message {number}"] = expected.pop("malformed")
    assert _report(result.stdout) == expected
    left = mailbox.mbox(path)
    assert [m["Message-Id"] for m in left] == ["<broken-1@broken.example.net>"]
    done = mailbox.mbox(sent_site / "bounces.mbox.Done")
    moved = sorted(m["Message-ID"] or m["Message-Id"] for m in done)
    assert moved == sorted(LABELS.values())
    assert _statuses(sent_site) == [
        "bounced", "bounced", "active", "bounced", "bounced", "unsubscribed",
    ]  # fmt: skip


def test_soft_bounces_in_a_row_mark_bounced_and_a_delivery_between_breaks_the_row(
    runner, sent_site, now
):
    site = load_config(sent_site / "publisher.toml")
    secret = _secret(sent_site)
    # Digests 2-6 as the ledger would hold them, all sent to reader3 (id 3).
    with open_store(site.state) as store, store.transaction():
        for digest_id in (2, 3, 4, 5, 6):
            store.conn.execute(
                "INSERT INTO digests (id, created_at, watermark, articles) VALUES (?, ?, ?, '[]')",
                (digest_id, now.isoformat(), now.isoformat()),
            )
            store.conn.execute(
                "INSERT INTO deliveries (digest_id, subscriber_id, status, message_id, "
                "updated_at) VALUES (?, 3, 'sent', ?, ?)",
                (digest_id, f"<d{digest_id}@x>", now.isoformat()),
            )
    template = corpus_message("gmail-soft.eml", secret)
    original = tokens.bounce_token(secret, 1, 3).encode()

    def soft(digest_id: int, n: int) -> bytes:
        token = tokens.bounce_token(secret, digest_id, 3).encode()
        return template.replace(original, token).replace(
            b"<674cb3f4.050a0220.2d1b3c.9f21.GMR@mx.google.com>", f"<soft-{n}@google>".encode()
        )

    def process(*messages: bytes) -> list[str]:
        folder = sent_site / f"Maildir{len(list(sent_site.glob('Maildir*')))}"
        make_maildir(folder, {f"m{i}": data for i, data in enumerate(messages)})
        result = invoke(runner, sent_site, "bounces", "process", str(folder))
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()[:-1]

    # Digest 1 and 2 bounce soft; digest 3 went out and did not bounce; 4 and 5 bounce.
    assert process(soft(1, 1), soft(2, 2)) == [
        "<soft-1@google> → soft bounce (reader3@example.org)",
        "<soft-2@google> → soft bounce (reader3@example.org)",
    ]
    assert process(soft(4, 4)) == ["<soft-4@google> → soft bounce (reader3@example.org)"]
    with open_store(site.state) as store:
        assert store.soft_bounces(3) == 1  # digest 3 arrived: the row started again
    assert process(soft(5, 5), soft(5, 6)) == [
        "<soft-5@google> → soft bounce (reader3@example.org)",
        "<soft-6@google> → soft bounce (reader3@example.org)",  # the same digest: not counted
    ]
    with open_store(site.state) as store:
        assert store.soft_bounces(3) == 2
    assert process(soft(6, 7)) == [
        "<soft-7@google> → soft bounce (reader3@example.org: active→bounced)"
    ]
    assert _statuses(sent_site)[2] == "bounced"
    shown = invoke(runner, sent_site, "subscribers", "show", "reader3@example.org")
    assert shown.stdout.splitlines()[-1].endswith(
        "active→bounced  soft bounce 4.2.2 mailbox full (3 of 3 in a row)  "
        f"[mailbox maildir:{sent_site / 'Maildir3'} message <soft-7@google>]"
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("nowhere", "error: SOURCE: no such Maildir or mbox file ('nowhere'); expected a Maildir "
         "path, an mbox file or imaps://user@host[:port]/FOLDER"),
        (".", "error: SOURCE: a folder, but not a Maildir (it has no cur/, new/ and tmp/) ('.')"),
        ("imap://u@h/INBOX", "error: SOURCE: expected imaps://user@host[:port]/FOLDER (TLS only; "
         "the password in PUBLISHER_IMAP_PASSWORD) ('imap://u@h/INBOX')"),
        ("imaps://u:pw@h/INBOX", "error: SOURCE: must not hold a password: put it in "
         "PUBLISHER_IMAP_PASSWORD ('imaps://u:pw@h/INBOX')"),
        ("imaps://u@h/INBOX", "error: PUBLISHER_IMAP_PASSWORD: not set: the password of u on h "
         "for imaps://u@h/INBOX"),
    ],
)  # fmt: skip
def test_a_source_that_cannot_be_read_is_a_usage_error(
    runner, site_dir, monkeypatch, source, error
):
    monkeypatch.chdir(site_dir)
    monkeypatch.delenv("PUBLISHER_IMAP_PASSWORD", raising=False)
    result = invoke(runner, site_dir, "bounces", "process", source)
    assert (result.exit_code, result.stderr) == (2, error + "\n")


def test_without_a_source_or_mailbox_it_says_what_is_missing(runner, site_dir):
    result = invoke(runner, site_dir, "bounces", "process")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: SOURCE: missing: give a mailbox, or set [bounces] mailbox\n",
    )
    bad = invoke(runner, site_dir, "bounces", "process", "x", "--move-to", "../up")
    assert bad.stderr == (
        "error: --move-to: expected a folder name of letters, digits, ' ', '_' or '-' ('../up')\n"
    )
