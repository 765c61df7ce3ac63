"""store.settings: the small values the runs leave for each other."""

from __future__ import annotations

from publisher.store import settings


def test_a_setting_is_absent_until_set_and_setting_it_again_replaces_it(store):
    assert store.get_setting(settings.LAST_BUILD) is None
    with store.transaction():
        store.set_setting(settings.LAST_BUILD, "2026-11-27T12:00:00+00:00")
        store.set_setting(settings.LAST_BUILD, "2026-11-28T12:00:00+00:00")
    assert store.get_setting(settings.LAST_BUILD) == "2026-11-28T12:00:00+00:00"
    rows = store.conn.execute("SELECT key, value FROM settings").fetchall()
    assert rows == [(settings.LAST_BUILD, "2026-11-28T12:00:00+00:00")]


def test_a_deleted_setting_is_gone_and_an_empty_one_is_still_there(store):
    with store.transaction():
        store.set_setting(settings.COUNTS, "{}")
        store.set_setting(settings.NEXT_DUE, "")  # "no scheduled article": a value
        store.delete_setting(settings.COUNTS)
        store.delete_setting("never set")
    assert store.get_setting(settings.COUNTS) is None
    assert store.get_setting(settings.NEXT_DUE) == ""


def test_every_key_is_named_once():
    keys = {name: value for name, value in vars(settings).items() if name.isupper()}
    assert len(keys) == 12
    assert len(set(keys.values())) == len(keys)
