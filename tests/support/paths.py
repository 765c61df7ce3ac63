"""Where the suite's fixture files are: beside the test packages, under tests/."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).parents[1]
REPO = TESTS.parent
SITES = TESTS / "sites"  # one folder per situation, copied into tmp_path by `make_site`
GOLDEN = TESTS / "golden"  # expected bytes, rewritten only by `pytest --update-golden`
SCHEMAS = TESTS / "schemas"  # RFC 4287's RELAX NG schema and JSON Feed 1.1's JSON Schema
STATES = TESTS / "data" / "states"  # state folders as each released version left them
SUBSCRIBER_FILES = TESTS / "data" / "subscribers"  # CSV files to import
