"""Each article's id for life: chosen once, found again after a rename, recovered after a loss.

An article's id comes from its front matter, else the id its file had, else
the one the published feeds carry (when the state was lost), else a renamed
file's (the same body), else a new name-based UUID. When none of that can
tell a new article from one that vanished in the same pass, the editor is
told which id to give it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

from publisher.content.articles import ArticleDefaults, Parsed
from publisher.model import Article
from publisher.store import FileRow, Store

logger = logging.getLogger(__name__)

_EMPTY_BODY = hashlib.sha256(b"").hexdigest()
_LIKENESS_THRESHOLD = 3


@dataclass(frozen=True, slots=True)
class IdContext:
    """What every file's id choice needs: the same for all files of one pass."""

    defaults: ArticleDefaults
    first_seen: datetime
    published_ids: dict[str, str]  # link -> id, from the feeds (a lost state only)


def choose_id(parsed: Parsed, *, known_id: str | None, context: IdContext) -> tuple[str, bool]:
    """(id, whether it is new): the front matter's, else the file's, else the published one.

    A new id is a name-based UUID of the site URL and the file's path at first
    sight: stable, and the same again if the state is ever rebuilt from scratch.
    The main process may still give the file a renamed file's id instead.
    """
    if parsed.explicit_id is not None:
        return parsed.explicit_id, False
    if known_id is not None:
        return known_id, False
    if parsed.meta.link in context.published_ids:
        return context.published_ids[parsed.meta.link], False
    name = context.defaults.base_url + parsed.meta.path
    return uuid.uuid5(uuid.NAMESPACE_URL, name).urn, True


class Renames:
    """The articles whose files vanished in this pass, to be found again under new names.

    A file is recognised by its body as last read, whatever its title, slug
    or front matter (valid or not); a file indexed before schema 7, which
    kept no body hash, by its article's title and body; one without a
    readable body, by its exact bytes. Each vanished article goes to one
    file at most.
    """

    def __init__(self, store: Store, vanished: Mapping[str, FileRow]) -> None:
        self.by_body: dict[str, str] = {}
        self.by_bytes: dict[str, str] = {}
        legacy = []
        for path, row in vanished.items():
            if row.article_id is None:
                continue
            self.by_bytes.setdefault(row.file_hash, row.article_id)
            if row.body_hash is None:
                legacy.append(path)
            elif row.body_hash != _EMPTY_BODY:  # an empty body identifies nothing
                self.by_body.setdefault(row.body_hash, row.article_id)
        self.by_text = {text: article for article, text in store.articles_at(legacy).values()}
        self.taken: set[str] = set()

    def match(self, *, body_hash: str | None, text_hash: str | None, file_hash: str) -> str | None:
        found = (
            self.by_body.get(body_hash or "")
            or self.by_text.get(text_hash or "")
            or self.by_bytes.get(file_hash)
        )
        if found is None or found in self.taken:
            return None
        self.taken.add(found)
        return found


def lost_identities(
    prefix: str, lost: Mapping[str, Article], fresh: Iterable[Article]
) -> list[str]:
    """For each new article that looks like one that disappeared in the same pass, the fix.

    Identity rests on the body when a file has no `id` field; renamed,
    retitled and rewritten in one go, nothing is left to recognise it by
    for sure. Readers would see it twice and the next digest send it again,
    so the editor is told which id to give it.
    """
    notes = []
    unmatched = dict(lost)
    for article in sorted(fresh, key=lambda a: a.path):
        scored = [(_likeness(old, article), old_id) for old_id, old in unmatched.items()]
        best = max(scored, default=(0, ""))
        if best[0] < _LIKENESS_THRESHOLD:
            continue
        old = unmatched.pop(best[1])
        notes.append(
            f"{prefix}/{article.path}: looks like {prefix}/{old.path} that disappeared "
            f"in this build; give it `id: {best[1]}` to keep its identity"
        )
    return notes


def _likeness(old: Article, new: Article) -> int:
    """How much a new article shares with one that vanished: its date counts most."""
    score = 2 if old.date == new.date else 0
    score += 2 if old.title == new.title else 0
    score += 1 if old.slug == new.slug else 0
    score += 1 if old.tags and old.tags == new.tags else 0
    if old.summary and new.summary:
        matcher = difflib.SequenceMatcher(None, old.summary, new.summary)
        score += 2 if matcher.ratio() >= 0.6 else 0
    return score


def published_feed_ids(output_dir: Path) -> dict[str, str]:
    """Article link → id, as the feeds in *output_dir* published them (JSON, then Atom).

    Used only when the state is empty; unreadable feeds simply give nothing.
    """
    if not output_dir.is_dir():
        return {}
    ids: dict[str, str] = {}
    for path in sorted(output_dir.rglob("feed.json")):
        ids = {**_json_feed_ids(path), **ids}
    for path in sorted(output_dir.rglob("atom.xml")):
        ids = {**_atom_feed_ids(path), **ids}
    return ids


def _json_feed_ids(path: Path) -> dict[str, str]:
    ids: dict[str, str] = {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        for item in document.get("items", []):
            if isinstance(item.get("url"), str) and isinstance(item.get("id"), str):
                ids.setdefault(item["url"], item["id"])
    except (OSError, ValueError, AttributeError):
        logger.warning("%s: unreadable; ids not recovered from it", path)
    return ids


def _atom_feed_ids(path: Path) -> dict[str, str]:
    atom = "{http://www.w3.org/2005/Atom}"
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        logger.warning("%s: unreadable; ids not recovered from it", path)
        return {}
    ids: dict[str, str] = {}
    for entry in root.iter(f"{atom}entry"):
        entry_id = entry.findtext(f"{atom}id")
        link = entry.find(f"{atom}link")
        if entry_id and link is not None and link.get("href"):
            ids.setdefault(link.get("href", ""), entry_id)
    return ids
