"""cli.signing: `publisher dkim keygen`, and a bad key stopping the commands that send.

The record keygen prints is the one a verifier is given: a message the site
signs with the key it wrote verifies against it.
"""

from __future__ import annotations

import stat

import pytest
from support.cli import invoke
from support.dkimcheck import dkimpy_verifies, opendkim_result, record_of_zone_line

ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _subscribe(runner, site_dir, *addresses):
    for address in addresses:
        result = invoke(runner, site_dir, "subscribers", "add", address)
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keygen_writes_a_private_key_and_prints_what_to_publish(
    runner, site_dir, tmp_path, algorithm
):
    result = invoke(
        runner, site_dir, "dkim", "keygen", "--selector", "s2026", "--algorithm", algorithm
    )
    assert result.exit_code == 0, result.output
    key = site_dir / ".publisher" / "dkim" / "s2026.pem"
    assert _mode(key) == 0o600
    assert _mode(key.parent) == 0o700
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    lines = result.stdout.splitlines()
    kind = "RSA 2048" if algorithm == "rsa-sha256" else "Ed25519"
    assert lines[0] == f"wrote .publisher/dkim/s2026.pem ({kind} private key, mode 0600)"
    assert lines[2] == "Publish this TXT record in the DNS of gazette.example:"
    zone = lines[4]
    name, record = record_of_zone_line(zone)
    assert name == "s2026._domainkey.gazette.example"
    k = "rsa" if algorithm == "rsa-sha256" else "ed25519"
    assert record.startswith(f"v=DKIM1; k={k}; p=")
    strings = zone.split(" IN TXT ", 1)[1]
    assert all(len(part) <= 255 for part in strings.strip('"').split('" "'))
    if algorithm == "rsa-sha256":
        assert strings.count('" "') == 1  # 392 characters: two strings
    toml = lines[lines.index("Then add to publisher.toml:") + 2 :]
    assert toml == [
        "[delivery.dkim]",
        'domain = "gazette.example"',
        'selector = "s2026"',
        'private_key = ".publisher/dkim/s2026.pem"',
        f'algorithm = "{algorithm}"',
    ]

    # The lines go into publisher.toml; what the site sends verifies with the record.
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text() + "\n" + "\n".join(toml) + "\n")
    _subscribe(runner, site_dir, "a@example.org")
    sent = invoke(runner, site_dir, "digest", "send")
    assert sent.exit_code == 0, sent.output
    (eml,) = (site_dir / "outbox").rglob("*.eml")
    data = eml.read_bytes()
    assert dkimpy_verifies(data, record)
    assert opendkim_result(data, record, tmp_path / "opendkim").endswith("succeeded")
    assert not dkimpy_verifies(data.replace(b"Observers", b"Absorbers"), record)


def test_keygen_never_overwrites_a_key(runner, site_dir):
    out = site_dir / "keys" / "mine.pem"
    first = invoke(runner, site_dir, "dkim", "keygen", "--selector", "s1", "--out", str(out))
    assert first.exit_code == 0, first.output
    before = out.read_bytes()
    again = invoke(runner, site_dir, "dkim", "keygen", "--selector", "s1", "--out", str(out))
    assert again.exit_code == 2
    assert again.stderr == (
        "error: keys/mine.pem: already exists; a key is never overwritten (the DNS may still "
        "publish it): choose another --out or --selector\n"
    )
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--selector", "s 1"],
            "error: --selector: expected a selector such as 's2026' (letters, digits and '-', "
            "dots between labels) ('s 1')\n",
        ),
        (
            ["--selector", "s1", "--domain", "localhost"],
            "error: --domain: expected a domain name such as 'example.org' ('localhost')\n",
        ),
    ],
)
def test_keygen_bad_arguments(runner, site_dir, args, message):
    result = invoke(runner, site_dir, "dkim", "keygen", *args)
    assert result.exit_code == 2
    assert result.stderr == message
    assert not (site_dir / ".publisher" / "dkim").exists()


@pytest.mark.parametrize(
    "command",
    [["digest", "send"], ["digest", "test", "--to", "x@example.org"], ["serve"], ["run", "--once"]],
)
def test_a_key_open_to_others_stops_each_sending_command_at_its_start(runner, site_dir, command):
    made = invoke(
        runner, site_dir, "dkim", "keygen", "--selector", "s1", "--out", str(site_dir / "k.pem")
    )
    assert made.exit_code == 0, made.output
    (site_dir / "k.pem").chmod(0o644)
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text()
        + '\n[delivery.dkim]\ndomain = "gazette.example"\nselector = "s1"\nprivate_key = "k.pem"\n'
    )
    _subscribe(runner, site_dir, "a@example.org")
    result = invoke(runner, site_dir, *command)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: k.pem: the DKIM private key is open to group or others (mode 0644); "
        "make it private with: chmod 600 k.pem\n"
    )
    assert not (site_dir / "outbox").exists()
