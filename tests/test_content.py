"""The article files: every bad input and its exact message, and the markup helpers."""

from __future__ import annotations

import json
import os

import pytest

from publisher.config import SiteConfig, load_config
from publisher.content import files, markup
from publisher.content.articles import ArticleDefaults, Parsed, parse_article
from publisher.errors import ContentError
from publisher.model import Author, Tag
from publisher.pipelines.build import build, check, defaults_for
from publisher.text import one_line, shorten, slugify, strip_forbidden

MB = 1024 * 1024
STORY = "2024-05-03-story.md"
WHERE = f"content/{STORY}"


@pytest.fixture
def defaults(site) -> ArticleDefaults:
    return defaults_for(site)


def _article(front: str, body: str = "Body.\n") -> bytes:
    return f"---\n{front}---\n{body}".encode()


def _parse(data: bytes, defaults: ArticleDefaults, relative: str = STORY) -> Parsed:
    return parse_article(f"content/{relative}", relative, data, defaults)


def _lines(data: bytes, defaults: ArticleDefaults, relative: str = STORY) -> list[str]:
    with pytest.raises(ContentError) as caught:
        _parse(data, defaults, relative)
    return caught.value.lines()


# -- bad input -> exact lines ----------------------------------------------------------

DATE = 'date: "2024-05-03"\n'
TITLE = 'title: "Harbour reopens"\n'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            _article('title: [unclosed\ndate: "2024-05-03"\n'),
            ["front matter: invalid YAML at line 3, column 5: did not find expected ',' or ']'"],
            id="invalid-yaml",
        ),
        pytest.param(
            _article("title: a: b\n" + DATE),
            [
                "front matter: invalid YAML at line 2, column 9: "
                "mapping values are not allowed in this context"
            ],
            id="invalid-yaml-mapping",
        ),
        pytest.param(
            _article(DATE),
            ["title: missing (required)"],
            id="missing-title",
        ),
        pytest.param(
            _article(TITLE),
            ["date: missing (required)"],
            id="missing-date",
        ),
        pytest.param(
            _article('author: "Lena Hofbauer"\n'),
            ["title: missing (required)", "date: missing (required)"],
            id="missing-title-and-date",
        ),
        pytest.param(
            _article("title:\ndate:\n"),
            ["title: missing (required)", "date: missing (required)"],
            id="null-title-and-date",
        ),
        pytest.param(
            _article("title: [Harbour, storm]\n" + DATE),
            ["title: expected text, got a list (['Harbour', 'storm'])"],
            id="title-list",
        ),
        pytest.param(
            _article("title: true\n" + DATE),
            ["title: expected text, got true/false (True)"],
            id="title-bool",
        ),
        pytest.param(
            _article('title: "  \\x07 "\n' + DATE),
            ["title: must not be empty"],
            id="title-only-control-characters",
        ),
        pytest.param(
            _article('title: "\\uFFFD"\n' + DATE),
            ["title: must not be empty"],
            id="title-only-replacement-character",
        ),
        pytest.param(
            _article(TITLE + "date: May 1st\n"),
            [
                "date: not an ISO 8601 date ('May 1st'); "
                "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'"
            ],
            id="date-in-words",
        ),
        pytest.param(
            _article(TITLE + "date: 20240503\n"),
            ["date: expected an ISO 8601 date, got a number (20240503)"],
            id="date-number",
        ),
        pytest.param(
            _article(TITLE + 'date: "0001-01-01"\n'),
            ["date: year 1 is out of range ('0001-01-01')"],
            id="date-year-1",
        ),
        pytest.param(
            _article(TITLE + 'date: "2024-05-03T10:00:00"\nupdated: "2024-05-02T10:00:00"\n'),
            ["updated: 2024-05-02T10:00:00+02:00 is before date 2024-05-03T10:00:00+02:00"],
            id="updated-before-date",
        ),
        pytest.param(
            _article(TITLE + DATE + "updated: soon\n"),
            [
                "updated: not an ISO 8601 date ('soon'); "
                "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'"
            ],
            id="updated-in-words",
        ),
        pytest.param(
            b'---\ntitle: "Caf\xe9"\n' + DATE.encode() + b"---\nBody.\n",
            ["file: not valid UTF-8 (byte 0xe9 at offset 15)"],
            id="not-utf8",
        ),
        pytest.param(b"", ["file: empty"], id="empty"),
        pytest.param(b"\xef\xbb\xbf\r\n \n\t\n", ["file: empty"], id="only-bom-and-blanks"),
        pytest.param(
            b"Just a body, no front matter.\n",
            ["front matter: missing: the file must start with a line '---', then YAML, then '---'"],
            id="no-front-matter",
        ),
        pytest.param(
            f"---\n{TITLE}{DATE}\nBody.\n".encode(),
            ["front matter: not closed: add a line '---' after the front matter"],
            id="unclosed-front-matter",
        ),
        pytest.param(
            _article("- title\n- date\n"),
            ["front matter: expected key: value pairs, got list"],
            id="front-matter-list",
        ),
        pytest.param(
            _article(TITLE + DATE + "slug: ../../etc\n"),
            ["slug: use lower-case letters, digits and '-' only ('../../etc')"],
            id="slug-escapes",
        ),
        pytest.param(
            _article(TITLE + DATE + "slug: Harbour\n"),
            ["slug: use lower-case letters, digits and '-' only ('Harbour')"],
            id="slug-upper-case",
        ),
        pytest.param(
            _article(TITLE + DATE + "tags: [news, ../../etc]\n"),
            ["tags: '../../etc' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-escapes",
        ),
        pytest.param(
            _article(TITLE + DATE + "tags: [a/b]\n"),
            ["tags: 'a/b' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-with-slash",
        ),
        pytest.param(
            _article(TITLE + DATE + "tags: ['a\\b']\n"),
            ["tags: 'a\\\\b' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-with-backslash",
        ),
        pytest.param(
            _article(TITLE + DATE + 'tags: ["???"]\n'),
            ["tags: '???' has no letters or digits to make a slug from"],
            id="tag-without-letters",
        ),
        pytest.param(
            _article(TITLE + DATE + "tags: {a: b}\n"),
            ["tags: expected a list of tags, got a mapping ({'a': 'b'})"],
            id="tags-mapping",
        ),
        pytest.param(
            _article(TITLE + DATE + "id: /articles/17\n"),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('/articles/17')"
            ],
            id="id-not-a-uri",
        ),
        pytest.param(
            _article(TITLE + DATE + 'id: "urn:uuid: 1"\n'),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('urn:uuid: 1')"
            ],
            id="id-with-space",
        ),
        pytest.param(
            _article(TITLE + DATE + 'id: "tag:gazette.example,2024:\\e"\n'),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('tag:gazette.example,2024:\\x1b')"
            ],
            id="id-with-control-character",
        ),
        pytest.param(
            _article(TITLE + DATE + 'draft: "yes"\n'),
            ["draft: expected true or false, got text ('yes')"],
            id="draft-as-text",
        ),
        pytest.param(
            _article(TITLE + DATE + "link: /relative\n"),
            ["link: expected an absolute http(s) URL ('/relative')"],
            id="link-relative",
        ),
        pytest.param(
            _article(TITLE + DATE + "link: ftp://gazette.example/x\n"),
            ["link: expected an absolute http(s) URL ('ftp://gazette.example/x')"],
            id="link-ftp",
        ),
        pytest.param(
            _article(TITLE + DATE + 'link: "http://[x/"\n'),
            ["link: expected an absolute http(s) URL ('http://[x/')"],
            id="link-unclosed-ipv6",
        ),
        pytest.param(
            _article(TITLE + DATE + 'link: "http://%zz/"\n'),
            ["link: expected an absolute http(s) URL ('http://%zz/')"],
            id="link-bad-host",
        ),
        pytest.param(
            _article(TITLE + DATE + 'link: "https://gazette.example:99999/"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example:99999/')"],
            id="link-bad-port",
        ),
        pytest.param(
            _article(TITLE + DATE + 'link: "https://gazette.example/a\\tb"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example/a\\tb')"],
            id="link-with-tab",
        ),
        pytest.param(
            _article(TITLE + DATE + 'link: "https://gazette.example/\\a"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example/\\x07')"],
            id="link-with-control-character",
        ),
        pytest.param(
            _article(TITLE + DATE + 'author: "Lena Hofbauer"\nauthors: ["Aiko Watanabe"]\n'),
            ["authors: give either author or authors, not both"],
            id="author-and-authors",
        ),
        pytest.param(
            _article(TITLE + DATE + "author: [Lena, Aiko]\n"),
            [
                "author: expected a name such as 'Lena Hofbauer <lena@example.org>', "
                "got a list (['Lena', 'Aiko'])"
            ],
            id="author-list",
        ),
        pytest.param(
            _article(TITLE + DATE + 'author: "\\a \\e"\n'),
            [
                "author: expected a name such as 'Lena Hofbauer <lena@example.org>', "
                "got text ('\\x07 \\x1b')"
            ],
            id="author-only-control-characters",
        ),
        pytest.param(
            _article(TITLE + DATE + "authors: []\n"),
            ["authors: expected a list of names, got a list ([])"],
            id="authors-empty",
        ),
        pytest.param(
            _article(TITLE + DATE + "summary: [a]\n"),
            ["summary: expected text, got a list (['a'])"],
            id="summary-list",
        ),
        pytest.param(
            _article('tilte: "Harbour reopens"\n' + DATE),
            ["title: missing (required) (did you mean to write 'title' instead of 'tilte'?)"],
            id="misspelt-title",
        ),
        pytest.param(
            _article("title: !!int 0x\n" + DATE),
            [
                "front matter: invalid YAML: a value cannot be converted "
                "(invalid literal for int() with base 16: '')"
            ],
            id="explicit-int-tag",
        ),
        pytest.param(
            _article("draft: !!bool maybe\n" + TITLE + DATE),
            ["front matter: invalid YAML: a value cannot be converted ('maybe')"],
            id="explicit-bool-tag",
        ),
        pytest.param(
            _article(
                "title: x\ndate: May 1st\nupdated: never\nauthor: Lena\nauthors: [Aiko]\n"
                "tags: [a/b]\nslug: A B\nlink: /x\nid: x\ndraft: no thanks\n"
            ),
            [
                "date: not an ISO 8601 date ('May 1st'); "
                "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'",
                "updated: not an ISO 8601 date ('never'); "
                "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'",
                "authors: give either author or authors, not both",
                "tags: 'a/b' may not contain '/', '\\' or '..' (tags name folders)",
                "slug: use lower-case letters, digits and '-' only ('A B')",
                "link: expected an absolute http(s) URL ('/x')",
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('x')",
                "draft: expected true or false, got text ('no thanks')",
            ],
            id="every-problem-at-once",
        ),
    ],
)
def test_bad_article_lists_every_problem(defaults, data, expected):
    assert _lines(data, defaults) == [f"{WHERE}: {line}" for line in expected]


def test_content_error_str_joins_the_problems(defaults):
    with pytest.raises(ContentError) as caught:
        _parse(_article('author: "Lena Hofbauer"\n'), defaults)
    assert str(caught.value) == f"{WHERE}: title: missing (required); date: missing (required)"


def test_parse_refuses_bytes_over_the_limit(defaults):
    data = _article(TITLE + DATE, "x" * (files.MAX_FILE_BYTES + 1))
    assert _lines(data, defaults) == [f"{WHERE}: file: over the 5 MB limit for one article"]


def test_read_refuses_a_20_mb_file_by_its_size_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.md"
    with path.open("wb") as handle:
        handle.write(b"---\ntitle: Huge\ndate: 2024-05-03\n---\n")
        handle.write(b"x" * (20 * MB - handle.tell()))

    def refuse(_fd: int, size: int) -> bytes:
        raise AssertionError(f"{size} bytes were read")

    monkeypatch.setattr(os, "read", refuse)
    with pytest.raises(ContentError) as caught:
        files.read_article(path, "content/huge.md")[0]
    assert caught.value.lines() == [
        "content/huge.md: file: 20.0 MB is over the 5 MB limit for one article"
    ]


def test_read_accepts_a_file_of_exactly_5_mb(tmp_path):
    path = tmp_path / "big.md"
    path.write_bytes(b"x" * files.MAX_FILE_BYTES)
    assert len(files.read_article(path, "content/big.md")[0]) == files.MAX_FILE_BYTES


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: p.mkdir(), "cannot be read (Is a directory)", id="folder"),
        pytest.param(lambda _: None, "cannot be read (No such file or directory)", id="missing"),
    ],
)
def test_read_reports_an_unreadable_file(tmp_path, make, expected):
    path = tmp_path / "gone.md"
    make(path)
    with pytest.raises(ContentError) as caught:
        files.read_article(path, "content/gone.md")[0]
    assert caught.value.lines() == [f"content/gone.md: file: {expected}"]


# -- good input ---------------------------------------------------------------------


def test_control_characters_are_removed_and_cdata_end_is_kept(defaults):
    data = (
        b'---\ntitle: "Alarm\x00 \x07bell\x1b ]]> <script>"\n'
        + DATE.encode()
        + b"---\nFirst\x00 line\x07 with \x1b]]> and <b>bold</b>.\n\nMore ]]> here.\n"
    )
    article = _parse(data, defaults)
    assert article.meta.title == "Alarm bell ]]>"  # and its tag removed: titles are plain text
    # The body is kept as written and cleaned where it is used: in the
    # summary now, and in the HTML when a feed renders it.
    assert article.meta.summary == "First line with ]]> and bold."
    html = markup.render_body(article.body, body_format="markdown", base_url="https://x.example/")
    assert html == "<p>First line with ]]&gt; and <b>bold</b>.</p>\n<p>More ]]&gt; here.</p>\n"


@pytest.mark.parametrize(
    ("front", "field", "value", "warning"),
    [
        (
            'title: "Museum reopens <script>alert(1)</script>"\n',
            "title",
            "Museum reopens",
            "title: HTML tags removed, it is plain text "
            "('Museum reopens <script>alert(1)</script>' became 'Museum reopens')",
        ),
        (
            'title: "The <em>real</em> cost"\n',
            "title",
            "The real cost",
            "title: HTML tags removed, it is plain text ('The <em>real</em> cost' became "
            "'The real cost')",
        ),
        (
            TITLE + 'author: "<b>Lena</b> Hofbauer"\n',
            "authors",
            (Author("Lena Hofbauer"),),
            "author: HTML tags removed, it is plain text ('<b>Lena</b> Hofbauer' became "
            "'Lena Hofbauer')",
        ),
        (
            TITLE + 'summary: "Talks <img src=x onerror=alert(1)>ended<!-- x --> early"\n',
            "summary",
            "Talks ended early",
            "summary: HTML tags removed, it is plain text ('Talks <img src=x "
            "onerror=alert(1)>ended<!-- x --> early' became 'Talks ended early')",
        ),
    ],
)
def test_markup_is_removed_from_plain_text_fields_with_a_warning(
    defaults, front, field, value, warning
):
    article = _parse(_article(front + DATE), defaults)
    assert getattr(article.meta, field) == value
    assert article.warnings == (f"content/{STORY}: {warning}",)


@pytest.mark.parametrize("title", ["Prices: a < b and c > d", "AT&T buys <3 hearts", "x<1 or y>2"])
def test_text_that_only_looks_like_markup_is_kept(defaults, title):
    article = _parse(_article(f"title: {title!r}\n" + DATE), defaults)
    assert (article.meta.title, article.warnings) == (title, ())


def test_a_title_of_markup_alone_is_a_problem(defaults):
    assert _lines(_article('title: "<b></b>"\n' + DATE), defaults) == [
        f"content/{STORY}: title: nothing is left once its HTML tags are removed ('<b></b>')"
    ]


def test_a_text_body_keeps_its_angle_brackets_in_the_summary(defaults):
    article = _parse(_article(TITLE + DATE, "Use <b> for bold.\n"), defaults, "note.txt")
    assert (article.meta.summary, article.warnings) == ("Use <b> for bold.", ())


def test_control_characters_written_as_yaml_escapes_are_removed(defaults):
    article = _parse(_article('title: "A\\x00B\\x07C\\x1bD ]]>"\n' + DATE), defaults)
    assert article.meta.title == "ABCD ]]>"


def test_text_body_becomes_escaped_paragraphs(defaults):
    data = _article(
        TITLE + DATE, "Ferries run every <20> minutes & later.\nAt night too.\n\n\nEnd.\n"
    )
    article = _parse(data, defaults, "2024-05-03-ferries.txt")
    assert article.meta.body_format == "text"
    assert article.meta.summary == "Ferries run every <20> minutes & later. At night too."
    html = markup.render_body(article.body, body_format="text", base_url=article.meta.link)
    assert html == (
        "<p>Ferries run every &lt;20&gt; minutes &amp; later.\nAt night too.</p>\n<p>End.</p>\n"
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2020-01-22T10:00:00", "2020-01-22T10:00:00+01:00"),
        ("2020-06-22T10:00:00", "2020-06-22T10:00:00+02:00"),
        ("2020-06-22T18:30", "2020-06-22T18:30:00+02:00"),
        ("2020-06-22", "2020-06-22T00:00:00+02:00"),
        ("2020-12-24", "2020-12-24T00:00:00+01:00"),
        ("2020-06-22T10:00:00+09:00", "2020-06-22T10:00:00+09:00"),
        ("2020-06-22T10:00:00Z", "2020-06-22T10:00:00+00:00"),
        ("2020-06-22 10:00:00", "2020-06-22T10:00:00+02:00"),
    ],
)
def test_date_without_offset_is_in_the_site_time_zone(defaults, written, expected):
    article = _parse(_article(f'{TITLE}date: "{written}"\n'), defaults)
    assert article.meta.date.isoformat() == expected


def test_unquoted_and_tagged_dates_go_through_the_same_parser(defaults):
    plain = _parse(_article(TITLE + "date: 2020-06-22 10:00:00\n"), defaults)
    tagged = _parse(_article(TITLE + "date: !!timestamp 2020-06-22 10:00:00\n"), defaults)
    assert (
        plain.meta.date.isoformat() == tagged.meta.date.isoformat() == "2020-06-22T10:00:00+02:00"
    )


@pytest.mark.parametrize(
    ("updated", "expected"),
    [
        ('"2024-05-04T09:00:00+02:00"', "2024-05-04T09:00:00+02:00"),
        ('"2024-05-03"', None),  # the same instant as date: not an update
    ],
)
def test_updated(defaults, updated, expected):
    article = _parse(_article(f"{TITLE}{DATE}updated: {updated}\n"), defaults)
    assert (article.meta.updated.isoformat() if article.meta.updated else None) == expected


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("", (Author("Gazette Desk", "desk@gazette.example"),)),
        ('author: "Lena Hofbauer"\n', (Author("Lena Hofbauer"),)),
        (
            'author: "Lena Hofbauer <lena@example.org>"\n',
            (Author("Lena Hofbauer", "lena@example.org"),),
        ),
        ('author: "<lena@example.org>"\n', (Author("lena@example.org", "lena@example.org"),)),
        ('authors: "Aiko Watanabe"\n', (Author("Aiko Watanabe"),)),
        (
            'authors: ["Aiko Watanabe", "Tomás Ferreira <tomas@gazette.example>"]\n',
            (Author("Aiko Watanabe"), Author("Tomás Ferreira", "tomas@gazette.example")),
        ),
    ],
)
def test_authors(defaults, front, expected):
    assert _parse(_article(TITLE + DATE + front), defaults).meta.authors == expected


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ('tags: "arms control, Vienna ,, russia"\n', ["arms control", "Vienna", "russia"]),
        ("tags: [Arms Control, arms control, 2024]\n", ["Arms Control", "2024"]),
        ("tags: []\n", []),
    ],
)
def test_tags(defaults, front, expected):
    tags = _parse(_article(TITLE + DATE + front), defaults).meta.tags
    assert tags == tuple(Tag(name, slugify(name)) for name in expected)


def test_comma_separated_tags_get_slugs(defaults):
    tags = _parse(
        _article(TITLE + DATE + 'tags: "arms control, Wien-Überblick"\n'), defaults
    ).meta.tags
    assert tags == (Tag("arms control", "arms-control"), Tag("Wien-Überblick", "wien-uberblick"))


def test_summary_defaults_to_the_first_paragraph_as_plain_text(defaults):
    body = (
        "# A heading\n\n![A photo](photo.jpg)\n\n"
        "**Harbour** reopens, see [our report](https://gazette.example/x) &amp; `the map`.\n\n"
        "Second paragraph.\n"
    )
    article = _parse(_article(TITLE + DATE, body), defaults)
    assert article.meta.summary == "Harbour reopens, see our report & the map."


@pytest.mark.parametrize(
    ("first", "kept"),
    [
        ("word00", 43),  # 43 words of 6 letters and their spaces end exactly at 300
        ("xword00", 42),  # one letter more: the 43rd word would end at 301
    ],
)
def test_summary_is_cut_near_300_characters_on_a_word_boundary(defaults, first, kept):
    words = [first] + [f"word{n:02d}" for n in range(1, 60)]
    body = " ".join(words[:30]) + "\n" + " ".join(words[30:]) + "\n\nSecond.\n"
    article = _parse(_article(TITLE + DATE, body), defaults)
    assert article.meta.summary == " ".join(words[:kept]) + "…"


def test_explicit_summary_is_kept_on_one_line(defaults):
    article = _parse(_article(TITLE + DATE + "summary: |\n  Two\n  lines.\n"), defaults)
    assert article.meta.summary == "Two lines."


@pytest.mark.parametrize(
    ("relative", "slug"),
    [
        ("2020-06-22-vienna-talks.md", "vienna-talks"),
        ("2020-06-22_vienna-talks.md", "vienna-talks"),
        ("Vienna Talks.md", "vienna-talks"),
        ("sub/folder/2020-06-22-talks.markdown", "talks"),
        ("2020-06-22.md", "2020-06-22"),
        ("2020-06-22-!!!.md", "2020-06-22"),
        ("2020-6-22-talks.md", "2020-6-22-talks"),
    ],
)
def test_slug_comes_from_the_file_name_without_a_leading_date(defaults, relative, slug):
    assert _parse(_article(TITLE + DATE), defaults, relative).meta.slug == slug


def test_file_name_without_letters_needs_a_slug(defaults):
    assert _lines(_article(TITLE + DATE), defaults, "!!!.md") == [
        "content/!!!.md: slug: cannot make one from the file name '!!!'; add a slug field"
    ]


@pytest.mark.parametrize(
    ("relative", "front", "link"),
    [
        (STORY, "", "https://gazette.example/news/2024/05/story/"),
        (
            "2020-06-22-Überraschung-в-Wien.md",
            "",
            "https://gazette.example/news/2024/05/uberraschung-%D0%B2-wien/",
        ),
        (
            STORY,
            "slug: привет\n",
            "https://gazette.example/news/2024/05/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82/",
        ),
        (STORY, "link: https://elsewhere.example/a?b=c\n", "https://elsewhere.example/a?b=c"),
    ],
)
def test_link_is_built_from_the_permalink_pattern(defaults, relative, front, link):
    article = _parse(_article(TITLE + DATE + front), defaults, relative)
    assert article.meta.link == link


def test_link_uses_the_local_date(defaults):
    data = _article(TITLE + 'date: "2020-06-30T23:30:00+00:00"\n')
    assert _parse(data, defaults).meta.link == "https://gazette.example/news/2020/07/story/"


def test_explicit_id_and_draft(defaults):
    data = _article(TITLE + DATE + "id: tag:gazette.example,2024:harbour\ndraft: true\n")
    article = _parse(data, defaults)
    assert (article.explicit_id, article.meta.is_draft) == (
        "tag:gazette.example,2024:harbour",
        True,
    )


def test_crlf_line_endings_and_a_bom_are_accepted(defaults):
    data = (
        "\ufeff---\r\ntitle: Harbour reopens\r\ndate: 2024-05-03\r\ntags: [a, b]\r\n---\r\n"
        "First line\r\nsecond line.\r\n\r\nNext.\r\n"
    ).encode()
    article = _parse(data, defaults)
    assert article.meta.title == "Harbour reopens"
    assert article.meta.tags == (Tag("a", "a"), Tag("b", "b"))
    assert article.body == "First line\nsecond line.\n\nNext."
    assert article.meta.summary == "First line second line."
    assert article.text_hash == _parse(data.replace(b"\r\n", b"\n")[3:], defaults).text_hash


def test_front_matter_may_end_with_three_dots_and_be_empty_of_extras(defaults):
    article = _parse(f"---\n{TITLE}{DATE}...\nBody.\n".encode(), defaults)
    assert (article.meta.title, article.body, article.meta.tags, article.meta.updated) == (
        "Harbour reopens",
        "Body.",
        (),
        None,
    )


# -- discover --------------------------------------------------------------------------


def test_discover_finds_articles_sorted_and_skips_hidden_and_underscore(make_site):
    folder = make_site("discover") / "content"
    found = list(files.discover(folder))
    assert [f.relative for f in found] == [
        "2020-01-01-first.md",
        "B.TXT",
        "sub/2020-02-02-e.markdown",
        "sub/deeper/f.md",
    ]
    assert all(f.size == f.path.stat().st_size and f.path.is_file() for f in found)


def test_discover_without_stat_finds_the_same_files(make_site):
    folder = make_site("discover") / "content"
    with_stat = [f.relative for f in files.discover(folder)]
    found = list(files.discover(folder, with_stat=False))
    assert [f.relative for f in found] == with_stat
    assert {(f.size, f.mtime_ns) for f in found} == {(-1, -1)}


@pytest.mark.parametrize("with_stat", [True, False])
def test_discover_skips_what_is_not_a_regular_file(tmp_path, with_stat):
    (tmp_path / "real.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    (tmp_path / "linked.md").symlink_to(tmp_path / "real.md")
    (tmp_path / "broken.md").symlink_to(tmp_path / "gone.md")
    os.mkfifo(tmp_path / "pipe.md")  # reading it would wait for a writer forever
    found = [f.relative for f in files.discover(tmp_path, with_stat=with_stat)]
    assert found == ["linked.md", "real.md"]


def test_discover_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(files.discover(tmp_path / "nowhere"))


# -- markup helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b\x07c\x1bd\x7fe\x85f\x9fg", "abcdefg"),
        ("tab\tnew\nline\rcr", "tab\tnew\nline\rcr"),
        ("\ufffd\ufffe\uffffx\ud800", "x"),
        ("]]> <script>", "]]> <script>"),
    ],
)
def test_strip_forbidden(text, expected):
    assert strip_forbidden(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Harbour\n\treopens \u2028 now ", "Harbour reopens now"),
        ("a\x00\x07b", "ab"),
        ("\x1b \n", ""),
    ],
)
def test_one_line(text, expected):
    assert one_line(text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly 10", 10, "exactly 10"),
        ("one two three four", 10, "one two…"),
        ("one two, three", 9, "one two…"),
        ("abcdefghijklmnop", 10, "abcdefghij…"),
        ("a bcdefghijklmnop", 10, "a bcdefghi…"),  # a space too early is no word boundary
    ],
)
def test_shorten(text, limit, expected):
    assert shorten(text, limit) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Arms Control", "arms-control"),
        ("Überraschung in Wien", "uberraschung-in-wien"),
        ("Straße", "straße"),
        ("Москва", "москва"),
        ("東京", "東京"),
        ("  --a  b--  ", "a-b"),
        ("../../etc", "etc"),
        ("???", ""),
    ],
)
def test_slugify(text, expected):
    assert slugify(text) == expected


@pytest.mark.parametrize(
    ("source", "body_format", "expected"),
    [
        ("\n\nFirst\nline.\n\nSecond.", "text", "First line."),
        ("# Title\n\n<div>raw</div>\n\n```\ncode\n```\n\n*Real* text.", "markdown", "Real text."),
        ("# Only a heading", "markdown", ""),
        ("", "markdown", ""),
    ],
)
def test_first_paragraph(source, body_format, expected):
    assert markup.first_paragraph(source, body_format=body_format) == expected


def test_text_to_html_escapes():
    assert markup.text_to_html("a < b & c > d\n \nnext") == (
        "<p>a &lt; b &amp; c &gt; d</p>\n<p>next</p>\n"
    )


PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        # A data: URL is a document of its own: never a link, whatever its spelling.
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "<a>x</a>"),
        ('<a href="&#100;ata:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&#x64;&#x61;&#x74;&#x61;&#x3a;text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="data&colon;text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="DaTa:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="da&#9;ta:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="d\nat\ra:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&NewLine; data:text/html,hi">x</a>', "<a>x</a>"),
        ('<a href="&#1;data:text/html,hi">x</a>', "<a>x</a>"),
        (
            f'<a href="{PNG}">an image type is still a link</a>',
            "<a>an image type is still a link</a>",
        ),
        ('<blockquote cite="data:text/html,x">q</blockquote>', "<blockquote>q</blockquote>"),
        # A picture may be inline, if it is a raster image (an SVG can hold script).
        (f'<img src="{PNG}" alt="dot">', f'<img src="{PNG}" alt="dot">'),
        (
            '<img src="data:image/jpeg;base64,/9j/4AAQ" alt="j">',
            '<img src="data:image/jpeg;base64,/9j/4AAQ" alt="j">',
        ),
        (
            '<img src="data:image/gif,GIF89a%01%00" alt="g">',
            '<img src="data:image/gif,GIF89a%01%00" alt="g">',
        ),
        (
            '<img src="data:image/webp;base64,UklGRg==" alt="w">',
            '<img src="data:image/webp;base64,UklGRg==" alt="w">',
        ),
        (
            '<img src="data:image/avif;base64,AAAAIGZ0eXA=" alt="a">',
            '<img src="data:image/avif;base64,AAAAIGZ0eXA=" alt="a">',
        ),
        (
            '<img src="DATA:Image/PNG;BASE64,iVBORw0KGgo=" alt="p">',
            '<img src="DATA:Image/PNG;BASE64,iVBORw0KGgo=" alt="p">',
        ),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="s">', '<img alt="s">'),
        ('<img src="data:image/svg+xml,<svg onload=alert(1)>" alt="s">', '<img alt="s">'),
        ('<img src="data:text/html,<script>alert(1)</script>" alt="h">', '<img alt="h">'),
        ('<img src="data:image/pngx;base64,iVBORw0KGgo=" alt="x">', '<img alt="x">'),
        ('<img src="data:image/png" alt="no data">', '<img alt="no data">'),
        ('<img src="data:,plain" alt="t">', '<img alt="t">'),
        ('<img src="&#100;ata:image/svg+xml,<svg/>" alt="e">', '<img alt="e">'),
        # Text that merely starts with "data:" is text.
        (
            '<img alt="Data: Eurostat" src="chart.png">',
            '<img alt="Data: Eurostat" src="https://gazette.example/news/chart.png">',
        ),
        (
            '<abbr title="data: the raw figures">raw</abbr>',
            '<abbr title="data: the raw figures">raw</abbr>',
        ),
        ('<a href="https://gazette.example/">x</a>', '<a href="https://gazette.example/">x</a>'),
    ],
)
def test_sanitize_keeps_data_urls_only_as_raster_images(fragment, expected):
    assert markup.sanitize(fragment, base_url="https://gazette.example/news/") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://gazette.example/news/", True),
        ("https://exämple.org/ü/", True),
        ("http://%zz/", False),
        ("http://gazette.example:99999/", False),
    ],
)
def test_is_usable_base(url, expected):
    assert markup.is_usable_base(url) is expected


# -- a whole site of bad articles -------------------------------------------------------

BAD_ARTICLES = {
    "author-and-authors.md": ["authors: give either author or authors, not both"],
    "date-in-words.md": [
        "date: not an ISO 8601 date ('May 1st'); "
        "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'"
    ],
    "draft-as-text.md": ["draft: expected true or false, got text ('yes')"],
    "empty.md": ["file: empty"],
    "huge.md": ["file: 20.0 MB is over the 5 MB limit for one article"],
    "id-not-a-uri.md": [
        "id: expected an absolute URI such as 'urn:uuid:…' or "
        "'tag:example.org,2020:post' ('/articles/17')"
    ],
    "invalid-yaml.md": [
        "front matter: invalid YAML at line 3, column 5: did not find expected ',' or ']'"
    ],
    "link-relative.md": ["link: expected an absolute http(s) URL ('/relative')"],
    "misspelt-title.md": [
        "title: missing (required) (did you mean to write 'title' instead of 'tilte'?)"
    ],
    "no-front-matter.md": [
        "front matter: missing: the file must start with a line '---', then YAML, then '---'"
    ],
    "no-title-no-date.md": ["title: missing (required)", "date: missing (required)"],
    "not-utf8.md": ["file: not valid UTF-8 (byte 0xe9 at offset 15)"],
    "slug-escapes.md": ["slug: use lower-case letters, digits and '-' only ('../../etc')"],
    "tag-escapes.md": ["tags: '../../etc' may not contain '/', '\\' or '..' (tags name folders)"],
    "tag-with-slash.md": ["tags: 'a/b' may not contain '/', '\\' or '..' (tags name folders)"],
    "title-list.md": ["title: expected text, got a list (['Harbour', 'storm'])"],
    "unclosed-front-matter.md": [
        "front matter: not closed: add a line '---' after the front matter"
    ],
    "updated-before-date.md": [
        "updated: 2024-05-02T10:00:00+02:00 is before date 2024-05-03T10:00:00+02:00"
    ],
}


def _expected_problems() -> dict[str, tuple[str, ...]]:
    return {
        f"content/{name}": tuple(f"content/{name}: {line}" for line in lines)
        for name, lines in BAD_ARTICLES.items()
    }


@pytest.fixture
def bad_site(make_site) -> SiteConfig:
    """tests/sites/bad-articles plus a 20 MB article (too big to keep in the repository)."""
    folder = make_site("bad-articles")
    with (folder / "content" / "huge.md").open("wb") as handle:
        handle.write(b'---\ntitle: "Huge"\ndate: "2024-05-03"\n---\n')
        handle.write(b"x" * (20 * MB - handle.tell()))
    return load_config(folder / "publisher.toml")


def test_build_publishes_good_articles_and_reports_every_bad_file(bad_site, now):
    site = bad_site
    report = build(site, now=now)

    assert {p.path: p.lines for p in report.problems} == _expected_problems()
    assert not any(p.kept_previous for p in report.problems)
    assert (report.loaded, report.published, report.skipped) == (2, 2, len(BAD_ARTICLES))
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    assert [item["title"] for item in document["items"]] == [
        "New ferry timetable",
        "Harbour reopens after the storm",
    ]
    assert sorted(p.name for p in (site.output_dir / "tags").iterdir()) == [
        "transport",
        "vienna",
        "weather",
    ]
    assert list(site.output_dir.rglob("*.tmp")) == []
    assert list(site.output_dir.rglob(".*")) == []


def test_check_reports_the_same_lines_as_build(bad_site):
    site = bad_site
    report = check(site)
    assert report.checked == len(BAD_ARTICLES) + 2
    assert {p.path: p.lines for p in report.problems} == _expected_problems()
    assert not site.output_dir.exists()


def test_a_second_build_reports_the_problems_again_without_parsing(bad_site, now):
    site = bad_site
    first = build(site, now=now)
    again = build(site, now=now)
    assert again.parsed == 0
    assert again.written == ()
    assert {p.path: p.lines for p in again.problems} == {p.path: p.lines for p in first.problems}
