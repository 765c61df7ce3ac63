"""mail.signing: DKIM signatures equal to dkimpy's forms, verified by dkimpy and OpenDKIM.

The digest path signs from pieces canonicalised once per digest; these tests
prove its body hash is the one dkimpy computes from the whole message, and
that both verifiers accept what it makes, and refuse it once altered.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st
from support.dkimcheck import (
    DOMAIN,
    SELECTOR,
    dkim_table,
    dkimpy_verifies,
    make_key,
    opendkim_result,
    signed_tags,
)

from publisher.config import DkimOptions, load_config
from publisher.errors import ConfigError
from publisher.mail import compose, signing
from publisher.mail.digest import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER
from publisher.model import RenderedDigest, Subscriber

DATE = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
SETTINGS = compose.MailSettings(
    sender="Test Gazette <desk@gazette.example>",
    reply_to="Desk <reply@gazette.example>",
    list_name="Test Gazette",
    list_id="digest.gazette.example",
    unsubscribe_url="https://gazette.example/news/unsubscribe",
    unsubscribe_mailto="unsubscribe@gazette.example",
    preferences_url="https://gazette.example/news/preferences",
)
ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]
READER = Subscriber(42, "lena@example.org", "Lena Hofbauer", "active", DATE)


def _key(tmp_path, algorithm):
    path, record = make_key(tmp_path, algorithm)
    options = DkimOptions(DOMAIN, SELECTOR, path, algorithm)
    return signing.load_key(options, path.read_bytes(), where=path.name), record


def _rendered(text_extra: str = "", html_extra: str = "") -> RenderedDigest:
    html = (
        f"<html><body><p>Hello  \t world   {html_extra}</p>{'<td>wörd  </td> ' * 8000}"
        f'<a href="{PREFERENCES_PLACEHOLDER}">Choose</a> \t '
        f'<a href="{UNSUBSCRIBE_PLACEHOLDER}">Unsubscribe</a>\n\n</body></html>'
    )
    text = (
        f"Hello   world \t\n{text_extra}\nChoose:  {PREFERENCES_PLACEHOLDER} \n"
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n\n\n"
    )
    return RenderedDigest(subject="Test Gazette: 2 new articles", html=html, text=text, web_html="")


def _message(key, rendered=None, subscriber=READER, **settings_changes):
    mail = replace(SETTINGS, dkim=key, **settings_changes)
    template = compose.prepare(7, rendered or _rendered(), mail, date=DATE)
    return compose.personalise(template, subscriber, "42.abc", bounce_token="7.42.0123456789abcdef")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_digest_message_verifies_with_dkimpy_and_opendkim(tmp_path, algorithm):
    key, record = _key(tmp_path, algorithm)
    data = _message(key).data
    assert data.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    assert dkimpy_verifies(data, record)
    assert "verification (s=s2026, d=gazette.example" in opendkim_result(data, record, tmp_path)
    assert opendkim_result(data, record, tmp_path).endswith("succeeded")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Hello   world", b"Hullo   world"),  # the text part
        (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Clicks"),
        (b"token=42.abc>", b"token=43.abc>"),  # List-Unsubscribe, signed per recipient
        (b"\r\nSubject: Test", b"\r\nSubject: Tost"),
    ],
)
def test_a_message_altered_after_signing_fails_both_verifiers(tmp_path, algorithm, old, new):
    key, record = _key(tmp_path, algorithm)
    data = _message(key).data
    assert old in data
    altered = data.replace(old, new, 1)
    assert not dkimpy_verifies(altered, record)
    assert "failed" in opendkim_result(altered, record, tmp_path)


def test_h_lists_exactly_the_signed_fields_the_message_has(tmp_path):
    key, _record = _key(tmp_path, "ed25519-sha256")
    tags = signed_tags(_message(key).data)
    assert tags["h"].split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    ]
    assert (tags["c"], tags["d"], tags["s"], tags["t"]) == (
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
        str(int(DATE.timestamp())),
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_signature_field_is_folded_at_78(tmp_path, algorithm):
    key, _record = _key(tmp_path, algorithm)
    data = _message(key).data
    head = data.split(b"\r\n\r\n", 1)[0]
    signature = re.match(rb"DKIM-Signature:.*?\r\n(?=\S)", head, re.DOTALL)
    assert signature is not None
    lines = signature.group(0).split(b"\r\n")[:-1]
    assert len(lines) > 2
    assert all(len(line) <= 78 for line in lines), [len(line) for line in lines]
    assert all(len(line) < 998 for line in head.split(b"\r\n"))


def test_same_message_same_time_same_bytes(tmp_path):
    key, _record = _key(tmp_path, "rsa-sha256")
    assert _message(key).data == _message(key).data


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_digest_path_equals_the_whole_message_path(tmp_path, algorithm):
    """Signing from the pieces gives the bytes signing the finished message gives."""
    key, _record = _key(tmp_path, algorithm)
    signed = _message(key).data
    unsigned = _message(None).data
    assert signed == signing.sign_message(key, unsigned, timestamp=int(DATE.timestamp()))


_LINE_TEXT = st.lists(
    st.sampled_from([*'ab é—\t=.<>&"', "  ", "\n", "\n\n", "  \n", "\t\n"]), max_size=80
).map("".join)


@settings(max_examples=60, deadline=None)
@given(text_extra=_LINE_TEXT, html_extra=_LINE_TEXT)
def test_the_body_hash_is_dkimpys_for_any_body(text_extra, html_extra):
    key = signing.DkimKey(DOMAIN, SELECTOR, "ed25519-sha256", _ED25519)
    data = _message(key, _rendered(text_extra, html_extra)).data
    body = data.split(b"\r\n\r\n", 1)[1]
    expected = base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest())
    assert signed_tags(data)["bh"] == expected.decode()


@settings(max_examples=200, deadline=None)
@given(
    body=st.lists(st.text(alphabet=st.sampled_from(list("a \t=")), max_size=12), max_size=8).map(
        lambda lines: "\r\n".join(lines).encode()
    ),
    ending=st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b" \r\n\t\r\n"]),
)
def test_canonical_body_is_dkimpys(body, ending):
    assert signing.canonical_body(body + ending) == Relaxed.canonicalize_body(body + ending)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", b" =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n =?utf-8?q?_aus?= Wien  "),
        ("To", b"\t Lena   Hofbauer <lena@example.org>"),
        ("List-Unsubscribe", b" <https://x.example/u?token=1.a>,\r\n <mailto:u@x.example>"),
    ],
)
def test_canonical_header_is_dkimpys(name, value):
    ((expected_name, expected_value),) = Relaxed.canonicalize_headers([(name.encode(), value)])
    assert signing.canonical_header(name, value) == expected_name + b":" + expected_value


def test_a_confirmation_is_signed_too(tmp_path):
    key, record = _key(tmp_path, "rsa-sha256")
    message = compose.compose_single(
        "Test Gazette <desk@gazette.example>",
        "new@example.org",
        "Confirm your subscription to Test Gazette",
        text="Confirm:  https://gazette.example/news/confirm?token=x\n",
        html="<p>Confirm</p>\n",
        message_id="<confirm-1@gazette.example>",
        date=DATE,
        outbox_name="confirmations/1.eml",
        dkim=key,
        bounce_address="bounces@gazette.example",
    )
    assert dkimpy_verifies(message.data, record)
    assert opendkim_result(message.data, record, tmp_path).endswith("succeeded")
    assert (
        signed_tags(message.data)["h"]
        == "from:to:subject:date:message-id:mime-version:content-type"
    )
    # A visitor is no subscriber yet: no delivery to name, the plain bounce address.
    assert message.sender == "bounces@gazette.example"
    assert b"X-Publisher-Delivery" not in message.data


# -- keys --------------------------------------------------------------------------


def _site(site_dir, table: str):
    config = site_dir / "publisher.toml"
    config.write_text(config.read_text(encoding="utf-8") + table, encoding="utf-8")
    return load_config(config)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_key_from_the_environment_when_the_file_is_not_named(tmp_path, algorithm):
    key_path, record = make_key(tmp_path, algorithm)
    site = _site(_copy_basic(tmp_path), dkim_table(None, algorithm))
    key = signing.site_key(site, {signing.KEY_VARIABLE: key_path.read_text()})
    assert key is not None
    assert dkimpy_verifies(_message(key).data, record)
    # Pasted into an environment file with its line breaks as "\n": read the same.
    escaped = key_path.read_text().replace("\n", "\\n")
    again = signing.site_key(site, {signing.KEY_VARIABLE: escaped})
    assert again is not None
    assert dkimpy_verifies(_message(again).data, record)


def _copy_basic(tmp_path):
    import shutil
    from pathlib import Path

    target = tmp_path / "site"
    shutil.copytree(Path(__file__).parents[1] / "sites" / "basic", target)
    return target


def _bad_key(site_dir, case):
    """Make the key file *case* describes; return its [delivery.dkim] algorithm."""
    path = site_dir / "dkim.pem"
    if case == "open":
        make_key(site_dir, "rsa-sha256")
        path.chmod(0o644)
    elif case == "not pem":
        path.write_text("p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n")
        path.chmod(0o600)
    elif case == "ed25519 for rsa":
        make_key(site_dir, "ed25519-sha256")
    elif case == "rsa for ed25519":
        make_key(site_dir, "rsa-sha256")
        return "ed25519-sha256"
    return "rsa-sha256"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "open",
            "dkim.pem: the DKIM private key is open to group or others (mode 0644); "
            "make it private with: chmod 600 dkim.pem",
        ),
        (
            "not pem",
            "dkim.pem: not a PEM private key (expected a '-----BEGIN PRIVATE KEY-----' block, "
            "as `publisher dkim keygen` writes)",
        ),
        (
            "ed25519 for rsa",
            "dkim.pem: a private key of type Ed25519, but [delivery.dkim] algorithm "
            "'rsa-sha256' needs an RSA key (or set algorithm = 'ed25519-sha256' if the DNS "
            "record has that key)",
        ),
        (
            "rsa for ed25519",
            "dkim.pem: a private key of type RSA, but [delivery.dkim] algorithm "
            "'ed25519-sha256' needs an Ed25519 key (or set algorithm = 'rsa-sha256' if the "
            "DNS record has that key)",
        ),
        ("missing", "dkim.pem: cannot read the DKIM private key (No such file or directory)"),
    ],
)
def test_a_bad_key_is_a_config_error(tmp_path, case, message):
    site_dir = _copy_basic(tmp_path)
    algorithm = _bad_key(site_dir, case)
    site = _site(site_dir, dkim_table("dkim.pem", algorithm))
    with pytest.raises(ConfigError) as raised:
        signing.site_key(site, {})
    assert str(raised.value) == message
    assert raised.value.exit_code == 2


def test_neither_file_nor_environment_is_a_config_error(tmp_path):
    site = _site(_copy_basic(tmp_path), dkim_table(None))
    with pytest.raises(ConfigError) as raised:
        signing.site_key(site, {"PUBLISHER_DKIM_PRIVATE_KEY": "  "})
    assert str(raised.value) == (
        f"{site.display_path}: [delivery.dkim] private_key: missing; give the key file's "
        "path, or set PUBLISHER_DKIM_PRIVATE_KEY to the key's PEM text"
    )


def test_a_bad_key_in_the_environment_names_the_variable(tmp_path):
    site = _site(_copy_basic(tmp_path), dkim_table(None))
    with pytest.raises(ConfigError) as raised:
        signing.site_key(site, {signing.KEY_VARIABLE: "-----BEGIN PRIVATE KEY-----\nxx\n"})
    assert str(raised.value).startswith("PUBLISHER_DKIM_PRIVATE_KEY: not a PEM private key")


def test_no_table_no_key(site):
    assert signing.site_key(site, dict(os.environ)) is None


def test_txt_strings_are_at_most_255_octets(tmp_path):
    _path, record = make_key(tmp_path, "rsa-sha256")
    parts = signing.txt_strings(record)
    assert len(record) > 255
    assert [len(p) for p in parts[:-1]] == [255] * (len(parts) - 1)
    assert "".join(parts) == record


_ED25519 = signing.generate_key("ed25519-sha256")
