"""pipelines.digests by segment: who gets which digest as subscribers change their choices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.config import SiteConfig, load_config
from publisher.pipelines import digests
from publisher.pipelines.build import build
from publisher.store import open_store

MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Vienna
WEEKLY = "weekly on monday at 07:00"
DAILY = "daily at 07:00"
CONFIG = f"""\
[site]
title = "Segments"
base_url = "https://segments.example/"
timezone = "Europe/Vienna"
author = "Desk"
author_email = "desk@segments.example"

[pages]
enabled = false

[digest]
cadence = "{WEEKLY}"
cadences = ["{WEEKLY}", "{DAILY}", "each article"]
max_per_day = 3

[topics.arms]
title = "Arms control"
tags = ["Arms control"]

[topics.energy]
title = "Energy"
tags = ["Energy"]
"""


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    (tmp_path / "content").mkdir()
    (tmp_path / "publisher.toml").write_text(CONFIG, encoding="utf-8")
    return load_config(tmp_path / "publisher.toml")


class Desk:
    """Publishes articles and keeps subscribers, in a real site folder and state database."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.count = 0

    def publish(self, when: datetime, *tags: str) -> str:
        self.count += 1
        listed = ", ".join(f'"{t}"' for t in tags)
        (self.site.content_dir / f"a{self.count}.md").write_text(
            f'---\ntitle: "Article {self.count}"\ndate: "{when.isoformat()}"\n'
            f"tags: [{listed}]\n---\n\nBody.\n",
            encoding="utf-8",
        )
        build(self.site, now=when + timedelta(minutes=1))
        return f"Article {self.count}"

    def subscribe(self, email: str, when: datetime, topics=None, cadence=None) -> int:
        with open_store(self.site.state) as store, store.transaction():
            return store.insert_subscriber(
                email, "", status="active", now=when, topics=topics, cadence=cadence
            )

    def choose(self, sid: int, when: datetime, topics=None, cadence=None) -> None:
        with open_store(self.site.state) as store, store.transaction():
            store.set_subscriber_choices(sid, topics=topics, cadence=cadence, now=when)

    def status(self, sid: int, status: str, when: datetime) -> None:
        with open_store(self.site.state) as store, store.transaction():
            store.set_subscriber_status(sid, status, now=when)

    def send(self, when: datetime, *due: str) -> dict[str, list[str]]:
        """Send with *due* cadences (all, if none named); the titles each address got."""
        wanted = set(due)
        report = digests.send_digests(
            self.site, now=lambda: when, due=lambda c: not wanted or str(c) in wanted
        )
        got: dict[str, list[str]] = {}
        with open_store(self.site.state) as store:
            for digest_id in report.made:
                digest = store.get_digest(digest_id)
                assert digest is not None
                assert digest.articles
                titles = sorted(a.title for a in digest.articles)
                for row in store.iter_deliveries(digest_id, ("sent",)):
                    got.setdefault(row.subscriber.email, []).extend(titles)
        return {email: sorted(titles) for email, titles in got.items()}


@pytest.fixture
def desk(site: SiteConfig) -> Desk:
    return Desk(site)


def test_each_segment_gets_only_its_topics_and_nobody_an_empty_digest(desk):
    desk.subscribe("all@example.org", MONDAY)
    desk.subscribe("arms@example.org", MONDAY, topics=("arms",))
    desk.subscribe("energy@example.org", MONDAY, topics=("energy",))
    desk.publish(MONDAY, "Arms control")
    desk.publish(MONDAY, "Elections")
    got = desk.send(MONDAY + timedelta(hours=1))
    assert got == {
        "all@example.org": ["Article 1", "Article 2"],
        "arms@example.org": ["Article 1"],
    }


def test_weekly_to_each_article_mid_week_brings_what_the_weekly_would_have(desk):
    reader = desk.subscribe("reader@example.org", MONDAY)
    desk.subscribe("fast@example.org", MONDAY, cadence="each article")
    desk.publish(MONDAY, "Energy")
    assert desk.send(MONDAY + timedelta(hours=1)) == {
        "reader@example.org": ["Article 1"],
        "fast@example.org": ["Article 1"],
    }
    tuesday = MONDAY + timedelta(days=1)
    desk.publish(tuesday, "Energy")
    assert desk.send(tuesday + timedelta(hours=1), "each article") == {
        "fast@example.org": ["Article 2"]
    }
    desk.choose(reader, tuesday + timedelta(hours=2), cadence="each article")
    wednesday = MONDAY + timedelta(days=2)
    desk.publish(wednesday, "Arms control")
    got = desk.send(wednesday + timedelta(hours=1), "each article")
    assert got == {
        "reader@example.org": ["Article 2", "Article 3"],
        "fast@example.org": ["Article 3"],
    }
    assert desk.send(wednesday + timedelta(hours=2)) == {}


def test_a_topic_change_between_digests_takes_effect_at_the_next(desk):
    reader = desk.subscribe("reader@example.org", MONDAY, topics=("arms",))
    desk.publish(MONDAY, "Arms control")
    assert desk.send(MONDAY + timedelta(hours=1)) == {"reader@example.org": ["Article 1"]}
    desk.publish(MONDAY + timedelta(hours=2), "Energy")
    desk.publish(MONDAY + timedelta(hours=2), "Arms control")
    desk.choose(reader, MONDAY + timedelta(hours=3), topics=("energy",))
    assert desk.send(MONDAY + timedelta(hours=4)) == {"reader@example.org": ["Article 2"]}
    desk.choose(reader, MONDAY + timedelta(hours=5), topics=("arms",))
    assert desk.send(MONDAY + timedelta(hours=6)) == {}


def test_unsubscribe_and_confirm_again_never_repeats_what_was_sent(desk):
    reader = desk.subscribe("reader@example.org", MONDAY)
    desk.subscribe("other@example.org", MONDAY, cadence=DAILY)
    desk.publish(MONDAY, "Energy")
    desk.send(MONDAY + timedelta(hours=1))
    desk.status(reader, "unsubscribed", MONDAY + timedelta(hours=2))
    desk.publish(MONDAY + timedelta(hours=3), "Energy")
    desk.status(reader, "active", MONDAY + timedelta(hours=4))
    desk.choose(reader, MONDAY + timedelta(hours=4), cadence=DAILY)
    got = desk.send(MONDAY + timedelta(hours=5))
    assert got == {"reader@example.org": ["Article 2"], "other@example.org": ["Article 2"]}


def test_a_segment_changed_into_starts_from_the_subscribers_own_stream(desk):
    """A daily segment's latest digest is further on than a weekly reader's: nothing is skipped."""
    reader = desk.subscribe("reader@example.org", MONDAY)
    desk.subscribe("daily@example.org", MONDAY, cadence=DAILY)
    desk.publish(MONDAY, "Energy")
    desk.send(MONDAY + timedelta(hours=1))
    tuesday = MONDAY + timedelta(days=1)
    desk.publish(tuesday, "Energy")
    assert desk.send(tuesday + timedelta(hours=1), DAILY) == {"daily@example.org": ["Article 2"]}
    desk.choose(reader, tuesday + timedelta(hours=2), cadence=DAILY)
    wednesday = MONDAY + timedelta(days=2)
    desk.publish(wednesday, "Energy")
    got = desk.send(wednesday + timedelta(hours=1), DAILY)
    assert got == {
        "reader@example.org": ["Article 2", "Article 3"],
        "daily@example.org": ["Article 3"],
    }


def test_each_article_sends_one_message_each_and_folds_past_max_per_day(desk, site):
    sunday = MONDAY - timedelta(days=1)
    desk.subscribe("fast@example.org", sunday, cadence="each article")
    desk.publish(sunday - timedelta(days=30), "Energy")
    desk.publish(sunday - timedelta(days=20), "Energy")
    # The segment's first message: what is recent, in one.
    assert desk.send(sunday) == {"fast@example.org": ["Article 1", "Article 2"]}
    for n in range(5):
        desk.publish(MONDAY + timedelta(minutes=n), "Energy")
    report = digests.send_digests(site, now=lambda: MONDAY + timedelta(hours=1))
    with open_store(site.state) as store:
        sizes = [len(store.get_digest(i).articles) for i in report.made]
        subjects = [store.get_digest(i).rendered.subject for i in report.made]
    assert sizes == [1, 1, 3]
    assert subjects[:2] == ["Segments: Article 3", "Segments: Article 4"]
    assert subjects[2] == "Segments: 3 new articles"
    desk.publish(MONDAY + timedelta(hours=2), "Energy")
    assert desk.send(MONDAY + timedelta(hours=3)) == {}  # three today: tomorrow
    tuesday = MONDAY + timedelta(days=1)
    assert desk.send(tuesday) == {"fast@example.org": ["Article 8"]}


def test_one_render_per_segment_whatever_its_size(desk, site, monkeypatch):
    for n in range(30):
        topics = (("arms",), ("energy",), None)[n % 3]
        desk.subscribe(f"r{n}@example.org", MONDAY, topics=topics, cadence=(None, DAILY)[n % 2])
    desk.publish(MONDAY, "Arms control", "Energy")
    rendered = []
    real = digests.render_digest
    monkeypatch.setattr(
        digests, "render_digest", lambda *a, **k: rendered.append(1) or real(*a, **k)
    )
    report = digests.send_digests(site, now=lambda: MONDAY + timedelta(hours=1))
    assert (len(report.made), len(rendered), report.sent) == (6, 6, 30)


def test_dry_run_names_each_segment(desk, site):
    desk.subscribe("a@example.org", MONDAY, topics=("arms",))
    desk.subscribe("b@example.org", MONDAY, cadence=DAILY)
    desk.publish(MONDAY, "Arms control")
    report = digests.send_digests(site, now=lambda: MONDAY, dry_run=True)
    assert report.note == (
        "would make 2 digests: Arms control · weekly on monday at 07:00: 1 article(s) for "
        "1 subscriber(s); everything · daily at 07:00: 1 article(s) for 1 subscriber(s)"
    )


def test_the_digest_archive_says_for_whom_each_digest_was(tmp_path):
    (tmp_path / "content").mkdir()
    config = CONFIG.replace("[pages]\nenabled = false\n", "")
    (tmp_path / "publisher.toml").write_text(config, encoding="utf-8")
    site = load_config(tmp_path / "publisher.toml")
    desk = Desk(site)
    desk.subscribe("arms@example.org", MONDAY, topics=("arms",))
    desk.subscribe("daily@example.org", MONDAY, cadence=DAILY)
    desk.publish(MONDAY, "Arms control")
    assert len(desk.send(MONDAY + timedelta(hours=1))) == 2
    archive = (site.site_dir / "digests" / "index.html").read_text(encoding="utf-8")
    assert "1 article · Arms control · weekly on monday at 07:00</span>" in archive
    assert "1 article · everything · daily at 07:00</span>" in archive
    page = (site.site_dir / "digests" / "1" / "index.html").read_text(encoding="utf-8")
    assert " · for Arms control · weekly on monday at 07:00</p>" in page


def test_a_send_with_something_new_but_nothing_due_says_so(desk, site):
    desk.subscribe("reader@example.org", MONDAY, cadence=DAILY)
    desk.publish(MONDAY, "Energy")
    report = digests.send_digests(site, now=lambda: MONDAY, due=lambda c: str(c) == WEEKLY)
    assert (report.made, report.note) == ([], "nothing due yet")
    report = digests.send_digests(site, now=lambda: MONDAY, due=lambda c: str(c) == DAILY)
    assert len(report.made) == 1
    report = digests.send_digests(site, now=lambda: MONDAY, due=lambda c: str(c) == DAILY)
    assert (report.made, report.note) == ([], "nothing new since the last digest")
