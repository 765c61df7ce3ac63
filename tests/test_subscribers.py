"""Subscribers: addresses, the secret, tokens, CSV import/export and their commands."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.cli import cli
from publisher.errors import SubscriberError
from publisher.mail.lists import ImportReport, export_csv, import_csv
from publisher.mail.subscribers import (
    add_subscriber,
    normalise_address,
    normalise_name,
    remove_subscriber,
)
from publisher.mail.subscribers import unsubscribe as unsubscribe_token
from publisher.store import open_store
from publisher.tokens import load_secret, make_token, suppression_key

DATA = Path(__file__).parent / "data" / "subscribers"
SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32

BAD_ADDRESSES = [
    (
        "not-an-address",
        "'not-an-address' is not a valid email address (An email address must have an @-sign.)",
    ),
    (
        "a@b",
        "'a@b' is not a valid email address "
        "(The part after the @-sign is not valid. It should have a period.)",
    ),
    ("x@", "'x@' is not a valid email address (There must be something after the @-sign.)"),
    (
        "x@example.org\r\nBcc: y@example.org",
        "'x@example.org\\r\\nBcc: y@example.org' is not a valid email address "
        "(it contains a line break or control character)",
    ),
    (
        "x@example.org\n",
        "'x@example.org\\n' is not a valid email address "
        "(it contains a line break or control character)",
    ),
    ("", "'' is not a valid email address (it is empty)"),
    ("   ", "'   ' is not a valid email address (it is empty)"),
    (
        "Bob <bob@example.org>",
        "'Bob <bob@example.org>' is not a valid email address (A display name and angle "
        "brackets around the email address are not permitted here.)",
    ),
    (
        "a@example.org, b@example.org",
        "'a@example.org, b@example.org' is not a valid email address "
        "(The part after the @-sign contains invalid characters: ',', '@', SPACE.)",
    ),
    (
        "zoë@example.org",
        "'zoë@example.org' is not a valid email address "
        "(Internationalized characters before the @-sign are not supported: 'ë'.)",
    ),
]


# -- fixtures and helpers ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch):
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)


@pytest.fixture
def fixed_now(monkeypatch, now):
    monkeypatch.setattr("publisher.cli._common.now", lambda: now)
    return now


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def csv_copy(tmp_path, monkeypatch):
    """Copy tests/data/subscribers/<name> into tmp_path, chdir there, return its name."""
    monkeypatch.chdir(tmp_path)

    def copy(name: str) -> Path:
        shutil.copyfile(DATA / name, tmp_path / name)
        return Path(name)

    return copy


def _invoke(runner, site_dir: Path, *args: str):
    return runner.invoke(cli, ["--config", str(site_dir / "publisher.toml"), *args])


def _rows(site_dir: Path) -> list[tuple]:
    conn = sqlite3.connect(site_dir / ".publisher" / "state.db")
    try:
        return conn.execute(
            "SELECT email, name, status, hard_failures FROM subscribers ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _dump(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
    finally:
        conn.close()


def _add(store, address, name="", *, now, status="active"):
    with store.transaction():
        subscriber, _ = add_subscriber(store, SECRET, address, name, now=now)
        if status != "active":
            store.set_subscriber_status(subscriber.id, status, now=now)
    return store.get_subscriber(subscriber.id)


# -- addresses and names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ada@example.org", "ada@example.org"),
        ("  ada@example.org ", "ada@example.org"),
        ("Ada@EXAMPLE.ORG", "Ada@example.org"),
        ("juergen@exämple.org", "juergen@xn--exmple-cua.org"),
        ("first.last+news@mail.example.co.uk", "first.last+news@mail.example.co.uk"),
    ],
)
def test_normalise_address(text, expected):
    assert normalise_address(text, "EMAIL") == expected


@pytest.mark.parametrize(("text", "message"), BAD_ADDRESSES)
def test_normalise_address_rejects(text, message):
    with pytest.raises(SubscriberError) as caught:
        normalise_address(text, "people.csv:4")
    assert str(caught.value) == f"people.csv:4: {message}"
    assert caught.value.exit_code == 1


def test_normalise_name():
    assert normalise_name("  Ada \n\t Lovelace ", "EMAIL") == "Ada Lovelace"
    assert normalise_name("", "EMAIL") == ""
    with pytest.raises(SubscriberError) as caught:
        normalise_name("\x1b[31mRed", "EMAIL")
    assert str(caught.value) == "EMAIL: name '\\x1b[31mRed' contains a control character"
    with pytest.raises(SubscriberError) as caught:
        normalise_name("\x9b31mRed", "EMAIL")
    assert str(caught.value) == "EMAIL: name '\\x9b31mRed' contains a control character"
    with pytest.raises(SubscriberError) as caught:
        normalise_name("x" * 201, "EMAIL")
    assert str(caught.value) == "EMAIL: name is longer than 200 characters (201)"


# -- tokens -------------------------------------------------------------------------


def _bad_tokens(secret: bytes, subscriber_id: int, email: str) -> dict[str, str]:
    good = make_token(secret, subscriber_id, email)
    mac = good.split(".", 1)[1]
    changed = ("A" if mac[0] != "A" else "B") + mac[1:]
    return {
        "forged": f"{subscriber_id}.{changed}",
        "truncated": good[:-1],
        "id only": f"{subscriber_id}.",
        "other site": make_token(OTHER_SECRET, subscriber_id, email),
        "non-numeric id": f"ada.{mac}",
        "leading zero": f"0{good}",
        "negative id": f"-{good}",
        "unknown id": make_token(secret, subscriber_id + 1000, email),
        "padded": good + "=",
        "surrounding space": f" {good}",
        "too long": f"{subscriber_id}.{mac}" + "A" * 200,
        "empty": "",
    }


BAD_TOKEN_KINDS = list(_bad_tokens(SECRET, 1, "x@example.org"))


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_unsubscribe_rejects_bad_tokens(store, now, kind):
    ada = _add(store, "ada@example.org", now=now)
    token = _bad_tokens(SECRET, ada.id, ada.email)[kind]
    before = _dump(store.path)
    with pytest.raises(SubscriberError) as caught, store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    assert str(caught.value) == "TOKEN: not a valid unsubscribe token"
    assert _dump(store.path) == before


def test_unsubscribe_is_idempotent(store, now):
    ada = _add(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    with store.transaction():
        first = unsubscribe_token(store, SECRET, token, now=now)
    later = now + timedelta(days=1)
    with store.transaction():
        second = unsubscribe_token(store, SECRET, token, now=later)
    assert first.status == second.status == "unsubscribed"
    assert store.get_subscriber(ada.id) == first
    row = store.conn.execute("SELECT updated_at FROM subscribers WHERE id = ?", (ada.id,))
    assert row.fetchone()[0] == now.isoformat()  # the second call wrote nothing


def test_token_does_not_pass_to_a_reused_id(store, now):
    # SQLite reuses the highest rowid after a delete; the address in the MAC
    # keeps an old link from unsubscribing whoever gets the id next.
    ada = _add(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@example.org", now=now)
    grace = _add(store, "grace@example.org", now=now)
    assert grace.id == ada.id
    with pytest.raises(SubscriberError), store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    assert store.get_subscriber(grace.id) == grace


# -- add and remove ---------------------------------------------------------------


def test_add_outcomes(store, now):
    later = now + timedelta(hours=1)
    with store.transaction():
        ada, outcome = add_subscriber(store, SECRET, "Ada@EXAMPLE.org", " Ada ", now=now)
    assert (ada.email, ada.name, ada.status, ada.created_at, outcome) == (
        "Ada@example.org",
        "Ada",
        "active",
        now,
        "added",
    )
    with store.transaction():
        again, outcome = add_subscriber(store, SECRET, "ada@example.org", "", now=later)
    assert (again, outcome) == (ada, "already subscribed")
    with store.transaction():
        renamed, outcome = add_subscriber(
            store, SECRET, "ada@example.org", "Ada Lovelace", now=later
        )
    assert (renamed.name, outcome) == ("Ada Lovelace", "name updated")


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("unsubscribed", "asked not to receive the digest"),
        ("bounced", "bounced earlier"),
    ],
)
def test_add_refuses_an_address_that_opted_out(store, now, status, why):
    ada = _add(store, "ada@example.org", now=now, status=status)
    before = _dump(store.path)
    with pytest.raises(SubscriberError) as caught, store.transaction():
        add_subscriber(store, SECRET, "ADA@example.org", "Ada", now=now)
    assert str(caught.value) == (
        f"EMAIL: ADA@example.org {why}; skipped (only a sign-up they confirm themselves lifts this)"
    )
    assert _dump(store.path) == before
    assert store.get_subscriber(ada.id).status == status


def test_remove_deletes_the_ledger_rows(store, now):
    ada = _add(store, "ada@example.org", now=now)
    grace = _add(store, "grace@example.org", now=now)
    with store.transaction():
        digest_id = store.insert_digest((), last_seq=0, now=now)
        store.create_deliveries(digest_id, lambda d, s: f"<{d}.{s}@x>", now=now)
    with store.transaction():
        removed = remove_subscriber(store, SECRET, "ADA@example.org", now=now)
    assert removed == ada
    assert store.get_subscriber(ada.id) is None
    deliveries = store.conn.execute("SELECT subscriber_id FROM deliveries").fetchall()
    assert deliveries == [(grace.id,)]


def _suppressions(store) -> list[tuple[str, str]]:
    return store.conn.execute("SELECT key, reason FROM suppressions ORDER BY key").fetchall()


@pytest.mark.parametrize(
    ("status", "reason"),
    [("active", "removed"), ("unsubscribed", "unsubscribed"), ("bounced", "bounced")],
)
def test_remove_keeps_a_suppression_with_the_reason(store, now, status, reason):
    # Rows set by hand: as in a database from before suppressions existed.
    _add(store, "ada@example.org", now=now, status=status)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@example.org", now=now)
    assert _suppressions(store) == [(suppression_key(SECRET, "ada@example.org"), reason)]


def test_unsubscribe_writes_the_suppression_and_remove_keeps_its_reason(store, now):
    ada = _add(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    with store.transaction():
        unsubscribe_token(store, SECRET, token, now=now)
    key = suppression_key(SECRET, "ada@example.org")
    assert _suppressions(store) == [(key, "unsubscribed")]
    with store.transaction():
        unsubscribe_token(store, SECRET, token, now=now + timedelta(days=1))  # again: no change
        remove_subscriber(store, SECRET, "ada@example.org", now=now + timedelta(days=2))
    assert store.conn.execute("SELECT * FROM suppressions").fetchall() == [
        (key, "unsubscribed", now.isoformat())
    ]


def test_a_suppressed_address_is_refused_whatever_its_spelling(store, now):
    _add(store, "Ada@example.org", now=now)
    with store.transaction():
        remove_subscriber(store, SECRET, "ada@EXAMPLE.org", now=now)
    for spelling in ("Ada@example.org", "ada@example.org", "ADA@example.ORG"):
        with pytest.raises(SubscriberError) as caught:
            add_subscriber(store, SECRET, spelling, "", now=now)
        assert "asked not to receive the digest; skipped" in str(caught.value)
    assert list(store.iter_subscribers()) == []


def test_remove_unknown(store, now):
    _add(store, "ada@example.org", now=now)
    with pytest.raises(SubscriberError) as caught:
        remove_subscriber(store, SECRET, "grace@example.org", now=now)
    assert str(caught.value) == "EMAIL: no subscriber has the address 'grace@example.org'"


# -- CSV import and export ----------------------------------------------------------

MIXED_PROBLEMS = (
    "mixed.csv:3: 'not-an-address' is not a valid email address "
    "(An email address must have an @-sign.)",
    "mixed.csv:4: 'bea@b' is not a valid email address "
    "(The part after the @-sign is not valid. It should have a period.)",
    "mixed.csv:6: duplicate of line 2 ('ADA@example.org')",
    "mixed.csv:7: '' is not a valid email address (it is empty)",
    "mixed.csv:11: duplicate of line 8 ('carl@example.org')",
    "mixed.csv:12: 'eve@example.org\\nBcc: mallory@example.org' is not a valid email address "
    "(it contains a line break or control character)",
    "mixed.csv:14: '' is not a valid email address (it is empty)",
)


def test_import_reports_bad_rows_and_imports_the_good(store, now, csv_copy):
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("mixed.csv"), now=now)
    assert report == ImportReport(3, 0, 0, MIXED_PROBLEMS)
    assert [(s.email, s.name, s.status) for s in store.iter_subscribers()] == [
        ("ada@example.org", "Ada Lovelace", "active"),
        ("carl@example.org", "Line break", "active"),
        ("dora@example.org", "Dora", "active"),
    ]


def test_import_never_resubscribes(store, now, csv_copy):
    _add(store, "active@example.org", "Old name", now=now)
    _add(store, "gone@example.org", now=now, status="unsubscribed")
    _add(store, "bounced@example.org", now=now, status="bounced")
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("known.csv"), now=now)
    assert report == ImportReport(
        added=1,
        already_present=1,
        skipped_unsubscribed=2,
        skipped_rows=(
            "known.csv:3: GONE@example.org asked not to receive the digest; skipped",
            "known.csv:4: bounced@example.org bounced earlier; skipped",
        ),
    )
    assert [(s.email, s.name, s.status) for s in store.iter_subscribers()] == [
        ("active@example.org", "Old name", "active"),
        ("gone@example.org", "", "unsubscribed"),
        ("bounced@example.org", "", "bounced"),
        ("new@example.org", "N", "active"),
    ]


def test_import_bom_crlf_semicolons(store, now, csv_copy):
    path = csv_copy("bom-crlf-semicolon.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data  # the fixture must keep its line ends
    with store.transaction():
        report = import_csv(store, SECRET, path, now=now)
    assert report == ImportReport(
        2,
        0,
        0,
        (
            "bom-crlf-semicolon.csv:3: 'zoë@example.org' is not a valid email address "
            "(Internationalized characters before the @-sign are not supported: 'ë'.)",
        ),
    )
    assert [(s.email, s.name) for s in store.iter_subscribers()] == [
        ("ada@example.org", "Ada Lovelace"),
        ("juergen@xn--exmple-cua.org", "Jürgen Müller"),
    ]


def test_import_header_only(store, now, csv_copy):
    with store.transaction():
        assert import_csv(store, SECRET, csv_copy("header-only.csv"), now=now) == ImportReport(
            0, 0, 0
        )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "wrong-header.csv",
            "wrong-header.csv: the header row has no 'email' column (found 'Address', "
            "'Full name'); expected 'email' and optionally 'name', e.g. 'email,name'",
        ),
        (
            "no-header.csv",
            "no-header.csv: the header row has no 'email' column (found 'ada@example.org', "
            "'Ada'); expected 'email' and optionally 'name', e.g. 'email,name' "
            "(the first row looks like data: add a header row)",
        ),
        (
            "empty.csv",
            "empty.csv: is empty; expected a header row with an 'email' column, e.g. 'email,name'",
        ),
        (
            "latin-1.csv",
            "latin-1.csv:3: not UTF-8 (byte 0xeb at offset 49); "
            "save the file as UTF-8 CSV and import it again",
        ),
        ("missing.csv", "missing.csv: file not found"),
    ],
)
def test_import_refuses_unusable_files(store, now, csv_copy, name, message):
    path = csv_copy(name) if (DATA / name).exists() else Path(name)
    with pytest.raises(SubscriberError) as caught, store.transaction():
        import_csv(store, SECRET, path, now=now)
    assert str(caught.value) == message
    assert list(store.iter_subscribers()) == []


def test_import_a_folder(store, now, tmp_path):
    with pytest.raises(SubscriberError) as caught:
        import_csv(store, SECRET, tmp_path, now=now)
    assert str(caught.value) == f"{tmp_path}: is a folder, not a CSV file"


def test_import_control_characters_and_overlong_fields(store, now, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes(b"email\nada@example.org\nbad\0row\n")
    report = import_csv(store, SECRET, path, now=now)
    assert report.problems == (
        f"{path}:3: 'bad\\x00row' is not a valid email address "
        "(it contains a line break or control character)",
    )
    path.write_bytes(b"email\nada@example.org\n" + b"x" * 200_000 + b"\n")
    with pytest.raises(SubscriberError) as caught:
        import_csv(store, SECRET, path, now=now)
    assert str(caught.value) == (
        f"{path}:3: not a readable CSV file (field larger than field limit (131072))"
    )


def test_export_streams_every_subscriber(store, now):
    _add(store, "ada@example.org", 'Ada "The Countess", Lovelace', now=now)
    _add(store, "gone@example.org", now=now, status="unsubscribed")
    stream = io.StringIO()
    assert export_csv(store, stream) == 2
    assert stream.getvalue() == (
        "email,name,status,created_at\n"
        f'ada@example.org,"Ada ""The Countess"", Lovelace",active,{now.isoformat()}\n'
        f"gone@example.org,,unsubscribed,{now.isoformat()}\n"
    )


def test_export_then_import_round_trips(tmp_path, now):
    with open_store(tmp_path / "a.db") as first:
        _add(first, "ada@example.org", "Ada, Countess of Lovelace", now=now)
        _add(first, "grace@example.org", "Grace", now=now, status="unsubscribed")
        with (tmp_path / "out.csv").open("w", encoding="utf-8", newline="") as stream:
            export_csv(first, stream)
    with open_store(tmp_path / "b.db") as second:
        with second.transaction():
            report = import_csv(second, SECRET, tmp_path / "out.csv", now=now)
        assert report == ImportReport(1, 0, 1)
        assert [(s.email, s.name, s.status) for s in second.iter_subscribers()] == [
            ("ada@example.org", "Ada, Countess of Lovelace", "active"),
            ("grace@example.org", "Grace", "unsubscribed"),
        ]


def test_import_honours_a_status_column(store, now, csv_copy):
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("exported.csv"), now=now)
    assert report == ImportReport(
        2, 0, 2, ("exported.csv:6: status 'paused' is not one of active, unsubscribed, bounced",)
    )
    assert [(s.email, s.status) for s in store.iter_subscribers()] == [
        ("ada@example.org", "active"),
        ("gone@example.org", "unsubscribed"),
        ("bounced@example.org", "bounced"),
        ("empty@example.org", "active"),
    ]
    with store.transaction():  # the recorded opt-outs hold against a plain list too
        report = import_csv(store, SECRET, csv_copy("known.csv"), now=now)
    assert report == ImportReport(
        added=2,
        already_present=0,
        skipped_unsubscribed=2,
        skipped_rows=(
            "known.csv:3: GONE@example.org asked not to receive the digest; skipped",
            "known.csv:4: bounced@example.org bounced earlier; skipped",
        ),
    )


# -- the commands ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["subscribers"], "Usage: cli subscribers"),
        (["subscribers", "add"], "Usage: cli subscribers add"),
        (["subscribers", "remove"], "Usage: cli subscribers remove"),
        (["subscribers", "list"], "Usage: cli subscribers list"),
        (["subscribers", "import"], "Usage: cli subscribers import"),
        (["subscribers", "export"], "Usage: cli subscribers export"),
        (["unsubscribe"], "Usage: cli unsubscribe"),
    ],
)
def test_every_command_has_help_with_an_example(runner, args, usage):
    result = runner.invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith(usage)
    assert "Example" in result.stdout


def test_cli_add_remove(runner, site_dir):
    result = _invoke(runner, site_dir, "subscribers", "add", "Ada@EXAMPLE.org", "--name", "Ada")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "added Ada@example.org\n", "")
    result = _invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    assert result.stdout == "Ada@example.org is already subscribed\n"
    result = _invoke(runner, site_dir, "subscribers", "add", "ada@example.org", "--name", "A L")
    assert result.stdout == "name updated Ada@example.org\n"
    assert _rows(site_dir) == [("Ada@example.org", "A L", "active", 0)]
    result = _invoke(runner, site_dir, "subscribers", "remove", "ada@example.org")
    assert (result.exit_code, result.stdout) == (0, "removed Ada@example.org\n")
    assert _rows(site_dir) == []
    result = _invoke(runner, site_dir, "subscribers", "remove", "ada@example.org")
    assert result.exit_code == 1
    assert result.stderr == "error: EMAIL: no subscriber has the address 'ada@example.org'\n"


@pytest.mark.parametrize(("text", "message"), BAD_ADDRESSES)
def test_cli_add_rejects_bad_addresses(runner, site_dir, text, message):
    result = _invoke(runner, site_dir, "subscribers", "add", text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: EMAIL: {message}\n"
    assert _rows(site_dir) == []


def test_cli_list(runner, site_dir, fixed_now):
    assert _invoke(runner, site_dir, "subscribers", "list").stdout == "no subscribers\n"
    for args in (
        ["ada@example.org", "--name", "Ada Lovelace"],
        ["grace@example.org"],
        ["taro@example.org", "--name", "山田太郎"],
    ):
        assert _invoke(runner, site_dir, "subscribers", "add", *args).exit_code == 0
    with open_store(site_dir / ".publisher" / "state.db") as store, store.transaction():
        store.set_subscriber_status(2, "unsubscribed", now=fixed_now)
    result = _invoke(runner, site_dir, "subscribers", "list")
    assert result.exit_code == 0
    assert result.stdout == (
        "email              name          status        since\n"
        "ada@example.org    Ada Lovelace  active        2026-11-27\n"
        "grace@example.org                unsubscribed  2026-11-27\n"
        "taro@example.org   山田太郎      active        2026-11-27\n"
    )
    result = _invoke(runner, site_dir, "subscribers", "list", "--status", "unsubscribed")
    assert result.stdout == (
        "email              name  status        since\n"
        "grace@example.org        unsubscribed  2026-11-27\n"
    )
    result = _invoke(runner, site_dir, "subscribers", "list", "--status", "bounced")
    assert result.stdout == "no bounced subscribers\n"
    result = _invoke(runner, site_dir, "subscribers", "list", "--status", "gone")
    assert result.exit_code == 2


def test_cli_import(runner, site_dir, csv_copy):
    result = _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("mixed.csv")))
    assert result.exit_code == 0
    assert result.stderr == "".join(f"warning: {line}\n" for line in MIXED_PROBLEMS)
    assert result.stdout == (
        "imported 3 subscribers: 0 already present, "
        "0 unsubscribed or bounced earlier and skipped, 7 bad rows\n"
    )
    assert _rows(site_dir) == [
        ("ada@example.org", "Ada Lovelace", "active", 0),
        ("carl@example.org", "Line break", "active", 0),
        ("dora@example.org", "Dora", "active", 0),
    ]
    again = _invoke(runner, site_dir, "subscribers", "import", "mixed.csv")
    assert again.exit_code == 0
    assert again.stdout == (
        "imported 0 subscribers: 3 already present, "
        "0 unsubscribed or bounced earlier and skipped, 7 bad rows\n"
    )
    assert len(_rows(site_dir)) == 3


def test_cli_import_skips_the_unsubscribed(runner, site_dir, csv_copy, now):
    with open_store(site_dir / ".publisher" / "state.db") as store:
        _add(store, "active@example.org", now=now)
        _add(store, "gone@example.org", now=now, status="unsubscribed")
        _add(store, "bounced@example.org", now=now, status="bounced")
    result = _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("known.csv")))
    assert (result.exit_code, result.stderr) == (
        0,
        "warning: known.csv:3: GONE@example.org asked not to receive the digest; skipped\n"
        "warning: known.csv:4: bounced@example.org bounced earlier; skipped\n",
    )
    assert result.stdout == (
        "imported 1 subscriber: 1 already present, "
        "2 unsubscribed or bounced earlier and skipped, 0 bad rows\n"
    )
    assert [row[2] for row in _rows(site_dir)] == ["active", "unsubscribed", "bounced", "active"]


def test_cli_import_with_only_bad_rows_exits_1(runner, site_dir, csv_copy):
    result = _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("all-bad.csv")))
    assert result.exit_code == 1
    assert result.stderr == (
        "warning: all-bad.csv:2: 'not-an-address' is not a valid email address "
        "(An email address must have an @-sign.)\n"
        "warning: all-bad.csv:3: 'x@' is not a valid email address "
        "(There must be something after the @-sign.)\n"
    )
    assert result.stdout == (
        "imported 0 subscribers: 0 already present, "
        "0 unsubscribed or bounced earlier and skipped, 2 bad rows\n"
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (
            "wrong-header.csv",
            "error: wrong-header.csv: the header row has no 'email' column (found 'Address', "
            "'Full name'); expected 'email' and optionally 'name', e.g. 'email,name'\n",
        ),
        (
            "latin-1.csv",
            "error: latin-1.csv:3: not UTF-8 (byte 0xeb at offset 49); "
            "save the file as UTF-8 CSV and import it again\n",
        ),
        ("missing.csv", "error: missing.csv: file not found\n"),
    ],
)
def test_cli_import_unusable_file(runner, site_dir, csv_copy, name, error):
    if (DATA / name).exists():
        csv_copy(name)
    result = _invoke(runner, site_dir, "subscribers", "import", name)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", error)
    assert _rows(site_dir) == []


def test_cli_export(runner, site_dir, csv_copy, fixed_now):
    _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv")))
    created = fixed_now.isoformat()
    expected = (
        "email,name,status,created_at\n"
        f"ada@example.org,Ada Lovelace,active,{created}\n"
        f"Grace@example.org,Grace Hopper,active,{created}\n"
        f"alan@example.org,,active,{created}\n"
    )
    result = _invoke(runner, site_dir, "subscribers", "export")
    assert (result.exit_code, result.stdout, result.stderr) == (0, expected, "")
    result = _invoke(runner, site_dir, "subscribers", "export", "--out", "backup.csv")
    assert (result.exit_code, result.stdout) == (0, "exported 3 subscribers to backup.csv\n")
    assert Path("backup.csv").read_text(encoding="utf-8") == expected
    assert [p.name for p in Path().iterdir() if p.name.startswith(".")] == []  # no temp file
    result = _invoke(runner, site_dir, "subscribers", "export", "--out", "no/such/dir.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no/such/dir.csv: cannot write the export (")


def test_cli_unsubscribe(runner, site_dir):
    _invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    secret = load_secret(site_dir / ".publisher")
    token = make_token(secret, 1, "ada@example.org")
    for _ in range(2):  # idempotent
        result = _invoke(runner, site_dir, "unsubscribe", token)
        assert (result.exit_code, result.stdout, result.stderr) == (
            0,
            "unsubscribed ada@example.org\n",
            "",
        )
        assert _rows(site_dir) == [("ada@example.org", "", "unsubscribed", 0)]


def test_cli_unsubscribe_with_the_environment_secret(runner, site_dir, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "a secret of some length")
    _invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    token = make_token(b"a secret of some length", 1, "ada@example.org")
    assert _invoke(runner, site_dir, "unsubscribe", token).exit_code == 0
    assert not (site_dir / ".publisher" / "secret").exists()
    monkeypatch.delenv("PUBLISHER_SECRET")
    result = _invoke(runner, site_dir, "unsubscribe", token)  # now the file secret applies
    assert result.stderr == "error: TOKEN: not a valid unsubscribe token\n"


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_cli_unsubscribe_rejects_bad_tokens(runner, site_dir, kind):
    _invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    secret = load_secret(site_dir / ".publisher")
    token = _bad_tokens(secret, 1, "ada@example.org")[kind]
    before = _dump(site_dir / ".publisher" / "state.db")
    result = _invoke(runner, site_dir, "unsubscribe", "--", token)  # "--": tokens may start with -
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: TOKEN: not a valid unsubscribe token\n",
    )
    assert _dump(site_dir / ".publisher" / "state.db") == before


def test_secret_file_made_by_the_cli_is_private(runner, site_dir):
    _invoke(runner, site_dir, "unsubscribe", "1." + "A" * 43)
    mode = os.stat(site_dir / ".publisher" / "secret").st_mode
    assert stat.S_IMODE(mode) == 0o600


# -- suppression: a removal or an opt-out outlives the subscriber row --------------

REFUSED = "asked not to receive the digest; skipped"
BOUNCED = "bounced earlier; skipped"
ONLY_THEY = "(only a sign-up they confirm themselves lifts this)"


def _all_cells(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table in the database file, by table."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
    finally:
        conn.close()


def test_cli_remove_then_import_the_old_csv_skips_them(runner, site_dir, csv_copy):
    assert (
        _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv"))).exit_code == 0
    )
    result = _invoke(runner, site_dir, "subscribers", "remove", "grace@example.org")
    assert (result.exit_code, result.stdout) == (0, "removed Grace@example.org\n")
    again = _invoke(runner, site_dir, "subscribers", "import", "good.csv")
    assert (again.exit_code, again.stderr) == (
        0,
        f"warning: good.csv:3: Grace@example.org {REFUSED}\n",
    )
    assert again.stdout == (
        "imported 0 subscribers: 2 already present, "
        "1 unsubscribed or bounced earlier and skipped, 0 bad rows\n"
    )
    assert [row[0] for row in _rows(site_dir)] == ["ada@example.org", "alan@example.org"]


@pytest.mark.parametrize("spelling", ["ada@example.org", "ADA@Example.ORG"])
def test_cli_remove_then_add_is_refused(runner, site_dir, spelling):
    assert _invoke(runner, site_dir, "subscribers", "add", "ada@example.org").exit_code == 0
    assert _invoke(runner, site_dir, "subscribers", "remove", "ada@example.org").exit_code == 0
    result = _invoke(runner, site_dir, "subscribers", "add", spelling, "--name", "Ada")
    normalised = spelling.split("@")[0] + "@example.org"
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: EMAIL: {normalised} {REFUSED} {ONLY_THEY}\n",
    )
    assert _rows(site_dir) == []


@pytest.mark.parametrize(("status", "why"), [("unsubscribed", REFUSED), ("bounced", BOUNCED)])
def test_cli_add_refuses_an_unsubscribed_or_bounced_address(runner, site_dir, now, status, why):
    with open_store(site_dir / ".publisher" / "state.db") as store:
        _add(store, "ada@example.org", now=now, status=status)
    result = _invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: EMAIL: ada@example.org {why} {ONLY_THEY}\n",
    )
    assert _rows(site_dir) == [("ada@example.org", "", status, 0)]


@pytest.mark.parametrize(("status", "why"), [("unsubscribed", REFUSED), ("bounced", BOUNCED)])
def test_cli_an_opt_out_survives_remove(runner, site_dir, csv_copy, now, status, why):
    # A row from before suppressions existed: removing it writes the entry.
    with open_store(site_dir / ".publisher" / "state.db") as store:
        _add(store, "gone@example.org", now=now, status=status)
    assert _invoke(runner, site_dir, "subscribers", "remove", "gone@example.org").exit_code == 0
    assert _rows(site_dir) == []
    result = _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("known.csv")))
    assert (result.exit_code, result.stderr) == (
        0,
        f"warning: known.csv:3: GONE@example.org {why}\n",
    )
    assert result.stdout == (
        "imported 3 subscribers: 0 already present, "
        "1 unsubscribed or bounced earlier and skipped, 0 bad rows\n"
    )
    added = _invoke(runner, site_dir, "subscribers", "add", "gone@example.org")
    assert added.stderr == f"error: EMAIL: gone@example.org {why} {ONLY_THEY}\n"
    assert "gone@example.org" not in [row[0].lower() for row in _rows(site_dir)]


def test_cli_unsubscribe_then_remove_then_import_still_skips(runner, site_dir, csv_copy):
    _invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv")))
    token = make_token(load_secret(site_dir / ".publisher"), 1, "ada@example.org")
    assert _invoke(runner, site_dir, "unsubscribe", token).exit_code == 0
    assert _invoke(runner, site_dir, "subscribers", "remove", "ada@example.org").exit_code == 0
    result = _invoke(runner, site_dir, "subscribers", "import", "good.csv")
    assert result.stderr == f"warning: good.csv:2: ada@example.org {REFUSED}\n"
    assert [row[0] for row in _rows(site_dir)] == ["Grace@example.org", "alan@example.org"]


def test_a_removal_leaves_no_readable_address(runner, site_dir, now):
    database = site_dir / ".publisher" / "state.db"
    _invoke(runner, site_dir, "subscribers", "add", "Ada.Lovelace@Example.org", "--name", "Ada")
    _invoke(runner, site_dir, "subscribers", "add", "grace@example.org")
    with open_store(database) as store, store.transaction():  # a pending sign-up too
        store.conn.execute(
            "INSERT INTO signups (email, name, created_at) VALUES (?, 'Ada', ?)",
            ("ada.lovelace@example.org", now.isoformat()),
        )
        store.conn.execute(
            "INSERT INTO signup_requests (email, client, at, was_sent) VALUES (?, '::1', ?, 1)",
            ("ada.lovelace@example.org", now.isoformat()),
        )
    assert (
        _invoke(runner, site_dir, "subscribers", "remove", "ada.lovelace@example.org").exit_code
        == 0
    )
    tables = _all_cells(database)
    (entry,) = tables["suppressions"]
    assert all("@" not in str(cell) for cell in entry)
    for table, rows in tables.items():
        for row in rows:
            for cell in row:
                assert "ada.lovelace" not in str(cell).lower(), (table, row)
    assert [row[1] for row in tables["subscribers"]] == ["grace@example.org"]
