"""pages.assets: the static folder's files copied into the site, and only when they change."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.pages.assets import static_files
from publisher.pipelines.build import build

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def _static(site, relative: str, data: bytes = PNG):
    path = site.pages.static_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_the_folder_is_listed_without_dot_files_or_symlinks(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "map.png").write_bytes(b"12345")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("x")
    (tmp_path / ".draft.png").write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(tmp_path / "images" / "map.png")
    (found,) = static_files(tmp_path)
    assert (found.path, found.size) == ("images/map.png", 5)
    assert static_files(tmp_path / "missing") == ()


def test_static_files_are_copied_as_they_are_and_kept_in_step(site, now):
    _static(site, "images/map.png")
    _static(site, "files/report.pdf", b"%PDF-1.4")
    report = build(site, now=now)
    assert report.pages is not None
    assert {"images/map.png", "files/report.pdf"} <= set(report.pages.written)
    assert (site.site_dir / "images" / "map.png").read_bytes() == PNG

    # A build with nothing new is quick; a changed file is copied again, alone.
    assert build(site, now=now + timedelta(minutes=1)).parsed == 0
    changed = _static(site, "images/map.png", PNG + b"more")
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = build(site, now=now + timedelta(minutes=2))
    assert again.pages is not None
    assert again.pages.written == ("images/map.png",)
    assert (site.site_dir / "images" / "map.png").read_bytes() == PNG + b"more"

    # A file removed from the folder leaves the site.
    (site.pages.static_dir / "files" / "report.pdf").unlink()
    gone = build(site, now=now + timedelta(minutes=3))
    assert gone.pages is not None
    assert gone.pages.removed == ("files/report.pdf",)
    assert not (site.site_dir / "files").exists()


def test_a_static_file_where_a_page_is_is_left_out_with_a_warning(site, now):
    _static(site, "index.html", b"<p>my own home</p>")
    _static(site, "tags/index.html", b"<p>my own tags</p>")
    report = build(site, now=now)
    assert (site.site_dir / "index.html").read_bytes() != b"<p>my own home</p>"
    assert "static/index.html: a page of the site is at its place in the site; rename it" in (
        report.warnings
    )
    assert "static/tags/index.html: a page of the site is at its place in the site; rename it" in (
        report.warnings
    )


def test_a_static_file_named_like_a_page_only_in_its_folder_is_copied(site, now):
    _static(site, "2021/03/observers/photo.jpg", b"JPEG")
    build(site, now=now)
    assert (site.site_dir / "2021/03/observers/photo.jpg").read_bytes() == b"JPEG"
    assert (site.site_dir / "2021/03/observers/index.html").is_file()


@pytest.mark.parametrize("static", ["site", "site/static", "."])
def test_the_static_folder_is_not_the_site_folder(site_dir, static):
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[site]", f'[paths]\nstatic = "{static}"\n\n[site]', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.lines() == [
        f"{config}: [paths] static: must be a folder apart from [paths] site ({static!r})"
    ]
