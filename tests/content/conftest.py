"""What the content tests parse with: the basic site's article defaults."""

from __future__ import annotations

import pytest

from publisher.content.articles import ArticleDefaults
from publisher.content.indexing import defaults_for


@pytest.fixture
def defaults(site) -> ArticleDefaults:
    return defaults_for(site)
