"""content.fields: each front matter field's check, and the clean value it leaves."""

from __future__ import annotations

import pytest
from support.articles import DATE, STORY, TITLE, article_bytes, parse_file, problem_lines

from publisher.model import Author, Tag
from publisher.text import slugify

# -- plain text fields -------------------------------------------------------------


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
    article = parse_file(article_bytes(front + DATE), defaults)
    assert getattr(article.meta, field) == value
    assert article.warnings == (f"content/{STORY}: {warning}",)


@pytest.mark.parametrize("title", ["Prices: a < b and c > d", "AT&T buys <3 hearts", "x<1 or y>2"])
def test_text_that_only_looks_like_markup_is_kept(defaults, title):
    article = parse_file(article_bytes(f"title: {title!r}\n" + DATE), defaults)
    assert (article.meta.title, article.warnings) == (title, ())


def test_a_title_of_markup_alone_is_a_problem(defaults):
    assert problem_lines(article_bytes('title: "<b></b>"\n' + DATE), defaults) == [
        f"content/{STORY}: title: nothing is left once its HTML tags are removed ('<b></b>')"
    ]


def test_control_characters_written_as_yaml_escapes_are_removed(defaults):
    article = parse_file(article_bytes('title: "A\\x00B\\x07C\\x1bD ]]>"\n' + DATE), defaults)
    assert article.meta.title == "ABCD ]]>"


def test_explicit_summary_is_kept_on_one_line(defaults):
    article = parse_file(article_bytes(TITLE + DATE + "summary: |\n  Two\n  lines.\n"), defaults)
    assert article.meta.summary == "Two lines."


# -- dates ---------------------------------------------------------------------------


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
    article = parse_file(article_bytes(f'{TITLE}date: "{written}"\n'), defaults)
    assert article.meta.date.isoformat() == expected


def test_unquoted_and_tagged_dates_go_through_the_same_parser(defaults):
    plain = parse_file(article_bytes(TITLE + "date: 2020-06-22 10:00:00\n"), defaults)
    tagged = parse_file(article_bytes(TITLE + "date: !!timestamp 2020-06-22 10:00:00\n"), defaults)
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
    article = parse_file(article_bytes(f"{TITLE}{DATE}updated: {updated}\n"), defaults)
    assert (article.meta.updated.isoformat() if article.meta.updated else None) == expected


# -- authors, tags, slug, id and draft -----------------------------------------------


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
    assert parse_file(article_bytes(TITLE + DATE + front), defaults).meta.authors == expected


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ('tags: "arms control, Vienna ,, russia"\n', ["arms control", "Vienna", "russia"]),
        ("tags: [Arms Control, arms control, 2024]\n", ["Arms Control", "2024"]),
        ("tags: []\n", []),
    ],
)
def test_tags(defaults, front, expected):
    tags = parse_file(article_bytes(TITLE + DATE + front), defaults).meta.tags
    assert tags == tuple(Tag(name, slugify(name)) for name in expected)


def test_comma_separated_tags_get_slugs(defaults):
    tags = parse_file(
        article_bytes(TITLE + DATE + 'tags: "arms control, Wien-Überblick"\n'), defaults
    ).meta.tags
    assert tags == (Tag("arms control", "arms-control"), Tag("Wien-Überblick", "wien-uberblick"))


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
    assert parse_file(article_bytes(TITLE + DATE), defaults, relative).meta.slug == slug


def test_file_name_without_letters_needs_a_slug(defaults):
    assert problem_lines(article_bytes(TITLE + DATE), defaults, "!!!.md") == [
        "content/!!!.md: slug: cannot make one from the file name '!!!'; add a slug field"
    ]


def test_explicit_id_and_draft(defaults):
    data = article_bytes(TITLE + DATE + "id: tag:gazette.example,2024:harbour\ndraft: true\n")
    article = parse_file(data, defaults)
    assert (article.explicit_id, article.meta.is_draft) == (
        "tag:gazette.example,2024:harbour",
        True,
    )
