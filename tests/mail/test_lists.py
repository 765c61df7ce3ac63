"""mail.lists: subscriber CSV import (every bad row named, opt-outs never revived) and export."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clock import NOW
from support.paths import SUBSCRIBER_FILES
from support.subscribers import (
    CHOOSING_SITE,
    MIXED_PROBLEMS,
    PLAIN_SITE,
    SECRET,
    make_subscriber,
)

from publisher.errors import SubscriberError
from publisher.mail.lists import ImportReport, export_csv, import_csv
from publisher.model import SUBSCRIBER_STATUSES
from publisher.store import open_store

pytestmark = pytest.mark.usefixtures("no_env_secret")


def test_import_reports_bad_rows_and_imports_the_good(store, now, csv_copy):
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("mixed.csv"), site=PLAIN_SITE, now=now)
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
        report = import_csv(store, SECRET, csv_copy("known.csv"), site=PLAIN_SITE, now=now)
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
        report = import_csv(store, SECRET, path, site=PLAIN_SITE, now=now)
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
        assert import_csv(
            store, SECRET, csv_copy("header-only.csv"), site=PLAIN_SITE, now=now
        ) == ImportReport(0, 0, 0)


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
        import_csv(store, SECRET, path, site=PLAIN_SITE, now=now)
    assert str(caught.value) == message
    assert list(store.iter_subscribers()) == []


def test_import_a_folder(store, now, tmp_path):
    with pytest.raises(SubscriberError) as caught:
        import_csv(store, SECRET, tmp_path, site=PLAIN_SITE, now=now)
    assert str(caught.value) == f"{tmp_path}: is a folder, not a CSV file"


def test_import_control_characters_and_overlong_fields(store, now, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes(b"email\nada@example.org\nbad\0row\n")
    report = import_csv(store, SECRET, path, site=PLAIN_SITE, now=now)
    assert report.problems == (
        f"{path}:3: 'bad\\x00row' is not a valid email address "
        "(it contains a line break or control character)",
    )
    path.write_bytes(b"email\nada@example.org\n" + b"x" * 200_000 + b"\n")
    with pytest.raises(SubscriberError) as caught:
        import_csv(store, SECRET, path, site=PLAIN_SITE, now=now)
    assert str(caught.value) == (
        f"{path}:3: not a readable CSV file (field larger than field limit (131072))"
    )


def test_export_streams_every_subscriber_with_their_choices(store, now):
    make_subscriber(store, "ada@example.org", 'Ada "The Countess", Lovelace', now=now)
    make_subscriber(store, "gone@example.org", now=now, status="unsubscribed")
    make_subscriber(
        store, "bo@example.org", now=now, topics=("danube", "energy"), cadence="daily at 07:00"
    )
    stream = io.StringIO()
    assert export_csv(store, stream, site=CHOOSING_SITE) == 3
    assert stream.getvalue() == (
        "email,name,status,created_at,topics,cadence\n"
        f'ada@example.org,"Ada ""The Countess"", Lovelace",active,{now.isoformat()},,\n'
        f"gone@example.org,,unsubscribed,{now.isoformat()},,\n"
        f"bo@example.org,,active,{now.isoformat()},energy danube,daily at 07:00\n"
    )


def test_export_then_import_round_trips(tmp_path, now):
    with open_store(tmp_path / "a.db") as first:
        make_subscriber(first, "ada@example.org", "Ada, Countess of Lovelace", now=now)
        make_subscriber(first, "grace@example.org", "Grace", now=now, status="unsubscribed")
        with (tmp_path / "out.csv").open("w", encoding="utf-8", newline="") as stream:
            export_csv(first, stream, site=PLAIN_SITE)
    with open_store(tmp_path / "b.db") as second:
        with second.transaction():
            report = import_csv(second, SECRET, tmp_path / "out.csv", site=PLAIN_SITE, now=now)
        assert report == ImportReport(1, 0, 1)
        assert [(s.email, s.name, s.status) for s in second.iter_subscribers()] == [
            ("ada@example.org", "Ada, Countess of Lovelace", "active"),
            ("grace@example.org", "Grace", "unsubscribed"),
        ]


def test_import_honours_a_status_column(store, now, csv_copy):
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("exported.csv"), site=PLAIN_SITE, now=now)
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
        report = import_csv(store, SECRET, csv_copy("known.csv"), site=PLAIN_SITE, now=now)
    assert report == ImportReport(
        added=2,
        already_present=0,
        skipped_unsubscribed=2,
        skipped_rows=(
            "known.csv:3: GONE@example.org asked not to receive the digest; skipped",
            "known.csv:4: bounced@example.org bounced earlier; skipped",
        ),
    )


# -- the topics and cadence columns ----------------------------------------------------

CHOICE_PROBLEMS = (
    "choices.csv:6: topics: unknown topic 'gas' (topics: energy, danube, arms-control; "
    "or 'everything')",
    "choices.csv:7: cadence: 'daily at 09:00' is not offered ([digest] cadences: "
    "'weekly on monday at 07:00', 'daily at 07:00', 'each article')",
    "choices.csv:8: cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' or "
    "'each article' ('hourly')",
)


def _choices(store) -> list[tuple]:
    return [(s.email, s.topics, s.cadence) for s in store.iter_subscribers()]


def test_import_gives_new_subscribers_their_choices_and_names_bad_ones_by_line(
    store, now, csv_copy
):
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("choices.csv"), site=CHOOSING_SITE, now=now)
    assert report == ImportReport(5, 0, 0, CHOICE_PROBLEMS)
    assert _choices(store) == [
        ("ada@example.org", ("danube", "energy"), "daily at 07:00"),
        ("bo@example.org", ("arms-control", "energy"), None),
        ("cy@example.org", None, "each article"),
        ("dee@example.org", None, None),  # "everything", "default"
        ("hal@example.org", None, "weekly on monday at 07:00"),  # every topic is everything
    ]


def test_import_leaves_the_choices_of_those_present_as_they_are(store, now, csv_copy):
    make_subscriber(store, "ada@example.org", "Ada", now=now, topics=("energy",))
    make_subscriber(store, "cy@example.org", now=now, status="unsubscribed", cadence="each article")
    with store.transaction():
        report = import_csv(store, SECRET, csv_copy("choices.csv"), site=CHOOSING_SITE, now=now)
    assert (report.added, report.already_present, report.skipped_unsubscribed) == (3, 1, 1)
    assert report.problems == CHOICE_PROBLEMS  # checked on every row, present or not
    assert _choices(store)[:2] == [
        ("ada@example.org", ("energy",), None),
        ("cy@example.org", None, "each article"),
    ]


def test_import_of_topics_into_a_site_without_topics(store, now, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "email,topics,cadence\n"
        "ada@example.org,,weekly on monday at 07:00\n"
        "bo@example.org,energy,\n"
        "cy@example.org,,daily at 07:00\n",
        encoding="utf-8",
    )
    with store.transaction():
        report = import_csv(store, SECRET, path, site=PLAIN_SITE, now=now)
    assert report.problems == (
        f"{path}:3: topics: unknown topic 'energy' (topics: none: this site has no [topics]; "
        "or 'everything')",
        f"{path}:4: cadence: 'daily at 07:00' is not offered ([digest] cadences: "
        "'weekly on monday at 07:00')",
    )
    assert _choices(store) == [("ada@example.org", None, "weekly on monday at 07:00")]


def test_a_bad_choice_writes_nothing_of_its_row(store, now, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,cadence\nada@example.org,hourly\n", encoding="utf-8")
    with store.transaction():
        report = import_csv(store, SECRET, path, site=CHOOSING_SITE, now=now)
    assert (report.added, report.good_rows, len(report.problems)) == (0, 0, 1)
    assert list(store.iter_subscribers()) == []
    assert store.conn.execute("SELECT COUNT(*) FROM subscriber_events").fetchone()[0] == 0


def test_export_writes_what_the_site_offers_now(store, now):
    # Chosen under an older config: a topic and a cadence this site no longer offers.
    make_subscriber(store, "ada@example.org", now=now, topics=("energy", "gone"))
    make_subscriber(store, "bo@example.org", now=now, topics=("gone",), cadence="daily at 09:00")
    stream = io.StringIO()
    export_csv(store, stream, site=CHOOSING_SITE)
    assert [line.split(",")[4:] for line in stream.getvalue().splitlines()[1:]] == [
        ["energy", ""],
        ["", ""],
    ]


def test_export_then_import_keeps_the_choices(tmp_path, now):
    with open_store(tmp_path / "a.db") as first:
        make_subscriber(first, "ada@example.org", now=now, topics=("energy", "danube"))
        make_subscriber(first, "bo@example.org", now=now, cadence="each article")
        make_subscriber(
            first, "cy@example.org", now=now, topics=("arms-control",), cadence="daily at 07:00"
        )
        make_subscriber(first, "dee@example.org", now=now)
        with (tmp_path / "out.csv").open("w", encoding="utf-8", newline="") as stream:
            export_csv(first, stream, site=CHOOSING_SITE)
        expected = _choices(first)
    with open_store(tmp_path / "b.db") as second:
        with second.transaction():
            report = import_csv(second, SECRET, tmp_path / "out.csv", site=CHOOSING_SITE, now=now)
        assert report == ImportReport(4, 0, 0)
        assert _choices(second) == [
            ("ada@example.org", ("danube", "energy"), None),
            ("bo@example.org", None, "each article"),
            ("cy@example.org", ("arms-control",), "daily at 07:00"),
            ("dee@example.org", None, None),
        ]
        assert _choices(second) == expected


SLUGS = [topic.slug for topic in CHOOSING_SITE.topics]
CADENCES = [str(cadence) for cadence in CHOOSING_SITE.digest.cadences]
NAMES = st.text(st.characters(categories=("L", "Nd", "P", "S", "Zs")), max_size=30).map(
    lambda text: " ".join(text.split())
)
PEOPLE = st.lists(
    st.tuples(
        NAMES,
        st.sampled_from(SUBSCRIBER_STATUSES),
        st.one_of(st.none(), st.lists(st.sampled_from([*SLUGS, "gone"]), unique=True)),
        st.one_of(st.none(), st.sampled_from([*CADENCES, "daily at 09:00", "never"])),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(people=PEOPLE)
def test_export_import_export_gives_the_same_file(people):
    """Whatever was chosen (under this config or an older one), a list imported elsewhere
    gives everyone what they got here: the second site's export is the first's, byte for byte.
    """
    with tempfile.TemporaryDirectory() as folder:
        exported = []
        for number in range(2):
            with open_store(Path(folder) / f"{number}.db") as state:
                if number == 0:
                    for n, (name, status, topics, cadence) in enumerate(people):
                        address = f"person{n}@example.org"
                        topics = None if topics is None else tuple(topics)
                        make_subscriber(
                            state,
                            address,
                            name,
                            now=NOW,
                            status=status,
                            topics=topics,
                            cadence=cadence,
                        )
                else:
                    with state.transaction():
                        report = import_csv(
                            state, SECRET, Path(folder) / "0.csv", site=CHOOSING_SITE, now=NOW
                        )
                    assert report.problems == ()
                with (Path(folder) / f"{number}.csv").open(
                    "w", encoding="utf-8", newline=""
                ) as out:
                    export_csv(state, out, site=CHOOSING_SITE)
            exported.append((Path(folder) / f"{number}.csv").read_bytes())
    assert exported[1] == exported[0]
