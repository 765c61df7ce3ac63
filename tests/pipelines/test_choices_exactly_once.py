"""Exactly once per (article, subscriber) as a state machine: subscribers who change their minds.

Random sequences of what subscribers, editors and the clock do (subscribe with
some topics and a cadence, change topics or cadence, take another's choices,
unsubscribe, confirm again; publish an article with some tags; move the clock by hours or days;
let the scheduler send what is due) run against a real site folder and state
database. The digests due are the scheduler's: a cadence is due when its slot
has come since it was last handled; "each article" always. After every send:

- nobody gets an article twice, or one outside the topics they have then;
- every article published while a subscriber is active reaches them in the
  first digest they get after it, if it is in their topics then; and when such
  an article waits and their cadence is due, they get that digest (unless
  "each article" and max_per_day is used up today);
- a subscriber joining a segment may also get what their segment had not sent
  yet from before they joined, but never what they already had;
- no digest is empty or has no recipient; nobody gets more than max_per_day
  "each article" messages in a day.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from support.builds import site_in_own_folder

from publisher.config import EACH_ARTICLE, Cadence
from publisher.mail.segments import cadence_of, normalise_topics
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.service.scheduler import latest_slot
from publisher.store import open_store

START = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # a Monday, 06:00 in Vienna
MAX_PER_DAY = 2
CONFIG = """\
[site]
title = "Choices"
base_url = "https://choices.example/"
timezone = "Europe/Vienna"
author = "Desk"
author_email = "desk@choices.example"

[feeds]
tag_feeds = false

[pages]
enabled = false

[digest]
cadence = "weekly on monday at 07:00"
cadences = ["weekly on monday at 07:00", "daily at 07:00", "daily at 18:30", "each article"]
max_articles = 200
max_per_day = 2

[topics.arms]
title = "Arms control"
tags = ["Arms control"]

[topics.energy]
title = "Energy"
tags = ["Energy", "Gas"]

[topics.danube]
title = "The Danube region"
tags = ["Danube"]
"""
TAGS = ("Arms control", "Energy", "Gas", "Danube", "Elections")
TOPIC_TAGS = {"arms": {"arms-control"}, "energy": {"energy", "gas"}, "danube": {"danube"}}
# Few choices, so that subscribers often share a segment and meet in it after a change.
CADENCES = ("weekly on monday at 07:00", "daily at 07:00", "daily at 18:30", "each article", None)
TOPIC_CHOICES = (None, frozenset({"arms"}), frozenset({"energy", "danube"}), frozenset(TOPIC_TAGS))
STEPS = (timedelta(hours=1), timedelta(hours=5), timedelta(hours=13), timedelta(days=2))
topic_choices = st.sampled_from(TOPIC_CHOICES)


@dataclass
class Reader:
    """One subscriber as the model knows them."""

    subscriber_id: int
    topics: frozenset[str] | None
    cadence: str | None
    active: bool = True
    joining: bool = True  # until their first digest after (re)subscribing
    waiting: set[str] = field(default_factory=set)  # published while active, not yet covered
    received: set[str] = field(default_factory=set)
    each_article_days: dict[date, int] = field(default_factory=lambda: defaultdict(int))


class ChoicesExactlyOnce(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder, self.site = site_in_own_folder("choices-", CONFIG)
        self.now = START
        self.readers: dict[str, Reader] = {}
        self.tags: dict[str, set[str]] = {}  # article id -> tag slugs
        self.handled: dict[Cadence, datetime] = {
            c: latest_slot(c, self.site.timezone, START)
            for c in self.site.digest.cadences
            if not c.each_article
        }
        self.published = 0
        build(self.site, now=self.now)  # the state database, before any step looks into it

    def teardown(self) -> None:
        """A last pass a week on, with every cadence due: nothing may still be owed."""
        try:
            if self.readers:
                self.send_what_is_due(timedelta(days=8))
                owed = {
                    email: sorted(a for a in r.waiting if self._matches(r, a))
                    for email, r in self.readers.items()
                    if r.active
                }
                assert not any(owed.values()), f"still owed after a week: {owed}"
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- what subscribers do -------------------------------------------------------------

    @initialize(
        first=st.tuples(topic_choices, st.sampled_from(CADENCES)),
        second=st.tuples(topic_choices, st.sampled_from(CADENCES)),
    )
    def two_readers(
        self,
        first: tuple[frozenset[str] | None, str | None],
        second: tuple[frozenset[str] | None, str | None],
    ) -> None:
        self.subscribe(*first)
        self.subscribe(*second)

    @precondition(lambda self: len(self.readers) < 6)
    @rule(topics=topic_choices, cadence=st.sampled_from(CADENCES))
    def subscribe(self, topics: frozenset[str] | None, cadence: str | None) -> None:
        email = f"reader{len(self.readers) + 1}@example.org"
        with open_store(self.site.state_db) as store, store.transaction():
            sid = store.insert_subscriber(
                email,
                "",
                status="active",
                now=self.now,
                topics=None if topics is None else tuple(topics),
                cadence=cadence,
            )
        self.readers[email] = Reader(sid, topics, cadence)

    @precondition(lambda self: self.readers)
    @rule(
        data=st.data(),
        topics=topic_choices,
        cadence=st.sampled_from(CADENCES),
        change_topics=st.booleans(),
    )
    def change(
        self,
        data: st.DataObject,
        topics: frozenset[str] | None,
        cadence: str | None,
        change_topics: bool,
    ) -> None:
        reader = self.readers[data.draw(st.sampled_from(sorted(self.readers)))]
        if change_topics:
            reader.topics = topics
        else:
            reader.cadence = cadence
        self._save_choices(reader)

    def _save_choices(self, reader: Reader) -> None:
        with open_store(self.site.state_db) as store, store.transaction():
            store.set_subscriber_choices(
                reader.subscriber_id,
                topics=None if reader.topics is None else tuple(reader.topics),
                cadence=reader.cadence,
                now=self.now,
            )

    @precondition(lambda self: len(self.readers) > 1)
    @rule(data=st.data())
    def take_anothers_choices(self, data: st.DataObject) -> None:
        """Move into a segment that is further on (or behind) than one's own stream."""
        one, other = data.draw(st.permutations(sorted(self.readers)))[:2]
        reader, model = self.readers[one], self.readers[other]
        reader.topics, reader.cadence = model.topics, model.cadence
        self._save_choices(reader)

    @precondition(lambda self: self.readers)
    @rule(data=st.data())
    def unsubscribe_or_return(self, data: st.DataObject) -> None:
        reader = self.readers[data.draw(st.sampled_from(sorted(self.readers)))]
        reader.active = not reader.active
        if reader.active:
            reader.joining = True
            reader.waiting = set()
        with open_store(self.site.state_db) as store, store.transaction():
            status = "active" if reader.active else "unsubscribed"
            store.set_subscriber_status(reader.subscriber_id, status, now=self.now)

    # -- what editors and the clock do ---------------------------------------------------

    @rule(tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
    def publish(self, tags: list[str]) -> None:
        self.published += 1
        number = self.published
        listed = ", ".join(f'"{t}"' for t in tags)
        dated = (self.now - timedelta(minutes=1)).replace(microsecond=0).isoformat()
        (self.site.content_dir / f"a{number}.md").write_text(
            f'---\ntitle: "Article {number}"\ndate: "{dated}"\ntags: [{listed}]\n---\n\nBody.\n',
            encoding="utf-8",
        )
        build(self.site, now=self.now)
        article_id = self._id_of(f"a{number}.md")
        self.tags[article_id] = {_slug(t) for t in tags}
        for reader in self.readers.values():
            if reader.active:
                reader.waiting.add(article_id)

    @rule(step=st.sampled_from(STEPS))
    def move_clock(self, step: timedelta) -> None:
        self.now += step

    # -- the scheduler -------------------------------------------------------------------

    @rule(step=st.sampled_from((timedelta(0), *STEPS)))
    def send_what_is_due(self, step: timedelta) -> None:
        """The scheduler's pass, *step* after the last thing that happened."""
        self.now += step
        due = {
            c
            for c, handled in self.handled.items()
            if latest_slot(c, self.site.timezone, self.now) > handled
        }
        before = self._latest_digest()
        report = digests.send_digests(
            self.site,
            now=lambda: self.now,
            due=lambda c: c.each_article or c in due,
        )
        for cadence in due:
            self.handled[cadence] = latest_slot(cadence, self.site.timezone, self.now)
        got = self._received_since(before)
        assert sorted(report.made) == sorted({d for d, _s, _a in got})
        by_reader: dict[int, set[str]] = defaultdict(set)
        messages: dict[int, int] = defaultdict(int)
        for _digest, sid, articles in got:
            by_reader[sid] |= articles
            messages[sid] += 1
        for email, reader in self.readers.items():
            self._check(email, reader, due, by_reader.get(reader.subscriber_id), messages)

    def _check(
        self,
        email: str,
        reader: Reader,
        due: set[Cadence],
        got: set[str] | None,
        messages: dict[int, int],
    ) -> None:
        cadence = cadence_of(self.site, reader.cadence)
        today = self.now.astimezone(self.site.timezone).date()
        mine = {a for a in reader.waiting if self._matches(reader, a)}
        if got is None:
            room = reader.each_article_days[today] < MAX_PER_DAY
            is_due = cadence in due or (cadence.each_article and room)
            assert not (reader.active and is_due and mine), f"{email} did not get {sorted(mine)}"
            return
        assert reader.active, f"{email} is not subscribed, and got {sorted(got)}"
        assert not got & reader.received, f"{email} got {sorted(got & reader.received)} twice"
        assert mine <= got, f"{email} did not get {sorted(mine - got)}"
        outside = {a for a in got if not self._matches(reader, a)}
        assert not outside, f"{email} got {sorted(outside)} outside their topics"
        if not reader.joining:
            assert got <= reader.waiting, f"{email} got {sorted(got - reader.waiting)} unasked"
        if cadence == EACH_ARTICLE:
            reader.each_article_days[today] += messages[reader.subscriber_id]
            assert reader.each_article_days[today] <= MAX_PER_DAY
        reader.received |= got
        reader.waiting = set()
        reader.joining = False

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def no_empty_digest_and_none_without_recipients(self) -> None:
        with self._db() as conn:
            empty = conn.execute(
                "SELECT id FROM digests WHERE id NOT IN (SELECT digest_id FROM digest_articles) "
                "OR id NOT IN (SELECT digest_id FROM deliveries)"
            ).fetchall()
        assert empty == []

    # -- helpers -------------------------------------------------------------------------

    def _matches(self, reader: Reader, article_id: str) -> bool:
        topics = normalise_topics(self.site, reader.topics)
        if topics is None:
            return True
        wanted = set().union(*(TOPIC_TAGS[t] for t in topics))
        return bool(wanted & self.tags[article_id])

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.site.state_db)
        try:
            yield conn
        finally:
            conn.close()

    def _id_of(self, path: str) -> str:
        with self._db() as conn:
            row = conn.execute("SELECT article_id FROM files WHERE path = ?", (path,)).fetchone()
        return str(row[0])

    def _latest_digest(self) -> int:
        with self._db() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM digests").fetchone()[0])

    def _received_since(self, digest_id: int) -> list[tuple[int, int, set[str]]]:
        """(digest, subscriber, its articles) of every message sent since *digest_id*."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT d.digest_id, d.subscriber_id, a.article_id FROM deliveries d "
                "JOIN digest_articles a ON a.digest_id = d.digest_id "
                "WHERE d.digest_id > ? AND d.status = 'sent'",
                (digest_id,),
            ).fetchall()
        found: dict[tuple[int, int], set[str]] = defaultdict(set)
        for digest, sid, article in rows:
            found[digest, sid].add(article)
        return [(d, s, a) for (d, s), a in found.items()]


def _slug(tag: str) -> str:
    return tag.lower().replace(" ", "-")


ChoicesExactlyOnce.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_choices_exactly_once = ChoicesExactlyOnce.TestCase
