"""Article files made up for the content tests, and what parsing them gives."""

from __future__ import annotations

import pytest

from publisher.content.articles import ArticleDefaults, Parsed, parse_article
from publisher.errors import ContentError

STORY = "2024-05-03-story.md"
WHERE = f"content/{STORY}"

DATE = 'date: "2024-05-03"\n'
TITLE = 'title: "Harbour reopens"\n'


def article_bytes(front: str, body: str = "Body.\n") -> bytes:
    return f"---\n{front}---\n{body}".encode()


def parse_file(data: bytes, defaults: ArticleDefaults, relative: str = STORY) -> Parsed:
    return parse_article(f"content/{relative}", relative, data, defaults)


def problem_lines(data: bytes, defaults: ArticleDefaults, relative: str = STORY) -> list[str]:
    with pytest.raises(ContentError) as caught:
        parse_file(data, defaults, relative)
    return caught.value.lines()
