"""publisher.tokens: the site secret, unsubscribe tokens and suppression keys."""

from __future__ import annotations

import logging
import stat
import threading

import pytest
from support.subscribers import OTHER_SECRET, SECRET, make_subscriber

from publisher.errors import SubscriberError
from publisher.tokens import (
    bounce_address,
    bounce_token,
    check_token,
    load_secret,
    make_token,
    parse_token,
    read_bounce_token,
    suppression_key,
    token_in_address,
)

pytestmark = pytest.mark.usefixtures("no_env_secret")

# -- the secret ------------------------------------------------------------------


def test_secret_file_is_created_once_with_mode_0600(tmp_path):
    state_dir = tmp_path / "state" / "nested"
    secret = load_secret(state_dir)
    path = state_dir / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="ascii")
    assert len(text.strip()) == 64
    assert bytes.fromhex(text.strip()) == secret
    assert len(secret) == 32
    assert load_secret(state_dir) == secret
    assert path.read_text(encoding="ascii") == text
    assert sorted(p.name for p in state_dir.iterdir()) == ["secret"]  # no temp file left


def test_secret_created_by_racing_threads_is_one_secret(tmp_path):
    barrier = threading.Barrier(8)
    results: list[bytes] = []

    def load() -> None:
        barrier.wait()
        results.append(load_secret(tmp_path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_secret_readable_by_others_is_fixed_with_a_warning(tmp_path, caplog):
    secret = load_secret(tmp_path)
    path = tmp_path / "secret"
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="publisher.mail.subscribers"):
        assert load_secret(tmp_path) == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert caplog.messages == [f"{path}: was readable by others (mode 0644); changed it to 0600"]


def test_corrupt_secret_file(tmp_path):
    (tmp_path / "secret").write_text("not hex\n", encoding="ascii")
    (tmp_path / "secret").chmod(0o600)
    with pytest.raises(SubscriberError) as caught:
        load_secret(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'secret'}: not a valid secret (expected 64 hexadecimal characters); "
        "restore it from a backup, or delete it to make a new one "
        "(links already sent then stop working)"
    )


def test_environment_secret_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "correct horse battery staple")
    assert load_secret(tmp_path / "state") == b"correct horse battery staple"
    assert not (tmp_path / "state").exists()


def test_empty_environment_secret_falls_back_to_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "")
    secret = load_secret(tmp_path)
    assert (tmp_path / "secret").read_text(encoding="ascii").strip() == secret.hex()


def test_short_environment_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "hunter2")
    with pytest.raises(SubscriberError) as caught:
        load_secret(tmp_path)
    assert str(caught.value) == (
        "PUBLISHER_SECRET: must be at least 16 characters long (it has 7); make one with: "
        "python -c 'import secrets; print(secrets.token_hex(32))'"
    )
    assert not (tmp_path / "secret").exists()


# -- tokens and suppression keys -------------------------------------------------


def test_token_shape_and_check(store, now):
    ada = make_subscriber(store, "ada@example.org", now=now)
    token = make_token(SECRET, ada.id, ada.email)
    subscriber_id, mac = parse_token(token)
    assert token == f"{ada.id}.{mac}"
    assert subscriber_id == ada.id
    assert len(mac) == 43
    assert set(mac) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert make_token(SECRET, ada.id, ada.email) == token  # deterministic
    assert check_token(SECRET, token, ada)
    assert not check_token(OTHER_SECRET, token, ada)
    assert not check_token(SECRET, token[:-1], ada)
    grace = make_subscriber(store, "grace@example.org", now=now)
    assert not check_token(SECRET, token, grace)
    assert not check_token(SECRET, make_token(SECRET, ada.id, grace.email), ada)


@pytest.mark.parametrize(
    "token", ["", "1", "1.", "x.abc", "1." + "A" * 42, "1." + "A" * 44, "1." + "A" * 198]
)
def test_parse_token_rejects_malformed(token):
    with pytest.raises(SubscriberError) as caught:
        parse_token(token)
    assert str(caught.value) == "TOKEN: not a valid unsubscribe token"


def test_suppression_key_is_a_keyed_hash_of_the_address_in_any_case():
    key = suppression_key(SECRET, "Ada@example.org")
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")
    assert suppression_key(SECRET, "ADA@EXAMPLE.ORG") == key
    assert suppression_key(OTHER_SECRET, "Ada@example.org") != key
    assert suppression_key(SECRET, "bo@example.org") != key
    # Not the unsubscribe MAC's message: one secret, two separate uses.
    assert key != make_token(SECRET, 1, "ada@example.org").split(".")[1]


def test_bounce_token_round_trip_and_address_length():
    secret = b"k" * 32
    token = bounce_token(secret, 12, 345)
    assert read_bounce_token(secret, token) == (12, 345)
    assert read_bounce_token(secret, token.upper()) == (12, 345)  # relays fold case
    address = bounce_address(
        "bounces@meridian.example", bounce_token(secret, 10**15 - 1, 10**15 - 1)
    )
    assert len(address.partition("@")[0]) <= 64  # RFC 5321 §4.5.3.1.1
    assert token_in_address("bounces@meridian.example", f"<{address.upper()}>") is not None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "12.345",
        "12.345.",
        "x.345.0123456789abcdef0123",
        "012.345.0123456789abcdef0123",
        "1.2.3",
    ],
)
def test_read_bounce_token_rejects_malformed(token):
    assert read_bounce_token(b"k" * 32, token) is None


def test_bounce_token_is_unforgeable():
    secret = b"k" * 32
    digest, _subscriber, mac = bounce_token(secret, 12, 345).split(".")
    assert read_bounce_token(secret, f"{digest}.346.{mac}") is None  # another subscriber
    assert read_bounce_token(b"o" * 32, bounce_token(secret, 12, 345)) is None  # another secret
    assert read_bounce_token(secret, make_token(secret, 345, "a@b.example")) is None


def test_token_in_address():
    base = "bounces@meridian.example"
    assert token_in_address(base, "bounces+1.2.abc@Meridian.Example") == "1.2.abc"
    assert token_in_address(base, "bounces@meridian.example") is None
    assert token_in_address(base, "bounces+@meridian.example") is None
    assert token_in_address(base, "other+1.2.abc@meridian.example") is None
    assert token_in_address(base, "bounces+1.2.abc@evil.example") is None
