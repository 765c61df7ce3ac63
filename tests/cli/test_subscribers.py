"""cli.subscribers: the subscriber commands and `unsubscribe`.

`subscribers add|set|remove|list|show|import|export`, the choices of topics and cadence,
and the opt-outs that outlive a removal.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from support.cli import invoke
from support.clock import NOW
from support.paths import SUBSCRIBER_FILES
from support.subscribers import (
    BAD_ADDRESSES,
    BAD_TOKEN_KINDS,
    DEFAULT_CADENCE,
    MIXED_PROBLEMS,
    bad_tokens,
    dump_subscribers,
    make_subscriber,
    offer_choices,
)

from publisher.cli import cli
from publisher.store import open_store
from publisher.tokens import load_secret, make_token

pytestmark = pytest.mark.usefixtures("no_env_secret")


@pytest.fixture
def fixed_now(monkeypatch, now):
    monkeypatch.setattr("publisher.cli._common.now", lambda: now)
    return now


def _rows(site_dir: Path) -> list[tuple]:
    conn = sqlite3.connect(site_dir / ".publisher" / "state.db")
    try:
        return conn.execute(
            "SELECT email, name, status, hard_failures FROM subscribers ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["subscribers"], "Usage: cli subscribers"),
        (["subscribers", "add"], "Usage: cli subscribers add"),
        (["subscribers", "set"], "Usage: cli subscribers set"),
        (["subscribers", "show"], "Usage: cli subscribers show"),
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
    result = invoke(runner, site_dir, "subscribers", "add", "Ada@EXAMPLE.org", "--name", "Ada")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "added Ada@example.org\n", "")
    result = invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    assert result.stdout == "Ada@example.org is already subscribed\n"
    result = invoke(runner, site_dir, "subscribers", "add", "ada@example.org", "--name", "A L")
    assert result.stdout == "name updated Ada@example.org\n"
    assert _rows(site_dir) == [("Ada@example.org", "A L", "active", 0)]
    result = invoke(runner, site_dir, "subscribers", "remove", "ada@example.org")
    assert (result.exit_code, result.stdout) == (0, "removed Ada@example.org\n")
    assert _rows(site_dir) == []
    result = invoke(runner, site_dir, "subscribers", "remove", "ada@example.org")
    assert result.exit_code == 1
    assert result.stderr == "error: EMAIL: no subscriber has the address 'ada@example.org'\n"


@pytest.mark.parametrize(("text", "message"), BAD_ADDRESSES)
def test_cli_add_rejects_bad_addresses(runner, site_dir, text, message):
    result = invoke(runner, site_dir, "subscribers", "add", text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: EMAIL: {message}\n"
    assert _rows(site_dir) == []


def test_cli_list(runner, site_dir, fixed_now):
    assert invoke(runner, site_dir, "subscribers", "list").stdout == "no subscribers\n"
    for args in (
        ["ada@example.org", "--name", "Ada Lovelace"],
        ["grace@example.org"],
        ["taro@example.org", "--name", "山田太郎"],
    ):
        assert invoke(runner, site_dir, "subscribers", "add", *args).exit_code == 0
    with open_store(site_dir / ".publisher" / "state.db") as store, store.transaction():
        store.set_subscriber_status(2, "unsubscribed", now=fixed_now)
    result = invoke(runner, site_dir, "subscribers", "list")
    assert result.exit_code == 0
    rest = f"2026-11-27  everything  {DEFAULT_CADENCE}\n"  # none chose anything
    assert result.stdout == (
        "email              name          status        since       topics      cadence\n"
        f"ada@example.org    Ada Lovelace  active        {rest}"
        f"grace@example.org                unsubscribed  {rest}"
        f"taro@example.org   山田太郎      active        {rest}"
    )
    result = invoke(runner, site_dir, "subscribers", "list", "--status", "unsubscribed")
    assert result.stdout == (
        "email              name  status        since       topics      cadence\n"
        f"grace@example.org        unsubscribed  {rest}"
    )
    result = invoke(runner, site_dir, "subscribers", "list", "--status", "bounced")
    assert result.stdout == "no bounced subscribers\n"
    result = invoke(runner, site_dir, "subscribers", "list", "--status", "gone")
    assert result.exit_code == 2


def test_cli_import(runner, site_dir, csv_copy):
    result = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("mixed.csv")))
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
    again = invoke(runner, site_dir, "subscribers", "import", "mixed.csv")
    assert again.exit_code == 0
    assert again.stdout == (
        "imported 0 subscribers: 3 already present, "
        "0 unsubscribed or bounced earlier and skipped, 7 bad rows\n"
    )
    assert len(_rows(site_dir)) == 3


def test_cli_import_skips_the_unsubscribed(runner, site_dir, csv_copy, now):
    with open_store(site_dir / ".publisher" / "state.db") as store:
        make_subscriber(store, "active@example.org", now=now)
        make_subscriber(store, "gone@example.org", now=now, status="unsubscribed")
        make_subscriber(store, "bounced@example.org", now=now, status="bounced")
    result = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("known.csv")))
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
    result = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("all-bad.csv")))
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
    if (SUBSCRIBER_FILES / name).exists():
        csv_copy(name)
    result = invoke(runner, site_dir, "subscribers", "import", name)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", error)
    assert _rows(site_dir) == []


def test_cli_export(runner, site_dir, csv_copy, fixed_now):
    invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv")))
    created = fixed_now.isoformat()
    expected = (
        "email,name,status,created_at,topics,cadence\n"
        f"ada@example.org,Ada Lovelace,active,{created},,\n"
        f"Grace@example.org,Grace Hopper,active,{created},,\n"
        f"alan@example.org,,active,{created},,\n"
    )
    result = invoke(runner, site_dir, "subscribers", "export")
    assert (result.exit_code, result.stdout, result.stderr) == (0, expected, "")
    result = invoke(runner, site_dir, "subscribers", "export", "--out", "backup.csv")
    assert (result.exit_code, result.stdout) == (0, "exported 3 subscribers to backup.csv\n")
    assert Path("backup.csv").read_text(encoding="utf-8") == expected
    assert [p.name for p in Path().iterdir() if p.name.startswith(".")] == []  # no temp file
    result = invoke(runner, site_dir, "subscribers", "export", "--out", "no/such/dir.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no/such/dir.csv: cannot write the export (")


def test_cli_unsubscribe(runner, site_dir):
    invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    secret = load_secret(site_dir / ".publisher")
    token = make_token(secret, 1, "ada@example.org")
    for _ in range(2):  # idempotent
        result = invoke(runner, site_dir, "unsubscribe", token)
        assert (result.exit_code, result.stdout, result.stderr) == (
            0,
            "unsubscribed ada@example.org\n",
            "",
        )
        assert _rows(site_dir) == [("ada@example.org", "", "unsubscribed", 0)]


def test_cli_unsubscribe_with_the_environment_secret(runner, site_dir, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "a secret of some length")
    invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    token = make_token(b"a secret of some length", 1, "ada@example.org")
    assert invoke(runner, site_dir, "unsubscribe", token).exit_code == 0
    assert not (site_dir / ".publisher" / "secret").exists()
    monkeypatch.delenv("PUBLISHER_SECRET")
    result = invoke(runner, site_dir, "unsubscribe", token)  # now the file secret applies
    assert result.stderr == "error: TOKEN: not a valid unsubscribe token\n"


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_cli_unsubscribe_rejects_bad_tokens(runner, site_dir, kind):
    invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    secret = load_secret(site_dir / ".publisher")
    token = bad_tokens(secret, 1, "ada@example.org")[kind]
    with open_store(site_dir / ".publisher" / "state.db") as store:
        before = dump_subscribers(store)
    result = invoke(runner, site_dir, "unsubscribe", "--", token)  # "--": tokens may start with -
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: TOKEN: not a valid unsubscribe token\n",
    )
    with open_store(site_dir / ".publisher" / "state.db") as store:
        assert dump_subscribers(store) == before


def test_secret_file_made_by_the_cli_is_private(runner, site_dir):
    invoke(runner, site_dir, "unsubscribe", "1." + "A" * 43)
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
        invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv"))).exit_code == 0
    )
    result = invoke(runner, site_dir, "subscribers", "remove", "grace@example.org")
    assert (result.exit_code, result.stdout) == (0, "removed Grace@example.org\n")
    again = invoke(runner, site_dir, "subscribers", "import", "good.csv")
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
    assert invoke(runner, site_dir, "subscribers", "add", "ada@example.org").exit_code == 0
    assert invoke(runner, site_dir, "subscribers", "remove", "ada@example.org").exit_code == 0
    result = invoke(runner, site_dir, "subscribers", "add", spelling, "--name", "Ada")
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
        make_subscriber(store, "ada@example.org", now=now, status=status)
    result = invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
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
        make_subscriber(store, "gone@example.org", now=now, status=status)
    assert invoke(runner, site_dir, "subscribers", "remove", "gone@example.org").exit_code == 0
    assert _rows(site_dir) == []
    result = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("known.csv")))
    assert (result.exit_code, result.stderr) == (
        0,
        f"warning: known.csv:3: GONE@example.org {why}\n",
    )
    assert result.stdout == (
        "imported 3 subscribers: 0 already present, "
        "1 unsubscribed or bounced earlier and skipped, 0 bad rows\n"
    )
    added = invoke(runner, site_dir, "subscribers", "add", "gone@example.org")
    assert added.stderr == f"error: EMAIL: gone@example.org {why} {ONLY_THEY}\n"
    assert "gone@example.org" not in [row[0].lower() for row in _rows(site_dir)]


def test_cli_unsubscribe_then_remove_then_import_still_skips(runner, site_dir, csv_copy):
    invoke(runner, site_dir, "subscribers", "import", str(csv_copy("good.csv")))
    token = make_token(load_secret(site_dir / ".publisher"), 1, "ada@example.org")
    assert invoke(runner, site_dir, "unsubscribe", token).exit_code == 0
    assert invoke(runner, site_dir, "subscribers", "remove", "ada@example.org").exit_code == 0
    result = invoke(runner, site_dir, "subscribers", "import", "good.csv")
    assert result.stderr == f"warning: good.csv:2: ada@example.org {REFUSED}\n"
    assert [row[0] for row in _rows(site_dir)] == ["Grace@example.org", "alan@example.org"]


def test_a_removal_leaves_no_readable_address(runner, site_dir, now):
    database = site_dir / ".publisher" / "state.db"
    invoke(runner, site_dir, "subscribers", "add", "Ada.Lovelace@Example.org", "--name", "Ada")
    invoke(runner, site_dir, "subscribers", "add", "grace@example.org")
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
        invoke(runner, site_dir, "subscribers", "remove", "ada.lovelace@example.org").exit_code == 0
    )
    tables = _all_cells(database)
    (entry,) = tables["suppressions"]
    assert all("@" not in str(cell) for cell in entry)
    for table, rows in tables.items():
        for row in rows:
            for cell in row:
                assert "ada.lovelace" not in str(cell).lower(), (table, row)
    assert [row[1] for row in tables["subscribers"]] == ["grace@example.org"]


def _bounce(site_dir, email, kind, now, *, status="5.1.1"):
    """A bounce or complaint for *email*, as intake applies it (digest 0: no ledger row)."""
    from publisher.delivery.bounces.actions import Bounce, apply_bounce
    from publisher.tokens import bounce_token

    secret = load_secret(site_dir / ".publisher")
    with open_store(site_dir / ".publisher" / "state.db") as store, store.transaction():
        subscriber = store.find_subscriber(email)
        token = bounce_token(secret, 0, subscriber.id)
        bounce = Bounce(kind, f"test {email}", "webhook test event 1", status=status, token=token)
        return apply_bounce(store, secret, bounce, soft_limit=3, now=now)


def test_cli_complained_and_bounced_addresses_are_never_added_again(
    runner, site_dir, csv_copy, fixed_now
):
    for address in ("ada@example.org", "bo@example.org"):
        assert invoke(runner, site_dir, "subscribers", "add", address).exit_code == 0
    assert _bounce(site_dir, "ada@example.org", "complaint", fixed_now).outcome == "complaint"
    assert _bounce(site_dir, "bo@example.org", "hard", fixed_now).outcome == "hard bounce"
    assert invoke(runner, site_dir, "subscribers", "remove", "bo@example.org").exit_code == 0

    refused = [
        invoke(runner, site_dir, "subscribers", "add", a)
        for a in ("Ada@example.org", "bo@example.org")
    ]
    assert [(r.exit_code, r.stderr) for r in refused] == [
        (1, "error: EMAIL: Ada@example.org reported the digest as spam; skipped (only a sign-up "
            "they confirm themselves lifts this)\n"),
        (1, "error: EMAIL: bo@example.org bounced earlier; skipped (only a sign-up they confirm "
            "themselves lifts this)\n"),
    ]  # fmt: skip
    imported = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("returning.csv")))
    assert (imported.exit_code, imported.stderr) == (
        0,
        "warning: returning.csv:2: ada@example.org reported the digest as spam; skipped\n"
        "warning: returning.csv:4: BO@example.org bounced earlier; skipped\n",
    )
    assert [row[:3] for row in _rows(site_dir)] == [
        ("ada@example.org", "", "unsubscribed"),
        ("new@example.org", "New", "active"),
    ]


def test_cli_show_prints_the_status_and_the_whole_history(runner, site_dir, fixed_now):
    assert invoke(runner, site_dir, "subscribers", "add", "ada@example.org").exit_code == 0
    assert invoke(runner, site_dir, "subscribers", "add", "bo@example.org").exit_code == 0
    _bounce(site_dir, "ada@example.org", "soft", fixed_now, status="4.2.2")
    _bounce(site_dir, "bo@example.org", "hard", fixed_now)
    assert invoke(runner, site_dir, "subscribers", "remove", "bo@example.org").exit_code == 0

    ada = invoke(runner, site_dir, "subscribers", "show", "ADA@example.org")
    assert (ada.exit_code, ada.stderr) == (0, "")
    assert ada.stdout == (
        "ada@example.org: active\n"
        "  since 2026-11-27, hard failures 0, soft bounces in a row 1\n"
        "  topics: everything\n"
        f"  cadence: {DEFAULT_CADENCE}\n"
        "history:\n"
        "  2026-11-27 13:00  →active  added by the operator  [cli]\n"
        "  2026-11-27 13:00  active  soft bounce 4.2.2 mailbox full (1 of 3 in a row)  "
        "[webhook test event 1]\n"
    )
    bo = invoke(runner, site_dir, "subscribers", "show", "bo@example.org")
    assert bo.stdout == (
        "bo@example.org: removed\n"
        "  suppressed: bounced (only a sign-up they confirm lifts it)\n"
        "history:\n"
        "  2026-11-27 13:00  →active  added by the operator  [cli]\n"
        "  2026-11-27 13:00  active→bounced  hard bounce 5.1.1 user unknown  "
        "[webhook test event 1]\n"
        "  2026-11-27 13:00  bounced→removed  removed by the operator  [cli]\n"
    )
    nobody = invoke(runner, site_dir, "subscribers", "show", "cy@example.org")
    assert nobody.stdout == "cy@example.org: not a subscriber, and no history\n"
    bad = invoke(runner, site_dir, "subscribers", "show", "not-an-address")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: EMAIL: 'not-an-address' is not a valid email address (")


# -- choices: topics and cadence --------------------------------------------------------


def _choice_rows(site_dir: Path) -> list[tuple]:
    conn = sqlite3.connect(site_dir / ".publisher" / "state.db")
    try:
        return conn.execute("SELECT email, topics, cadence FROM subscribers ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.mark.usefixtures("fixed_now")
def test_cli_set_changes_the_choices_and_the_history_says_so(runner, site_dir):
    offer_choices(site_dir)
    assert invoke(runner, site_dir, "subscribers", "add", "ada@example.org").exit_code == 0
    steps = [
        (
            ["--topics", "danube,energy"],
            f"set ada@example.org: topics energy, danube; cadence {DEFAULT_CADENCE}\n",
            ("ada@example.org", "danube,energy", None),
        ),
        (
            ["--cadence", "Daily at 7:00"],
            "set ada@example.org: topics energy, danube; cadence daily at 07:00\n",
            ("ada@example.org", "danube,energy", "daily at 07:00"),
        ),
        (
            ["--topics", "energy danube"],  # the same choice, written otherwise
            "ada@example.org already has topics energy, danube; cadence daily at 07:00\n",
            ("ada@example.org", "danube,energy", "daily at 07:00"),
        ),
        (
            ["--topics", "energy,danube,arms-control", "--cadence", "each article"],
            "set ada@example.org: topics everything; cadence each article\n",
            ("ada@example.org", None, "each article"),
        ),
        (
            ["--topics", "Everything", "--cadence", "default"],
            f"set ada@example.org: topics everything; cadence {DEFAULT_CADENCE}\n",
            ("ada@example.org", None, None),
        ),
    ]
    for args, said, row in steps:
        result = invoke(runner, site_dir, "subscribers", "set", "ADA@example.org", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, said, "")
        assert _choice_rows(site_dir) == [row]
    history = invoke(runner, site_dir, "subscribers", "show", "ada@example.org").stdout
    assert history.split("history:\n")[1] == (
        "  2026-11-27 13:00  →active  added by the operator  [cli]\n"
        "  2026-11-27 13:00  active  choices set by the operator: topics danube, energy; "
        "cadence the default  [cli]\n"
        "  2026-11-27 13:00  active  choices set by the operator: topics danube, energy; "
        "cadence daily at 07:00  [cli]\n"
        "  2026-11-27 13:00  active  choices set by the operator: topics everything; "
        "cadence each article  [cli]\n"
        "  2026-11-27 13:00  active  choices set by the operator: topics everything; "
        "cadence the default  [cli]\n"
    )


OFFERED = "'weekly on monday at 07:00', 'daily at 07:00', 'each article'"


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (
            ["ada@example.org"],
            2,
            "error: --topics, --cadence: missing: give one of them, or both\n",
        ),
        (
            ["ada@example.org", "--topics", "energy,sport"],
            2,
            "error: --topics: unknown topic 'sport' (topics: energy, danube, arms-control; "
            "or 'everything')\n",
        ),
        (
            ["ada@example.org", "--cadence", "daily at 09:00"],
            2,
            f"error: --cadence: 'daily at 09:00' is not offered ([digest] cadences: {OFFERED})\n",
        ),
        (
            ["ada@example.org", "--cadence", "hourly"],
            2,
            "error: --cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or "
            "'each article' ('hourly')\n",
        ),
        (
            ["ada@example.org", "--topics", "energy", "--cadence", "daily at 25:00"],
            2,
            "error: --cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or "
            "'each article' ('daily at 25:00')\n",
        ),
        (
            ["bo@example.org", "--topics", "energy"],
            1,
            "error: EMAIL: no subscriber has the address 'bo@example.org'\n",
        ),
        (
            ["not-an-address", "--cadence", "default"],
            1,
            "error: EMAIL: 'not-an-address' is not a valid email address "
            "(An email address must have an @-sign.)\n",
        ),
    ],
)
def test_cli_set_refuses_bad_input_and_changes_nothing(runner, site_dir, args, code, error):
    offer_choices(site_dir)
    invoke(runner, site_dir, "subscribers", "add", "ada@example.org", "--topics", "danube")
    before = _all_cells(site_dir / ".publisher" / "state.db")
    result = invoke(runner, site_dir, "subscribers", "set", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", error)
    assert _all_cells(site_dir / ".publisher" / "state.db") == before


def test_cli_set_on_a_site_without_topics(runner, site_dir):
    invoke(runner, site_dir, "subscribers", "add", "ada@example.org")
    result = invoke(runner, site_dir, "subscribers", "set", "ada@example.org", "--topics", "x")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --topics: unknown topic 'x' (topics: none: this site has no [topics]; "
        "or 'everything')\n",
    )
    result = invoke(
        runner, site_dir, "subscribers", "set", "ada@example.org", "--cadence", "each article"
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --cadence: 'each article' is not offered ([digest] cadences: "
        "'weekly on monday at 07:00')\n",
    )
    assert _choice_rows(site_dir) == [("ada@example.org", None, None)]


@pytest.mark.usefixtures("fixed_now")
def test_cli_add_takes_the_choices_too(runner, site_dir):
    offer_choices(site_dir)
    runs = [
        (
            ["ada@example.org", "--topics", "energy", "--cadence", "each article"],
            "added ada@example.org: topics energy; cadence each article\n",
        ),
        (
            ["ada@example.org", "--topics", "energy"],
            "ada@example.org is already subscribed: topics energy; cadence each article\n",
        ),
        (
            ["ada@example.org", "--cadence", "daily at 07:00"],
            "choices updated ada@example.org: topics energy; cadence daily at 07:00\n",
        ),
        (
            ["ada@example.org", "--name", "Ada", "--topics", "everything"],
            "name and choices updated ada@example.org: topics everything; cadence daily at 07:00\n",
        ),
        (["ada@example.org", "--name", "Ada L"], "name updated ada@example.org\n"),
        (["bo@example.org"], "added bo@example.org\n"),
    ]
    for args, said in runs:
        result = invoke(runner, site_dir, "subscribers", "add", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, said, "")
    assert _choice_rows(site_dir) == [
        ("ada@example.org", None, "daily at 07:00"),
        ("bo@example.org", None, None),
    ]
    shown = invoke(runner, site_dir, "subscribers", "show", "ada@example.org").stdout
    assert "  →active  added by the operator (topics energy; cadence each article)  [cli]\n" in (
        shown
    )
    refused = invoke(runner, site_dir, "subscribers", "add", "cy@example.org", "--topics", "x")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("error: --topics: unknown topic 'x' (topics: energy, ")
    assert len(_choice_rows(site_dir)) == 2


# What the site offers after dropping a topic and a cadence some had chosen.
FEWER_CHOICES = """
[digest]
cadences = ["weekly on monday at 07:00", "each article"]

[topics.energy]
title = "Energy"
tags = ["Energy"]

[topics.arms-control]
title = "Arms control"
tags = ["arms control"]
"""


@pytest.mark.usefixtures("fixed_now")
def test_cli_list_and_show_say_what_each_one_gets(runner, site_dir):
    original = (site_dir / "publisher.toml").read_text(encoding="utf-8")
    offer_choices(site_dir)
    for args in (
        ["ada@example.org", "--name", "Ada", "--topics", "danube,energy"],
        ["bo@example.org", "--cadence", "each article"],
        ["cy@example.org", "--topics", "arms-control", "--cadence", "daily at 07:00"],
    ):
        assert invoke(runner, site_dir, "subscribers", "add", *args).exit_code == 0
    listed = invoke(runner, site_dir, "subscribers", "list")
    assert listed.stdout == (
        "email            name  status  since       topics          cadence\n"
        f"ada@example.org  Ada   active  2026-11-27  energy, danube  {DEFAULT_CADENCE}\n"
        "bo@example.org         active  2026-11-27  everything      each article\n"
        "cy@example.org         active  2026-11-27  arms-control    daily at 07:00\n"
    )
    shown = invoke(runner, site_dir, "subscribers", "show", "ada@example.org").stdout
    assert shown.split("history:")[0] == (
        "ada@example.org (Ada): active\n"
        "  since 2026-11-27, hard failures 0, soft bounces in a row 0\n"
        "  topics: Energy (energy), Danube region (danube)\n"
        f"  cadence: {DEFAULT_CADENCE}\n"
    )

    # The site stops offering danube and "daily at 07:00": they fall back, and say so.
    (site_dir / "publisher.toml").write_text(original + FEWER_CHOICES, encoding="utf-8")
    listed = invoke(runner, site_dir, "subscribers", "list")
    assert listed.stdout == (
        "email            name  status  since       topics        cadence\n"
        f"ada@example.org  Ada   active  2026-11-27  energy        {DEFAULT_CADENCE}\n"
        "bo@example.org         active  2026-11-27  everything    each article\n"
        f"cy@example.org         active  2026-11-27  arms-control  {DEFAULT_CADENCE}\n"
    )
    ada = invoke(runner, site_dir, "subscribers", "show", "ada@example.org").stdout
    assert "  topics: Energy (energy); chose danube too, no longer offered\n" in ada
    with open_store(site_dir / ".publisher" / "state.db") as store, store.transaction():
        store.set_subscriber_choices(3, topics=("danube",), cadence="daily at 07:00", now=NOW)
    cy = invoke(runner, site_dir, "subscribers", "show", "cy@example.org").stdout
    assert "  topics: everything; chose danube, no longer offered\n" in cy
    assert f"  cadence: {DEFAULT_CADENCE}; chose 'daily at 07:00', no longer offered\n" in cy


def test_cli_import_and_export_carry_the_choices(runner, site_dir, csv_copy, fixed_now):
    offer_choices(site_dir)
    result = invoke(runner, site_dir, "subscribers", "import", str(csv_copy("choices.csv")))
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: choices.csv:6: topics: unknown topic 'gas' (topics: energy, danube, "
        "arms-control; or 'everything')\n"
        f"warning: choices.csv:7: cadence: 'daily at 09:00' is not offered ([digest] "
        f"cadences: {OFFERED})\n"
        "warning: choices.csv:8: cadence: expected 'daily at HH:MM', 'weekly on <day> at "
        "HH:MM' or 'each article' ('hourly')\n"
    )
    assert result.stdout == (
        "imported 5 subscribers: 0 already present, "
        "0 unsubscribed or bounced earlier and skipped, 3 bad rows\n"
    )
    created = fixed_now.isoformat()
    exported = invoke(runner, site_dir, "subscribers", "export")
    assert exported.stdout == (
        "email,name,status,created_at,topics,cadence\n"
        f"ada@example.org,Ada,active,{created},energy danube,daily at 07:00\n"
        f"bo@example.org,Bo,active,{created},energy arms-control,\n"
        f"cy@example.org,Cy,active,{created},,each article\n"
        f"dee@example.org,Dee,active,{created},,\n"
        f"hal@example.org,Hal,active,{created},,weekly on monday at 07:00\n"
    )
