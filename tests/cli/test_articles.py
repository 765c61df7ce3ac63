"""cli.articles: `build`, `check` and `new`: their summaries, warnings and one-line errors."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from support.cli import invoke
from support.clock import NOW
from support.mailing import add_subscribers

from publisher.cli import cli
from publisher.config import load_config
from publisher.pipelines import digests
from publisher.pipelines.links import check_links

COMMANDS = ["build", "check", "new"]
DRAFT_LINE = (
    "it is a draft: to publish it, set `draft: false` in its front matter "
    "(or create it with --publish), then run `publisher build`\n"
)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert (
        f"Usage: cli {command}" in result.stdout or f"Usage: publisher {command}" in result.stdout
    )
    assert len(result.stdout.splitlines()) > 4


def test_build_then_rebuild(runner, site_dir):
    first = invoke(runner, site_dir, "build")
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "5 articles loaded (3 published, 1 draft, 1 scheduled), 0 skipped with errors, "
        "18 files written, 0 unchanged; 18 pages written, 0 unchanged\n"
    )
    assert first.stderr == ""
    second = invoke(runner, site_dir, "build")
    assert second.stdout == (
        "5 articles loaded (3 published, 1 draft, 1 scheduled), 0 skipped with errors, "
        "0 files written, 18 unchanged; 0 pages written, 18 unchanged\n"
    )


def test_topics_or_cadences_added_rewrite_the_pages_whose_form_offers_them(runner, site_dir):
    from support.web import add_choices

    assert invoke(runner, site_dir, "build").exit_code == 0
    home = site_dir / "site" / "index.html"
    assert 'name="topic"' not in home.read_text(encoding="utf-8")
    add_choices(site_dir)
    again = invoke(runner, site_dir, "build")
    assert again.exit_code == 0, again.output
    assert again.stdout.endswith("; 16 pages written, 2 unchanged\n")  # all but the sitemaps
    assert home.read_text(encoding="utf-8").count('name="topic"') == 3


def test_bad_article_is_a_warning_unless_strict(runner, site_dir):
    (site_dir / "content" / "2024-02-02-broken.md").write_text(
        "---\ntitle: Broken\ndate: May 1st\n---\nText\n", encoding="utf-8"
    )
    result = invoke(runner, site_dir, "build")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: content/2024-02-02-broken.md: date: not an ISO 8601 date ('May 1st'); "
        "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'\n"
    )
    assert ", 1 skipped with errors," in result.stdout
    strict = invoke(runner, site_dir, "build", "--strict")
    assert strict.exit_code == 1


def test_missing_content_folder(runner, site_dir):
    for path in (site_dir / "content").iterdir():
        path.unlink()
    (site_dir / "content").rmdir()
    result = invoke(runner, site_dir, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: content: content folder not found (set [paths] content in publisher.toml)\n"
    )


def test_unwritable_output_folder(runner, site_dir):
    # A file where the output folder should be: mkdir fails even for root.
    (site_dir / "feeds").write_text("not a folder", encoding="utf-8")
    result = invoke(runner, site_dir, "build")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: feeds: exists but is not a folder; remove it or set [paths] output\n"
    )
    assert (site_dir / "feeds").read_text(encoding="utf-8") == "not a folder"


def test_unwritable_output_file_leaves_the_old_one_whole(runner, site_dir):
    assert invoke(runner, site_dir, "build").exit_code == 0
    rss = site_dir / "feeds" / "rss.xml"
    before = rss.read_bytes()
    (site_dir / "feeds" / "tags" / "vienna").rename(site_dir / "feeds" / "tags" / "moved")
    (site_dir / "feeds" / "tags" / "vienna").write_text("blocker", encoding="utf-8")
    path = site_dir / "content" / "2020-06-22-vienna-talks.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Arms talks", "Arms control talks"),
        encoding="utf-8",
    )
    result = invoke(runner, site_dir, "build")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: feeds/tags/vienna/")
    # The build's feeds go in place together or not at all: the site feed is the old one,
    # whole, and no temp file is left behind.
    assert rss.read_bytes() == before
    assert list((site_dir / "feeds").rglob("*.tmp")) == []
    (site_dir / "feeds" / "tags" / "vienna").unlink()
    assert invoke(runner, site_dir, "build").exit_code == 0
    assert b"Arms control talks" in rss.read_bytes()


def test_check_lists_problems_and_writes_nothing(runner, site_dir):
    (site_dir / "content" / "2024-02-02-broken.md").write_text(
        "---\ndate: 2024-02-02\n---\nText\n", encoding="utf-8"
    )
    result = invoke(runner, site_dir, "check")
    assert result.exit_code == 1
    assert result.stderr == "error: content/2024-02-02-broken.md: title: missing (required)\n"
    assert result.stdout == "checked publisher.toml and 6 article files: 1 with problems\n"
    assert not (site_dir / "feeds").exists()
    assert not (site_dir / ".publisher").exists()


def test_check_passes_on_a_good_site(runner, site_dir):
    result = invoke(runner, site_dir, "check")
    assert result.exit_code == 0
    assert result.stdout == "checked publisher.toml and 5 article files: 0 with problems\n"


# -- check --links ---------------------------------------------------------------------

GAZETTE = "https://gazette.example/news/"
VIENNA_IMAGE = "site/2020/06/vienna-talks/images/delegations.jpg"


def _built_without_broken_links(runner, site_dir):
    """The basic site built with its Vienna article's two dangling links put right."""
    article = site_dir / "content" / "2020-06-22-vienna-talks.md"
    article.write_text(
        article.read_text(encoding="utf-8").replace("2020/06/preview/", "2021/03/observers/"),
        encoding="utf-8",
    )
    assert invoke(runner, site_dir, "build").exit_code == 0
    image = site_dir / VIENNA_IMAGE
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8\xff\xe0 a JPEG")


def _links_checked(site_dir) -> int:
    return check_links(load_config(site_dir / "publisher.toml")).checked


def test_check_links_on_a_built_site_finds_none_broken(runner, site_dir):
    _built_without_broken_links(runner, site_dir)
    result = invoke(runner, site_dir, "check", "--links")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == (
        "checked publisher.toml and 5 article files: 0 with problems\n"
        f"checked {_links_checked(site_dir)} links in 18 feeds, 17 pages and 0 digests: "
        "0 broken\n"
    )


def test_check_links_reports_each_broken_link_and_exits_1(runner, site_dir):
    _built_without_broken_links(runner, site_dir)
    (site_dir / "content" / "2024-05-01-pointer.md").write_text(
        '---\ntitle: "Pointer"\ndate: "2024-05-01T10:00:00+02:00"\n---\n\n'
        "See [what is gone](/news/missing/).\n",
        encoding="utf-8",
    )
    assert invoke(runner, site_dir, "build").exit_code == 0
    (site_dir / VIENNA_IMAGE).unlink()
    result = invoke(runner, site_dir, "check", "--links")
    assert result.exit_code == 1
    missing = f"{GAZETTE}missing/: no such file in site/ (missing/index.html)"
    image = (
        f"{GAZETTE}2020/06/vienna-talks/images/delegations.jpg: "
        "no such file in site/ (2020/06/vienna-talks/images/delegations.jpg)"
    )
    assert result.stderr.splitlines() == [
        f"error: feeds/atom.xml: {image}",
        f"error: feeds/atom.xml: {missing}",
        f"error: feeds/feed.json: {image}",
        f"error: feeds/feed.json: {missing}",
        f"error: feeds/rss.xml: {image}",
        f"error: feeds/rss.xml: {missing}",
        f"error: feeds/tags/arms-control/atom.xml: {image}",
        f"error: feeds/tags/arms-control/feed.json: {image}",
        f"error: feeds/tags/arms-control/rss.xml: {image}",
        f"error: feeds/tags/vienna/atom.xml: {image}",
        f"error: feeds/tags/vienna/feed.json: {image}",
        f"error: feeds/tags/vienna/rss.xml: {image}",
        f"error: site/2020/06/vienna-talks/index.html: {image}",
        f"error: site/2024/05/pointer/index.html: {missing}",
    ]
    assert result.stdout == (
        "checked publisher.toml and 6 article files: 0 with problems\n"
        f"checked {_links_checked(site_dir)} links in 18 feeds, 19 pages and 0 digests: "
        "14 broken\n"
    )


def test_check_links_without_a_web_table_reports_the_digest_s_service_routes(runner, site_dir):
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[web]\n", ""), encoding="utf-8")
    _built_without_broken_links(runner, site_dir)
    site = load_config(config)
    add_subscribers(site, ["ada@example.org"], NOW)
    assert digests.send_digests(site, now=lambda: NOW).made == [1]
    result = invoke(runner, site_dir, "check", "--links")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: digest 1: {GAZETTE}preferences: "
        "a route of publisher serve, and publisher.toml has no [web] table\n"
        f"error: digest 1: {GAZETTE}unsubscribe: "
        "a route of publisher serve, and publisher.toml has no [web] table\n"
    )
    assert result.stdout.endswith(" links in 18 feeds, 18 pages and 1 digest: 2 broken\n")


def test_check_links_with_pages_off_says_pages_were_not_checked(runner, site_dir):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[pages]\nenabled = false\n", encoding="utf-8"
    )
    assert invoke(runner, site_dir, "build").exit_code == 0
    result = invoke(runner, site_dir, "check", "--links")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        f"checked {_links_checked(site_dir)} links in 18 feeds, 0 pages and 0 digests: "
        "0 broken; pages are off: links to pages not checked"
    )


def test_check_links_on_a_site_never_built_says_to_build_first(runner, site_dir):
    result = invoke(runner, site_dir, "check", "--links")
    assert result.exit_code == 1
    assert result.stdout == "checked publisher.toml and 5 article files: 0 with problems\n"
    assert result.stderr == "error: site/: no such folder; run publisher build first\n"
    assert sorted(p.name for p in site_dir.iterdir()) == ["content", "publisher.toml"]


def test_new_creates_a_dated_draft(runner, site_dir):
    result = invoke(
        runner, site_dir, "new", 'Talks resume: "round two" in Vienna', "--tag", "vienna"
    )
    assert result.exit_code == 0, result.output
    match = re.fullmatch(
        r"created (content/(\d{4}-\d{2}-\d{2})-talks-resume-round-two-in-vienna\.md)\n"
        + re.escape(DRAFT_LINE),
        result.stdout,
    )
    assert match
    text = (site_dir / match.group(1)).read_text(encoding="utf-8")
    front_matter = yaml.safe_load(text.split("---\n")[1])
    assert front_matter["title"] == 'Talks resume: "round two" in Vienna'
    assert front_matter["date"].startswith(match.group(2) + "T")
    assert front_matter["date"][-6:] in ("+01:00", "+02:00")  # Europe/Vienna
    assert front_matter["tags"] == ["vienna"]
    assert front_matter["draft"] is True
    assert invoke(runner, site_dir, "check").exit_code == 0
    again = invoke(runner, site_dir, "new", 'Talks resume: "round two" in Vienna')
    assert again.exit_code == 1
    assert (
        again.stderr
        == f"error: {match.group(1)}: already exists; choose another title or edit that file\n"
    )


def test_new_gives_the_article_an_explicit_id_that_the_build_keeps(runner, site_dir):
    """Identity written into the file: no rename, retitle or rewrite can lose it."""
    result = invoke(runner, site_dir, "new", "Talks resume in Vienna", "--publish")
    assert result.exit_code == 0, result.output
    path = next((site_dir / "content").glob("*-talks-resume-in-vienna.md"))
    front_matter = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
        front_matter["id"],
    )
    other = invoke(runner, site_dir, "new", "Another article", "--publish")
    assert other.exit_code == 0, other.output
    other_path = next((site_dir / "content").glob("*-another-article.md"))
    other_id = yaml.safe_load(other_path.read_text(encoding="utf-8").split("---\n")[1])["id"]
    assert other_id != front_matter["id"]
    assert invoke(runner, site_dir, "build").exit_code == 0
    feed = json.loads((site_dir / "feeds" / "feed.json").read_text(encoding="utf-8"))
    ids = {item["title"]: item["id"] for item in feed["items"]}
    assert ids["Talks resume in Vienna"] == front_matter["id"]


def test_build_and_check_warn_of_markup_removed_from_a_title(runner, site_dir):
    path = site_dir / "content" / "2021-03-04-observers.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "title: Observers find an orderly vote",
            "title: Observers find an orderly vote <script>alert(1)</script>",
        ),
        encoding="utf-8",
    )
    warning = (
        "warning: content/2021-03-04-observers.md: title: HTML tags removed, it is plain text "
        "('Observers find an orderly vote <script>alert(1)</script>' became "
        "'Observers find an orderly vote')\n"
    )
    built = invoke(runner, site_dir, "build")
    assert built.exit_code == 0
    assert built.stderr == warning
    checked = invoke(runner, site_dir, "check")
    assert (checked.exit_code, checked.stderr) == (0, warning)
    for name in ("rss.xml", "atom.xml", "feed.json"):
        assert "alert(1)" not in (site_dir / "feeds" / name).read_text(encoding="utf-8")


def test_new_with_publish_says_only_what_it_created(runner, site_dir):
    result = invoke(runner, site_dir, "new", "Ferries resume", "--publish")
    assert result.exit_code == 0, result.output
    (path,) = (site_dir / "content").glob("*-ferries-resume.md")
    assert result.stdout == f"created content/{path.name}\n"
    assert "draft: false" in path.read_text(encoding="utf-8")


def test_new_with_an_unusable_title(runner, site_dir):
    result = invoke(runner, site_dir, "new", "!!!")
    assert result.exit_code == 2
    assert (
        result.stderr == "error: TITLE: '!!!' has no letters or digits to make a file name from\n"
    )
