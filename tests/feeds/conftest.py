"""A WebSub hub on 127.0.0.1 for the feeds that advertise one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.websub_hub import Hub


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub() as running:
        yield running
