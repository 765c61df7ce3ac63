"""mail.lists: subscriber CSV import (every bad row named, opt-outs never revived) and export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from support.paths import SUBSCRIBER_FILES
from support.subscribers import MIXED_PROBLEMS, SECRET, make_subscriber

from publisher.errors import SubscriberError
from publisher.mail.lists import ImportReport, export_csv, import_csv
from publisher.store import open_store

pytestmark = pytest.mark.usefixtures("no_env_secret")


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
    make_subscriber(store, "active@example.org", "Old name", now=now)
    make_subscriber(store, "gone@example.org", now=now, status="unsubscribed")
    make_subscriber(store, "bounced@example.org", now=now, status="bounced")
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
    path = csv_copy(name) if (SUBSCRIBER_FILES / name).exists() else Path(name)
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
    make_subscriber(store, "ada@example.org", 'Ada "The Countess", Lovelace', now=now)
    make_subscriber(store, "gone@example.org", now=now, status="unsubscribed")
    stream = io.StringIO()
    assert export_csv(store, stream) == 2
    assert stream.getvalue() == (
        "email,name,status,created_at\n"
        f'ada@example.org,"Ada ""The Countess"", Lovelace",active,{now.isoformat()}\n'
        f"gone@example.org,,unsubscribed,{now.isoformat()}\n"
    )


def test_export_then_import_round_trips(tmp_path, now):
    with open_store(tmp_path / "a.db") as first:
        make_subscriber(first, "ada@example.org", "Ada, Countess of Lovelace", now=now)
        make_subscriber(first, "grace@example.org", "Grace", now=now, status="unsubscribed")
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
