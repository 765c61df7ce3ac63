"""The suite's fixed "now", and a clock a test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime

# A fixed "now" for builds: after every dated test article except the 2031 one.
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    """The `now` a send or the web service is given; the test moves it by setting `now`."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
