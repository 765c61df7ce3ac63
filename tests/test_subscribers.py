"""Subscribers: addresses, the secret, tokens, CSV import/export and their commands."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from publisher.cli import cli
from publisher.mail.subscribers import (
    add_subscriber,
)
from publisher.store import open_store
from publisher.tokens import load_secret, make_token

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
