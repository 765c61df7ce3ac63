"""Several senders on one digest, state on PostgreSQL: throughput by senders; the ledger's cost.

    python bench/senders_bench.py [--subscribers 2000] [--senders 1 2 4 8] [--runs 3]
                                  [--delay-ms 20] [--no-ledger] [--profile] [--wait-quiet S]

It starts what it needs and removes it at the end, also after Ctrl-C: a
PostgreSQL cluster of its own in a temporary folder (Debian's initdb and
pg_ctl, or those on PATH; as the `postgres` user when run as root; on
127.0.0.1 and a free port, trust authentication, the server's default
durability), and two SMTP sinks (bench/smtp_sink.py, each in its own process
and accepting any number of connections): a slow one that waits --delay-ms
after each message before it answers, as a remote relay does, and one that
answers at once.

A copy of the example site gets S subscribers and one digest, made once in a
template database. Every run sends that digest from a fresh copy of it
(CREATE DATABASE ... TEMPLATE), so each run sends all S messages; afterwards
the ledger must hold S rows `sent` and the sink must have got S messages.

1. Throughput with N senders (--senders), to the slow sink, two ways:
     processes  N `publisher digest send --no-new`, started at once
     workers    one `publisher digest send --no-new --workers N`
   N = 1 is one plain `digest send --no-new` in both (--workers 1 is that
   same path), run once a round. Wall time runs from the start of the
   processes to the exit of the last; msg/s is S / wall; speed-up is against
   one sender. The ledger's times split the wall time: "start" until the
   first outcome is recorded, "loop" the rate from the first outcome to the
   last ("loop x": that rate against one sender's), "tail" from the last
   outcome to the exit of the last process. CPU per message: the senders'
   (every process, user + system, start-up included), the server's (the
   postmaster with its processes, live and ended) and the sink's; "load" is
   the 1-minute load average as the run started. Target: 4 senders >= 3.2x one.
2. The ledger's cost per message: one sender in a child process (this
   script with --child: send_digests, timed from the start of its send
   loop), to the instant sink, on SQLite (WAL, synchronous = NORMAL, as
   publisher opens it) and on PostgreSQL with synchronous_commit on (the
   server's default) and off (what SQLite's setting risks: the last commits,
   never consistency); the difference is what PostgreSQL's ledger costs
   beyond SQLite's.

Each figure is the median of --runs (the run with the median wall time, so
a row's columns belong together); a round goes through every case in turn,
so drift in the machine's load spreads over all of them. --profile adds a
cProfile of one of 4 senders (processes way). The machine's load is printed
at the start and the end; --wait-quiet S waits up to S seconds before each
run for the load average to fall below --quiet-load (1.0). On a shared
machine, compare figures of one sitting only.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import itertools
import json
import os
import platform
import pstats
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import digest_bench  # noqa: E402  (the sink, the example site's config, the load line)

TEMPLATE = "bench_template"
SPEEDUP_AT = 4
SPEEDUP_TARGET = 3.2
RESULT_MARK = "RESULT "
DATABASE_URL_VARIABLE = "PUBLISHER_DATABASE_URL"
PROFILE_LINES = 30

# Trust on the loopback address only: nothing but this machine reaches the cluster.
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


# -- the PostgreSQL cluster --------------------------------------------------------------


def _postgres_bin() -> Path:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not versions:
        message = "error: PostgreSQL's initdb and pg_ctl not found (Debian's package: postgresql)"
        raise SystemExit(message)
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL cluster of this run's own, in a temporary folder, on 127.0.0.1."""

    def __init__(self) -> None:
        self.bin_dir = _postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="senders-bench-pg-"))
        self.data = self.folder / "data"
        self.as_root = os.geteuid() == 0  # initdb and pg_ctl refuse to run as root
        self.started = False

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        # A session of its own, so a Ctrl-C at the terminal reaches this script
        # alone, which then stops the server in order and removes its folder.
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                start_new_session=True,
            )
        except subprocess.CalledProcessError as err:
            message = f"error: {args[0]} failed (exit {err.returncode}): {err.stderr.strip()}"
            raise SystemExit(message) from err

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        (self.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=200"
        )
        log = str(self.folder / "server.log")
        self.started = True  # from here on, stop() must try to stop it
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60",
                  "start")  # fmt: skip

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(SystemExit, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run *sql* as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql.encode("utf-8"))
            return list(cursor.fetchall()) if cursor.description else []

    def cpu_seconds(self) -> float:
        """CPU the server has used so far: the postmaster, its live processes and the ended.

        A backend ends with its connection; the postmaster reaps it, and its
        time moves into the postmaster's children's time (cutime, cstime).
        """
        pid = int((self.data / "postmaster.pid").read_text(encoding="ascii").split()[0])
        return process_cpu(pid) + sum(process_cpu(child) for child in _children_of(pid))


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from the state on (field 3), or [] for a process that is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return []
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> float:
    """User + system seconds of *pid* and of the children it has reaped."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in glob.glob("/proc/[0-9]*"):
        child = int(entry.rsplit("/", 1)[1])
        fields = _stat_fields(child)
        if fields and fields[1] == str(pid):
            children.append(child)
    return children


def children_cpu() -> float:
    """User + system seconds of this script's waited-for children (and theirs, once waited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the sites ---------------------------------------------------------------------------


def make_site(folder: Path, port: int) -> Path:
    """A copy of the example site that sends by SMTP to 127.0.0.1:*port*, state unset.

    On PostgreSQL the state is named per run by PUBLISHER_DATABASE_URL (it
    wins over the file), so one folder serves every run.
    """
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "content", folder / "content")
    if (ROOT / "templates").is_dir():
        shutil.copytree(ROOT / "templates", folder / "templates")
    config = digest_bench._config_text(digest_bench.smtp_delivery(port))
    (folder / "publisher.toml").write_text(config, encoding="utf-8")
    return folder


@contextlib.contextmanager
def database_url(url: str | None) -> Iterator[None]:
    """PUBLISHER_DATABASE_URL set to *url* (or unset) in this process, for the block."""
    before = os.environ.pop(DATABASE_URL_VARIABLE, None)
    if url is not None:
        os.environ[DATABASE_URL_VARIABLE] = url
    try:
        yield
    finally:
        os.environ.pop(DATABASE_URL_VARIABLE, None)
        if before is not None:
            os.environ[DATABASE_URL_VARIABLE] = before


def fill_state(site_dir: Path, count: int) -> tuple[float, float]:
    """*count* active subscribers and one digest for them, all `pending`: seconds for each step."""
    from publisher.config import load_config
    from publisher.mail import compose, subscribers
    from publisher.mail.secret import site_secret
    from publisher.pipelines import digests
    from publisher.store import open_store

    site = load_config(site_dir / "publisher.toml")
    now = datetime.now(UTC)
    with open_store(site.state) as store:
        secret = site_secret(site, store)  # on PostgreSQL, leaves the secret's fingerprint
        began = time.perf_counter()
        with store.transaction():
            for number in range(1, count + 1):
                subscribers.add_subscriber(
                    store, secret, f"reader{number:06d}@example.org", f"Reader {number}", now=now
                )
        added = time.perf_counter() - began
        report = digests.SendReport()
        began = time.perf_counter()
        made = digests._make_digest(site, store, compose.mail_settings(site), report, now=now)
        making = time.perf_counter() - began
    if made is None:
        message = f"error: no digest made: {report.note}"
        raise SystemExit(message)
    return added, making


# -- one throughput run -------------------------------------------------------------------


@dataclass(frozen=True)
class Quiet:
    wait: float  # seconds, at most, before each run
    load: float  # the 1-minute load average to wait for


def settle(quiet: Quiet) -> float:
    """Wait (up to quiet.wait seconds) for the load average to fall below quiet.load: other
    work on a small shared machine shows in every figure. Returns the load as the run starts."""
    deadline = time.monotonic() + quiet.wait
    while os.getloadavg()[0] >= quiet.load and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


@dataclass(frozen=True)
class Run:
    wall: float
    start: float  # launch -> the first outcome recorded
    loop_rate: float  # messages/s from the first outcome recorded to the last
    tail: float  # the last outcome recorded -> the last process ended
    load: float  # the 1-minute load average as the run started
    sender_cpu: float  # seconds, all sending processes
    server_cpu: float
    sink_cpu: float


class Bench:
    """The cluster, the sinks and the sites of one sitting, and the processes running now."""

    def __init__(self, work: Path, count: int, cluster: Cluster, quiet: Quiet) -> None:
        self.work = work
        self.count = count
        self.cluster = cluster
        self.quiet = quiet
        self.running: list[subprocess.Popen[str]] = []
        self._names = itertools.count(1)

    @contextlib.contextmanager
    def fresh_database(self, *, synchronous_commit: str | None = None) -> Iterator[str]:
        """A copy of the template (the digest made, every row pending), dropped after: its URL."""
        name = f"run_{next(self._names)}"
        self.cluster.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        try:
            if synchronous_commit is not None:
                self.cluster.admin(
                    f"ALTER DATABASE {name} SET synchronous_commit = {synchronous_commit}"
                )
            yield self.cluster.url(name)
        finally:
            self.cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def send(self, site_dir: Path, sink: Any, senders: int, way: str, profile: Path | None) -> Run:
        """Send the whole digest with *senders* senders, the *way* given; checked, then timed."""
        command = [sys.executable, "-m", "publisher", "--config", str(site_dir / "publisher.toml")]
        command += ["digest", "send", "--no-new"]
        if way == "workers" and senders > 1:
            commands = [[*command, "--workers", str(senders)]]
        else:
            commands = [list(command) for _ in range(senders)]
        if profile is not None:
            commands[0][1:1] = ["-m", "cProfile", "-o", str(profile)]
        with self.fresh_database() as url:
            environment = dict(os.environ, **{DATABASE_URL_VARIABLE: url})
            load = settle(self.quiet)
            before = sink.received()
            cpu, server, sink_cpu = children_cpu(), self.cluster.cpu_seconds(), sink_seconds(sink)
            launched = datetime.now(UTC)
            began = time.perf_counter()
            self.running = [
                subprocess.Popen(
                    c,
                    env=environment,
                    cwd=site_dir,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for c in commands
            ]
            outputs = [process.communicate() for process in self.running]
            wall = time.perf_counter() - began
            cpu = children_cpu() - cpu
            server = self.cluster.cpu_seconds() - server
            sink_cpu = sink_seconds(sink) - sink_cpu
            failed = [
                (p.returncode, out + err)
                for p, (out, err) in zip(self.running, outputs, strict=True)
                if p.returncode != 0
            ]
            self.running = []
            if failed:
                code, text = failed[0]
                message = f"error: a sender failed (exit {code}):\n{text}"
                raise SystemExit(message)
            arrived = sink.received() - before
            first, last = self._check_ledger(url, arrived)
        return Run(
            wall=wall,
            start=(first - launched).total_seconds(),
            loop_rate=(self.count - 1) / max((last - first).total_seconds(), 1e-9),
            tail=wall - (last - launched).total_seconds(),
            sender_cpu=cpu,
            server_cpu=server,
            sink_cpu=sink_cpu,
            load=load,
        )

    def _check_ledger(self, url: str, arrived: int) -> tuple[datetime, datetime]:
        """Every row sent, each message arrived once: the first and last outcome's times."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            statuses: dict[str, int] = dict(
                conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
            )
            times = [
                datetime.fromisoformat(row[0])
                for row in conn.execute(
                    "SELECT updated_at FROM deliveries WHERE status = 'sent'"
                ).fetchall()
            ]
        if statuses != {"sent": self.count} or arrived != self.count:
            message = (
                f"error: not every message went out once: ledger {statuses}, "
                f"the sink got {arrived} of {self.count}"
            )
            raise SystemExit(message)
        return min(times), max(times)

    def stop_running(self) -> None:
        """Stop the senders still running: after Ctrl-C they stop after the message in flight,
        unless the sink is gone already (it got the Ctrl-C too) and they wait to retry."""
        for process in self.running:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = []


def sink_seconds(sink: Any) -> float:
    return process_cpu(sink.process.pid)


# -- the ledger's cost: one sender, timed inside ------------------------------------------


def child_send(site_dir: Path) -> dict[str, Any]:
    """send_digests for the digest already made, timed from the start of its send loop."""
    from publisher.config import load_config
    from publisher.pipelines import digests

    site = load_config(site_dir / "publisher.toml")
    marks: dict[str, float] = {}

    def progress(_total: int) -> Any:
        marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
        return lambda _n: None

    report = digests.send_digests(
        site, now=lambda: datetime.now(UTC), make_new=False, progress=progress
    )
    wall, cpu = time.perf_counter(), time.process_time()
    return {"sent": report.sent, "seconds": wall - marks["wall"], "cpu": cpu - marks["cpu"]}


def run_child(site_dir: Path, url: str | None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(site_dir)]
    environment = dict(os.environ)
    environment.pop(DATABASE_URL_VARIABLE, None)
    if url is not None:
        environment[DATABASE_URL_VARIABLE] = url
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    for line in reversed(done.stdout.splitlines()):
        if done.returncode == 0 and line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    message = (
        f"error: the timed sender failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    )
    raise SystemExit(message)


@dataclass(frozen=True)
class LedgerRun:
    per_message: float  # seconds of the send loop per message
    sender_cpu: float  # seconds per message
    server_cpu: float | None  # seconds per message, PostgreSQL only


def ledger_run(bench: Bench, backend: str, sites: dict[str, Path], sink: Any) -> LedgerRun:
    """One timed send of the whole digest by one sender on *backend*, to the instant sink."""
    count = bench.count
    settle(bench.quiet)
    before = sink.received()
    if backend == "sqlite":
        folder = bench.work / f"sqlite-run-{next(bench._names)}"
        shutil.copytree(sites["sqlite"], folder)
        try:
            result = run_child(folder, None)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        server = None
    else:
        setting = backend.rsplit(" ", 1)[1]
        with bench.fresh_database(synchronous_commit=setting) as url:
            server_before = bench.cluster.cpu_seconds()
            result = run_child(sites["postgresql"], url)
            server = (bench.cluster.cpu_seconds() - server_before) / count
    arrived = sink.received() - before
    if result["sent"] != count or arrived != count:
        message = f"error: {backend}: sent {result['sent']}, the sink got {arrived} of {count}"
        raise SystemExit(message)
    return LedgerRun(result["seconds"] / count, result["cpu"] / count, server)


# -- the report ---------------------------------------------------------------------------


def median_run(runs: Sequence[Run]) -> Run:
    """The run with the median wall time (the lower middle one of an even number)."""
    wall = statistics.median_low(r.wall for r in runs)
    return next(r for r in runs if r.wall == wall)


def throughput_table(count: int, results: dict[int, list[Run]], baseline: Run) -> list[str]:
    header = (
        f"{'senders':>7}  {'wall s':>7}  {'msg/s':>7}  {'speed-up':>8}  {'start s':>7}  "
        f"{'loop msg/s':>10}  {'loop x':>6}  {'tail s':>6}  {'CPU ms/msg: senders':>19}  "
        f"{'server':>6}  {'sink':>5}  {'load':>4}  wall of each run"
    )
    lines = [header]
    for senders, runs in sorted(results.items()):
        run = median_run(runs)
        lines.append(
            f"{senders:>7}  {run.wall:>7.2f}  {count / run.wall:>7.1f}  "
            f"{baseline.wall / run.wall:>7.2f}x  {run.start:>7.2f}  {run.loop_rate:>10.1f}  "
            f"{run.loop_rate / baseline.loop_rate:>5.2f}x  {run.tail:>6.2f}  "
            f"{run.sender_cpu / count * 1e3:>19.2f}  {run.server_cpu / count * 1e3:>6.2f}  "
            f"{run.sink_cpu / count * 1e3:>5.2f}  {run.load:>4.1f}  "
            + ", ".join(f"{r.wall:.2f}" for r in runs)
        )
    return lines


def ledger_table(results: dict[str, list[LedgerRun]]) -> list[str]:
    width = max(len(name) for name in results)
    lines = [
        f"{'backend':<{width}}  {'loop ms/msg':>11}  {'sender CPU ms/msg':>17}  "
        f"{'server CPU ms/msg':>17}  loop ms/msg of each run"
    ]
    medians = {}
    for name, runs in results.items():
        per_message = statistics.median(r.per_message for r in runs)
        medians[name] = per_message
        cpu = statistics.median(r.sender_cpu for r in runs)
        server_runs = [r.server_cpu for r in runs if r.server_cpu is not None]
        server = f"{statistics.median(server_runs) * 1e3:.3f}" if server_runs else "-"
        lines.append(
            f"{name:<{width}}  {per_message * 1e3:>11.3f}  {cpu * 1e3:>17.3f}  {server:>17}  "
            + ", ".join(f"{r.per_message * 1e3:.3f}" for r in runs)
        )
    sqlite = medians.get(SQLITE)
    for name, per_message in medians.items():
        if name != SQLITE and sqlite:
            extra = per_message - sqlite
            lines.append(
                f"{name} - SQLite: {extra * 1e3:+.3f} ms per message ({extra / sqlite:+.0%})"
            )
    return lines


SQLITE = "SQLite (WAL, synchronous = NORMAL)"
POSTGRES_ON = "PostgreSQL, synchronous_commit = on"
POSTGRES_OFF = "PostgreSQL, synchronous_commit = off"
BACKENDS = {SQLITE: "sqlite", POSTGRES_ON: "postgresql on", POSTGRES_OFF: "postgresql off"}


def profile_text(path: Path, senders: int) -> str:
    text = io.StringIO()
    text.write(f"\n== cProfile of one of {senders} senders (`digest send --no-new`) ==\n")
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    return text.getvalue()


# -- the whole sitting --------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Several senders on one digest (PostgreSQL): throughput and the ledger's cost."
    )
    parser.add_argument("--subscribers", type=int, default=2000, help="S, the digest's recipients")
    parser.add_argument(
        "--senders", type=int, nargs="+", default=[1, 2, 4, 8], help="the numbers of senders"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each case (the median shown)")
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="the slow sink's wait before each reply"
    )
    parser.add_argument(
        "--no-ledger", dest="ledger", action="store_false", help="skip the ledger's cost"
    )
    parser.add_argument(
        "--profile", action="store_true", help=f"cProfile one of {SPEEDUP_AT} senders"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the load average to drop",
    )
    parser.add_argument("--quiet-load", type=float, default=1.0, metavar="LOAD")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is None:
        if args.subscribers < 1:
            parser.error(f"--subscribers: expected 1 or more, got {args.subscribers}")
        if args.runs < 1:
            parser.error(f"--runs: expected 1 or more, got {args.runs}")
        if args.delay_ms < 0:
            parser.error(f"--delay-ms: expected 0 or more, got {args.delay_ms:g}")
        bad = [n for n in args.senders if not 1 <= n <= 64]  # digest send --workers takes 1-64
        if bad:
            parser.error(f"--senders: expected numbers from 1 to 64, got {bad[0]}")
    return args


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_arguments()
    if args.child:
        print(RESULT_MARK + json.dumps(child_send(Path(args.child))), flush=True)
        return 0
    # Clean up after Ctrl-C, and after SIGTERM as after it; a shell that starts
    # this in the background ignores SIGINT, which would leave no way to stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    for name in ("PUBLISHER_SMTP_PASSWORD", "PUBLISHER_CONFIG", DATABASE_URL_VARIABLE):
        os.environ.pop(name, None)
    # One secret for every process: a PostgreSQL state never makes one.
    os.environ["PUBLISHER_SECRET"] = secrets.token_hex(32)
    senders = sorted({1, *args.senders})  # the speed-up is against one
    count = args.subscribers
    began = time.perf_counter()
    load_before = digest_bench.machine_load()

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {text}", file=sys.stderr, flush=True)

    cluster = Cluster()  # first: without PostgreSQL's binaries it stops, leaving nothing
    work = Path(tempfile.mkdtemp(prefix="senders-bench-"))
    sinks: list[Any] = []
    bench = Bench(work, count, cluster, Quiet(args.wait_quiet, args.quiet_load))
    lines: list[str] = []
    try:
        step(f"starting PostgreSQL ({cluster.bin_dir}) on port {cluster.port}")
        cluster.start()
        version = cluster.admin("SHOW server_version")[0][0]
        slow = digest_bench.Sink(args.delay_ms)
        sinks.append(slow)
        instant = digest_bench.Sink()
        sinks.append(instant)
        step(f"the template: {count} subscribers and one digest (in {work})")
        site = make_site(work / "site-slow", slow.port)
        cluster.admin(f"CREATE DATABASE {TEMPLATE}")
        with database_url(cluster.url(TEMPLATE)):
            added, making = fill_state(site, count)
        lines.append(
            f"setup: {count:,} subscribers added in {added:.2f} s (one transaction), "
            f"the digest made in {making:.2f} s"
        )

        results: dict[str, dict[int, list[Run]]] = {"processes": {}, "workers": {}}
        for round_number in range(1, args.runs + 1):
            for senders_now in senders:
                for way in ("processes", "workers") if senders_now > 1 else ("processes",):
                    step(f"round {round_number}/{args.runs}: {senders_now} sender(s), {way}")
                    run = bench.send(site, slow, senders_now, way, None)
                    results[way].setdefault(senders_now, []).append(run)
        results["workers"][1] = results["processes"][1]  # one path: --workers 1 is a plain send
        baseline = median_run(results["processes"][1])
        lines.append("")
        lines.append(
            f"1. throughput to a sink that answers each message after {args.delay_ms:g} ms, "
            f"S = {count:,}, median of {args.runs}"
        )
        verdicts = []
        for way, title in (
            ("processes", "N separate `publisher digest send --no-new`, started at once"),
            ("workers", "one `publisher digest send --no-new --workers N`"),
        ):
            lines.append("")
            lines.append(f"{way}: {title}")
            lines.extend("  " + line for line in throughput_table(count, results[way], baseline))
            if SPEEDUP_AT in results[way]:
                speedup = baseline.wall / median_run(results[way][SPEEDUP_AT]).wall
                verdict = "met" if speedup >= SPEEDUP_TARGET else "NOT met"
                verdicts.append(
                    f"{way}: {SPEEDUP_AT} senders {speedup:.2f}x one "
                    f"(target >= {SPEEDUP_TARGET}x): {verdict}"
                )
        lines.append("")
        lines.extend("- " + verdict for verdict in verdicts)

        if args.ledger:
            ledger_runs = ledger_section(bench, instant, args.runs, step)
            lines.append("")
            lines.append(
                f"2. the ledger's cost: 1 sender, a sink that answers at once, S = {count:,}, "
                f"median of {args.runs}"
            )
            lines.extend("  " + line for line in ledger_table(ledger_runs))

        if args.profile:
            profile_senders = SPEEDUP_AT if SPEEDUP_AT in senders else max(senders)
            step(f"profile: one of {profile_senders} senders under cProfile")
            out = work / "sender.prof"
            bench.send(site, slow, profile_senders, "processes", out)
            lines.append(profile_text(out, profile_senders))
    except KeyboardInterrupt:
        print("interrupted: stopping the senders, the sinks and PostgreSQL", file=sys.stderr)
        return 130
    finally:
        bench.stop_running()
        for sink in sinks:
            sink.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"senders benchmark: PostgreSQL {version}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {datetime.now().date().isoformat()}"
    )
    import publisher

    print(f"publisher measured: {Path(publisher.__file__).parent}")
    print(f"machine at start: {load_before}; at end: {digest_bench.machine_load()}")
    print("\n".join(lines))
    print(f"\ntotal benchmark time {time.perf_counter() - began:.0f} s")
    return 0


def ledger_section(bench: Bench, sink: Any, runs: int, step: Any) -> dict[str, list[LedgerRun]]:
    """The SQLite site (its own state, the same digest) beside fresh PostgreSQL copies."""
    step("the ledger's cost: a SQLite site with the same subscribers and digest")
    sqlite_site = make_site(bench.work / "site-sqlite", sink.port)
    with database_url(None):
        fill_state(sqlite_site, bench.count)
    sites = {"sqlite": sqlite_site, "postgresql": make_site(bench.work / "site-instant", sink.port)}
    results: dict[str, list[LedgerRun]] = {name: [] for name in BACKENDS}
    for round_number in range(1, runs + 1):
        for name, backend in BACKENDS.items():
            step(f"ledger round {round_number}/{runs}: {name}")
            results[name].append(ledger_run(bench, backend, sites, sink))
    return results


if __name__ == "__main__":
    sys.exit(main())
