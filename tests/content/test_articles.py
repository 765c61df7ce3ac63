"""content.articles: one file's bytes parsed into its metadata, or every problem in it at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from support.articles import DATE, STORY, TITLE, WHERE, article_bytes, parse_file, problem_lines
from support.strategies import DEFAULTS, FILE_NAMES, SETTINGS, article_file

from publisher.content import files, markup
from publisher.content.articles import parse_article
from publisher.errors import ContentError
from publisher.model import Tag
from publisher.text import one_line, strip_forbidden

# -- bad input -> exact lines ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            article_bytes('title: [unclosed\ndate: "2024-05-03"\n'),
            ["front matter: invalid YAML at line 3, column 5: did not find expected ',' or ']'"],
            id="invalid-yaml",
        ),
        pytest.param(
            article_bytes("title: a: b\n" + DATE),
            [
                "front matter: invalid YAML at line 2, column 9: "
                "mapping values are not allowed in this context"
            ],
            id="invalid-yaml-mapping",
        ),
        pytest.param(
            article_bytes(DATE),
            ["title: missing (required)"],
            id="missing-title",
        ),
        pytest.param(
            article_bytes(TITLE),
            ["date: missing (required)"],
            id="missing-date",
        ),
        pytest.param(
            article_bytes('author: "Lena Hofbauer"\n'),
            ["title: missing (required)", "date: missing (required)"],
            id="missing-title-and-date",
        ),
        pytest.param(
            article_bytes("title:\ndate:\n"),
            ["title: missing (required)", "date: missing (required)"],
            id="null-title-and-date",
        ),
        pytest.param(
            article_bytes("title: [Harbour, storm]\n" + DATE),
            ["title: expected text, got a list (['Harbour', 'storm'])"],
            id="title-list",
        ),
        pytest.param(
            article_bytes("title: true\n" + DATE),
            ["title: expected text, got true/false (True)"],
            id="title-bool",
        ),
        pytest.param(
            article_bytes('title: "  \\x07 "\n' + DATE),
            ["title: must not be empty"],
            id="title-only-control-characters",
        ),
        pytest.param(
            article_bytes('title: "\\uFFFD"\n' + DATE),
            ["title: must not be empty"],
            id="title-only-replacement-character",
        ),
        pytest.param(
            article_bytes(TITLE + "date: May 1st\n"),
            [
                "date: not an ISO 8601 date ('May 1st'); "
                "write it like '2020-06-22' or '2020-06-22T18:30:00+02:00'"
            ],
            id="date-in-words",
        ),
        pytest.param(
            article_bytes(TITLE + "date: 20240503\n"),
            ["date: expected an ISO 8601 date, got a number (20240503)"],
            id="date-number",
        ),
        pytest.param(
            article_bytes(TITLE + 'date: "0001-01-01"\n'),
            ["date: year 1 is out of range ('0001-01-01')"],
            id="date-year-1",
        ),
        pytest.param(
            article_bytes(TITLE + 'date: "2024-05-03T10:00:00"\nupdated: "2024-05-02T10:00:00"\n'),
            ["updated: 2024-05-02T10:00:00+02:00 is before date 2024-05-03T10:00:00+02:00"],
            id="updated-before-date",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "updated: soon\n"),
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
            article_bytes("- title\n- date\n"),
            ["front matter: expected key: value pairs, got list"],
            id="front-matter-list",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "slug: ../../etc\n"),
            ["slug: use lower-case letters, digits and '-' only ('../../etc')"],
            id="slug-escapes",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "slug: Harbour\n"),
            ["slug: use lower-case letters, digits and '-' only ('Harbour')"],
            id="slug-upper-case",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "tags: [news, ../../etc]\n"),
            ["tags: '../../etc' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-escapes",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "tags: [a/b]\n"),
            ["tags: 'a/b' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-with-slash",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "tags: ['a\\b']\n"),
            ["tags: 'a\\\\b' may not contain '/', '\\' or '..' (tags name folders)"],
            id="tag-with-backslash",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'tags: ["???"]\n'),
            ["tags: '???' has no letters or digits to make a slug from"],
            id="tag-without-letters",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "tags: {a: b}\n"),
            ["tags: expected a list of tags, got a mapping ({'a': 'b'})"],
            id="tags-mapping",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "id: /articles/17\n"),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('/articles/17')"
            ],
            id="id-not-a-uri",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'id: "urn:uuid: 1"\n'),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('urn:uuid: 1')"
            ],
            id="id-with-space",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'id: "tag:gazette.example,2024:\\e"\n'),
            [
                "id: expected an absolute URI such as 'urn:uuid:…' or "
                "'tag:example.org,2020:post' ('tag:gazette.example,2024:\\x1b')"
            ],
            id="id-with-control-character",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'draft: "yes"\n'),
            ["draft: expected true or false, got text ('yes')"],
            id="draft-as-text",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "link: /relative\n"),
            ["link: expected an absolute http(s) URL ('/relative')"],
            id="link-relative",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "link: ftp://gazette.example/x\n"),
            ["link: expected an absolute http(s) URL ('ftp://gazette.example/x')"],
            id="link-ftp",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'link: "http://[x/"\n'),
            ["link: expected an absolute http(s) URL ('http://[x/')"],
            id="link-unclosed-ipv6",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'link: "http://%zz/"\n'),
            ["link: expected an absolute http(s) URL ('http://%zz/')"],
            id="link-bad-host",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'link: "https://gazette.example:99999/"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example:99999/')"],
            id="link-bad-port",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'link: "https://gazette.example/a\\tb"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example/a\\tb')"],
            id="link-with-tab",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'link: "https://gazette.example/\\a"\n'),
            ["link: expected an absolute http(s) URL ('https://gazette.example/\\x07')"],
            id="link-with-control-character",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'author: "Lena Hofbauer"\nauthors: ["Aiko Watanabe"]\n'),
            ["authors: give either author or authors, not both"],
            id="author-and-authors",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "author: [Lena, Aiko]\n"),
            [
                "author: expected a name such as 'Lena Hofbauer <lena@example.org>', "
                "got a list (['Lena', 'Aiko'])"
            ],
            id="author-list",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + 'author: "\\a \\e"\n'),
            [
                "author: expected a name such as 'Lena Hofbauer <lena@example.org>', "
                "got text ('\\x07 \\x1b')"
            ],
            id="author-only-control-characters",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "authors: []\n"),
            ["authors: expected a list of names, got a list ([])"],
            id="authors-empty",
        ),
        pytest.param(
            article_bytes(TITLE + DATE + "summary: [a]\n"),
            ["summary: expected text, got a list (['a'])"],
            id="summary-list",
        ),
        pytest.param(
            article_bytes('tilte: "Harbour reopens"\n' + DATE),
            ["title: missing (required) (did you mean to write 'title' instead of 'tilte'?)"],
            id="misspelt-title",
        ),
        pytest.param(
            article_bytes("title: !!int 0x\n" + DATE),
            [
                "front matter: invalid YAML: a value cannot be converted "
                "(invalid literal for int() with base 16: '')"
            ],
            id="explicit-int-tag",
        ),
        pytest.param(
            article_bytes("draft: !!bool maybe\n" + TITLE + DATE),
            ["front matter: invalid YAML: a value cannot be converted ('maybe')"],
            id="explicit-bool-tag",
        ),
        pytest.param(
            article_bytes(
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
    assert problem_lines(data, defaults) == [f"{WHERE}: {line}" for line in expected]


def test_content_error_str_joins_the_problems(defaults):
    with pytest.raises(ContentError) as caught:
        parse_file(article_bytes('author: "Lena Hofbauer"\n'), defaults)
    assert str(caught.value) == f"{WHERE}: title: missing (required); date: missing (required)"


def test_parse_refuses_bytes_over_the_limit(defaults):
    data = article_bytes(TITLE + DATE, "x" * (files.MAX_FILE_BYTES + 1))
    assert problem_lines(data, defaults) == [f"{WHERE}: file: over the 5 MB limit for one article"]


# -- good input ---------------------------------------------------------------


def test_control_characters_are_removed_and_cdata_end_is_kept(defaults):
    data = (
        b'---\ntitle: "Alarm\x00 \x07bell\x1b ]]> <script>"\n'
        + DATE.encode()
        + b"---\nFirst\x00 line\x07 with \x1b]]> and <b>bold</b>.\n\nMore ]]> here.\n"
    )
    article = parse_file(data, defaults)
    assert article.meta.title == "Alarm bell ]]>"  # and its tag removed: titles are plain text
    # The body is kept as written and cleaned where it is used: in the
    # summary now, and in the HTML when a feed renders it.
    assert article.meta.summary == "First line with ]]> and bold."
    html = markup.render_body(article.body, body_format="markdown", base_url="https://x.example/")
    assert html == "<p>First line with ]]&gt; and <b>bold</b>.</p>\n<p>More ]]&gt; here.</p>\n"


def test_text_body_becomes_escaped_paragraphs(defaults):
    data = article_bytes(
        TITLE + DATE, "Ferries run every <20> minutes & later.\nAt night too.\n\n\nEnd.\n"
    )
    article = parse_file(data, defaults, "2024-05-03-ferries.txt")
    assert article.meta.body_format == "text"
    assert article.meta.summary == "Ferries run every <20> minutes & later. At night too."
    html = markup.render_body(article.body, body_format="text", base_url=article.meta.link)
    assert html == (
        "<p>Ferries run every &lt;20&gt; minutes &amp; later.\nAt night too.</p>\n<p>End.</p>\n"
    )


def test_a_text_body_keeps_its_angle_brackets_in_the_summary(defaults):
    article = parse_file(article_bytes(TITLE + DATE, "Use <b> for bold.\n"), defaults, "note.txt")
    assert (article.meta.summary, article.warnings) == ("Use <b> for bold.", ())


def test_summary_defaults_to_the_first_paragraph_as_plain_text(defaults):
    body = (
        "# A heading\n\n![A photo](photo.jpg)\n\n"
        "**Harbour** reopens, see [our report](https://gazette.example/x) &amp; `the map`.\n\n"
        "Second paragraph.\n"
    )
    article = parse_file(article_bytes(TITLE + DATE, body), defaults)
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
    article = parse_file(article_bytes(TITLE + DATE, body), defaults)
    assert article.meta.summary == " ".join(words[:kept]) + "…"


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
    article = parse_file(article_bytes(TITLE + DATE + front), defaults, relative)
    assert article.meta.link == link


def test_link_uses_the_local_date(defaults):
    data = article_bytes(TITLE + 'date: "2020-06-30T23:30:00+00:00"\n')
    assert parse_file(data, defaults).meta.link == "https://gazette.example/news/2020/07/story/"


def test_crlf_line_endings_and_a_bom_are_accepted(defaults):
    data = (
        "\ufeff---\r\ntitle: Harbour reopens\r\ndate: 2024-05-03\r\ntags: [a, b]\r\n---\r\n"
        "First line\r\nsecond line.\r\n\r\nNext.\r\n"
    ).encode()
    article = parse_file(data, defaults)
    assert article.meta.title == "Harbour reopens"
    assert article.meta.tags == (Tag("a", "a"), Tag("b", "b"))
    assert article.body == "First line\nsecond line.\n\nNext."
    assert article.meta.summary == "First line second line."
    assert article.text_hash == parse_file(data.replace(b"\r\n", b"\n")[3:], defaults).text_hash


def test_front_matter_may_end_with_three_dots_and_be_empty_of_extras(defaults):
    article = parse_file(f"---\n{TITLE}{DATE}...\nBody.\n".encode(), defaults)
    assert (article.meta.title, article.body, article.meta.tags, article.meta.updated) == (
        "Harbour reopens",
        "Body.",
        (),
        None,
    )


# -- any bytes at all -----------------------------------------------------------


@SETTINGS
@given(data=article_file(), relative=FILE_NAMES)
def test_parse_article_returns_an_article_or_raises_content_error(data, relative):
    where = f"content/{relative}"
    try:
        parsed = parse_article(where, relative, data, DEFAULTS)
    except ContentError as err:
        lines = err.lines()
        assert lines
        for line in lines:
            assert line.startswith(f"{where}: ")
            assert "\n" not in line
        return
    article = parsed.meta
    assert article.title
    assert article.title == one_line(article.title)
    for text in (article.title, article.summary, article.link, article.slug):
        assert strip_forbidden(text) == text
    # The body is kept as written; what is made from it is clean.
    html = markup.render_body(parsed.body, body_format=article.body_format, base_url=article.link)
    assert strip_forbidden(html) == html
    assert article.date.utcoffset() is not None
    assert article.updated is None or article.updated > article.date
    assert article.link.startswith(("http://", "https://"))
    assert all(tag.slug and "/" not in tag.slug and ".." not in tag.slug for tag in article.tags)
