"""Several `publisher digest send` processes share one digest, and none sends a message twice.

Real processes (`python -m publisher`), a real PostgreSQL server (the `postgres_server`
fixture) and aiosmtpd on 127.0.0.1. What it proves:

- a lone survivor sends the rows the killed sender had claimed and not started (they are
  free at once: its process is gone), instead of leaving them for the next run;
- a sender stopped (SIGSTOP: alive, silent) loses its claimed rows to the other once
  `[delivery] sender_timeout` has passed, and when it wakes sends none of them, only
  recording the message it had in flight.

The SMTP server's handler gives the tests their cues (a message held until the test lets
it go, the first messages of several connections gathered), so every wait is for
something that happened, never a guessed sleep. Where only the database knows (a row's
status), the tests look until it is so.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.clock import NOW
from support.paths import SITES
from support.postgres import PostgresServer, append_state_url
from support.processes import start_publisher
from support.smtp_server import SmtpServer

from publisher.config import load_config
from publisher.delivery.send import CLAIM_BATCH, live_senders
from publisher.store import open_store

WAIT = 120  # seconds a sender may take before the test gives up on it (a failure, not a pace)
GATHER_TIMEOUT = 60  # seconds the first messages wait for the other senders' (ditto)
# [delivery] sender_timeout, long: a dead sender of this machine must be known by its process
# id, at once, not by its silence (a test that waited for that would fail on WAIT first).
DEAD_BY_PID = 600

DELIVERY = """
[delivery]
method = "smtp"
rate = {rate}
backoff = 0.01
max_attempts = 3
sender_timeout = {timeout}

[delivery.smtp]
host = "127.0.0.1"
port = {port}
timeout = 120
"""

TALLY = "sent {}, failed 0, deferred 0, uncertain 0"
# What a sender that finds the site lock taken prints, naming the maker: the server's lock
# (another machine) or the lock file (a sender of the same site folder).
SERVER_HELPER = (
    r"state: another publisher run holds the lock \(host [^,]+, pid {pid}, "
    r"`publisher digest send`, since [^)]+\); try again later: "
    r"sending the digests already made, making none\n"
)


class Hold:
    """One message the server holds: stored first or not, its reply withheld until released.

    The reply never comes if the client goes first (aiosmtpd then cancels the wait).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, store: bool) -> None:
        self.loop = loop
        self.store = store
        self.recipients: list[str] = []
        self.held = threading.Event()  # the message is in (stored or not)
        self.settled = threading.Event()  # ... and the server is done with it
        self.released = asyncio.Event()

    def release(self) -> None:
        """Send the reply after all (from the test's thread)."""
        self.loop.call_soon_threadsafe(self.released.set)


class Stage:
    """The test server's handler, with the cues the tests wait on instead of sleeping.

    *gather*: the first message of each of the first *gather* connections waits until all
    of them have one in, so that many senders are certainly at work at once, however
    loaded the machine. `hold(n)`: the nth message (from 1) is held (see Hold).
    `stamps`: when each message was stored, on the clock the senders' rate slots use.
    """

    def __init__(self, server: SmtpServer, *, gather: int = 0) -> None:
        self.inner = server.handler
        self.loop = server.controller.loop
        self.gather = gather
        self.data_commands = 0  # counted on the server's one event loop
        self.peers: set[Any] = set()
        self.gathered = asyncio.Event()
        self.gathered_at: float | None = None
        self.holds: dict[int, Hold] = {}
        self.stamps: list[float] = []
        server.controller.handler = self  # the handler of every connection from now on

    def hold(self, number: int, *, store: bool = True) -> Hold:
        self.holds[number] = Hold(self.loop, store=store)
        return self.holds[number]

    async def handle_RCPT(self, *args: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        return str(await self.inner.handle_RCPT(*args))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.data_commands += 1
        hold = self.holds.get(self.data_commands)
        await self._gather(session.peer)
        if hold is not None:
            return await self._hold(hold, server, session, envelope)
        return await self._store(server, session, envelope)

    async def _store(self, *args: Any) -> str:
        reply = str(await self.inner.handle_DATA(*args))
        self.stamps.append(time.time())
        return reply

    async def _gather(self, peer: Any) -> None:
        if peer in self.peers or len(self.peers) >= self.gather:
            return
        self.peers.add(peer)
        if len(self.peers) == self.gather:
            self.gathered_at = time.time()
            self.gathered.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.gathered.wait(), GATHER_TIMEOUT)

    async def _hold(self, hold: Hold, *args: Any) -> str:
        hold.recipients = list(args[2].rcpt_tos)
        try:
            reply = await self._store(*args) if hold.store else None
            hold.held.set()
            await hold.released.wait()
            return reply if reply is not None else await self._store(*args)
        finally:
            hold.settled.set()


# -- sites, subscribers, processes and the ledger ---------------------------------------


def make_site(
    tmp_path: Path,
    name: str,
    port: int,
    *,
    url: str | None,
    rate: int = 0,
    sender_timeout: int = DEAD_BY_PID,
) -> Path:
    """The basic test site mailing the test server; on PostgreSQL when *url* is given."""
    folder = tmp_path / name
    shutil.copytree(SITES / "basic", folder)
    with (folder / "publisher.toml").open("a", encoding="utf-8") as handle:
        handle.write(DELIVERY.format(rate=rate, port=port, timeout=sender_timeout))
    if url is not None:
        append_state_url(folder, url)
    return folder


def subscribe(site_dir: Path, count: int) -> list[str]:
    """*count* active subscribers, straight into the store in one transaction."""
    addresses = [f"reader{n:05d}@example.org" for n in range(1, count + 1)]
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store, store.transaction():
        for address in addresses:
            store.insert_subscriber(address, "", status="active", now=NOW)
    return addresses


@pytest.fixture
def new_database(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """Makes a database of the test server for a test (its name), dropped after."""
    made: list[str] = []

    def new() -> str:
        made.append(postgres_server.create_database())
        return made[-1]

    yield new
    for name in made:
        postgres_server.drop_database(name)


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `publisher` processes; any still running when the test ends is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(site_dir: Path, *args: str) -> subprocess.Popen[str]:
        started.append(start_publisher(site_dir, *args))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for *process* to end: its exit code, stdout and stderr."""
    stdout, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stdout, stderr


def pid_of(worker: str) -> int:
    """The process id in a sender's worker id ("host:pid:random")."""
    return int(worker.split(":")[1])


def ledger(site_dir: Path) -> dict[str, tuple[str, str | None]]:
    """Every delivery row of digest 1: address -> (status, the sender that last held it)."""
    site = load_config(site_dir / "publisher.toml")
    with open_store(site.state) as store:
        rows = store.conn.execute(
            "SELECT s.email, d.status, d.worker FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id WHERE d.digest_id = 1"
        ).fetchall()
        assert store.conn.execute("SELECT COUNT(*) FROM digests").fetchone()[0] == 1
    return {email: (status, worker) for email, status, worker in rows}


def uncertain(site_dir: Path) -> list[str]:
    """The addresses `digest status` counts uncertain and `digest failures` lists as such."""
    site = load_config(site_dir / "publisher.toml")
    since = datetime.now(UTC) - timedelta(seconds=site.delivery.sender_timeout)
    with open_store(site.state) as store:
        live = live_senders(store, since=since)
        return sorted(f.email for f in store.iter_failures(live=live) if f.status == "sending")


def sent_by(rows: dict[str, tuple[str, str | None]]) -> Counter[int]:
    """How many rows each sending process (by pid) recorded `sent`."""
    return Counter(
        pid_of(worker) for status, worker in rows.values() if status == "sent" and worker
    )


def assert_one_copy_each(server: SmtpServer, addresses: list[str]) -> None:
    copies = server.by_recipient()
    assert sorted(copies) == addresses
    assert [a for a, messages in copies.items() if len(messages) != 1] == []


# -- a sender killed mid-send ---------------------------------------------------------------


def kill_the_holder(
    hold: Hold, site_dir: Path, senders: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], str]:
    """SIGKILL the sender whose message the server holds: it is certainly mid-send.

    Returns it, reaped (so its pid is gone, as a dead process's is), and the address.
    """
    if not hold.held.wait(WAIT):
        pytest.fail(f"the server never held a message: {[p.poll() for p in senders]}")
    (address,) = hold.recipients
    status, worker = ledger(site_dir)[address]
    assert status == "sending"  # committed before the message left
    assert worker is not None
    (victim,) = [p for p in senders if p.pid == pid_of(worker)]
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=WAIT)
    assert victim.returncode == -signal.SIGKILL
    assert hold.settled.wait(WAIT)  # the server has let the held message go
    return victim, address


def check_after_the_kill(
    server: SmtpServer,
    site_dir: Path,
    addresses: list[str],
    held: str,
    *,
    stored: bool,
    note: str = "",
) -> dict[str, tuple[str, str | None]]:
    """The promise once the survivors are done: no second copy, and no one lost unreported."""
    copies = server.by_recipient()
    assert [a for a, messages in copies.items() if len(messages) > 1] == [], note
    left_uncertain = uncertain(site_dir)
    missing = sorted(set(addresses) - set(copies))
    assert set(missing) <= set(left_uncertain), note  # no copy: reported uncertain
    # What the killed sender had in flight: the one row marked `sending` before its message
    # left (the outcome of the one before is committed in the same transaction).
    assert left_uncertain == [held], note
    assert missing == ([] if stored else [held]), note
    rows = ledger(site_dir)
    statuses = Counter(status for status, _worker in rows.values())
    assert statuses == {"sent": len(addresses) - 1, "sending": 1}, note
    arrived = set(copies)
    assert {a for a, (status, _) in rows.items() if status == "sent"} <= arrived, note
    assert {rows[a][0] for a in arrived} <= {"sent", "sending"}, note
    return rows


def check_one_maker(
    outcomes: dict[int, tuple[int, str, str]],
    victim: int | None,
    tallies: Counter[int],
    note: str = "",
) -> None:
    """One sender made the digest; every other said it helps, naming the maker, and exit 0.

    The maker may be the *victim*, killed before it could say anything.
    """
    makers = [pid for pid, (_, out, _) in outcomes.items() if out.startswith("made digest")]
    assert len(makers) in ((1,) if victim is None else (0, 1)), (note, outcomes)
    maker = makers[0] if makers else victim
    for pid, (code, out, err) in outcomes.items():
        tally = TALLY.format(tallies[pid])
        assert code == 0, (note, err)
        if pid == maker:
            assert (out, err) == (f"made digest 1 with 3 articles\n{tally}\n", ""), note
        else:
            assert out == f"resumed digest 1\n{tally}\n", note
            assert re.fullmatch(SERVER_HELPER.format(pid=maker), err), (note, err)


def test_a_lone_survivor_sends_what_the_killed_sender_had_claimed(
    tmp_path, new_database, postgres_server, processes
):
    # Two senders; the second one's first message is held (the first one's waits for it
    # to come in), so the one killed has a batch claimed and all but one row unsent.
    url = postgres_server.url(new_database())
    with SmtpServer() as server:
        hold = Stage(server, gather=2).hold(2, store=False)
        sites = [make_site(tmp_path, f"machine{n}", server.port, url=url) for n in range(2)]
        addresses = subscribe(sites[0], 3 * CLAIM_BATCH)
        senders = [processes(site, "digest", "send") for site in sites]
        victim, held = kill_the_holder(hold, sites[0], senders)
        (survivor,) = [p for p in senders if p is not victim]
        outcome = finish(survivor)
        rows = check_after_the_kill(server, sites[0], addresses, held, stored=False)
    check_one_maker({survivor.pid: outcome}, victim.pid, sent_by(rows))
    assert sent_by(rows) == {survivor.pid: len(addresses) - 1}


def test_a_paused_sender_loses_its_claims_and_sends_none_of_them_when_it_wakes(
    tmp_path, new_database, postgres_server, processes
):
    # As the lone survivor above, but the one holding the second message is stopped, not
    # killed: alive and silent. Only its silence frees its rows, after sender_timeout. It
    # wakes while the other holds them (the first of them in flight, the rest claimed).
    url = postgres_server.url(new_database())
    count = 3 * CLAIM_BATCH
    with SmtpServer() as server:
        stage = Stage(server, gather=2)
        first = stage.hold(2)
        # The other's messages: 1, 3 to 2 * CLAIM_BATCH + 1, then the first taken over.
        taken = stage.hold(2 * CLAIM_BATCH + 2)
        sites = [
            make_site(tmp_path, f"machine{n}", server.port, url=url, sender_timeout=2)
            for n in range(2)
        ]
        addresses = subscribe(sites[0], count)
        senders = [processes(site, "digest", "send") for site in sites]
        assert first.held.wait(WAIT), [p.poll() for p in senders]
        (held,) = first.recipients
        (paused,) = [p for p in senders if p.pid == pid_of(str(ledger(sites[0])[held][1]))]
        (other,) = [p for p in senders if p is not paused]
        paused.send_signal(signal.SIGSTOP)
        assert taken.held.wait(WAIT), other.poll()
        assert uncertain(sites[0]) == [held]  # in flight under a sender gone silent
        check_the_takeover(sites[0], paused.pid, other.pid, count)

        paused.send_signal(signal.SIGCONT)
        first.release()
        wait_for_status(sites[0], held, "sent")  # it has tried the next row it had claimed
        taken.release()
        outcomes = {other.pid: finish(other), paused.pid: finish(paused)}
        assert_one_copy_each(server, addresses)
    rows = ledger(sites[0])
    assert {status for status, _ in rows.values()} == {"sent"}
    tallies = sent_by(rows)
    assert tallies[paused.pid] >= 1  # the message it had in flight
    assert tallies[paused.pid] + tallies[other.pid] == count
    check_one_maker(outcomes, None, tallies)
    assert uncertain(sites[0]) == []


def check_the_takeover(site_dir: Path, paused: int, other: int, count: int) -> None:
    """The paused sender's claimed rows are the other's now: one in flight, the rest pending."""
    rows = ledger(site_dir)
    by_state = Counter((status, pid_of(str(worker))) for status, worker in rows.values())
    assert by_state == {
        ("sent", other): 2 * CLAIM_BATCH,
        ("sending", other): 1,
        ("pending", other): CLAIM_BATCH - 2,
        ("sending", paused): 1,
    }, (by_state, count)


def wait_for_status(site_dir: Path, address: str, status: str) -> None:
    """Until *address*'s row has *status*: the database tells no one, so this looks."""
    deadline = time.monotonic() + WAIT
    while ledger(site_dir)[address][0] != status:
        assert time.monotonic() < deadline, f"{address} never became {status}"
        time.sleep(0.01)
