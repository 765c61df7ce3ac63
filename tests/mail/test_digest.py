"""mail.digest: MJML → HTML and a text part, rendered once with per-recipient placeholders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.fetches import foreign_fetches

from publisher.config import DEFAULT_SUBJECT
from publisher.errors import TemplateError
from publisher.mail.digest import (
    HTML_LIMIT,
    PREFERENCES_PLACEHOLDER,
    UNSUBSCRIBE_PLACEHOLDER,
    DigestSite,
    render_digest,
)
from publisher.model import DigestArticle, RenderedDigest
from publisher.templating import make_environment

WEB_URL = "https://meridian.example/feeds/digests/7/"
SIGNUP_URL = "https://meridian.example/"
ADDRESS = "Meridian Briefing, Schottengasse 4, 1010 Vienna, Austria"
HOSTILE_TITLE = "<b>Bold</b> \"quoted\" & 'single'\r\nBcc: evil@example.org"
# 23:30 UTC on the 26th is already the 27th in Vienna: the digest is dated in site time.
CREATED_AT = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
SUMMARY = (
    "Delegates at a two-day conference in Vienna agreed on recommendations for governments "
    "hosting exiled reporters, but stopped short of proposing a binding instrument; several "
    "ministries said they would study the text before the spring meeting of the council in "
    "Brussels, where a first report is expected."
)


def digest_site(*, postal_address: str | None = ADDRESS) -> DigestSite:
    return DigestSite(
        title="Meridian Briefing",
        description="Independent reporting on diplomacy, from Vienna.",
        base_url="https://meridian.example/",
        language="en",
        timezone=ZoneInfo("Europe/Vienna"),
        postal_address=postal_address,
        signup_url=SIGNUP_URL,
    )


def make_articles(count: int, *, title: str = "Talks in Vienna, round {n}") -> list[DigestArticle]:
    return [
        DigestArticle(
            id=f"urn:example:{n}",
            title=title.format(n=n),
            link=f"https://meridian.example/2026/11/talks-round-{n}/",
            date=datetime(2026, 11, 20, 9, 0, tzinfo=UTC) - timedelta(days=n),
            authors=("Lena Hofbauer", "Tomás Ferreira") if n % 2 else ("Aiko Watanabe",),
            summary=SUMMARY,
        )
        for n in range(1, count + 1)
    ]


def render(
    articles: list[DigestArticle],
    *,
    templates: Path | None = None,
    site: DigestSite | None = None,
    subject: str = DEFAULT_SUBJECT,
    max_articles: int = 20,
) -> RenderedDigest:
    return render_digest(
        make_environment(templates),
        site or digest_site(),
        articles,
        subject_template=subject,
        number=7,
        created_at=CREATED_AT,
        web_url=WEB_URL,
        max_articles=max_articles,
    )


@dataclass
class Link:
    href: str
    text: str = ""


@dataclass
class ParsedHtml:
    tags: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    text: str = ""

    def hrefs(self) -> list[str]:
        return [link.href for link in self.links]

    def link_named(self, text: str) -> Link:
        (found,) = [link for link in self.links if link.text == text]
        return found


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = ParsedHtml()
        self._chunks: list[str] = []
        self._open_link: Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parsed.tags.append(tag)
        if tag == "a":
            self._open_link = Link(dict(attrs).get("href") or "")
            self.parsed.links.append(self._open_link)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open_link = None

    def handle_data(self, data: str) -> None:
        self._chunks.append(data)
        if self._open_link is not None:
            self._open_link.text = " ".join((self._open_link.text + data).split())

    def close(self) -> None:
        super().close()
        self.parsed.text = " ".join("".join(self._chunks).split())


def parse_html(html: str) -> ParsedHtml:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.parsed


# -- both parts ------------------------------------------------------------------


def test_html_part_holds_every_article_and_the_unsubscribe_placeholder():
    articles = make_articles(3)
    parsed = parse_html(render(articles).html)

    assert parsed.tags[0] == "html"
    for article in articles:
        assert article.title in parsed.text
        assert parsed.link_named(article.title).href == article.link
        assert parsed.hrefs().count(article.link) == 2  # the title and "Read more"
    assert "27 November 2026" in parsed.text
    assert "Lena Hofbauer and Tomás Ferreira" in parsed.text
    assert SUMMARY in parsed.text
    assert parsed.link_named("View in your browser").href == WEB_URL
    assert parsed.link_named("Unsubscribe").href == UNSUBSCRIBE_PLACEHOLDER
    assert parsed.hrefs().count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert parsed.link_named("Choose what you receive").href == PREFERENCES_PLACEHOLDER
    assert parsed.hrefs().count(PREFERENCES_PLACEHOLDER) == 1
    assert [link for link in parsed.links if link.text == "Subscribe"] == []
    assert "You are receiving this because you subscribed to Meridian Briefing." in parsed.text


def test_html_starts_with_a_hidden_preheader_of_the_first_titles():
    html = render(make_articles(4)).html
    preheader = "Talks in Vienna, round 1 · Talks in Vienna, round 2 · Talks in Vienna, round 3"

    assert '<html lang="en"' in html
    assert html.index(preheader) < html.index("<h2")
    assert "round 4 ·" not in html


def test_html_placeholder_is_the_whole_href_attribute():
    html = render(make_articles(1)).html

    assert html.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert f'href="{UNSUBSCRIBE_PLACEHOLDER}"' in html
    assert html.count(PREFERENCES_PLACEHOLDER) == 1
    assert f'href="{PREFERENCES_PLACEHOLDER}"' in html


def test_web_copy_offers_the_signup_and_no_unsubscribe_or_browser_link():
    # The web copy belongs to no one: an unsubscribe link without a token only
    # opens "That unsubscribe link is not valid".
    web_html = render(make_articles(3)).web_html
    parsed = parse_html(web_html)

    assert UNSUBSCRIBE_PLACEHOLDER not in web_html
    assert PREFERENCES_PLACEHOLDER not in web_html
    assert "unsubscribe" not in web_html.lower()
    assert "Choose what you receive" not in parsed.text
    assert parsed.link_named("Subscribe").href == SIGNUP_URL
    assert "View in your browser" not in parsed.text
    assert WEB_URL not in parsed.hrefs()
    assert "You are receiving this" not in parsed.text


def test_text_part_holds_every_article_and_the_unsubscribe_placeholder():
    articles = make_articles(3)
    text = render(articles).text
    lines = text.splitlines()

    assert lines[:2] == ["Meridian Briefing", "27 November 2026 · Issue 7"]
    for article in articles:
        assert article.title in lines
        assert f"Read more: {article.link}" in lines
    assert "19 November 2026 · Lena Hofbauer and Tomás Ferreira" in lines
    assert f"View in your browser: {WEB_URL}" in lines
    assert f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}" in lines
    assert text.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    assert f"Choose what you receive: {PREFERENCES_PLACEHOLDER}" in lines
    assert text.count(PREFERENCES_PLACEHOLDER) == 1
    assert lines[-1] == ADDRESS
    assert max(len(line) for line in lines if not line.startswith("Read more")) <= 72


@pytest.mark.parametrize(
    ("postal_address", "expected"),
    [(ADDRESS, True), (None, False)],
)
def test_postal_address_only_when_configured(postal_address, expected):
    rendered = render(make_articles(1), site=digest_site(postal_address=postal_address))

    assert (ADDRESS in parse_html(rendered.html).text) is expected
    assert (ADDRESS in rendered.text) is expected
    assert "None" not in rendered.text


# -- nothing fetched from third parties -------------------------------------------


def _assert_fetches_nothing_foreign(html: str, base_url: str) -> None:
    assert foreign_fetches(html, base_url) == []
    assert "@import" not in html
    assert "fonts.googleapis" not in html


def test_the_digest_and_its_web_copy_fetch_nothing_from_third_parties():
    rendered = render(make_articles(3))
    for html in (rendered.html, rendered.web_html):
        _assert_fetches_nothing_foreign(html, digest_site().base_url)


def test_no_font_name_in_a_site_template_brings_web_fonts_back(make_site):
    # MRML's default font map turns Roboto, Open Sans, Lato, Droid Sans and
    # Ubuntu in a font stack into Google Fonts requests.
    rendered = render(make_articles(2), templates=make_site("digest-web-fonts") / "templates")
    for html in (rendered.html, rendered.web_html):
        assert "Lato" in html
        _assert_fetches_nothing_foreign(html, digest_site().base_url)


# -- hostile titles and the subject ----------------------------------------------


def test_title_with_markup_and_line_breaks_is_escaped_in_html():
    (article,) = make_articles(1, title=HOSTILE_TITLE)
    rendered = render([article])

    for html in (rendered.html, rendered.web_html):
        parsed = parse_html(html)
        assert "b" not in parsed.tags
        assert "<b>" not in html
        assert "&lt;b&gt;Bold&lt;/b&gt;" in html
        assert " ".join(HOSTILE_TITLE.split()) in parsed.text
        assert parsed.hrefs().count(article.link) == 2


def test_title_with_line_breaks_stays_one_line_in_text():
    (article,) = make_articles(1, title=HOSTILE_TITLE)
    text = render([article]).text

    assert "\r" not in text
    assert "<b>Bold</b> \"quoted\" & 'single' Bcc: evil@example.org" in text.splitlines()
    assert "&lt;" not in text
    assert "&#34;" not in text


@pytest.mark.parametrize(
    ("subject", "count", "expected"),
    [
        (DEFAULT_SUBJECT, 1, "Meridian Briefing: 1 new article"),
        (DEFAULT_SUBJECT, 3, "Meridian Briefing: 3 new articles"),
        (
            "{{ articles[0].title }} and more",
            3,
            "<b>Bold</b> \"quoted\" & 'single' Bcc: evil@example.org and more",
        ),
        (
            "{{ site_title }}\n{{ date.day }} {{ date.strftime('%B') }}",
            1,
            "Meridian Briefing 27 November",
        ),
    ],
)
def test_subject_is_one_unescaped_line(subject, count, expected):
    rendered = render(make_articles(count, title=HOSTILE_TITLE), subject=subject)

    assert rendered.subject == expected
    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject


# -- more articles than fit --------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "max_articles", "more"),
    [(5, 3, "2 more articles on the web"), (4, 3, "1 more article on the web")],
)
def test_more_count_links_to_the_web_copy_which_lists_all(count, max_articles, more):
    articles = make_articles(count)
    rendered = render(articles, max_articles=max_articles)
    email = parse_html(rendered.html)
    web = parse_html(rendered.web_html)

    assert email.link_named(more).href == WEB_URL
    assert f"{more}: {WEB_URL}" in rendered.text.splitlines()
    for article in articles[:max_articles]:
        assert article.title in email.text
        assert article.title in rendered.text
    for article in articles[max_articles:]:
        assert article.title not in email.text
        assert article.title not in rendered.text
    for article in articles:
        assert article.title in web.text
    assert "on the web" not in web.text


def test_no_more_line_when_everything_fits():
    rendered = render(make_articles(3), max_articles=3)

    assert "on the web" not in parse_html(rendered.html).text
    assert "on the web" not in rendered.text


# -- size and line length ----------------------------------------------------------


def test_html_with_twenty_long_cards_stays_under_gmail_clipping():
    title = "Vienna conference {n} calls for protection of exiled journalists and a review of " * 2
    articles = make_articles(20, title=title.strip())
    assert all(len(a.summary) >= 300 for a in articles)

    html = render(articles, max_articles=20).html

    assert len(html.encode("utf-8")) < HTML_LIMIT


def test_text_lines_stay_short_with_a_thousand_character_title():
    (article,) = make_articles(1, title="x" * 1000)
    long_word = "Donaudampfschifffahrtsgesellschaftskapitän" * 30
    rendered = render([article], site=digest_site(postal_address=long_word))

    lines = rendered.text.splitlines()
    assert max(len(line.encode("utf-8")) for line in lines) <= 998
    assert max(len(line) for line in lines if not line.startswith("Read more")) <= 72
    assert "".join(line for line in lines if set(line) == {"x"}) == "x" * 1000


# -- site templates ----------------------------------------------------------------


def test_site_text_template_overrides_the_packaged_one(make_site: Callable[[str], Path]):
    site_dir = make_site("digest-text-override")
    articles = make_articles(2)

    rendered = render(articles, templates=site_dir / "templates")

    assert rendered.text == (
        "Meridian Briefing in brief\n"
        f"* Talks in Vienna, round 1 <{articles[0].link}>\n"
        f"* Talks in Vienna, round 2 <{articles[1].link}>\n"
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n"
    )
    # The site overrides only the text part: the HTML still comes from the package.
    assert parse_html(rendered.html).link_named("Unsubscribe").href == UNSUBSCRIBE_PLACEHOLDER


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "bad-template",
            "{templates}/digest.mjml.j2:3: template syntax error: "
            "Expected an expression, got 'end of statement block'",
        ),
        (
            "digest-undefined-variable",
            "{templates}/digest.mjml.j2:5: undefined variable: 'site_name' is undefined",
        ),
        (
            "digest-unclosed-tag",
            "digest.mjml.j2: MJML error: unexpected end of stream in root template "
            "(a tag is not closed)",
        ),
        (
            "digest-unquoted-attribute",
            "digest.mjml.j2: MJML error: unable to parse next template in root template",
        ),
        (
            # MRML gives a byte span; the line is found in the template, and the
            # output line is counted in bytes (characters would say line 9).
            "digest-stray-closing-tag",
            "digest.mjml.j2:12: MJML error: unexpected element in root template "
            "at position 231:242 ('<mj-section' on line 8 of the output)",
        ),
    ],
)
def test_bad_site_template_names_template_and_line(make_site, case, message):
    templates = make_site(case) / "templates"

    with pytest.raises(TemplateError) as excinfo:
        render(make_articles(2), templates=templates)

    assert str(excinfo.value) == message.format(templates=templates)


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        (
            "{% if %}",
            "[digest] subject: template error: "
            "Expected an expression, got 'end of statement block'",
        ),
        ("{{ site_name }}", "[digest] subject: template error: 'site_name' is undefined"),
        ("{{ count / 0 }}", "[digest] subject: template error: division by zero"),
        (
            "{{ articles[5].title }}",
            "[digest] subject: template error: list object has no element 5",
        ),
    ],
)
def test_bad_subject_template(subject, message):
    with pytest.raises(TemplateError) as excinfo:
        render(make_articles(2), subject=subject)

    assert str(excinfo.value) == message
