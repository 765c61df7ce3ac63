"""Generate a benchmark site: N realistic news articles and a publisher.toml.

    python bench/gen_corpus.py --n 10000 --out /tmp/site [--seed 1] [--pelican]

Writes

- DIR/publisher.toml: a site in Europe/Vienna, all three feed formats, tag
  feeds on, max_items 50, full content;
- DIR/content/YYYY/YYYY-MM-DD-slug.md: N articles with YAML front matter
  (title, date, author, 1-4 tags from a pool of 30, sometimes summary,
  updated or draft) and a Markdown body of 300-1,500 words: headings,
  paragraphs, a link or two, sometimes an image, a list or a quotation;
- with --pelican, DIR/pelican-content/ with the same articles in the format a
  plain `pip install pelican[markdown]` reads: Markdown with `Key: value`
  metadata lines (Title, Date, Slug, Modified, Author, Tags, Category,
  Summary, Status) and
  the same body.

Dates are spread over the ten years before 2026-11-01 with a mix of offsets
(Vienna local time with its offset, UTC "Z", other zones, no offset, date
only). The output depends only on N and the seed; N = 1,000 and N = 10,000
with the same seed are different corpora (the dates spread over the same ten
years either way).

`generate()` returns one `Record` per article, which build_bench.py uses to
pick the articles it edits.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SITE_TZ = ZoneInfo("Europe/Vienna")
END = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
SPAN = timedelta(days=3652)
MIN_WORDS, MAX_WORDS = 300, 1500
_ARTICLE_FIX = re.compile(r"\b([Aa]) ([aeiou])")

PUBLISHER_TOML = """\
# Benchmark site written by bench/gen_corpus.py (n = {n}, seed = {seed}).

[site]
title = "Meridian Briefing (benchmark)"
description = "Generated news articles for the build benchmark."
base_url = "https://bench.meridian.example/"
language = "en"
timezone = "Europe/Vienna"
author = "Meridian Desk"
author_email = "desk@meridian.example"
permalink = "{{year}}/{{month}}/{{slug}}/"

[paths]
content = "content"
output = "feeds"
state = ".publisher"

[feeds]
formats = ["rss", "atom", "json"]
max_items = 50
tag_feeds = true
content = "full"
"""

# 30 tags; popularity falls off like a real newsroom's (a few big beats, a long tail).
TAGS = [
    "diplomacy", "europe", "vienna", "security", "energy", "arms control", "trade",
    "elections", "danube", "climate", "migration", "human rights", "sanctions",
    "balkans", "economy", "nuclear", "press freedom", "shipping", "agriculture",
    "water", "technology", "cyber", "health", "transport", "finance", "labour",
    "education", "culture", "justice", "eu enlargement",
]  # fmt: skip
TAG_WEIGHTS = [1 / (rank + 1) ** 0.8 for rank in range(len(TAGS))]

FIRST = [
    "Lena", "Tomás", "Amira", "Jonas", "Katarina", "Milan", "Sofia", "Andrei", "Eva",
    "Dario", "Ilse", "Nikola", "Hannah", "Yusuf", "Petra", "Marek", "Anja", "Farida",
    "Gregor", "Zsófia", "Luca", "Irena", "Stefan", "Priya", "Oskar", "Mira", "Emil",
]  # fmt: skip
LAST = [
    "Hofbauer", "Ferreira", "Nowak", "Horváth", "Popescu", "Kovačević", "Berger",
    "Schmid", "Ivanova", "Marković", "Oskanova", "Weiss", "Novák", "Lindqvist",
    "Petrov", "Gruber", "Demir", "Rao", "Kraus", "Varga", "Dimitrov", "Moser",
]  # fmt: skip
REPORTERS = [f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}" for i in range(24)]

PLACES = [
    "Vienna", "Budapest", "Bratislava", "Belgrade", "Bucharest", "Sofia", "Zagreb",
    "Ljubljana", "Prague", "Warsaw", "Berlin", "Brussels", "Geneva", "Linz", "Graz",
    "Passau", "Regensburg", "Novi Sad", "Ruse", "Constanța", "Chișinău", "Tirana",
    "Skopje", "Sarajevo", "Podgorica", "Kyiv", "Ankara", "Delhi", "Nairobi", "Rome",
]  # fmt: skip
ORGS = [
    "the OSCE", "the IAEA", "the European Commission", "the Danube Commission",
    "the Council of Europe", "the UN Office at Vienna", "the European Parliament",
    "the Austrian foreign ministry", "the World Bank", "the OPEC secretariat",
    "the European Investment Bank", "the Vienna Centre for Verification Studies",
    "the Danube Media Freedom Institute", "the regional water authority",
    "a coalition of port operators", "the national electricity regulator",
    "the Central European Initiative", "the International Atomic Energy Agency",
]  # fmt: skip
ROLES = [
    "a senior diplomat", "the foreign minister", "a spokesperson", "the mayor",
    "an official who asked not to be named", "the head of delegation", "an analyst",
    "the committee chair", "a trade union representative", "the deputy governor",
    "a researcher", "the prime minister", "an inspector", "the port director",
]  # fmt: skip
SUBJECTS = [
    "the agreement", "the proposal", "the draft treaty", "the new framework",
    "the inspection regime", "the funding plan", "the pilot project", "the reform",
    "the joint statement", "the monitoring mission", "the pipeline project",
    "the shipping corridor", "the water-sharing deal", "the election law",
    "the export controls", "the budget", "the summit", "the ceasefire",
    "the verification protocol", "the grain corridor", "the investment package",
]  # fmt: skip
VERBS_PAST = [
    "approved", "rejected", "delayed", "endorsed", "criticised", "welcomed",
    "questioned", "revised", "signed", "postponed", "defended", "extended",
    "announced", "reviewed", "suspended", "outlined", "negotiated", "adopted",
]  # fmt: skip
ADJECTIVES = [
    "cautious", "ambitious", "contested", "long-awaited", "fragile", "technical",
    "binding", "voluntary", "regional", "bilateral", "costly", "modest",
    "controversial", "preliminary", "comprehensive", "temporary", "unexpected",
]  # fmt: skip
NOUNS = [
    "negotiators", "inspectors", "farmers", "shipping companies", "ministers",
    "observers", "local authorities", "energy traders", "journalists", "voters",
    "border officials", "lawmakers", "investors", "engineers", "residents",
    "diplomats", "exporters", "regulators", "environmental groups", "judges",
]  # fmt: skip
THINGS = [
    "water levels", "gas prices", "tariffs", "freight volumes", "turnout",
    "emissions", "inflation", "troop movements", "grain exports", "power prices",
    "interest rates", "asylum applications", "court backlogs", "reservoir levels",
    "cargo traffic", "electricity demand", "wage growth", "fish stocks",
]  # fmt: skip
TIMES = [
    "on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday",
    "last week", "this month", "earlier this year", "in the spring", "by the end of the year",
    "over the weekend", "late on Thursday", "after two days of talks", "in recent months",
]  # fmt: skip
CONNECTORS = [
    "However,", "At the same time,", "In practice,", "According to the draft,",
    "For now,", "Privately,", "By contrast,", "As a result,", "Even so,", "Meanwhile,",
]  # fmt: skip
HEADINGS = [
    "What was agreed", "Open questions", "Next steps", "The background",
    "Reactions", "What it costs", "Who pays", "The numbers", "Why it matters",
    "A long road", "What critics say", "The legal question", "On the ground",
    "Timeline", "What comes next", "The view from {place}", "Money and politics",
]  # fmt: skip
TITLE_PATTERNS = [
    "{Place} {verb} {adj} plan on {thing}",
    "{Org} {verb} {subject} after talks in {place}",
    "{Nouns} in {place} wait for decision on {subject}",
    "Talks on {subject} resume in {place}",
    "{Place} and {place2} sign {adj} accord on {thing}",
    "Why {subject} matters for {nouns} in {place}",
    "{Adj} {thing} put pressure on {nouns} in {place}",
    "{Org} warns of falling {thing} along the Danube",
    "Inside {place}'s {adj} bid to reshape {subject}",
    "{Place} mayors meet on {thing} and {thing2}",
    "Court in {place} rules on {subject}",
    "{Nouns} question {adj} limits on {thing}",
]  # fmt: skip
LINK_TEXTS = [
    "the full report", "a statement", "the draft text", "published figures",
    "an earlier analysis", "the ministry's summary", "a joint declaration",
    "the court's ruling", "official data", "our previous coverage",
]  # fmt: skip
LINK_HOSTS = [
    "https://www.osce.org/", "https://www.iaea.org/newscenter/", "https://ec.europa.eu/commission/",
    "https://www.danubecommission.org/", "https://data.example.org/", "https://bench.meridian.example/",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Record:
    """What build_bench.py needs to know about one generated article."""

    path: str  # relative to the site folder
    pelican_path: str | None
    title: str
    date: datetime  # aware
    tags: tuple[str, ...]
    is_draft: bool


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


class Writer:
    """Sentences, paragraphs and whole articles from the word lists above."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = 0

    def pick(self, seq: Sequence[str]) -> str:
        return seq[int(self.rng.random() * len(seq))]

    def fill(self, pattern: str) -> str:
        r = self.pick
        org = r(ORGS)
        nouns = r(NOUNS)
        text = pattern.format(
            place=r(PLACES),
            place2=r(PLACES),
            Place=r(PLACES),
            org=org,
            Org=org[0].upper() + org[1:],
            subject=r(SUBJECTS),
            verb=r(VERBS_PAST),
            adj=r(ADJECTIVES),
            Adj=r(ADJECTIVES).capitalize(),
            thing=r(THINGS),
            thing2=r(THINGS),
            nouns=nouns,
            Nouns=nouns.capitalize(),
            role=r(ROLES),
            time=r(TIMES),
            percent=f"{self.rng.randint(2, 45)} percent",
            pages=str(self.rng.randint(6, 180)),
            money=f"€{self.rng.randint(2, 900)} million",
            people=f"{self.rng.randint(120, 48000):,} people",
            person=f"{r(FIRST)} {r(LAST)}",
        )
        return _ARTICLE_FIX.sub(r"\1n \2", text) if " a " in text or "A " in text else text

    SENTENCES = (
        "{Org} {verb} {subject} {time}, a decision that {nouns} in {place} "
        "had expected for months.",
        "{Nouns} say {subject} could change how {thing} are managed across the region.",
        "The {adj} text, seen by Meridian Briefing, runs to {pages} pages "
        "of commitments over five years.",
        '"We did not come here to sign a declaration," {role} said in {place}.',
        "{Subject_c} would cost about {money}, to be shared among the participating states.",
        "In {place}, {thing} rose for the third quarter in a row, according to {org}.",
        "Critics argue that {subject} is too {adj} to survive the next change of government.",
        "{person}, who has followed the talks since they began, described the mood as {adj}.",
        "The figures published {time} show {thing} falling by {percent} compared with last year.",
        "{Org} has asked for a {adj} review before any money is released.",
        "Several {nouns} told Meridian Briefing they had not been consulted on {subject}.",
        "The next round is scheduled to take place in {place}, {role} confirmed.",
        "None of this is new: {nouns} in {place} raised the same concerns a decade ago.",
        "{Connector} {nouns} remain divided over who should pay for {subject}.",
        "{Connector} {org} has been reluctant to commit to a timetable.",
        "Officials in {place} and {place2} have exchanged letters on {thing} {time}.",
        "The proposal leaves open whether {nouns} from outside the region may take part.",
        "About {people} are directly affected, most of them along the river "
        "between {place} and {place2}.",
        '{role_c} called the outcome "{adj}, but better than nothing".',
        "Whether {subject} survives will depend on {thing} over the coming winter.",
    )

    def sentence(self, link: bool = False) -> str:
        pattern = self.pick(self.SENTENCES)
        text = self.fill(
            pattern.replace("{Subject_c}", self.pick(SUBJECTS).capitalize())
            .replace("{Connector}", self.pick(CONNECTORS))
            .replace("{role_c}", self.pick(ROLES).capitalize())
        )
        if link:
            target = f"{self.pick(LINK_HOSTS)}{self.rng.randint(1000, 99999)}"
            label = self.pick(LINK_TEXTS)
            text = text[:-1] + f", as [{label}]({target}) shows."
        elif self.rng.random() < 0.04:
            words = text.split(" ")
            i = self.rng.randrange(len(words))
            if words[i].isalpha():
                words[i] = f"*{words[i]}*"
            text = " ".join(words)
        return text

    def article(self, target_words: int, place: str) -> str:
        rng = self.rng
        blocks: list[str] = []
        words = 0
        links_left = rng.choice((1, 1, 2))
        has_image = rng.random() < 0.25
        has_list = rng.random() < 0.35
        has_quote = rng.random() < 0.15
        section = 0
        while words < target_words:
            if blocks and (rng.random() < 0.28):
                section += 1
                heading = self.pick(HEADINGS).format(place=place)
                blocks.append(f"## {heading}")
                words += heading.count(" ") + 1
            if has_image and section == 1 and len(blocks) > 2:
                has_image = False
                year, place_slug = rng.randint(2016, 2026), slugify(self.pick(PLACES))
                name = f"{year}/{place_slug}-{rng.randint(1, 999)}.jpg"
                alt = self.fill("{Nouns} in {place}")
                blocks.append(f"![{alt}](https://bench.meridian.example/images/{name})")
                words += alt.count(" ") + 1
            if has_list and section >= 1 and rng.random() < 0.3:
                has_list = False
                numbered = rng.random() < 0.3
                items = [
                    self.fill("{Adj} limits on {thing} for {nouns}")
                    for _ in range(rng.randint(3, 5))
                ]
                blocks.append(
                    "\n".join(
                        f"{i + 1}. {item}" if numbered else f"- {item}"
                        for i, item in enumerate(items)
                    )
                )
                words += sum(len(item.split()) for item in items)
            if has_quote and section >= 1 and rng.random() < 0.3:
                has_quote = False
                quote = self.sentence()
                blocks.append("> " + quote)
                words += quote.count(" ") + 1
            n = rng.randint(2, 6)
            use = 1 if links_left and rng.random() < 0.5 else 0
            links_left -= use
            sentences: list[str] = []
            for i in range(n):
                sentence = self.sentence(link=bool(use) and i == n - 1)
                count = sentence.count(" ") + 1
                if sentences and words + count > MAX_WORDS - 30:  # room for list and heading marks
                    break
                sentences.append(sentence)
                words += count
                if words >= target_words:
                    break
            blocks.append(" ".join(sentences))
        return "\n\n".join(blocks) + "\n"


def _date_text(rng: random.Random, when: datetime) -> str:
    """The article's date as a writer would put it, in one of several styles."""
    roll = rng.random()
    local = when.astimezone(SITE_TZ)
    if roll < 0.55:
        return local.isoformat()  # 2024-05-16T09:30:00+02:00
    if roll < 0.70:
        return local.replace(tzinfo=None).isoformat()  # no offset: site time zone
    if roll < 0.82:
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if roll < 0.90:
        return when.astimezone(ZoneInfo("America/New_York")).isoformat()
    if roll < 0.96:
        return when.astimezone(ZoneInfo("Asia/Kolkata")).isoformat()
    return f"{local:%Y-%m-%d}"  # date only: midnight, site time zone


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def generate(n: int, out: Path, *, seed: int = 1, pelican: bool = False) -> list[Record]:
    rng = random.Random(f"corpus:{seed}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "publisher.toml").write_text(PUBLISHER_TOML.format(n=n, seed=seed), encoding="utf-8")
    content = out / "content"
    pelican_content = out / "pelican-content"
    start = END - SPAN
    # Sorted random instants: as many articles on a busy day as a newsroom has.
    seconds = sorted(rng.random() * SPAN.total_seconds() for _ in range(n))
    writer = Writer(rng)
    used: set[str] = set()
    records: list[Record] = []
    for index, offset in enumerate(seconds):
        when = (start + timedelta(seconds=int(offset))).replace(microsecond=0)
        local = when.astimezone(SITE_TZ)
        title = writer.fill(writer.pick(TITLE_PATTERNS))
        date_text = _date_text(rng, when)
        if len(date_text) == 10:  # date only: the article's instant is local midnight
            when = local.replace(hour=0, minute=0, second=0).astimezone(UTC)
        tags = tuple(
            dict.fromkeys(rng.choices(TAGS, TAG_WEIGHTS, k=rng.choice((1, 2, 2, 3, 3, 4))))
        )
        author_roll = rng.random()
        author = None if author_roll < 0.08 else REPORTERS[int(rng.random() * len(REPORTERS))]
        with_email = author is not None and author_roll > 0.85
        summary = writer.sentence() if rng.random() < 0.4 else None
        updated = when + timedelta(hours=rng.randint(2, 200)) if rng.random() < 0.05 else None
        is_draft = rng.random() < 0.005 and index < n - 100  # never among the newest
        place = writer.pick(PLACES)
        # 300-1,500 words, most of them 500-1,000.
        target = int(MIN_WORDS + (MAX_WORDS - MIN_WORDS) * rng.random() ** 1.4)
        body = writer.article(target, place)

        slug = slugify(title)[:70].rstrip("-") or f"article-{index}"
        name = f"{local:%Y-%m-%d}-{slug}"
        while name in used:
            name += "-2"
        used.add(name)
        relative = f"{local:%Y}/{name}.md"

        front = ["---", f"title: {_yaml_str(title)}", f"date: {_yaml_str(date_text)}"]
        if updated is not None:
            front.append(f"updated: {_yaml_str(updated.astimezone(SITE_TZ).isoformat())}")
        if author is not None:
            shown = (
                f"{author} <{slugify(author).replace('-', '.')}@meridian.example>"
                if with_email
                else author
            )
            front.append(f"author: {_yaml_str(shown)}")
        front.append("tags: [" + ", ".join(_yaml_str(t) for t in tags) + "]")
        if summary is not None:
            front.append(f"summary: {_yaml_str(summary)}")
        if is_draft:
            front.append("draft: true")
        front.append("---")
        path = content / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(front) + "\n\n" + body, encoding="utf-8")

        pelican_relative = None
        if pelican:
            # The file name is unique, titles are not: Pelican would take two
            # articles with one slug for translations and drop one of them.
            meta = [f"Title: {title}", f"Date: {date_text}", f"Slug: {name}"]
            if updated is not None:
                meta.append(f"Modified: {updated.astimezone(SITE_TZ).isoformat()}")
            if author is not None:
                meta.append(f"Author: {author}")
            meta.append("Tags: " + ", ".join(tags))
            # With CATEGORY_SAVE_AS = "" Pelican 4.12 gives no default category,
            # and then fails on a draft (generators.py: draft.category).
            meta.append("Category: news")
            if summary is not None:
                meta.append(f"Summary: {summary}")
            if is_draft:
                meta.append("Status: draft")
            pelican_path = pelican_content / relative
            pelican_path.parent.mkdir(parents=True, exist_ok=True)
            pelican_path.write_text("\n".join(meta) + "\n\n" + body, encoding="utf-8")
            pelican_relative = f"pelican-content/{relative}"
        records.append(Record(f"content/{relative}", pelican_relative, title, when, tags, is_draft))
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, required=True, help="number of articles")
    parser.add_argument("--out", type=Path, required=True, help="site folder to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pelican", action="store_true", help="also write DIR/pelican-content/ for Pelican"
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    if (args.out / "content").exists():
        parser.error(f"{args.out / 'content'} exists; choose an empty or new folder")
    started = time.perf_counter()
    records = generate(args.n, args.out, seed=args.seed, pelican=args.pelican)
    size = sum((args.out / r.path).stat().st_size for r in records)
    print(
        f"wrote {len(records)} articles ({size / 1e6:.1f} MB) to {args.out / 'content'}"
        + (f" and {args.out / 'pelican-content'}" if args.pelican else "")
        + f" in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
