"""The state database: all SQL lives in this package, and nothing outside it knows the dialect."""

from publisher.store.base import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ArticleKey,
    ArticleRow,
    FileRow,
    OutputRow,
    PendingPing,
    Store,
    StoredArticle,
    article_row,
    meta_json,
    open_store,
    tags_json,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ArticleKey",
    "ArticleRow",
    "FileRow",
    "OutputRow",
    "PendingPing",
    "Store",
    "StoredArticle",
    "article_row",
    "meta_json",
    "open_store",
    "tags_json",
]
