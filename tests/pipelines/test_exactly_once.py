"""The exactly-once promise as a state machine: editors, builds, digests and a clock that jumps.

Random sequences of what editors and operators do (add an article dated in the
past, now, the future, a date only or long ago; edit its title or body; rename
it, with or without a new title; delete it; draft and publish it again; break and
repair its front matter; build; send a digest; move the clock by nothing, by
less than a second, by days or backwards) run against a real site folder, a
real state database and the outbox. After every step:

- no article is in two digests, and no digest is empty;
- an article keeps its id while its file keeps its `id` field or its body (an id
  may change only when one build saw the file renamed *and* rewritten, the case
  the build warns about);
- every article that has been in the site feed since the first digest goes out
  in the next digest that is made after it appeared, unless by then it is
  deleted or a draft (or, the clock having stepped back, not yet due); and when
  such an article is waiting, `digest send` makes that digest.

The first digest takes only the newest few articles: what was published before
it is exempt from the third rule.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from support.builds import site_in_own_folder

from publisher.mail import subscribers
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import open_store

START = datetime(2026, 11, 27, 12, 0, 0, 250_000, tzinfo=UTC)
FIRST_DIGEST_SIZE = 3
CONFIG = """\
[site]
title = "Exactly Once"
base_url = "https://once.example/"
timezone = "Europe/Vienna"
author = "Desk"
author_email = "desk@once.example"

[feeds]
max_items = 10000
tag_feeds = false

[digest]
max_articles = 3
"""
DATE_KINDS = ("past", "now", "future", "date-only", "long-ago")
CLOCK_STEPS = (
    timedelta(0),
    timedelta(milliseconds=300),
    timedelta(hours=1),
    timedelta(days=3),
    -timedelta(hours=2),
)


@dataclass
class Draft:
    """One article file as the editor has written it."""

    number: int
    name: str
    title: str
    body: str
    date: str
    explicit_id: str | None = None
    is_draft: bool = False
    is_broken: bool = False
    renamed: bool = False  # since the last index
    rewritten: bool = False  # the body, since the last index

    def text(self) -> str:
        lines = ["---"]
        if self.explicit_id:
            lines.append(f"id: {self.explicit_id}")
        lines.append(f'title: "{self.title}"')
        lines.append(f'{"dated" if self.is_broken else "date"}: "{self.date}"')
        if self.is_draft:
            lines.append("draft: true")
        lines += ["---", "", self.body, ""]
        return "\n".join(lines)


@dataclass
class Ledger:
    """What the checks remember between steps."""

    ids: dict[int, str] = field(default_factory=dict)  # article number -> id the store gave it
    digested: dict[str, int] = field(default_factory=dict)  # id -> digest that carried it
    waiting: set[str] = field(default_factory=set)  # in the feed since the first digest, unsent
    exempt: set[str] = field(default_factory=set)  # published before the first digest, not in it
    digests: int = 0


class ExactlyOnce(RuleBasedStateMachine):
    drafts = Bundle("drafts")

    def __init__(self) -> None:
        super().__init__()
        self.folder, self.site = site_in_own_folder("exactly-once-", CONFIG)
        self.now = START
        self.files: dict[int, Draft] = {}
        self.count = 0
        self.seen = Ledger()
        with open_store(self.site.state_db) as store, store.transaction():
            subscribers.add_subscriber(store, b"k" * 32, "reader@example.org", "", now=self.now)

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- what editors do ----------------------------------------------------------

    @rule(target=drafts, kind=st.sampled_from(DATE_KINDS), with_id=st.booleans())
    def add(self, kind: str, with_id: bool) -> int:
        self.count += 1
        number = self.count
        explicit = str(uuid.UUID(int=number).urn) if with_id else None
        draft = Draft(
            number,
            f"a{number}.md",
            f"Title {number}",
            f"Body of article {number}.",
            _date(kind, self.now),
            explicit,
        )
        self.files[number] = draft
        self._write(draft)
        return number

    @rule(number=drafts)
    def edit_title(self, number: int) -> None:
        self._change(number, title=f"{self._draft(number).title} again")

    @rule(number=drafts)
    def edit_body(self, number: int) -> None:
        draft = self._draft(number)
        self._change(number, body=draft.body + " More.", rewritten=True)

    @rule(number=drafts, retitle=st.booleans())
    def rename(self, number: int, retitle: bool) -> None:
        draft = self._draft(number)
        if draft.number not in self.files:
            return
        (self.site.content_dir / draft.name).unlink()
        title = draft.title + " (renamed)" if retitle else draft.title
        moved = replace(draft, name=f"r{self.count}-{draft.name}", title=title, renamed=True)
        self.count += 1
        self.files[number] = moved
        self._write(moved)

    @rule(number=consumes(drafts))
    def delete(self, number: int) -> None:
        draft = self.files.pop(number, None)
        if draft is not None:
            (self.site.content_dir / draft.name).unlink()

    @rule(number=drafts)
    def toggle_draft(self, number: int) -> None:
        self._change(number, is_draft=not self._draft(number).is_draft)

    @rule(number=drafts)
    def toggle_broken(self, number: int) -> None:
        self._change(number, is_broken=not self._draft(number).is_broken)

    @rule(step=st.sampled_from(CLOCK_STEPS))
    def move_clock(self, step: timedelta) -> None:
        self.now += step

    # -- what operators do ----------------------------------------------------------

    @rule()
    def build(self) -> None:
        build(self.site, now=self.now)
        self._check_ids()
        if self.seen.digests:
            self.seen.waiting |= self._feed_ids() - set(self.seen.digested) - self.seen.exempt

    @rule()
    def send_digest(self) -> None:
        report = digests.send_digests(self.site, now=lambda: self.now)
        self._check_ids()
        due = {i for i in self.seen.waiting if self._is_published(i)}
        self.seen.waiting = {i for i in self.seen.waiting if self._is_waiting(i)}
        if not report.made:
            assert not due, f"nothing sent, but {sorted(due)} were waiting"
            return
        (made,) = report.made
        carried = self._digest_ids(made)
        if self.seen.digests == 0:
            assert len(carried) <= FIRST_DIGEST_SIZE
            self.seen.exempt = self._numbered() - carried
        assert due <= carried, f"digest {made} left out {sorted(due - carried)}"
        for article_id in carried:
            assert article_id not in self.seen.digested, f"{article_id} sent twice"
            self.seen.digested[article_id] = made
        self.seen.waiting -= carried
        self.seen.digests += 1

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def no_article_in_two_digests_and_no_empty_digest(self) -> None:
        with self._db() as conn:
            twice = conn.execute(
                "SELECT article_id FROM digest_articles GROUP BY article_id HAVING COUNT(*) > 1"
            ).fetchall()
            empty = conn.execute(
                "SELECT id FROM digests WHERE id NOT IN (SELECT digest_id FROM digest_articles)"
            ).fetchall()
        assert twice == []
        assert empty == []

    # -- helpers ------------------------------------------------------------------------

    def _draft(self, number: int) -> Draft:
        return self.files.get(number) or Draft(0, "", "", "", "")

    def _change(self, number: int, **changes: object) -> None:
        if number not in self.files:
            return
        draft = replace(self.files[number], **changes)  # type: ignore[arg-type]
        self.files[number] = draft
        self._write(draft)

    def _write(self, draft: Draft) -> None:
        (self.site.content_dir / draft.name).write_text(draft.text(), encoding="utf-8")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.site.state_db)
        try:
            yield conn
        finally:
            conn.close()

    def _check_ids(self) -> None:
        """Ids hold while the body or the id field does; then the change marks are reset."""
        with self._db() as conn:
            by_path = dict(conn.execute("SELECT path, article_id FROM files").fetchall())
        for number, draft in self.files.items():
            current = by_path.get(draft.name)
            if current is None:
                continue  # never loaded yet (broken from the start)
            known = self.seen.ids.get(number)
            may_change = draft.renamed and draft.rewritten and not draft.explicit_id
            if known is not None and not may_change:
                assert current == known, f"article {number} changed id: {known} -> {current}"
            self.seen.ids[number] = current
            self.files[number] = replace(draft, renamed=False, rewritten=False)

    def _feed_ids(self) -> set[str]:
        document = json.loads((self.site.output_dir / "feed.json").read_text(encoding="utf-8"))
        return {item["id"] for item in document["items"]}

    def _numbered(self) -> set[str]:
        with self._db() as conn:
            rows = conn.execute("SELECT id FROM articles WHERE published_seq IS NOT NULL")
            return {row[0] for row in rows}

    def _digest_ids(self, digest_id: int) -> set[str]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT article_id FROM digest_articles WHERE digest_id = ?", (digest_id,)
            ).fetchall()
        return {row[0] for row in rows}

    def _stored(self, article_id: str) -> tuple[bool, datetime] | None:
        with self._db() as conn:
            row = conn.execute(
                "SELECT is_draft, date FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return None if row is None else (bool(row[0]), datetime.fromisoformat(row[1]))

    def _is_published(self, article_id: str) -> bool:
        stored = self._stored(article_id)
        return stored is not None and not stored[0] and stored[1] <= self.now

    def _is_waiting(self, article_id: str) -> bool:
        """Still owed a digest: deleted or drafted again, it is no longer."""
        stored = self._stored(article_id)
        return stored is not None and not stored[0]


def _date(kind: str, now: datetime) -> str:
    moment = {
        "past": now - timedelta(days=1),
        "now": now,
        "future": now + timedelta(hours=2),
        "long-ago": datetime(2019, 3, 14, 9, 30, tzinfo=UTC),
    }.get(kind)
    if moment is None:  # a date alone: midnight in the site's time zone
        return now.date().isoformat()
    return moment.replace(microsecond=0).isoformat()


ExactlyOnce.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_exactly_once = ExactlyOnce.TestCase
