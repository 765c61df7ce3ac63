"""service.summary: the one line a build is summed up in, in the singular where it is one."""

from __future__ import annotations

from publisher.model import BuildReport, ContentProblem
from publisher.service.summary import build_summary


def test_a_build_is_summed_up_in_one_line():
    report = BuildReport(5, 3, 1, 1, written=tuple(f"feeds/{n}.xml" for n in range(18)))
    assert build_summary(report) == (
        "5 articles loaded (3 published, 1 draft, 1 scheduled), 0 skipped with errors, "
        "18 files written, 0 unchanged"
    )


def test_one_of_a_kind_is_said_in_the_singular():
    report = BuildReport(1, 1, 0, 0, written=("feeds/rss.xml",), unchanged=("feeds/atom.xml",))
    assert build_summary(report) == (
        "1 article loaded (1 published, 0 drafts, 0 scheduled), 0 skipped with errors, "
        "1 file written, 1 unchanged"
    )


def test_skipped_files_are_counted_and_removed_ones_named_only_when_there_are_some():
    problem = ContentProblem("content/a.md", ("content/a.md: title: missing (required)",))
    removed = tuple(f"feeds/tags/storm/{name}" for name in ("rss.xml", "atom.xml", "feed.json"))
    report = BuildReport(4, 2, 2, 0, problems=(problem,), unchanged=("x",) * 12, removed=removed)
    assert build_summary(report) == (
        "4 articles loaded (2 published, 2 drafts, 0 scheduled), 1 skipped with errors, "
        "0 files written, 12 unchanged, 3 removed"
    )
