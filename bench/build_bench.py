"""Build benchmark: publisher against Pelican 4.12 on the same generated corpus.

    python bench/build_bench.py --n 1000 10000 [--seed 1] [--runs 3] [--pages off on] [--keep]
        [--before TREE]

For each N, in a temporary folder, bench/gen_corpus.py writes N articles (our
YAML front matter and Pelican's `Key: value` metadata, same bodies). Then,
each as a whole process (wall time with time.perf_counter around the child;
peak RSS of that child from /usr/bin/time, or else from
getrusage(RUSAGE_CHILDREN) in a fresh helper process):

publisher (`python -m publisher --config DIR/publisher.toml build`), once
with `[pages] enabled = false` (the feeds alone: "publisher") and once with
the pages too ("publisher+pages": a page per article, the home, tag, archive
and digest pages, the sitemap), as --pages says
  cold        no state, no output (all set aside before each run: see set_aside)
  no-change   nothing touched since the previous build
  one-edit    title and body of one recent article changed (it is in the
              site feed and in its tags' feeds), mtime bumped; a different
              article each run

Pelican (`pelican DIR/pelican-content -s bench/pelican/pelicanconf.py`;
Atom and RSS, site-wide and per tag, 50 items, no pages)
  cold                 content cache off, output and cache set aside first
  cold, cache on       the run that fills the content cache
  no-change, cache on  nothing touched
  one-edit, cache on   the same kind of edit, to the Pelican copy

Each case is run --runs times and the median is shown (Pelican's cold build
for N > 2,000 only --pelican-cold-runs times, default 1, because it is slow),
with the load average when the case started and the largest share of the
machine's CPU time that its hypervisor took for other guests during a run
("steal %": wall times are only comparable where it is low).
The publisher's output is checked too: the edited title must be in the site
feed after a one-edit build, and a no-change build must write no file. With
Pelican, a second table gives how many times faster than Pelican publisher
was in the same run, case by case.

With --before TREE (a checkout of an earlier commit, run with PYTHONPATH=TREE),
each N and --pages mode first builds the corpus cold with that tree and with
this one and compares every feed file (and page) byte for byte; then both
trees' builds are timed, the earlier one first ("before: publisher").

Pelican runs in its own venv (--pelican-venv, default /tmp/pelican-venv); when
that does not exist it is created with `python3 -m venv` and
`pip install "pelican[markdown]==4.12.*"`, outside the timings. publisher runs
in one too (--publisher-venv, default /tmp/publisher-bench-venv: this checkout
installed without its test extras, as a user has it), the tree under test
first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_corpus  # noqa: E402

PELICAN_CONF = HERE / "pelican" / "pelicanconf.py"
TIME_BIN = "/usr/bin/time"

# Runs a command in a fresh process and reports its wall time and the peak
# RSS of its child: used when /usr/bin/time is missing.
_HELPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.buffer.write(done.stderr)
sys.stdout.buffer.write(done.stdout)
info = {"wall": wall, "peak_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}
sys.stderr.write("\\n@@" + json.dumps(dict(info, rc=done.returncode)))
"""


@dataclass
class Run:
    wall: float
    peak_mb: float
    cpu: float  # user + system seconds of the child
    stdout: str
    stderr: str
    steal: float = 0.0  # % of the machine's CPU time its hypervisor gave others meanwhile


@dataclass
class Row:
    n: int
    tool: str
    case: str
    runs: list[Run]
    note: str = ""
    load: float = 0.0  # 1-minute load average when the case started

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def steal(self) -> float:
        return max(r.steal for r in self.runs)


QUIET = {"load": 1.0, "wait": 0.0}  # set from --quiet-load and --wait-quiet
ATTIC: list[Path] = []  # where set_aside moves folders: set by main, emptied at the end


def set_aside(*folders: Path) -> None:
    """Move *folders* out of the way; they are deleted once every timing is done.

    Deleting a build's 13,000 files just before the next cold build makes ext4
    slow to create the next ones: for a minute or more its inode allocator
    steps over the freshly freed inodes (`recently_deleted` tops a kernel
    profile), which added up to 10 s of system time to a cold build with
    pages here. A user's cold build does not follow such a deletion, and the
    runs should not either. Renaming a folder frees nothing.
    """
    for folder in folders:
        if folder.exists():
            ATTIC[0].mkdir(parents=True, exist_ok=True)
            folder.rename(ATTIC[0] / f"{len(list(ATTIC[0].iterdir()))}-{folder.name}")


def settle() -> float:
    """Wait (up to --wait-quiet seconds) for the 1-minute load average to fall below
    --quiet-load: other work on this small machine shows up in every wall time.

    :returns: the load average when the case starts.
    """
    deadline = time.monotonic() + QUIET["wait"]
    while os.getloadavg()[0] >= QUIET["load"] and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


def cpu_ticks() -> tuple[int, int]:
    """The machine's stolen and total CPU ticks so far (/proc/stat; (0, 0) where none).

    On a virtual machine the hypervisor may run other guests on its cores:
    that time ("steal") counts in a run's wall time but in nobody's CPU time,
    and load averages do not show it. Up to half of it was stolen in some
    runs here, so each run reports its share.
    """
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is counted in user)
    ticks = [int(value) for value in fields[1:9]]
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def measure(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run *cmd* as a child process; its wall time and peak resident memory, and the
    share of the machine's CPU time stolen meanwhile."""
    stolen, total = cpu_ticks()
    run = _measure(cmd, cwd=cwd, env=env)
    stolen_after, total_after = cpu_ticks()
    if total_after > total:
        run.steal = 100 * (stolen_after - stolen) / (total_after - total)
    return run


def _measure(cmd: list[str], *, cwd: Path, env: dict[str, str] | None) -> Run:
    if os.access(TIME_BIN, os.X_OK):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            started = time.perf_counter()
            done = subprocess.run(
                [TIME_BIN, "-f", "%M %U %S", "-o", report.name, *cmd],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            lines = [line for line in Path(report.name).read_text().splitlines() if line.strip()]
            peak, user, system = lines[-1].split()
            peak_kb, cpu = int(peak), float(user) + float(system)
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        done = subprocess.run(
            [sys.executable, "-c", _HELPER, *cmd], cwd=cwd, env=env, capture_output=True, text=True
        )
        stderr, _, tail = done.stderr.rpartition("\n@@")
        info = json.loads(tail)
        wall, peak_kb, cpu = info["wall"], info["peak_kb"], info["cpu"]
        rc, stdout = info["rc"], done.stdout
    if rc != 0:
        message = f"{' '.join(cmd)} exited {rc}:\n{stdout}\n{stderr}"
        raise SystemExit(message)
    return Run(wall, peak_kb / 1024, cpu, stdout, stderr)


def ensure_pelican(venv: Path) -> Path:
    pelican = venv / "bin" / "pelican"
    if not pelican.exists():
        print(f"creating {venv} with pelican 4.12 ...", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "pelican[markdown]==4.12.*"], check=True
        )
    return pelican


def pelican_version(pelican: Path) -> str:
    done = subprocess.run([str(pelican), "--version"], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()


def edit(path: Path, title_key: str, label: str) -> str:
    """Change an article's title and first paragraph; bump its mtime. Returns the new title."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"{title_key}:"):
            old = line.split(":", 1)[1].strip()
            if old.startswith('"'):
                old = json.loads(old)
            new_title = f"{old} ({label})"
            lines[i] = (
                f"{title_key}: {json.dumps(new_title, ensure_ascii=False)}"
                if title_key == "title"
                else f"{title_key}: {new_title}"
            )
            break
    else:
        message = f"{path}: no {title_key}: line"
        raise SystemExit(message)
    text = "\n".join(lines)
    # The body starts after the first blank line that follows the metadata.
    head, sep, body = text.partition("\n\n")
    body = f"Update ({label}): officials confirmed the figures late on Friday. " + body
    path.write_text(head + sep + body, encoding="utf-8")
    stat = path.stat()
    bumped = max(time.time_ns(), stat.st_mtime_ns + 1_000_000_000)
    os.utime(path, ns=(bumped, bumped))
    return new_title


def files_written(stdout: str) -> int:
    return _count(r"(\d+) files? written", stdout)


def pages_written(stdout: str) -> int:
    """Pages written, from the summary's "; N pages written" (0 with pages off)."""
    return _count(r"(\d+) pages? written", stdout) if "page" in stdout else 0


def _count(pattern: str, stdout: str) -> int:
    found = re.search(pattern, stdout)
    if found is None:
        message = f"unexpected build summary: {stdout!r}"
        raise SystemExit(message)
    return int(found.group(1))


def with_pages(site: Path, enabled: bool) -> str:
    """Set [pages] enabled in the benchmark site's config; the tool's name in the table."""
    config = site / "publisher.toml"
    text = config.read_text(encoding="utf-8").split("\n[pages]\n")[0]
    config.write_text(text + f"\n[pages]\nenabled = {str(enabled).lower()}\n", encoding="utf-8")
    return "publisher+pages" if enabled else "publisher"


def _written(run: Run) -> str:
    pages = pages_written(run.stdout)
    return f"{files_written(run.stdout)}" + (f"+{pages}p" if "page" in run.stdout else "")


def tree_env(tree: Path | None) -> dict[str, str]:
    """The environment that runs the publisher of source tree *tree* (None: this script's)."""
    return {**os.environ, "PYTHONPATH": str((tree or HERE.parent).resolve())}


def ensure_publisher(venv: Path) -> Path:
    """The Python of a venv holding publisher's own dependencies alone, as a user installs it.

    Not this script's: a development venv holds the test extras too, and lxml
    imports rnc2rng whenever it is there (50 ms of every build that renders a
    feed entry). The trees under test run from it with PYTHONPATH, which comes
    before the copy installed there. Delete the venv when the dependencies change.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with publisher's dependencies ...", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(HERE.parent)], check=True)
    return python


PUBLISHER_PYTHON = [sys.executable]  # set by main (--publisher-venv)


def build_cmd(site: Path) -> list[str]:
    config = str(site / "publisher.toml")
    return [PUBLISHER_PYTHON[0], "-m", "publisher", "--config", config, "build"]


def compare_outputs(site: Path, before: Path) -> str:
    """Build *site* cold with the tree *before*, then with this one: do the outputs differ?

    Every file of the feeds' folder and, with pages on, of the site folder, byte for byte.
    """
    outputs = {}
    for label, env in (("before", tree_env(before)), ("after", tree_env(None))):
        set_aside(*(site / folder for folder in ("feeds", "site", ".publisher")))
        measure(build_cmd(site), cwd=site, env=env)
        outputs[label] = {
            path.relative_to(site).as_posix(): path.read_bytes()
            for folder in ("feeds", "site")
            for path in sorted((site / folder).rglob("*"))
            if path.is_file()
        }
    old, new = outputs["before"], outputs["after"]
    differ = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    only = sorted(old.keys() ^ new.keys())
    feeds = sum(1 for p in new if p.startswith("feeds/"))
    verdict = "identical" if not differ and not only else f"{len(differ) + len(only)} differ"
    shown = ", ".join((differ + only)[:5])
    return f"{len(new)} files ({feeds} feed files) before and after: {verdict}" + (
        f" ({shown}{', …' if len(differ) + len(only) > 5 else ''})" if shown else ""
    )


def bench_publisher(
    n: int,
    site: Path,
    targets: list[gen_corpus.Record],
    runs: int,
    tool: str,
    env: dict[str, str] | None = None,
) -> list[Row]:
    cmd = build_cmd(site)
    rows: list[Row] = []

    load = settle()
    cold: list[Run] = []
    for _ in range(runs):
        set_aside(*(site / folder for folder in ("feeds", "site", ".publisher")))
        cold.append(measure(cmd, cwd=site, env=env))
    note = f"{files_written(cold[-1].stdout)} files, {pages_written(cold[-1].stdout)} pages written"
    rows.append(Row(n, tool, "cold", cold, note, load))

    load = settle()
    same = [measure(cmd, cwd=site, env=env) for _ in range(runs)]
    if any(files_written(r.stdout) or pages_written(r.stdout) for r in same):
        message = f"a no-change build wrote files: {same[0].stdout}"
        raise SystemExit(message)
    rows.append(Row(n, tool, "no-change", same, "0 files written", load))

    load = settle()
    edits: list[Run] = []
    notes: list[str] = []
    for k, record in enumerate(targets[:runs]):
        title = edit(site / record.path, "title", f"edit {k + 1}")
        run = measure(cmd, cwd=site, env=env)
        _check_edit(site, title, tool)
        edits.append(run)
        notes.append(_written(run))
    rows.append(
        Row(
            n,
            tool,
            "one-edit",
            edits,
            f"{'/'.join(notes)} written (files: the site and "
            f"{'/'.join(str(len(t.tags)) for t in targets[:runs])} tag feeds, 3 formats each"
            + ("; p: pages" if tool.endswith("pages") else "")
            + ")",
            load,
        )
    )
    return rows


def _check_edit(site: Path, title: str, tool: str) -> None:
    """The edited title is in the site feed, and (with pages) on the home page's first three."""
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    places = [[site / "feeds" / "rss.xml"]]
    if tool.endswith("pages"):
        home = site / "site"
        places.append([home / "index.html", *(home / f"page/{n}/index.html" for n in (2, 3))])
    for group in places:
        if not any(escaped in place.read_text(encoding="utf-8") for place in group):
            message = f"edited title {title!r} is not in {group[0].relative_to(site)}"
            raise SystemExit(message)


def bench_pelican(
    n: int,
    site: Path,
    targets: list[gen_corpus.Record],
    pelican: Path,
    runs: int,
    cold_runs: int,
) -> list[Row]:
    output = site / "pelican-output"
    cache = site / "pelican-cache"
    base = [
        str(pelican),
        str(site / "pelican-content"),
        "-o",
        str(output),
        "-s",
        str(PELICAN_CONF),
        "--cache-path",
        str(cache),  # absolute: Pelican resolves a relative one against the settings file
        "--log-handler",
        "plain",
    ]
    cached = [*base, "-e", "CACHE_CONTENT=true", "LOAD_CONTENT_CACHE=true"]
    rows: list[Row] = []

    def fresh() -> None:
        set_aside(output, cache)

    load = settle()
    cold: list[Run] = []
    for _ in range(cold_runs):
        fresh()
        cold.append(measure(base, cwd=site))
    count = sum(1 for _ in output.rglob("*.xml"))
    rows.append(Row(n, "pelican", "cold", cold, f"{count} files (Atom + RSS)", load))

    fresh()
    load = settle()
    filling = [measure(cached, cwd=site)]
    rows.append(Row(n, "pelican", "cold, cache on", filling, "fills the cache", load))
    load = settle()
    same = [measure(cached, cwd=site) for _ in range(runs)]
    rows.append(Row(n, "pelican", "no-change, cache on", same, "rewrites every feed", load))
    load = settle()
    edits = []
    for k, record in enumerate(targets[:runs]):
        assert record.pelican_path is not None
        edit(site / record.pelican_path, "Title", f"edit {k + 1}")
        edits.append(measure(cached, cwd=site))
    rows.append(Row(n, "pelican", "one-edit, cache on", edits, "rewrites every feed", load))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| N | tool | case | runs | wall s (median) | CPU s (median) | peak MB (max) | load "
        "| steal % (max) | note |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.n:,} | {row.tool} | {row.case} | {len(row.runs)} | {row.wall:.3f} "
            f"| {row.cpu:.2f} | {row.peak_mb:.0f} | {row.load:.1f} | {row.steal:.0f} "
            f"| {row.note} |"
        )
    return "\n".join(lines)


PELICAN_CASE = {
    "cold": "cold",
    "no-change": "no-change, cache on",
    "one-edit": "one-edit, cache on",
}


def ratios(rows: list[Row]) -> str:
    """How many times faster than Pelican in the same run, by wall time, case by case."""
    walls = {(r.n, r.tool, r.case): r.wall for r in rows}
    lines = ["| N | tool | cold | no-change | one edit |", "|---:|---|---:|---:|---:|"]
    for n, tool in dict.fromkeys((r.n, r.tool) for r in rows if r.tool != "pelican"):
        cells = []
        for case, theirs in PELICAN_CASE.items():
            mine, pelican = walls.get((n, tool, case)), walls.get((n, "pelican", theirs))
            cells.append(f"{pelican / mine:.1f}×" if mine and pelican else "–")
        lines.append(f"| {n:,} | {tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument(
        "--pelican-cold-runs",
        type=int,
        default=1,
        help="runs of Pelican's cold builds for N > 2,000 (default 1)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each case, wait up to this long for the load average to drop",
    )
    parser.add_argument("--quiet-load", type=float, default=1.0, metavar="LOAD")
    parser.add_argument("--pelican-venv", type=Path, default=Path("/tmp/pelican-venv"))
    parser.add_argument(
        "--publisher-venv",
        type=Path,
        default=Path("/tmp/publisher-bench-venv"),
        help="where publisher runs: a venv with its dependencies and no test extras "
        "(created when missing)",
    )
    parser.add_argument("--no-pelican", action="store_true")
    parser.add_argument(
        "--pages",
        nargs="+",
        choices=["off", "on", "unset"],
        default=["off", "on"],
        help="build the feeds alone, with the pages, or both (each on a fresh state); "
        "unset leaves [pages] out of the config, for a tree from before pages",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="TREE",
        help="a publisher source tree (a checkout of an earlier commit): its builds are "
        "timed too, first, and its cold build's files compared byte for byte with this one's",
    )
    parser.add_argument("--out", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = parser.parse_args(argv)

    # The trees under test run from source: without bytecode caching every build
    # would compile each module again (0.3-0.4 s a build here), which an installed
    # publisher, compiled by pip, never does. The first builds write the caches.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    QUIET.update(load=args.quiet_load, wait=args.wait_quiet)
    pelican = None if args.no_pelican else ensure_pelican(args.pelican_venv)
    PUBLISHER_PYTHON[0] = str(ensure_publisher(args.publisher_venv))
    work = args.out or Path(tempfile.mkdtemp(prefix="build-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ATTIC.append(work / "attic")
    print(
        f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        + (f", {pelican_version(pelican)}" if pelican else "")
        + f", work folder {work}",
        file=sys.stderr,
    )
    rows: list[Row] = []
    comparisons: list[str] = []
    try:
        for n in args.n:
            site = work / f"n{n}"
            shutil.rmtree(site, ignore_errors=True)
            started = time.perf_counter()
            records = gen_corpus.generate(n, site, seed=args.seed, pelican=pelican is not None)
            print(f"N={n}: corpus in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            # Recent published articles: in the site feed and near the top of their tag feeds.
            newest = sorted((r for r in records if not r.is_draft), key=lambda r: r.date)[::-1]
            targets = [newest[i] for i in (1, 4, 9, 14, 19, 24)[: max(args.runs, 1)]]
            for mode in args.pages:
                tool = "publisher" if mode == "unset" else with_pages(site, mode == "on")
                if args.before is not None:
                    comparisons.append(f"N={n:,}, {tool}: {compare_outputs(site, args.before)}")
                    print(comparisons[-1], file=sys.stderr)
                trees = [("before: ", tree_env(args.before))] if args.before else []
                for prefix, env in [*trees, ("", tree_env(None))]:
                    for row in bench_publisher(n, site, targets, args.runs, prefix + tool, env):
                        rows.append(row)
                        print(table([row]).splitlines()[-1], file=sys.stderr)
            if pelican is not None:
                cold_runs = args.runs if n <= 2000 else args.pelican_cold_runs
                for row in bench_pelican(n, site, targets, pelican, args.runs, cold_runs):
                    rows.append(row)
                    print(table([row]).splitlines()[-1], file=sys.stderr)
    finally:
        shutil.rmtree(ATTIC[0], ignore_errors=True)
        if not args.keep and args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if pelican is not None:
        print("\nTimes faster than Pelican in this run (wall time, medians):\n")
        print(ratios(rows))
    for line in comparisons:
        print(f"\nBytes: {line}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "n": r.n,
                        "tool": r.tool,
                        "case": r.case,
                        "walls": [x.wall for x in r.runs],
                        "peaks_mb": [x.peak_mb for x in r.runs],
                        "cpus": [x.cpu for x in r.runs],
                        "steals": [x.steal for x in r.runs],
                        "load": r.load,
                        "note": r.note,
                    }
                    for r in rows
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
