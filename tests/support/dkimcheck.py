"""DKIM signatures checked by two verifiers: dkimpy, and OpenDKIM (C, Debian's opendkim).

Neither asks the DNS: dkimpy gets a dnsfunc answering with the record, and
`opendkim -t` reads it from a TestPublicKeys file, as `keygen` printed it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest

from publisher.config import DkimAlgorithm
from publisher.mail import signing

DOMAIN = "gazette.example"
SELECTOR = "s2026"
# Debian puts it in /usr/sbin, which a user's PATH may lack.
OPENDKIM = shutil.which("opendkim") or shutil.which("opendkim", path="/usr/sbin")


def make_key(folder: Path, algorithm: DkimAlgorithm, name: str = "dkim.pem") -> tuple[Path, str]:
    """A new key written to *folder*/*name* (mode 0600) and its DNS record's text."""
    key = signing.generate_key(algorithm)
    path = folder / name
    signing.write_private_key(path, signing.private_pem(key), where=name)
    return path, signing.public_record(key)


def dkim_table(key_file: str | None, algorithm: str = "rsa-sha256") -> str:
    """A [delivery.dkim] table for publisher.toml."""
    lines = ["", "[delivery.dkim]", f'domain = "{DOMAIN}"', f'selector = "{SELECTOR}"']
    if key_file is not None:
        lines.append(f'private_key = "{key_file}"')
    lines.append(f'algorithm = "{algorithm}"')
    return "\n".join(lines) + "\n"


def record_of_zone_line(line: str) -> tuple[str, str]:
    """(DNS name, record text) of a zone-file TXT line: its strings joined, as resolvers do."""
    name, _rest = line.split(" IN TXT ", 1)
    return name.rstrip("."), "".join(re.findall(r'"([^"]*)"', line))


def dkimpy_verifies(data: bytes, record: str, *, selector: str = SELECTOR) -> bool:
    expected = f"{selector}._domainkey.{DOMAIN}."

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes:  # noqa: ARG001 - dkimpy's
        asked = name.decode() if isinstance(name, bytes) else name
        assert asked.rstrip(".") + "." == expected, asked
        return record.encode("ascii")

    return bool(dkim.verify(data, dnsfunc=dnsfunc))


def signed_tags(data: bytes) -> dict[str, str]:
    """The DKIM-Signature's tags, whitespace removed."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    match = re.search(r"^DKIM-Signature:(.*?)\r\n(?=\S)", head, re.MULTILINE | re.DOTALL)
    assert match is not None, head[:300]
    value = re.sub(r"\s+", "", match.group(1))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def opendkim_result(data: bytes, record: str, folder: Path, *, selector: str = SELECTOR) -> str:
    """What OpenDKIM says of *data*'s signature ("… succeeded" or "… failed: …")."""
    if OPENDKIM is None:
        if os.environ.get("PUBLISHER_REQUIRE_BROWSER") == "1":
            pytest.fail("opendkim is not installed (Debian's opendkim; .ci/run installs it)")
        pytest.skip("opendkim is not installed (apt-get install opendkim)")
    folder.mkdir(parents=True, exist_ok=True)
    keys = folder / "keys"
    keys.write_text(f"{selector}._domainkey.{DOMAIN} {record}\n", encoding="ascii")
    config = folder / "opendkim.conf"
    config.write_text(
        f"TestPublicKeys {keys}\nMode v\nSyslog no\nMinimumKeyBits 1024\n", encoding="ascii"
    )
    message = folder / "message.eml"
    message.write_bytes(data)
    result = subprocess.run(
        [OPENDKIM, "-x", str(config), "-t", str(message)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return (result.stdout + result.stderr).strip()
