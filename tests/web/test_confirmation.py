"""web.confirmation: the sign-up's one message, and a failure to send it."""

from __future__ import annotations

import logging
import re

import httpx
from support.dkimcheck import dkim_table, dkimpy_verifies, make_key
from support.fetches import foreign_fetches
from support.web import (
    PageParts,
    confirmation_link,
    confirmations_sent,
    query_rows,
    sign_up,
    subscriber_statuses,
)
from support.web_server import WebServer

from publisher.config import load_config
from publisher.pipelines import build


def test_the_confirmation_fetches_nothing_from_third_parties(built, client):
    assert sign_up(client, built, "ada@example.org").status_code == 200
    (message,) = confirmations_sent(built)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert confirmation_link(message) in PageParts(html).links
    assert foreign_fetches(html, built.base_url) == []
    assert "@import" not in html
    assert "fonts.googleapis" not in html
    assert re.fullmatch(r"<confirm-[0-9a-f]{16}@gazette\.example>", str(message["Message-ID"]))


def test_a_confirmation_that_cannot_be_sent_gets_503(built, client, caplog):
    # The outbox cannot take the message: the visitor is asked to come back, the operator told why.
    caplog.set_level(logging.INFO, logger="publisher.web")
    built.delivery.outbox_dir.mkdir(parents=True, exist_ok=True)
    (built.delivery.outbox_dir / "confirmations").write_text("not a folder", encoding="utf-8")
    response = sign_up(client, built, "ada@example.org")
    assert response.status_code == 503
    assert "Please try again later" in response.text
    assert "We could not send the confirmation message just now." in response.text
    errors = [
        record.getMessage()
        for record in caplog.records
        if record.name == "publisher.web" and record.levelno == logging.ERROR
    ]
    assert len(errors) == 1, errors
    assert re.fullmatch(
        r"confirmation to ada@example\.org not sent: the outbox \(\S+\): transient: "
        r"cannot write \d{8}-\d{6}-[0-9a-f]{16}\.eml: File exists",
        errors[0],
    ), errors[0]
    assert subscriber_statuses(built) == {}
    assert query_rows(built, "SELECT email, confirmed_at FROM signups") == [
        ("ada@example.org", None)
    ]


def test_a_confirmation_over_http_is_signed_and_bounces_to_the_plain_address(site_dir, now, clock):
    key, record = make_key(site_dir, "ed25519-sha256")
    config = site_dir / "publisher.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + dkim_table(key.name, "ed25519-sha256")
        + '\n[bounces]\naddress = "bounces@gazette.example"\n',
        encoding="utf-8",
    )
    site = load_config(config)
    build.build(site, now=now)
    with WebServer(site, now=clock) as server, httpx.Client(base_url=server.origin) as http:
        assert sign_up(http, site, "ada@example.org").status_code == 200
    (path,) = (site.delivery.outbox_dir / "confirmations").glob("*.eml")
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <bounces@gazette.example>\r\nDKIM-Signature: ")
    assert dkimpy_verifies(data, record)
