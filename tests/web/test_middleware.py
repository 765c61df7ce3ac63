"""web.middleware: the cap on request bodies and the per-client limit on sign-ups."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from support.mailing import add_subscribers
from support.web import (
    FORM,
    TOO_MANY,
    assert_nothing_stored,
    base_path,
    confirmations_sent,
    query_rows,
    recipient_addresses,
    sign_up,
    subscriber_statuses,
    unsubscribe_path,
)
from support.web_server import WebServer

from publisher import tokens


def test_a_flood_from_one_client_gets_429(built, clock):
    with (
        WebServer(built, now=clock, client_limit=3) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        answers = [sign_up(client, built, f"reader{n}@example.org") for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert TOO_MANY in answers[3].text
        assert answers[3].headers["retry-after"].isdigit()
        assert int(answers[3].headers["retry-after"]) > 0
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a proxy): another reader is not limited.
        other = sign_up(client, built, "other@example.org", **{"X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 200
    recipients = recipient_addresses(confirmations_sent(built))
    assert recipients == sorted(
        ["reader0@example.org", "reader1@example.org", "reader2@example.org", "other@example.org"]
    )
    assert ("reader3@example.org",) not in query_rows(built, "SELECT email FROM signups")


def _padded(size: int) -> bytes:
    return b"email=ada%40example.org&name=" + b"x" * (size - 29)


def test_an_oversized_body_gets_413(built, client):
    declared = client.post(
        base_path(built) + "subscribe", content=_padded(20000), headers={"Content-Type": FORM}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        body = _padded(20000)
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    streamed = client.post(
        base_path(built) + "subscribe", content=chunks(), headers={"Content-Type": FORM}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert_nothing_stored(built)


def test_an_oversized_unsubscribe_body_gets_413(built, client, now):
    add_subscribers(built, ["ada@example.org"], now)
    token = tokens.make_token(tokens.load_secret(built.state_dir), 1, "ada@example.org")
    response = client.post(
        unsubscribe_path(built),
        params={"token": token},
        content=b"List-Unsubscribe=One-Click&x=" + b"x" * 20000,
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 413
    assert subscriber_statuses(built) == {"ada@example.org": "active"}
