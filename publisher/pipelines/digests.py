"""The digest pipeline: index → select → freeze and render → record deliveries → send.

This module knows the order of the digest stages, as pipelines.build does
for feeds: content indexes the folder, mail chooses, renders and composes,
delivery sends each recipient's bytes and keeps the ledger.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import jinja2

from publisher import parallel, templating, tokens
from publisher.config import Cadence, SiteConfig
from publisher.content import indexing, scan
from publisher.delivery import send, senders
from publisher.delivery.send import Progress, SendRules, SendTally
from publisher.delivery.senders import Sender
from publisher.errors import ConfigError, PublisherError, TransientDeliveryError
from publisher.mail import compose, segments, streams
from publisher.mail.digest import DigestSite, render_digest
from publisher.mail.secret import site_secret
from publisher.mail.segments import Segment
from publisher.model import Article, Digest, DigestArticle, Message, RenderedDigest, Subscriber
from publisher.output import OutputWriter
from publisher.pipelines import build
from publisher.store import Store, open_store
from publisher.store.digests import StreamRow

logger = logging.getLogger(__name__)

TEST_SUBJECT_PREFIX = "[Test] "
EXAMPLE_TOKEN = "EXAMPLE"  # in a preview's unsubscribe link: plainly no one's


@dataclass
class SendReport(SendTally):
    """What `send_digests` did: the digests it resumed and made, and the sends' tally."""

    made: list[int] = field(default_factory=list)  # the digests this run made, one per group
    articles: int = 0  # in the digests made, in all
    resumed: list[int] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Preview:
    digest_number: int
    articles: tuple[DigestArticle, ...]
    rendered: RenderedDigest  # with the per-recipient placeholders, ready to send
    example: RenderedDigest  # an example unsubscribe link filled in, to look at


def digest_site(site: SiteConfig) -> DigestSite:
    return DigestSite(
        title=site.title,
        description=site.description,
        base_url=site.base_url,
        language=site.language,
        timezone=site.timezone,
        postal_address=site.digest.postal_address,
        signup_url=site.base_url,  # where `publisher serve` shows the sign-up form
    )


def web_copy_path(digest_id: int) -> str:
    """Where a site without pages keeps a digest's web copy, in the feeds' folder."""
    return f"digests/{digest_id}/index.html"


def web_copy_url(site: SiteConfig, digest_id: int) -> str:
    """The digest's page on the site, or (without pages) its web copy beside the feeds."""
    if site.pages.enabled:
        return f"{site.base_url}digests/{digest_id}/"
    return f"{site.feeds.url}digests/{digest_id}/"


# -- preview -----------------------------------------------------------------------


def preview(site: SiteConfig, *, now: datetime, segment: Segment | None = None) -> Preview | None:
    """Render the digest that `send` would make now for *segment* (the default one); record nothing.

    It is the digest of the segment's next group: those who had its latest
    digest (or, before any, its first).
    """
    wanted = segment or segments.default_segment(site)
    probe = StreamRow(0, wanted.topics, str(wanted.cadence), None, joining=True)
    planned, number = _plan_now(site, now=now, rows=[probe])
    if not planned:
        return None
    articles = planned[0][1].articles
    rendered = _render(site, articles, wanted, number=number, now=now)
    example_link = compose.unsubscribe_link(site.digest.unsubscribe_url, EXAMPLE_TOKEN)
    example_choice = compose.preferences_link(site.digest.preferences_url, EXAMPLE_TOKEN)
    example = compose.with_unsubscribe_link(rendered, example_link, example_choice)
    return Preview(number, articles, rendered, example)


# -- send --------------------------------------------------------------------------


Making = Callable[[], AbstractContextManager[bool]]
Due = Callable[[Cadence], bool]  # whether a cadence's time has come


def every_cadence(_cadence: Cadence) -> bool:
    """`digest send` run by hand: every segment with something new gets its digest now."""
    return True


def send_digests(
    site: SiteConfig,
    *,
    now: Callable[[], datetime],
    dry_run: bool = False,
    resend_uncertain: bool = False,
    make_new: bool = True,
    making: Making = lambda: nullcontext(True),
    due: Due = every_cadence,
    workers: int = 1,
    sender: Sender | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], Progress] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Finish any digest a previous run left unfinished, then make and send the new ones.

    A new digest is made for each group of subscribers (a segment, normally)
    whose cadence is *due* and who have something new. Each round looks for
    unfinished digests inside *making* (a lock, where several senders share a
    site: it yields whether this one may make digests), so a sender starting
    beside the maker waits for its digests and helps send them. *workers* > 1
    sends each digest from that many processes.

    :raises ConfigError: for a missing sender address or SMTP password.
    :raises TransientDeliveryError: when the server stays unreachable; what is
        left stays pending for the next run.
    """
    settings = compose.mail_settings(site)
    if dry_run:
        return _dry_run(site, now=now())
    report = SendReport()
    with open_store(site.state) as store:
        secret = site_secret(site, store)
    rules = SendRules(
        rate=site.delivery.rate,
        bounce_after=site.delivery.bounce_after,
        resend_uncertain=resend_uncertain,
        secret=secret,
        sender_timeout=timedelta(seconds=site.delivery.sender_timeout),
    )
    if workers > 1:
        in_processes = _Job(site, rules, now).in_processes(workers, report, should_stop)
        return _rounds(site, settings, report, _Making(make_new, making, due), now, in_processes)
    if sender is None:
        sender = senders.site_sender(site, sleep=sleep)
    with open_store(site.state) as store:

        def send_one(digest_id: int, new: bool) -> None:
            _send_digest(
                site,
                store,
                digest_id,
                settings,
                sender,
                report,
                rules=_rules_for(rules, new=new),
                now=now,
                should_stop=should_stop,
                progress=progress,
                sleep=sleep,
            )

        try:
            return _rounds(site, settings, report, _Making(make_new, making, due), now, send_one)
        finally:
            sender.close()


def _write_pages(site: SiteConfig, store: Store, *, now: datetime) -> None:
    """Every message links to its digest's page: write it before they go.

    A page that cannot be written (a broken template, a full disk) is the
    site's problem, not the subscribers': it is logged, and the digest goes.
    The next build writes the page.
    """
    try:
        build.write_site_pages(site, store, now=now)
    except PublisherError as err:
        logger.error("the digest's page was not written (%s); the next build writes it", err)


def _rules_for(rules: SendRules, *, new: bool) -> SendRules:
    """--resend-uncertain is for what earlier runs left: a digest made now has nothing of it."""
    return replace(rules, resend_uncertain=rules.resend_uncertain and not new)


@dataclass
class _Making:
    """Whether this run makes digests (once), under which lock, for which cadences."""

    wanted: bool
    lock: Making
    due: Due


def _rounds(
    site: SiteConfig,
    settings: compose.MailSettings,
    report: SendReport,
    making: _Making,
    now: Callable[[], datetime],
    send_one: Callable[[int, bool], None],
) -> SendReport:
    """Send the unfinished digests, then (once) make the new ones and send them: each once a run.

    A digest is visited once, however it ends: rows left uncertain keep it
    unfinished, and they wait for the operator, not for another round.
    """
    visited: set[int] = set()
    while not report.stopped:
        with making.lock() as may_make, open_store(site.state) as store:
            due = [i for i in store.unfinished_digests() if i not in visited]
            if not due and making.wanted and may_make:
                due = _make_digests(site, store, settings, report, now=now(), due=making.due)
                making.wanted = False
            if due and may_make and site.pages.enabled and site.content_dir.is_dir():
                _write_pages(site, store, now=now())
        if not due:
            return report
        for digest_id in due:
            visited.add(digest_id)
            if digest_id not in report.made:
                report.resumed.append(digest_id)
            send_one(digest_id, digest_id in report.made)
            if report.stopped:
                break
    return report


@dataclass(frozen=True)
class _Job:
    """What a sending process needs, sent to it whole (it shares no memory with the parent)."""

    site: SiteConfig
    rules: SendRules
    now: Callable[[], datetime]  # a module-level function, found by name in the child

    def in_processes(
        self, workers: int, report: SendReport, should_stop: Callable[[], bool]
    ) -> Callable[[int, bool], None]:
        """A send_one that sends a digest from *workers* processes and adds up their tallies.

        Only the first looks for rows a dead run left uncertain, so each is counted once.
        """

        def send_one(digest_id: int, new: bool) -> None:
            job = replace(self, rules=_rules_for(self.rules, new=new))
            calls = [(job, digest_id, index == 0) for index in range(workers)]
            results = parallel.spawned_calls(_send_in_process, calls, should_stop)
            for result in results:
                if isinstance(result, SendTally):
                    _add(report, result)
            for result in results:
                if isinstance(result, PublisherError):
                    raise result
                if isinstance(result, BaseException):
                    where = f"digest send --workers {workers}"
                    raise TransientDeliveryError(where, str(result))

        return send_one


def _add(report: SendReport, tally: SendTally) -> None:
    report.sent += tally.sent
    report.failed += tally.failed
    report.deferred += tally.deferred
    report.uncertain += tally.uncertain
    report.recovered += tally.recovered
    report.bounced.extend(tally.bounced)
    report.stopped = report.stopped or tally.stopped


def _send_in_process(
    job: _Job, digest_id: int, settle: bool, stop: Callable[[], bool]
) -> SendTally:
    """One of --workers' processes: send its share of the digest; its tally goes back."""
    tally = SendReport()
    settings = compose.mail_settings(job.site)
    sender = senders.site_sender(job.site)
    with open_store(job.site.state) as store:
        try:
            _send_digest(
                job.site,
                store,
                digest_id,
                settings,
                sender,
                tally,
                rules=job.rules,
                now=job.now,
                should_stop=stop,
                progress=None,
                sleep=time.sleep,
                settle=settle,
            )
        finally:
            sender.close()
    return tally


def _dry_run(site: SiteConfig, *, now: datetime) -> SendReport:
    """What `send` would do: the digests it would make, for how many; records nothing."""
    report = SendReport()
    planned, number = _plan_now(site, now=now)
    if not planned:
        report.note = "nothing new since the last digest"
        return report
    report.articles = sum(len(c.articles) for _g, c in planned)
    if len(planned) == 1:
        group, choice = planned[0]
        report.note = (
            f"would make digest {number} with {len(choice.articles)} article(s) for "
            f"{len(group.subscriber_ids)} active subscriber(s)"
        )
        return report
    lines = [
        f"{g.segment.describe(site)}: {len(c.articles)} article(s) for "
        f"{len(g.subscriber_ids)} subscriber(s)"
        for g, c in planned
    ]
    report.note = f"would make {len(planned)} digests: " + "; ".join(lines)
    return report


def _plan_now(
    site: SiteConfig, *, now: datetime, rows: Sequence[StreamRow] | None = None
) -> tuple[list[tuple[streams.Group, streams.Choice]], int]:
    """The groups with something new now and what each would get, and the next digest's number.

    The content is indexed in a transaction that is rolled back: nothing is recorded.
    """
    with open_store(site.state) as store:
        found = scan.content_files(site)
        with store.trial():
            indexing.index_content(site, store, found, now=now)
            groups = _groups(site, store, rows)
            planned = [(g, c) for g, c in _choices(site, store, groups, now=now) if c.articles]
            return planned, _next_digest_number(store)


def _make_digests(
    site: SiteConfig,
    store: Store,
    settings: compose.MailSettings,
    report: SendReport,
    *,
    now: datetime,
    due: Due,
) -> list[int]:
    """Index, then make a digest for each due group with something new; their ids."""
    found = scan.content_files(site)
    with store.transaction():
        indexing.index_content(site, store, found, now=now)
    if _active_count(store) == 0:
        report.note = "no active subscribers; no digest made"
        return []
    maker = _Maker(site, store, settings, now)
    planned = list(_choices(site, store, _groups(site, store), now=now))
    with store.transaction():  # every digest of the run, or (after a crash) none
        for group, choice in planned:
            if choice.articles and due(group.segment.cadence):
                maker.make(group, choice)
    report.made.extend(maker.made)
    report.articles += maker.articles
    if not maker.made:
        waiting = any(choice.articles for _group, choice in planned)
        report.note = "nothing due yet" if waiting else "nothing new since the last digest"
    return maker.made


@dataclass
class _Maker:
    """Records, renders and queues the digests of one run, a group at a time."""

    site: SiteConfig
    store: Store
    settings: compose.MailSettings
    now: datetime
    made: list[int] = field(default_factory=list)
    articles: int = 0
    _counts: dict[int, int] | None = None  # "each article" messages today, per subscriber
    _environment: jinja2.Environment | None = None

    @property
    def environment(self) -> jinja2.Environment:
        """One template environment for the run: each template is compiled once."""
        if self._environment is None:
            self._environment = templating.make_environment(
                self.site.templates_dir, state_dir=self.site.state_dir
            )
        return self._environment

    def make(self, group: streams.Group, choice: streams.Choice) -> None:
        if not group.segment.cadence.each_article:
            self._record(group.subscriber_ids, group, choice, [choice.articles])
            return
        for count, members in self._by_count_today(group.subscriber_ids).items():
            # A segment's first message holds what is recent: one message, not one each.
            room = self.site.digest.max_per_day - count
            allowance = min(room, 1) if group.start is None else room
            batches = streams.each_article_batches(choice.articles, allowance)
            if batches:
                self._record(members, group, choice, batches)

    def _by_count_today(self, members: Sequence[int]) -> dict[int, list[int]]:
        if self._counts is None:
            since = streams.day_start(self.now, self.site.timezone)
            self._counts = self.store.each_article_counts(since=since)
        by_count: dict[int, list[int]] = {}
        for sid in members:
            by_count.setdefault(self._counts.get(sid, 0), []).append(sid)
        return by_count

    def _record(
        self,
        members: Sequence[int],
        group: streams.Group,
        choice: streams.Choice,
        batches: Sequence[tuple[DigestArticle, ...]],
    ) -> None:
        """Each batch a digest for *members*, their streams moved past the last; uncommitted."""
        key = compose.site_key(self.settings.list_id)
        domain = compose.address_domain(self.settings.sender)
        upto = self.store.publication_seq()
        made = []
        for articles in batches:
            digest_id = self.store.insert_digest(
                articles,
                last_seq=upto,
                now=self.now,
                segment=group.segment.key,
                first_seq=None if group.start is None else group.start.last_seq,
                held=choice.held,
            )
            rendered = _render(
                self.site,
                articles,
                group.segment,
                number=digest_id,
                now=self.now,
                environment=self.environment,
            )
            self.store.save_rendered(digest_id, rendered)
            self.store.create_deliveries(
                digest_id,
                lambda d, s: compose.message_id(d, s, domain=domain, site_key=key),
                now=self.now,
                subscriber_ids=members,
            )
            made.append(digest_id)
            logger.info(
                "made digest %d (%s) with %d article(s) for %d subscriber(s)",
                digest_id,
                group.segment.describe(self.site),
                len(articles),
                len(members),
            )
        self.store.advance_streams(members, made[-1])
        self.made.extend(made)
        self.articles += sum(len(articles) for articles in batches)


def _groups(
    site: SiteConfig, store: Store, rows: Sequence[StreamRow] | None = None
) -> list[streams.Group]:
    """The active subscribers (or *rows*) in groups by segment and where their streams are."""
    found = list(store.iter_streams()) if rows is None else list(rows)
    positions = store.segment_positions()
    starts = store.stream_starts(streams.needed_starts(found, positions))
    return streams.group_streams(site, found, positions, starts)


def _choices(
    site: SiteConfig, store: Store, groups: Sequence[streams.Group], *, now: datetime
) -> Iterator[tuple[streams.Group, streams.Choice]]:
    """What each group's next digest holds; groups that start alike read the articles once."""
    upto = store.publication_seq()
    matcher = segments.TopicMatcher.for_site(site)
    read: dict[tuple[int | None, tuple[str, ...]], list[Article]] = {}
    for group in groups:
        after = None if group.start is None else group.start.last_seq
        held = () if group.start is None else group.start.held
        if (after, held) not in read:
            ids = store.numbered_after(after, upto=upto)
            in_range = set(ids)
            wanted = [*(i for i in held if i not in in_range), *ids]
            stored = store.articles(wanted)
            read[after, held] = [stored[i] for i in wanted if i in stored]
        choice = streams.choose(
            group, read[after, held], matcher, now=now, limit=site.digest.max_articles
        )
        yield group, choice


def _next_digest_number(store: Store) -> int:
    latest = store.latest_digest_id()
    return (latest or 0) + 1


def _render(
    site: SiteConfig,
    articles: tuple[DigestArticle, ...],
    segment: Segment,
    *,
    number: int,
    now: datetime,
    environment: jinja2.Environment | None = None,
) -> RenderedDigest:
    """Render one digest; a run that makes several passes one *environment* for them all."""
    if environment is None:
        environment = templating.make_environment(site.templates_dir)
    single = segment.cadence.each_article and len(articles) == 1
    return render_digest(
        environment,
        digest_site(site),
        articles,
        subject_template=site.digest.article_subject if single else site.digest.subject,
        number=number,
        created_at=now,
        web_url=web_copy_url(site, number),
        max_articles=site.digest.max_articles,
    )


def _active_count(store: Store) -> int:
    return store.subscriber_counts().get("active", 0)


def _write_web_copy(site: SiteConfig, digest: Digest) -> None:
    """A site without pages gets the digest's HTML as its web copy, beside the feeds."""
    if digest.rendered is None or site.pages.enabled:
        return
    writer = OutputWriter(site.output_dir, display_root=site.display(site.output_dir))
    writer.ensure_root()
    writer.write_if_changed(web_copy_path(digest.id), digest.rendered.web_html.encode("utf-8"))


def _send_digest(
    site: SiteConfig,
    store: Store,
    digest_id: int,
    settings: compose.MailSettings,
    sender: Sender,
    report: SendReport,
    *,
    rules: SendRules,
    now: Callable[[], datetime],
    should_stop: Callable[[], bool],
    progress: Callable[[int], Progress] | None,
    sleep: Callable[[float], None],
    settle: bool = True,
) -> None:
    """Write the digest's web copy, compose once, and hand each recipient's bytes to delivery."""
    digest = store.get_digest(digest_id)
    if digest is None or digest.rendered is None:  # pragma: no cover - made in one transaction
        return
    _write_web_copy(site, digest)
    template = compose.prepare(digest_id, digest.rendered, settings, date=now())

    def message_for(subscriber: Subscriber) -> Message:
        token = tokens.make_token(rules.secret, subscriber.id, subscriber.email)
        bounce = tokens.bounce_token(rules.secret, digest_id, subscriber.id)
        return compose.personalise(template, subscriber, token, bounce_token=bounce)

    send.send_digest(
        store,
        digest_id,
        sender,
        message_for,
        rules=rules,
        tally=report,
        now=now,
        should_stop=should_stop,
        progress=progress,
        sleep=sleep,
        settle=settle,
    )


# -- test --------------------------------------------------------------------------


def _test_bounce_token(site: SiteConfig, store: Store, address: str) -> str | None:
    """The bounce token of a test to *address*: digest 0 and its subscriber, if it is one."""
    if site.bounces.address is None:
        return None
    subscriber = store.find_subscriber_any_case(address)
    if subscriber is None:
        return None
    return tokens.bounce_token(site_secret(site, store), 0, subscriber.id)


def send_test(
    site: SiteConfig, address: str, *, now: datetime, sender: Sender | None = None
) -> str:
    """Send the next digest (or, with nothing new, the latest one) to *address*; record nothing.

    The subject starts with "[Test] " and every test has a Message-ID of its
    own, so repeated tests are not threaded together or dropped as duplicates.
    With a [bounces] address, a test to a subscriber's address goes out from
    the VERP address of (digest 0, that subscriber), so a bounce names them;
    to any other address, from the plain bounce address.

    :returns: what the sender reported.
    """
    settings = compose.mail_settings(site)
    found = preview(site, now=now)
    with open_store(site.state) as store:
        latest = store.latest_digest() if found is None else None
        bounce = _test_bounce_token(site, store, address)
    if found is not None:
        rendered = found.rendered
    else:
        if latest is None or latest.rendered is None:
            where = "digest test"
            message = "nothing to send: no article is published yet"
            raise ConfigError(where, message)
        rendered = latest.rendered
    if sender is None:
        sender = senders.site_sender(site)
    # Marked, and with an id of its own: providers merge messages that share one.
    marked = replace(rendered, subject=f"{TEST_SUBJECT_PREFIX}{rendered.subject}")
    template = compose.prepare(0, marked, settings, date=now)
    unique = secrets.token_hex(8)
    # Subscriber 0 does not exist: its unsubscribe link is harmlessly invalid.
    probe = Subscriber(0, address, "", "active", now)
    try:
        composed = compose.personalise(
            template,
            probe,
            "test",
            bounce_token=bounce,
            message_id_override=f"<test-{unique}@{template.message_id_domain}>",
        )
        # Filed apart from real digests, so the outbox never mixes the two.
        name = f"tests/{now:%Y%m%d-%H%M%S}-{address.replace('@', '-at-')}-{unique}.eml"
        result = sender.send(replace(composed, outbox_name=name))
    finally:
        sender.close()
    if result.outcome != "sent":
        raise TransientDeliveryError(sender.description, f"{result.outcome}: {result.reply}")
    return result.reply
