"""The one line a build is summed up in: what `publisher build` prints and the service logs.

Both say it in the same words, so an operator reading the journal of
`publisher run` sees what a `publisher build` by hand would have printed. It
lives here, below the command line, because the service logs it; it imports
only the model, because every command loads it at start-up.
"""

from __future__ import annotations

from publisher.model import BuildReport


def build_summary(report: BuildReport) -> str:
    """Counts of articles, then of files: `5 articles loaded (3 published, …), …, 0 unchanged`."""
    return (
        f"{report.loaded} article{_s(report.loaded)} loaded "
        f"({report.published} published, {report.drafts} draft{_s(report.drafts)}, "
        f"{report.scheduled} scheduled), {report.skipped} skipped with errors, "
        f"{len(report.written)} file{_s(len(report.written))} written, "
        f"{len(report.unchanged)} unchanged"
        + (f", {len(report.removed)} removed" if report.removed else "")
        + _pages(report)
    )


def _pages(report: BuildReport) -> str:
    pages = report.pages
    if pages is None:
        return ""
    written = len(pages.written)
    return f"; {written} page{_s(written)} written, {pages.unchanged} unchanged" + (
        f", {len(pages.removed)} removed" if pages.removed else ""
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"
