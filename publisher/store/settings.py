"""Small values the runs leave for each other, by key: every key is named here, nowhere else."""

from __future__ import annotations

from publisher.store.base import StoreBase

# What the articles were last indexed with (a change re-reads every file).
CONFIG = "config"
# What the feeds were last rendered with (a change re-renders every feed).
RENDER = "render"
# What the pages were last made from besides the articles (settings, templates, the
# digests): the quick path compares it.
PAGES = "pages"
# The last build's counts, for the quick path and `status`.
COUNTS = "counts"
# The date of the next scheduled article, or "": the quick path's deadline.
NEXT_DUE = "next_due"
LAST_BUILD = "last_build"
# When the last index's scan started (nanoseconds, wall clock): see content.scan.is_racy.
INDEXED_AT = "indexed_at_ns"
# The last publication number given.
PUBLICATION_SEQ = "publication_seq"
# The service's own: the last digest slot handled, and when it will next act.
DIGEST_SLOT = "digest_slot"
NEXT_DIGEST = "next_digest"
NEXT_REBUILD = "next_rebuild"
# On a shared state: a fingerprint of the secret every machine must sign with.
SECRET_FINGERPRINT = "secret_fingerprint"


class SettingQueries(StoreBase):
    def get_setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def delete_setting(self, key: str) -> None:
        self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))

    def first_setting(self, key: str, value: str) -> str:
        """Set *key* to *value* unless it has a value already; returns the value it has."""
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, value),
        )
        return self.get_setting(key) or value

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
