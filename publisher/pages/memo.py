"""The last plan of the site's pages, kept for the next build.

Planning 13,000 pages and signing each costs a build after one edit a third of
a second, and gives the same plan whenever no article moved: `plan.plan` is a
pure function of the site's settings, the articles' keys but their versions,
the digests, the static files and which articles are published now. So the
plan is kept in the state folder with a digest of those inputs and each
page's signature. A build whose inputs have the same digest takes the plan
from there and signs again only the pages that show an article whose version
changed (its own page, the lists and neighbours that show it).

Only ever a help, like the compiled templates beside it: a memo that is
missing, damaged, cut short or made for other inputs is planned again, and
one that cannot be written is not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from publisher.config import SiteConfig
from publisher.model import DigestIssue
from publisher.pages import plan as site_plan
from publisher.pages.assets import StaticFile
from publisher.pages.plan import PageSpec, SitePlan, signature
from publisher.store import ArticleKey

MEMO = "pages-plan"  # in the state folder
_MAGIC = b"publisher pages plan 1\n"
# Articles whose version changed since the memo was kept: beyond this many, it is kept
# again (signing their pages costs little, but writing the memo costs more).
KEEP_AGAIN_AFTER = 64


class SignedPlan(NamedTuple):
    plan: SitePlan
    signatures: tuple[str, ...]  # of plan.pages, in order (plan.signature)


class _Memo(NamedTuple):
    pages: tuple[PageSpec, ...]
    warnings: tuple[str, ...]
    signatures: tuple[str, ...]
    versions: Mapping[str, str]  # the articles' versions the signatures were made with


def signed_plan(
    site: SiteConfig,
    keys: Sequence[ArticleKey],
    digests: Sequence[DigestIssue],
    *,
    now: datetime,
    statics: Sequence[StaticFile],
    fingerprint: str,
) -> SignedPlan:
    """The site's plan and each page's signature: from the memo when its inputs are the same.

    *fingerprint* is the one plan.signature takes (the settings and templates).
    """
    versions = {key.id: key.version for key in keys}
    inputs = _inputs(site, keys, digests, now=now, statics=statics, fingerprint=fingerprint)
    memo = _load(site.state_dir / MEMO, inputs) if inputs else None
    if memo is not None:
        changed = {i for i, version in memo.versions.items() if versions.get(i) != version}
        kept = SitePlan(memo.pages, memo.warnings)
        if changed:  # their pages are signed again below, and the sitemap with its dates
            kept = site_plan.restamped(kept, (key for key in keys if key.id in changed))
        signed = SignedPlan(kept, _signed_again(kept, memo, changed, versions, fingerprint))
        if len(changed) <= KEEP_AGAIN_AFTER:
            return signed
    else:
        planned = site_plan.plan(site, keys, digests, now=now, statics=statics)
        signatures = tuple(signature(fingerprint, page, versions) for page in planned.pages)
        signed = SignedPlan(planned, signatures)
    if inputs:
        _keep(site.state_dir / MEMO, inputs, signed, versions)
    return signed


def _signed_again(
    kept: SitePlan, memo: _Memo, changed: set[str], versions: Mapping[str, str], fingerprint: str
) -> tuple[str, ...]:
    """The memo's signatures, but those of the pages that show a changed article (and of
    the sitemap, which shows their dates) made anew."""
    if not changed:
        return memo.signatures
    return tuple(
        signature(fingerprint, page, versions) if _shows(page, changed) else old
        for page, old in zip(kept.pages, memo.signatures, strict=True)
    )


def _shows(page: PageSpec, changed: set[str]) -> bool:
    """Whether the signature of *page* reads the version or the date of a *changed* article."""
    return (
        page.kind == "sitemap"
        or not changed.isdisjoint(page.items)
        or page.previous in changed
        or page.following in changed
    )


def _inputs(
    site: SiteConfig,
    keys: Sequence[ArticleKey],
    digests: Sequence[DigestIssue],
    *,
    now: datetime,
    statics: Sequence[StaticFile],
    fingerprint: str,
) -> str:
    """A digest of everything the plan and the signatures but the versions are made of.

    "" for keys that were not read from the store (no shape): no memo then.
    *now* counts only through which articles are published: for the same
    dates and draft flags, the articles published at one time and at another
    are one set inside the other, so the same number means the same set.
    """
    shapes = [key.shape for key in keys]
    if not all(shapes):
        return ""
    published = sum(1 for key in keys if key.is_published(now))
    program = Path(site_plan.__file__).read_bytes()  # a plan made by other code is not this one
    head = (sys.hexversion, program, fingerprint, site, published, tuple(statics), tuple(digests))
    digest = hashlib.sha256(repr(head).encode())
    digest.update("\n".join(shapes).encode())
    return digest.hexdigest()


def _load(path: Path, inputs: str) -> _Memo | None:
    """The memo at *path* if it was kept for *inputs*, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    start = len(_MAGIC) + 4
    head, checksum, payload = data[: len(_MAGIC)], data[len(_MAGIC) : start], data[start:]
    if head != _MAGIC or zlib.crc32(payload).to_bytes(4, "big") != checksum:
        return None  # another program's file, or one cut short or damaged
    try:
        kept: Any = marshal.loads(payload)
        if kept[0] != inputs:
            return None
        pages = tuple(PageSpec._make(page) for page in kept[1])
        return _Memo(pages, tuple(kept[2]), tuple(kept[3]), dict(kept[4]))
    except (ValueError, EOFError, TypeError, IndexError, KeyError):
        return None


def _keep(path: Path, inputs: str, signed: SignedPlan, versions: Mapping[str, str]) -> None:
    """Write the memo beside the state, readable by its owner alone; never fail the build."""
    payload = marshal.dumps(
        (
            inputs,
            [tuple(page) for page in signed.plan.pages],
            signed.plan.warnings,
            signed.signatures,
            dict(versions),
        )
    )
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(_MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
