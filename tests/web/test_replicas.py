"""web, as replicas: two `publisher serve` processes, two machines' folders, one PostgreSQL state.

What a load balancer in front of several replicas needs: a sign-up made on one
is confirmed on the other and unsubscribed on the first; the per-address limit
on confirmation messages is the database's, not a replica's; one address
signing up on both at once is one subscriber, and every link it was sent works.
Each replica is a real process on a port of its own, started and stopped as
systemd would; the waits are on what it prints.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.paths import SITES
from support.postgres import append_state_url
from support.processes import run_publisher, start_publisher
from support.smtp_server import free_port
from support.web import (
    BAD_LINK,
    CHECK_INBOX,
    FORM,
    ONE_CLICK,
    SUBSCRIBED,
    UNSUBSCRIBED,
    PageParts,
    confirm_form,
    confirmation_link,
    confirmations_sent,
    local_path,
    query_rows,
    read_messages,
    recipient_addresses,
    sign_up,
    subscriber_statuses,
    unsubscribe_link,
    visible_text,
)

from publisher.config import SiteConfig, load_config
from publisher.mail.signups import MAX_CONFIRMATIONS_PER_ADDRESS
from publisher.store import SCHEMA_VERSION

# Every test here needs the server: where none can run, the fixture skips them all.
pytestmark = pytest.mark.usefixtures("postgres_server")

START_TIMEOUT = 30.0  # seconds for a replica to say it listens (a slow, shared machine)


class Replica:
    """`publisher serve` for one machine's folder, its log read line by line as it comes.

    A thread drains stderr (the access log would otherwise fill the pipe and
    stall the server) into a queue that `wait_for` reads: waiting is on the
    line itself, never on a guess at how long it takes.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.site = load_config(folder / "publisher.toml")
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = start_publisher(folder, "serve", "--port", str(self.port))
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)
        self._lines.put(None)  # the process closed its stderr: it has ended

    def wait_for(self, expected: str, timeout: float = START_TIMEOUT) -> None:
        """Until the replica logs the line *expected*; fails if it ends or stays silent."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"{self.origin} did not log {expected!r}; it logged {self.log}")
            if line is None:
                pytest.fail(f"{self.origin} ended before {expected!r}: {''.join(self.log)}")
            self.log.append(line)
            if line == expected:
                return

    def started(self) -> Replica:
        address = f"{self.origin}/news/"
        self.wait_for(f"INFO: publisher.web: serving Test Gazette on {address}\n")
        return self

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; its exit status, with the rest of its log read."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)
        self._reader.join(timeout=20)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.log.append(line)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


@pytest.fixture
def database(postgres_server, request: pytest.FixtureRequest) -> Iterator[str]:
    """The one state every machine shares: a new database, migrated already unless "empty"."""
    name = postgres_server.create_database(empty=getattr(request, "param", "") == "empty")
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def machine(tmp_path: Path, database: str) -> Callable[[str], Path]:
    """A machine's site folder: the same config (and secret) as every other, on one state."""

    def make(name: str) -> Path:
        folder = shutil.copytree(SITES / "basic", tmp_path / name)
        append_state_url(folder, database)
        return folder

    return make


@pytest.fixture
def replicas(machine: Callable[[str], Path]) -> Iterator[tuple[Replica, Replica]]:
    """Replicas A and B, each on its own folder and port, both listening."""
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(Replica(machine(name)))
        yield started[0].started(), started[1].started()
    finally:
        codes = [replica.stop() for replica in started]
    assert codes == [0] * len(started), [replica.log for replica in started]
    for replica in started:
        assert not any("Traceback" in line for line in replica.log), replica.log


@pytest.fixture
def clients(replicas: tuple[Replica, Replica]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        httpx.Client(base_url=replicas[0].origin, timeout=30) as a,
        httpx.Client(base_url=replicas[1].origin, timeout=30) as b,
    ):
        yield a, b


def _signups(site: SiteConfig) -> list[tuple[Any, ...]]:
    return query_rows(site, "SELECT email, confirmed_at IS NOT NULL FROM signups ORDER BY id")


def _confirm(client: httpx.Client, link: str) -> httpx.Response:
    """The confirmation page's one button, pressed on *client*'s replica."""
    return client.post(local_path(link), content=b"", headers={"Content-Type": FORM})


def _all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run *calls* in threads released together, so the replicas get them at the same moment."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(released, calls))


# -- one subscriber's life across the replicas -----------------------------------------


def test_sign_up_on_a_confirm_on_b_and_unsubscribe_on_a(replicas, clients):
    (a, b), (on_a, on_b) = replicas, clients
    site = a.site

    signed = sign_up(on_a, site, "ada@example.org")
    assert (signed.status_code, CHECK_INBOX in signed.text) == (200, True)
    assert subscriber_statuses(site) == {}  # pending until confirmed
    assert _signups(site) == [("ada@example.org", False)]
    # The confirmation went out from A, the machine that took the sign-up.
    (message,) = confirmations_sent(a.site)
    assert recipient_addresses([message]) == ["ada@example.org"]
    assert confirmations_sent(b.site) == []
    link = confirmation_link(message)

    # B knows the sign-up A recorded: its page has the one button, and showing it changes nothing.
    shown = on_b.get(local_path(link))
    assert shown.status_code == 200
    assert (confirm_form(shown.text, link).get("method") or "").lower() == "post"
    assert subscriber_statuses(site) == {}
    confirmed = _confirm(on_b, link)
    assert (confirmed.status_code, SUBSCRIBED in confirmed.text) == (200, True)
    assert subscriber_statuses(site) == {"ada@example.org": "active"}
    assert _signups(site) == [("ada@example.org", True)]
    # A sees it at once: the link opened there says so, with nothing left to press.
    again = on_a.get(local_path(link))
    assert (again.status_code, SUBSCRIBED in again.text) == (200, True)
    assert PageParts(again.text).buttons == 0

    # The builder (A's folder) makes and sends the digest; the new subscriber is in it.
    sent = run_publisher(a.folder, "digest", "send")
    assert sent.returncode == 0, sent.stderr
    assert re.fullmatch(
        r"made digest 1 with \d+ articles?\nsent 1, failed 0, deferred 0, uncertain 0\n",
        sent.stdout,
    )
    (digest,) = read_messages(a.site.delivery.outbox_dir / "digest-0001")
    assert recipient_addresses([digest]) == ["ada@example.org"]
    assert query_rows(site, "SELECT status FROM deliveries") == [("sent",)]
    leave = unsubscribe_link(digest)

    # One click on A: a GET shows the button and changes nothing; the POST unsubscribes.
    page = on_a.get(local_path(leave))
    assert page.status_code == 200
    assert subscriber_statuses(site) == {"ada@example.org": "active"}
    left = on_a.post(local_path(leave), content=ONE_CLICK, headers={"Content-Type": FORM})
    assert (left.status_code, UNSUBSCRIBED in left.text) == (200, True)
    assert subscriber_statuses(site) == {"ada@example.org": "unsubscribed"}
    assert query_rows(site, "SELECT reason FROM suppressions") == [("unsubscribed",)]
    # B sees that too: the used confirmation link no longer subscribes anyone.
    stale = _confirm(on_b, link)
    assert (stale.status_code, BAD_LINK in stale.text) == (400, True)
    assert "This confirmation link was already used" in stale.text
    assert subscriber_statuses(site) == {"ada@example.org": "unsubscribed"}


# -- the per-address limit is the database's -------------------------------------------


def test_the_daily_confirmation_limit_of_an_address_holds_across_replicas(replicas, clients):
    (a, b), (on_a, on_b) = replicas, clients
    # Six sign-ups of one address, alternating: three on each replica, under its
    # per-client limit (5 in 10 minutes), so only the per-address limit can stop them.
    answers = [sign_up(client, a.site, "ada@example.org") for client in (on_a, on_b) * 3]

    # Every answer is the same page: the form never says whether a message went out.
    assert [answer.status_code for answer in answers] == [200] * 6
    assert all(CHECK_INBOX in answer.text for answer in answers)
    assert len({visible_text(answer.text) for answer in answers}) == 1
    # The first three went out (A, B, A); then none, on either replica.
    assert MAX_CONFIRMATIONS_PER_ADDRESS == 3
    assert len(confirmations_sent(a.site)) == 2
    assert len(confirmations_sent(b.site)) == 1
    requests = query_rows(a.site, "SELECT was_sent FROM signup_requests ORDER BY at")
    assert requests == [(1,), (1,), (1,), (0,), (0,), (0,)]
    assert _signups(a.site) == [("ada@example.org", False)]


# -- one address on both replicas at once ----------------------------------------------


def test_one_address_signing_up_on_both_replicas_at_once_is_one_subscriber(replicas, clients):
    (a, b), (on_a, on_b) = replicas, clients
    # The same person on a phone and a laptop, in two capitals, twice each, at one moment.
    calls = [
        lambda: sign_up(on_a, a.site, "Ada@example.org"),
        lambda: sign_up(on_b, b.site, "ada@example.org"),
        lambda: sign_up(on_a, a.site, "ada@example.org"),
        lambda: sign_up(on_b, b.site, "Ada@example.org"),
    ]
    answers = _all_at_once(calls)
    assert [(r.status_code, CHECK_INBOX in r.text) for r in answers] == [(200, True)] * 4

    # One pending sign-up; the limit counted across both: exactly three messages, not four.
    ((email, confirmed),) = _signups(a.site)
    assert (email.lower(), confirmed) == ("ada@example.org", False)
    messages = confirmations_sent(a.site) + confirmations_sent(b.site)
    assert len(messages) == MAX_CONFIRMATIONS_PER_ADDRESS
    assert sorted(query_rows(a.site, "SELECT was_sent FROM signup_requests")) == [
        (0,),
        (1,),
        (1,),
        (1,),
    ]

    # Every link sent works, on either replica, pressed on both at once.
    links = [confirmation_link(message) for message in messages]
    for link in links:
        for client in (on_a, on_b):
            shown = client.get(local_path(link))
            assert shown.status_code == 200, visible_text(shown.text)
    pressed = _all_at_once(
        [lambda c=client, li=link: _confirm(c, li) for link in links for client in (on_a, on_b)]
    )
    assert [(r.status_code, SUBSCRIBED in r.text) for r in pressed] == [(200, True)] * 6
    rows = query_rows(a.site, "SELECT email, status FROM subscribers")
    assert rows == [(email, "active")]


# -- a new database ----------------------------------------------------------------------


@pytest.mark.parametrize("database", ["empty"], indirect=True)
def test_replicas_starting_on_a_new_database_migrate_it_once(replicas, clients):
    # Nothing has made the schema yet: the first requests, on both at once, make it (a
    # link that did not work: a page that read the state to say so).
    confirm = {"token": "1.2.nonsense"}
    answers = _all_at_once(
        [lambda c=client: c.get("/news/confirm", params=confirm) for client in clients * 3]
    )
    assert [answer.status_code for answer in answers] == [400] * 6
    site = replicas[0].site
    assert query_rows(site, "SELECT version FROM publisher_schema") == [(SCHEMA_VERSION,)]
    assert subscriber_statuses(site) == {}
