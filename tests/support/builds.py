"""Looking at what builds wrote, and nudging files so the next build sees them changed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from publisher.config import SiteConfig, load_config


def site_in_own_folder(prefix: str, config: str) -> tuple[Path, SiteConfig]:
    """A site in a new temporary folder (a hypothesis state machine outlives any one
    tmp_path): *config* as its publisher.toml, an empty content folder. The caller
    removes the folder."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    (folder / "content").mkdir()
    (folder / "publisher.toml").write_text(config, encoding="utf-8")
    return folder, load_config(folder / "publisher.toml")


def file_contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def json_items(site: SiteConfig) -> dict[str, dict[str, object]]:
    document = json.loads((site.output_dir / "feed.json").read_text(encoding="utf-8"))
    return {item["url"]: item for item in document["items"]}


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


class RenderCounter:
    def __init__(self, monkeypatch):
        from publisher.content import markup
        from publisher.feeds import render as feed_render

        self.feeds: list[str] = []
        self.entries: list[str] = []
        self.bodies = 0
        real_assemble = feed_render.assemble
        real_entries = feed_render.render_entries
        real_body = markup.render_body

        def assemble(fmt, spec, items, entries):
            self.feeds.append(f"{spec.folder or '.'}/{fmt}")
            return real_assemble(fmt, spec, items, entries)

        def render_entries(fmt, items):
            self.entries += (f"{item.article.id}/{fmt}" for item in items)
            return real_entries(fmt, items)

        def render_body(*args, **kwargs):
            self.bodies += 1
            return real_body(*args, **kwargs)

        monkeypatch.setattr(feed_render, "assemble", assemble)
        monkeypatch.setattr(feed_render, "render_entries", render_entries)
        monkeypatch.setattr(markup, "render_body", render_body)
