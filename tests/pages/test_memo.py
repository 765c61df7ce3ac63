"""pages.memo: the last plan kept for the next build, and taken only for the same inputs."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.model import DigestIssue, Tag
from publisher.pages import memo
from publisher.pages import plan as site_plan
from publisher.pages.assets import StaticFile
from publisher.pages.memo import MEMO, SignedPlan, signed_plan
from publisher.pages.plan import signature
from publisher.store import ArticleKey
from publisher.store.articles import key_shape

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PLAN = site_plan.plan  # planning itself, which `no_planning` takes away from the memo
FINGERPRINT = "settings and templates"


def _key(n: int, *, version: str = "", **changes) -> ArticleKey:
    """A key as the store reads it, its shape made from the columns it stands for."""
    date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
    key = ArticleKey(
        f"urn:{n}",
        date,
        False,
        (Tag("Danube", "danube"), Tag(f"T{n % 3}", f"t{n % 3}")),
        version or f"v{n}",
        f"https://gazette.example/news/{n}/",
        date,
        f"{n}.md",
    )._replace(**changes)
    return _shaped(key)


def _shaped(key: ArticleKey) -> ArticleKey:
    tags = json.dumps([[t.name, t.slug] for t in key.tags])
    row = (key.id, key.date.isoformat(), key.is_draft, tags, key.version, key.link)
    return key._replace(shape=key_shape((*row, key.modified.isoformat(), key.path)))


def _fresh(site, keys, digests=(), *, now=NOW, statics=(), fingerprint=FINGERPRINT) -> SignedPlan:
    """What planning and signing every page gives, with no memo."""
    planned = PLAN(site, keys, digests, now=now, statics=statics)
    versions = {key.id: key.version for key in keys}
    return SignedPlan(planned, tuple(signature(fingerprint, p, versions) for p in planned.pages))


def _signed(site, keys, digests=(), *, now=NOW, statics=(), fingerprint=FINGERPRINT):
    return signed_plan(site, keys, digests, now=now, statics=statics, fingerprint=fingerprint)


@pytest.fixture
def no_planning(monkeypatch):
    """Fail the test if the plan is made anew instead of taken from the memo."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("planned anew")

    def arm() -> None:
        monkeypatch.setattr(site_plan, "plan", refuse)

    return arm


KEYS = [_key(n) for n in range(25)]


def test_the_first_plan_is_kept_readable_by_its_owner_alone(site):
    assert _signed(site, KEYS) == _fresh(site, KEYS)
    kept = site.state_dir / MEMO
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert not [p for p in site.state_dir.iterdir() if p.name.endswith(".tmp")]


def test_the_same_inputs_take_the_kept_plan(site, no_planning):
    first = _signed(site, KEYS)
    no_planning()
    assert _signed(site, KEYS) == first


def test_an_edit_signs_again_its_pages_and_the_sitemap_and_takes_the_rest(site, no_planning):
    _signed(site, KEYS)
    edited = list(KEYS)
    edited[7] = _key(7, version="v7-edited", modified=KEYS[7].date + timedelta(days=30))
    no_planning()
    signed = _signed(site, edited)
    assert signed == _fresh(site, edited)
    before = _fresh(site, KEYS)
    pairs = zip(signed.signatures, before.signatures, strict=True)
    resigned = {page.path for page, (a, b) in zip(signed.plan.pages, pairs, strict=True) if a != b}
    # Its page, its neighbours', the lists that show it (home, its tags, its year), the sitemap.
    assert resigned == {
        "7/index.html",
        "6/index.html",
        "8/index.html",
        "page/2/index.html",
        "tags/danube/page/2/index.html",
        "tags/t1/index.html",
        "archive/2024/index.html",
        "sitemap.xml",
    }


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda k: k._replace(date=k.date + timedelta(days=40)), id="date"),
        pytest.param(lambda k: k._replace(is_draft=True), id="drafted"),
        pytest.param(lambda k: k._replace(tags=k.tags[:1]), id="tag-removed"),
        pytest.param(lambda k: k._replace(tags=(Tag("danube", "danube"),)), id="tag-respelled"),
        pytest.param(lambda k: k._replace(link="https://gazette.example/news/x/"), id="link"),
        pytest.param(lambda k: k._replace(path="renamed.md"), id="renamed"),
    ],
)
def test_an_article_that_moved_is_planned_anew(site, change):
    _signed(site, KEYS)
    changed = [*KEYS[:5], _shaped(change(KEYS[5])), *KEYS[6:]]
    assert _signed(site, changed) == _fresh(site, changed)
    assert _signed(site, KEYS) == _fresh(site, KEYS)


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param({"keys": KEYS[:-1]}, id="deleted"),
        pytest.param({"keys": [*KEYS, _key(40)]}, id="added"),
        pytest.param({"now": KEYS[-1].date - timedelta(hours=1)}, id="scheduled"),
        pytest.param({"fingerprint": "other templates"}, id="templates"),
        pytest.param({"statics": [StaticFile("logo.svg", 10, 1)]}, id="static-file"),
        pytest.param({"digests": [DigestIssue(1, NOW, "The week on the Danube", ())]}, id="digest"),
    ],
)
def test_other_inputs_are_planned_anew(site, inputs):
    _signed(site, KEYS)
    given_inputs = {"keys": KEYS, **inputs}
    keys = given_inputs.pop("keys")
    assert _signed(site, keys, **given_inputs) == _fresh(site, keys, **given_inputs)


def test_another_setting_is_planned_anew(site):
    _signed(site, KEYS)
    other = replace(site, pages=replace(site.pages, per_page=3))
    assert _signed(other, KEYS) == _fresh(other, KEYS)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut-short"),
        pytest.param(lambda data: data[:-9] + bytes([data[-9] ^ 1]) + data[-8:], id="bit-flip"),
        pytest.param(lambda _: b"", id="empty"),
        pytest.param(lambda data: b"not a memo\n" + data, id="another-file"),
    ],
)
def test_a_damaged_memo_is_planned_anew(site, damage):
    _signed(site, KEYS)
    kept = site.state_dir / MEMO
    kept.write_bytes(damage(kept.read_bytes()))
    assert _signed(site, KEYS) == _fresh(site, KEYS)


def test_a_state_folder_that_cannot_be_written_only_costs_the_memo(site, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    elsewhere = replace(site, state_dir=blocked / "state")
    assert _signed(elsewhere, KEYS) == _fresh(elsewhere, KEYS)


def test_keys_made_elsewhere_are_planned_and_not_kept(site):
    keys = [key._replace(shape="") for key in KEYS]
    assert _signed(site, keys) == _fresh(site, keys)
    assert not (site.state_dir / MEMO).exists()


def test_many_edits_since_the_memo_keep_it_again(site, no_planning):
    _signed(site, KEYS)
    kept = site.state_dir / MEMO
    few = [_key(n, version=f"w{n}") if n < 3 else KEYS[n] for n in range(len(KEYS))]
    before = kept.read_bytes()
    _signed(site, few)
    assert kept.read_bytes() == before  # three changed articles: not worth writing it again
    many = [_key(n, version=f"w{n}") for n in range(len(KEYS))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memo, "KEEP_AGAIN_AFTER", 10)
        _signed(site, many)
    assert kept.read_bytes() != before
    no_planning()
    assert _signed(site, many) == _fresh(site, many)


# Any run of edits, moves, additions and removals: the memo gives what planning gives.
_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["edit", "date", "draft", "tags", "link", "remove", "add"]),
        st.integers(0, 29),
    ),
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_CHANGES)
def test_after_any_changes_the_memo_gives_what_planning_gives(site, changes):
    with tempfile.TemporaryDirectory() as state:
        here = replace(site, state_dir=Path(state))
        keys = {key.id: key for key in KEYS}
        for step, (what, n) in enumerate(changes):
            keys = _changed(keys, what, n, step)
            current = list(keys.values())
            assert _signed(here, current) == _fresh(here, current), (what, n)
        assert os.listdir(state) == ([MEMO] if changes else [])


def _changed(keys: dict[str, ArticleKey], what: str, n: int, step: int) -> dict[str, ArticleKey]:
    key = keys.get(f"urn:{n}") or _key(n)
    later = key.date + timedelta(days=step + 1)
    changes = {
        "edit": {"version": f"{key.version}+{step}", "modified": later},
        "date": {"date": later, "version": f"{key.version}+{step}"},
        "draft": {"is_draft": not key.is_draft, "version": f"{key.version}+{step}"},
        "tags": {"tags": key.tags[::-1][: 1 + step % 2]},
        "link": {"link": f"https://gazette.example/news/{n}-{step}/"},
    }
    rest = {i: k for i, k in keys.items() if i != key.id}
    if what == "remove":
        return rest
    if what == "add":
        return {**rest, key.id: key}
    return {**rest, key.id: _shaped(key._replace(**changes[what]))}
