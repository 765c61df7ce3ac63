"""DKIM benchmark: compose, compose + sign (RSA 2048, Ed25519) and SMTP, in one run.

    python bench/dkim_bench.py --subscribers 2000

In a temporary folder it builds a copy of the example site with N subscribers
(bench/digest_bench.py's build_site), renders one digest, pads its HTML part
to --kib (80 KiB messages, as DESIGN.md's measurements assume; the example
site's own digest is about 26 KiB), and measures:

1. dkimpy alone: `dkim.sign` of one finished message, relaxed/relaxed, over
   the headers publisher signs, with RSA 2048 and Ed25519 (--dkimpy of them):
   what signing each message with dkimpy would cost;
2. compose: compose.prepare once, then for every subscriber make_token,
   bounce_token and compose.personalise (the send loop's message_for), with
   [bounces] address set, unsigned; then the same with an RSA 2048 key and
   with an Ed25519 key (each best of --runs); a sample of each signed kind is
   verified with dkimpy;
3. SMTP: the aiosmtpd sink in its own process (bench/smtp_sink.py), a bare
   smtplib loop sending one signed message's bytes N times on one
   connection, and digests.send_digests to the sink, ledger included, unsigned
   and with RSA signing on (children of bench/digest_bench.py; the send uses
   the example digest, unpadded).

The verdict: compose + sign must stay above the SMTP rate measured here.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import digest_bench  # the sibling script, found through the line above

SIGNED = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
]


def _keys() -> dict[str, Any]:
    from publisher.config import DkimOptions
    from publisher.mail import signing

    keys = {}
    for algorithm in ("rsa-sha256", "ed25519-sha256"):
        private = signing.generate_key(algorithm)
        options = DkimOptions("meridian.example", "bench", None, algorithm)
        keys[algorithm] = (
            signing.load_key(options, signing.private_pem(private), where="bench"),
            signing.public_record(private),
            private,
        )
    return keys


def measure_dkimpy(message: bytes, keys: dict[str, Any], count: int) -> dict[str, float]:
    """Messages per second dkimpy signs (parse, canonicalise, hash, sign) per algorithm."""
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization

    from publisher.mail import signing

    rates = {}
    for algorithm, (_key, _record, private) in keys.items():
        if algorithm == "rsa-sha256":
            secret = signing.private_pem(private)
        else:
            raw = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            secret = base64.b64encode(raw)
        start = time.perf_counter()
        for _ in range(count):
            dkim.DKIM(message).sign(
                b"bench",
                b"meridian.example",
                secret,
                signature_algorithm=algorithm.encode(),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=SIGNED,
            )
        rates[algorithm] = count / (time.perf_counter() - start)
    return rates


def measure_compose(
    site: Any, rendered: Any, dkim_key: Any, runs: int
) -> tuple[float, float, bytes]:
    """(messages/s, mean bytes, a sample) of the send loop's message_for, best of *runs*."""
    from publisher import tokens
    from publisher.mail import compose
    from publisher.store import open_store

    settings = replace(
        compose.mail_settings(site), dkim=dkim_key, bounce_address="bounces@meridian.example"
    )
    secret = tokens.load_secret(site.state_dir)
    with open_store(site.state_db) as store:
        people = list(store.iter_subscribers(status="active"))
    best, total, sample = 0.0, 0, b""
    for _ in range(runs):
        start = time.perf_counter()
        template = compose.prepare(1, rendered, settings, date=datetime.now(UTC))
        total = 0
        for person in people:
            token = tokens.make_token(secret, person.id, person.email)
            bounce = tokens.bounce_token(secret, 1, person.id)
            message = compose.personalise(template, person, token, bounce_token=bounce)
            total += len(message.data)
            sample = sample or message.data
        best = max(best, len(people) / (time.perf_counter() - start))
    return best, total / len(people), sample


def _verify(sample: bytes, record: str) -> bool:
    import dkim

    return bool(dkim.verify(sample, dnsfunc=lambda _name, **_options: record.encode()))


def _padded(rendered: Any, kib: float) -> Any:
    """*rendered* with its HTML grown to about *kib* KiB by paragraphs of ordinary text."""
    paragraph = "<p>Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do. </p>\n"
    missing = max(int(kib * 1024) - len(rendered.html.encode()) - len(rendered.text.encode()), 0)
    filler = paragraph * (missing // len(paragraph))
    return replace(rendered, html=rendered.html.replace("</body>", filler + "</body>", 1))


def _signed_site(base: Path, target: Path, port: int, pem: bytes | None) -> Path:
    delivery = digest_bench.smtp_delivery(port) + (
        '\n[bounces]\naddress = "bounces@meridian.example"\n'
    )
    if pem is not None:
        delivery += (
            '\n[delivery.dkim]\ndomain = "meridian.example"\nselector = "bench"\n'
            'private_key = "dkim.pem"\n'
        )
    folder = digest_bench.copy_site(base, target, delivery)
    if pem is not None:
        key = folder / "dkim.pem"
        key.write_bytes(pem)
        key.chmod(0o600)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description="DKIM signing benchmark.")
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--dkimpy", type=int, default=200, help="messages signed by dkimpy")
    parser.add_argument("--runs", type=int, default=3, help="compose runs of each kind")
    parser.add_argument("--kib", type=float, default=80, help="message size to pad to")
    args = parser.parse_args()

    from publisher.config import load_config
    from publisher.mail import signing

    began = time.perf_counter()
    load_before = digest_bench.machine_load()
    work = Path(tempfile.mkdtemp(prefix="dkim-bench-"))
    count = args.subscribers
    sink = None
    try:
        base = work / "base"
        digest_bench.build_site(base, count)
        site = load_config(base / "publisher.toml")
        _cold, _warm, rendered, _articles = digest_bench.measure_render(site)
        rendered = _padded(rendered, args.kib)
        keys = _keys()

        plain, size, _sample = measure_compose(site, rendered, None, args.runs)
        signed = {}
        for algorithm, (key, record, _private) in keys.items():
            rate, _size, sample = measure_compose(site, rendered, key, args.runs)
            if not _verify(sample, record):
                message = f"{algorithm}: the sample does not verify with dkimpy"
                raise SystemExit(message)
            signed[algorithm] = (rate, sample)
        dkimpy_rates = measure_dkimpy(signed["rsa-sha256"][1], keys, args.dkimpy)

        sink = digest_bench.Sink()
        message = work / "signed.eml"
        message.write_bytes(signed["rsa-sha256"][1])
        bare = digest_bench.run_child("bare", str(sink.port), str(message), str(count))
        pem = signing.private_pem(keys["rsa-sha256"][2])
        sends = {}
        for name, key_pem in (("unsigned", None), ("rsa", pem)):
            folder = _signed_site(base, work / f"smtp-{name}", sink.port, key_pem)
            sent = digest_bench.run_child("send", str(folder))
            if sent["sent"] != count:
                message = f"send_digests sent {sent['sent']} of {count}: {sent}"
                raise SystemExit(message)
            sends[name] = sent["sent"] / sent["loop_seconds"]
    finally:
        if sink is not None:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)

    smtp_bare = bare["sent"] / bare["seconds"]
    print(
        f"DKIM benchmark, N = {count:,} subscribers, messages of {size / 1024:.1f} KiB; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{datetime.now().date().isoformat()}"
    )
    print(f"machine at start: {load_before}; at end: {digest_bench.machine_load()}")
    rows = [
        ("dkimpy sign, RSA 2048 (per message)", dkimpy_rates["rsa-sha256"]),
        ("dkimpy sign, Ed25519 (per message)", dkimpy_rates["ed25519-sha256"]),
        ("compose only (VERP, unsigned)", plain),
        ("compose + sign, RSA 2048", signed["rsa-sha256"][0]),
        ("compose + sign, Ed25519", signed["ed25519-sha256"][0]),
        ("SMTP to the local sink, bare smtplib, 1 connection", smtp_bare),
        ("SMTP: digest send, ledger, unsigned (26 KiB), 1 connection", sends["unsigned"]),
        ("SMTP: digest send, ledger, RSA 2048 (26 KiB), 1 connection", sends["rsa"]),
    ]
    for name, rate in rows:
        print(f"  {name:<60} {rate:>10,.0f} messages/s  ({1000 / rate:.3f} ms each)")
    slowest = min(signed["rsa-sha256"][0], signed["ed25519-sha256"][0])
    verdict = "met" if slowest > smtp_bare else "NOT met"
    print(
        f"- compose + sign (slowest, {slowest:,.0f}/s) above the SMTP rate "
        f"({smtp_bare:,.0f}/s): {verdict}"
    )
    print(f"total benchmark time {time.perf_counter() - began:.0f} s")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
