"""Digests by segment: 10,000 subscribers in one segment, then spread over 24.

    python bench/segments_bench.py --subscribers 10000 --runs 5

In a temporary folder it makes a copy of the example site's content and
templates with five topics and three cadences, adds the subscribers (all in
the default segment, or round-robin over 8 topic choices × 3 cadences), and
measures, --runs times each in turn, the best kept:

1. make: what `digest send` does before sending: the groups of subscribers,
   each group's articles, one render per digest (Jinja2 → MJML, counted), the
   digest and its ledger rows recorded;
2. compose: compose.prepare once per digest, then a token and
   compose.personalise for every ledger row (the bytes a sender hands over).

It prints messages per second for compose alone and for make + compose, and
the 24-segment rate as a share of the one-segment rate (the target: at least
80 %), and checks that the renders counted are one per digest made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 0.8
TOPICS = {
    "arms": ("Arms control", ["arms control"]),
    "energy": ("Energy", ["energy"]),
    "sanctions": ("Sanctions", ["sanctions"]),
    "asia": ("Asia-Pacific", ["asia-pacific", "china"]),
    "vienna": ("Vienna", ["vienna"]),
}
TOPIC_CHOICES: list[tuple[str, ...] | None] = [
    None,
    ("arms",),
    ("energy",),
    ("sanctions",),
    ("asia",),
    ("vienna",),
    ("arms", "energy"),
    ("asia", "sanctions"),
]
CADENCES: list[str | None] = [None, "daily at 07:00", "each article"]
CONFIG = """\
[site]
title = "Meridian Briefing"
base_url = "https://meridian.example/"
timezone = "Europe/Vienna"
author = "Meridian Desk"
author_email = "desk@meridian.example"

[pages]
enabled = false

[digest]
cadence = "weekly on monday at 07:00"
cadences = ["weekly on monday at 07:00", "daily at 07:00", "each article"]
postal_address = "Praterstraße 1, 1020 Vienna, Austria"
"""


@dataclass(frozen=True)
class Result:
    segments: int
    digests: int
    renders: int
    messages: int
    make: float
    compose: float

    @property
    def compose_rate(self) -> float:
        return self.messages / self.compose

    @property
    def rate(self) -> float:
        return self.messages / (self.make + self.compose)


def make_site(folder: Path, subscribers: int, *, spread: bool) -> Any:
    from publisher import tokens
    from publisher.config import load_config
    from publisher.store import open_store

    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "content", folder / "content")
    if (ROOT / "templates").is_dir():
        shutil.copytree(ROOT / "templates", folder / "templates")
    topics = "".join(
        f'\n[topics.{slug}]\ntitle = "{title}"\ntags = {tags!r}\n'.replace("'", '"')
        for slug, (title, tags) in TOPICS.items()
    )
    (folder / "publisher.toml").write_text(CONFIG + topics, encoding="utf-8")
    site = load_config(folder / "publisher.toml")
    tokens.load_secret(site.state_dir)
    now = datetime.now(UTC)
    with open_store(site.state_db) as store, store.transaction():
        for number in range(subscribers):
            choice = number % (len(TOPIC_CHOICES) * len(CADENCES)) if spread else 0
            store.insert_subscriber(
                f"reader{number:06d}@example.org",
                f"Reader {number}",
                status="active",
                now=now,
                topics=TOPIC_CHOICES[choice % len(TOPIC_CHOICES)],
                cadence=CADENCES[choice // len(TOPIC_CHOICES)],
            )
    return site


def measure(site: Any) -> Result:
    from publisher import tokens
    from publisher.content.indexing import content_files, index_content
    from publisher.mail import compose
    from publisher.pipelines import digests
    from publisher.store import open_store

    now = datetime.now(UTC)
    settings = compose.mail_settings(site)
    renders = []
    real_render = digests.render_digest

    def counted(*args: Any, **kwargs: Any) -> Any:
        renders.append(1)
        return real_render(*args, **kwargs)

    digests.render_digest = counted  # type: ignore[assignment]
    try:
        with open_store(site.state_db) as store:
            with store.transaction():
                index_content(site, store, content_files(site), now=now)
            report = digests.SendReport()
            start = time.perf_counter()
            made = digests._make_digests(
                site, store, settings, report, now=now, due=digests.every_cadence
            )
            make = time.perf_counter() - start
            secret = tokens.load_secret(site.state_dir)
            start = time.perf_counter()
            messages = 0
            for digest_id in made:
                digest = store.get_digest(digest_id)
                assert digest is not None
                assert digest.rendered is not None
                template = compose.prepare(digest_id, digest.rendered, settings, date=now)
                for row in store.iter_deliveries(digest_id, ("pending",)):
                    person = row.subscriber
                    token = tokens.make_token(secret, person.id, person.email)
                    compose.personalise(template, person, token)
                    messages += 1
            composing = time.perf_counter() - start
            segments = len({c.segment for c in store.delivery_counts() if c.digest_id in made})
    finally:
        digests.render_digest = real_render  # type: ignore[assignment]
    return Result(segments, len(made), len(renders), messages, make, composing)


def best_of(folder: Path, subscribers: int, runs: int) -> tuple[Result, Result]:
    """The best of *runs* of each case, run in turn (one, 24, one, …) so both see the same load."""
    results: dict[bool, list[Result]] = {False: [], True: []}
    for run in range(runs):
        for spread in (False, True):
            name = f"{'spread' if spread else 'one'}-{run}"
            site = make_site(folder / name, subscribers, spread=spread)
            results[spread].append(measure(site))
    one, spread = (max(results[s], key=lambda r: r.rate) for s in (False, True))
    return one, spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="segments-bench-") as work:
        one, spread = best_of(Path(work), args.subscribers, args.runs)
    print(
        f"{'case':<14} {'segments':>8} {'digests':>7} {'renders':>7} {'messages':>8} "
        f"{'make':>8} {'compose':>8} {'compose/s':>10} {'all/s':>8}"
    )
    for name, result in (("one segment", one), ("24 segments", spread)):
        print(
            f"{name:<14} {result.segments:>8} {result.digests:>7} {result.renders:>7} "
            f"{result.messages:>8} {result.make:>7.3f}s {result.compose:>7.3f}s "
            f"{result.compose_rate:>10,.0f} {result.rate:>8,.0f}"
        )
    compose_share = spread.compose_rate / one.compose_rate
    share = spread.rate / one.rate
    print(
        f"24 segments / one: compose {compose_share:.0%}, make + compose {share:.0%} "
        f"(target ≥ {RATIO_TARGET:.0%}); renders = digests: "
        f"{'yes' if spread.renders == spread.digests and one.renders == one.digests else 'NO'}"
    )
    return 0 if min(share, compose_share) >= RATIO_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
