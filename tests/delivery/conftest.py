"""The delivery tests' shared site: six readers sent digest 1, bounces coming back."""

from __future__ import annotations

import pytest
from support.bounces import BOUNCE_ADDRESS
from support.cli import invoke
from support.service import append_config

READERS = [f"reader{n}@example.org" for n in range(1, 7)]


@pytest.fixture
def sent_site(runner, site_dir, monkeypatch, now):
    """The basic site with a bounce address, six subscribers and digest 1 sent to them."""
    monkeypatch.setattr("publisher.cli._common.now", lambda: now)
    append_config(site_dir, f'\n[bounces]\naddress = "{BOUNCE_ADDRESS}"\n')
    for address in READERS:
        assert invoke(runner, site_dir, "subscribers", "add", address).exit_code == 0
    sent = invoke(runner, site_dir, "digest", "send")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.splitlines()[-1] == "sent 6, failed 0, deferred 0, uncertain 0"
    return site_dir
