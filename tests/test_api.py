"""The public Python API: everything `__all__` names exists, and builds a site."""

from __future__ import annotations

import importlib

import publisher


def test_every_public_name_exists():
    namespace: dict[str, object] = {}
    exec("from publisher import *", namespace)  # what a user's star import gets
    assert sorted(name for name in namespace if not name.startswith("__")) == sorted(
        name for name in publisher.__all__ if not name.startswith("__")
    )
    for name in publisher.__all__:
        assert getattr(publisher, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    module = importlib.import_module("publisher")
    assert not hasattr(module, "no_such_thing")


def test_the_api_builds_a_site(site, now):
    report = publisher.build(publisher.load_config(site.config_path), now=now)
    assert (report.loaded, report.published) == (5, 3)
    assert publisher.check(site).problems == ()
