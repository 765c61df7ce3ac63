"""Several `publisher digest send` processes share one digest, and none sends a message twice.

Real processes (`python -m publisher`), a real PostgreSQL server (the `postgres_server`
fixture) and aiosmtpd on 127.0.0.1. What it proves:

- three senders started at once, each on a machine of its own (a site folder of its own,
  one database), make one digest between them: the others say they help and exit 0.
  One of them SIGKILLed mid-send leaves no recipient with two copies; whoever got no copy
  is the one row it had in flight, which `digest status` counts and `digest failures`
  lists as uncertain, a later `digest send` does not send again, and `--resend-uncertain`
  sends once;
- the same with the kill at points drawn from a seeded random generator;
- a lone survivor sends the rows the killed sender had claimed and not started (they are
  free at once: its process is gone), instead of leaving them for the next run;
- a sender stopped (SIGSTOP: alive, silent) loses its claimed rows to the other once
  `[delivery] sender_timeout` has passed, and when it wakes sends none of them, only
  recording the message it had in flight;
- a sender whose connection to the database is cut stops with one `error: state: …`
  line, leaving a ledger the SMTP server agrees with (`sent` only what arrived, nothing
  that arrived left `pending`); the next `digest send` finishes the rest;
- `digest send --workers 3`, on PostgreSQL and on SQLite, sends each subscriber one copy,
  reports the sum of its workers' tallies, and keeps `[delivery] rate` for the digest as
  a whole, not per worker;
- a sender started while another makes or sends the digest helps (exit 0, not 75), and
  two started at once make one digest.

The SMTP server's handler gives the tests their cues (a message held until the test lets
it go, the first messages of several connections gathered), so every wait is for
something that happened, never a guessed sleep. Where only the database knows (a
backend waiting for a lock, a row's status), the tests look until it is so.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
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

import psycopg
import pytest
from support.cli import invoke
from support.clock import NOW
from support.mailing import STATUS_HEADER
from support.paths import SITES
from support.postgres import PostgresServer, append_state_url
from support.processes import ENV, start_publisher
from support.smtp_server import SmtpServer

from publisher.config import load_config
from publisher.delivery.send import CLAIM_BATCH, live_senders
from publisher.store import open_store

WAIT = 120  # seconds a sender may take before the test gives up on it (a failure, not a pace)
GATHER_TIMEOUT = 60  # seconds the first messages wait for the other senders' (ditto)
SEED = 20261127  # the kill points of the random rounds; printed in their failures
RATE = 50  # messages per second, for the whole digest
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
    r"`publisher digest send`, since [^)]+\): "
    r"sending the digests already made, making none\n"
)
FILE_HELPER = (
    r"\.publisher/lock: another publisher run holds the lock \(pid {pid}, "
    r"`publisher digest send`, since [^)]+\): "
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


@pytest.fixture
def cli(runner, monkeypatch) -> Callable[..., Any]:
    """The command line in this process, with the secret the sending processes share."""
    monkeypatch.setenv("PUBLISHER_SECRET", ENV["PUBLISHER_SECRET"])
    return lambda site_dir, *args: invoke(runner, site_dir, *args)


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


def kill_one_of_three(
    server: SmtpServer,
    tmp_path: Path,
    url: str,
    count: int,
    *,
    hold_at: int,
    stored: bool,
    start: Callable[..., subprocess.Popen[str]],
    note: str,
) -> tuple[list[Path], list[str], str]:
    """Three senders on three machines, one killed while the server holds its Nth message.

    Returns the machines' site folders, the subscribers and the address held.
    """
    hold = Stage(server, gather=3).hold(hold_at, store=stored)
    sites = [make_site(tmp_path, f"machine{n}", server.port, url=url) for n in range(3)]
    addresses = subscribe(sites[0], count)
    senders = [start(site, "digest", "send") for site in sites]
    victim, held = kill_the_holder(hold, sites[0], senders)
    outcomes = {p.pid: finish(p) for p in senders if p is not victim}
    rows = check_after_the_kill(server, sites[0], addresses, held, stored=stored, note=note)
    check_one_maker(outcomes, victim.pid, sent_by(rows), note)
    return sites, addresses, held


def test_three_senders_one_killed_mid_send_no_one_gets_two_copies(
    tmp_path, new_database, postgres_server, processes, cli
):
    url = postgres_server.url(new_database())
    with SmtpServer() as server:
        sites, addresses, held = kill_one_of_three(
            server, tmp_path, url, 3000, hold_at=1000, stored=False, start=processes, note=""
        )
        check_the_operators_view(server, sites, addresses, held, cli)


def check_the_operators_view(
    server: SmtpServer, sites: list[Path], addresses: list[str], held: str, cli: Any
) -> None:
    """What `digest status`, `failures` and later sends say and do after the kill."""
    status = cli(sites[0], "digest", "status")
    assert (status.exit_code, status.stderr) == (0, "")
    header, row = status.stdout.splitlines()
    assert header.split() == STATUS_HEADER
    assert row.split()[3:10] == ["3", "2999", "0", "0", "1", "0", "0"]
    failures = cli(sites[1], "digest", "failures")
    assert (failures.exit_code, failures.stderr) == (0, "")
    width = len(held)
    assert failures.stdout.splitlines()[0] == (
        f"digest  {'address':<{width}}  status     when              reply"
    )
    assert re.fullmatch(
        rf"     1  {re.escape(held)}  uncertain  \d{{4}}-\d\d-\d\d \d\d:\d\d  "
        r"\(no reply recorded\)",
        failures.stdout.splitlines()[1],
    )
    assert len(failures.stdout.splitlines()) == 2

    before = len(server.received)
    again = cli(sites[2], "digest", "send")
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        "resumed digest 1\nnothing new since the last digest\n"
        "sent 0, failed 0, deferred 0, uncertain 1\n"
    )
    assert "1 message may or may not have been delivered" in again.stderr
    assert len(server.received) == before

    forced = cli(sites[0], "digest", "send", "--resend-uncertain")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.splitlines()[-1] == TALLY.format(1)
    assert [m.recipients for m in server.received[before:]] == [[held]]
    once = cli(sites[1], "digest", "send", "--resend-uncertain")
    assert (once.exit_code, once.stdout) == (0, "nothing new since the last digest\n")
    assert len(server.received) == before + 1
    assert_one_copy_each(server, addresses)


def test_killed_at_random_points_the_promise_holds(
    tmp_path, new_database, postgres_server, processes, cli
):
    chance = random.Random(SEED)
    count = 300
    for round_number in range(3):
        hold_at, stored = chance.randint(1, count), chance.random() < 0.5
        note = f"seed {SEED}, round {round_number}: killed at message {hold_at}, stored: {stored}"
        url = postgres_server.url(new_database())
        with SmtpServer() as server:
            sites, _addresses, held = kill_one_of_three(
                server,
                tmp_path / f"round{round_number}",
                url,
                count,
                hold_at=hold_at,
                stored=stored,
                start=processes,
                note=note,
            )
            before = len(server.received)
            again = cli(sites[round_number % 3], "digest", "send")
            assert again.exit_code == 0, (note, again.output)
            last = again.stdout.splitlines()[-1]
            assert last == "sent 0, failed 0, deferred 0, uncertain 1", note
            assert len(server.received) == before, note
        assert uncertain(sites[0]) == [held], note


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


# -- the database connection cut under a sender -----------------------------------------------


def test_a_sender_whose_database_connection_is_cut_stops_with_one_line(
    tmp_path, new_database, postgres_server, processes, cli
):
    # The server holds the 5th message's reply while the database drops every connection:
    # the sender learns the message arrived, and cannot record it.
    database = new_database()
    with SmtpServer() as server:
        hold = Stage(server).hold(5)
        site_dir = make_site(tmp_path, "site", server.port, url=postgres_server.url(database))
        addresses = subscribe(site_dir, 30)
        sender = processes(site_dir, "digest", "send")
        assert hold.held.wait(WAIT), sender.poll()
        assert postgres_server.terminate(database) >= 1
        hold.release()
        code, out, err = finish(sender)
        assert (code, out) == (1, "")
        assert re.fullmatch(r"error: state: [^\n]+\n", err), err
        check_the_cut_ledger(server, site_dir, addresses, hold.recipients)

        # Its sender is gone (its process is, though its heartbeat is recent): uncertain.
        status = cli(site_dir, "digest", "status")
        assert status.stdout.splitlines()[1].split()[3:10] == ["3", "4", "25", "0", "1", "0", "0"]
        rest = cli(site_dir, "digest", "send")
        assert rest.exit_code == 0, rest.output
        assert rest.stdout == (
            "resumed digest 1\nnothing new since the last digest\n"
            "sent 25, failed 0, deferred 0, uncertain 1\n"
        )
    assert_one_copy_each(server, addresses)
    assert uncertain(site_dir) == hold.recipients


def check_the_cut_ledger(
    server: SmtpServer, site_dir: Path, addresses: list[str], held_for: list[str]
) -> None:
    """`sent` only what arrived, and what arrived not `pending`: the 5th left uncertain."""
    rows = ledger(site_dir)
    copies = server.by_recipient()
    assert {a for a, (status, _) in rows.items() if status == "sent"} <= set(copies)
    assert {rows[a][0] for a in copies} <= {"sent", "sending"}
    assert sorted(copies) == addresses[:5]
    assert [a for a, (status, _) in rows.items() if status == "sending"] == held_for
    assert Counter(status for status, _ in rows.values()) == {
        "sent": 4,
        "sending": 1,
        "pending": 25,
    }
    assert uncertain(site_dir) == held_for


# -- workers of one command --------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_workers_share_the_digest_and_its_rate(tmp_path, new_state, processes):
    with SmtpServer() as server:
        stage = Stage(server, gather=3)  # all three workers are sending before any goes on
        site_dir = make_site(tmp_path, "site", server.port, url=new_state(), rate=RATE)
        addresses = subscribe(site_dir, 3 * CLAIM_BATCH)
        command = processes(site_dir, "digest", "send", "--workers", "3")
        code, out, err = finish(command)
    assert (code, err) == (0, "")
    assert out == f"made digest 1 with 3 articles\n{TALLY.format(3 * CLAIM_BATCH)}\n"
    assert_one_copy_each(server, addresses)
    # Each worker claimed one batch before the first message went on: a batch each.
    tallies = sent_by(ledger(site_dir))
    assert sorted(tallies.values()) == [CLAIM_BATCH] * 3, tallies
    assert command.pid not in tallies

    # Each worker's first message waited for the others' (`gathered_at`); every message
    # after those three took a rate slot after that moment, one slot per 1/RATE seconds
    # for the digest as a whole, and left no sooner than its slot.
    assert stage.gathered_at is not None
    stamps = sorted(stage.stamps)
    assert stamps[0] >= stage.gathered_at
    for index, stamp in enumerate(stamps[3:]):
        earliest = stage.gathered_at + index / RATE
        assert stamp >= earliest - 0.001, (
            f"message {index + 4} left {stamp - stage.gathered_at:.3f} s after the workers "
            f"gathered; at {RATE} a second for the digest, not before {index / RATE:.3f} s"
        )


# -- a second sender helps ---------------------------------------------------------------------


@contextlib.contextmanager
def table_locked(url: str, table: str) -> Iterator[None]:
    """Hold *table* against writes (reads go on) until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield
        conn.commit()


def wait_for_waiting(server: PostgresServer, database: str, query: str) -> None:
    """Until a connection to *database* waits for a lock in a statement starting *query*.

    The server tells no one when a backend starts to wait, so this looks, for at most
    WAIT seconds: it waits for that state, never for a guessed time.
    """
    deadline = time.monotonic() + WAIT
    sql = (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{}' "
        "AND wait_event_type = 'Lock' AND query LIKE '{}%'"
    ).format(database, query.replace("'", "''"))
    while server.admin(sql)[0][0] == 0:
        assert time.monotonic() < deadline, f"no connection waits in {query!r}"
        time.sleep(0.01)


def check_maker_and_helper(
    senders: list[subprocess.Popen[str]], site_dir: Path, total: int
) -> tuple[int, int]:
    """Of two senders, one made the digest and one said it helps; both sent a share, exit 0.

    Returns the maker's pid and the helper's.
    """
    outcomes = {process.pid: finish(process) for process in senders}
    (maker,) = [pid for pid, (_, out, _) in outcomes.items() if out.startswith("made digest")]
    (helper,) = set(outcomes) - {maker}
    tallies = sent_by(ledger(site_dir))
    assert tallies[maker] + tallies[helper] == total
    assert min(tallies[maker], tallies[helper]) > 0, tallies
    made = f"made digest 1 with 3 articles\n{TALLY.format(tallies[maker])}\n"
    assert outcomes[maker] == (0, made, "")
    code, out, err = outcomes[helper]
    assert code == 0, err  # not 75: a helper is not a second run holding the lock
    assert out == f"resumed digest 1\n{TALLY.format(tallies[helper])}\n"
    assert re.fullmatch(FILE_HELPER.format(pid=maker), err), err
    return maker, helper


def test_a_sender_started_while_the_digest_is_made_waits_for_it_and_helps(
    tmp_path, new_database, postgres_server, processes
):
    # The maker is stopped inside its making (its digest row waits on a table lock); the
    # second sender, started then, waits for that digest instead of finding none.
    database = new_database()
    url = postgres_server.url(database)
    with SmtpServer() as server:
        Stage(server, gather=2)  # each sends a share: neither finishes before the other starts
        site_dir = make_site(tmp_path, "site", server.port, url=url)
        addresses = subscribe(site_dir, 60)
        with table_locked(url, "digests"):
            maker = processes(site_dir, "digest", "send")
            wait_for_waiting(postgres_server, database, "INSERT INTO digests")
            helper = processes(site_dir, "digest", "send")
            wait_for_waiting(postgres_server, database, "SELECT pg_advisory_lock(")
        pids = check_maker_and_helper([maker, helper], site_dir, 60)
    assert pids == (maker.pid, helper.pid)
    assert_one_copy_each(server, addresses)


def test_a_sender_started_while_the_digest_is_sent_helps(
    tmp_path, new_database, postgres_server, processes
):
    # The first sender's first message waits for its reply until the second has sent
    # everything the first had not claimed.
    url = postgres_server.url(new_database())
    count = 50
    with SmtpServer() as server:
        hold = Stage(server).hold(1)
        site_dir = make_site(tmp_path, "site", server.port, url=url)
        addresses = subscribe(site_dir, count)
        maker = processes(site_dir, "digest", "send")
        assert hold.held.wait(WAIT), maker.poll()
        helper = processes(site_dir, "digest", "send")
        assert server.wait_for_received(1 + count - CLAIM_BATCH, WAIT)
        hold.release()
        pids = check_maker_and_helper([maker, helper], site_dir, count)
    assert pids == (maker.pid, helper.pid)
    assert sent_by(ledger(site_dir)) == {maker.pid: CLAIM_BATCH, helper.pid: count - CLAIM_BATCH}
    assert_one_copy_each(server, addresses)


def test_two_senders_started_at_once_on_sqlite_make_one_digest(tmp_path, processes):
    with SmtpServer() as server:
        Stage(server, gather=2)
        site_dir = make_site(tmp_path, "site", server.port, url=None)
        addresses = subscribe(site_dir, 60)
        senders = [processes(site_dir, "digest", "send") for _ in range(2)]
        check_maker_and_helper(senders, site_dir, 60)
    assert_one_copy_each(server, addresses)
