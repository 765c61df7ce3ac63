"""Run `python -m publisher` as a real process, as cron or systemd would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "PUBLISHER_SECRET": "a-test-secret-of-enough-length"}


def start_publisher(site_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site_dir / "publisher.toml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def run_publisher(site_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    process = start_publisher(site_dir, *args)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
