"""web.handlers: sign-up, confirmation, unsubscribe and the digest archive.

Over real HTTP. Assertions stay on status codes, page titles, database rows and outbox files,
not on the pages' markup.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from support.mailing import add_subscribers
from support.paths import SITES
from support.web import (
    BAD_LINK,
    BAD_UNSUBSCRIBE,
    CHECK_INBOX,
    FORM,
    ONE_CLICK,
    READERS,
    SUBSCRIBED,
    UNSUBSCRIBED,
    PageParts,
    assert_nothing_stored,
    base_path,
    confirmation_link,
    confirmations_sent,
    digest_links,
    feeds_path,
    forged,
    link_token,
    local_path,
    new_article,
    pending_link,
    press,
    query_rows,
    read_messages,
    recipient_addresses,
    sign_up,
    subscriber_statuses,
    unsubscribe_form,
    unsubscribe_path,
    visible_text,
)
from support.web_server import WebServer

from publisher import tokens
from publisher.config import load_config
from publisher.pipelines import digests
from publisher.store import Store

# -- sign-up ---------------------------------------------------------------------------


def test_signup_confirm_and_the_next_digest_reaches_the_new_subscriber(built, client, clock):
    response = client.post(
        base_path(built) + "subscribe", data={"email": "ada@example.org", "name": "Ada"}
    )
    assert response.status_code == 200
    assert CHECK_INBOX in response.text
    assert subscriber_statuses(built) == {}  # pending until confirmed
    (message,) = confirmations_sent(built)
    assert recipient_addresses([message]) == ["ada@example.org"]
    link = confirmation_link(message)
    assert link.startswith(built.base_url + "confirm?token=")
    assert link_token(link)

    confirmed = press(client, link)
    assert confirmed.status_code == 200
    assert SUBSCRIBED in confirmed.text
    assert subscriber_statuses(built) == {"ada@example.org": "active"}
    assert query_rows(built, "SELECT name FROM subscribers") == [("Ada",)]
    assert query_rows(built, "SELECT confirmed_at FROM signups") == [(clock().isoformat(),)]
    # Opening the link again (or a scanner's visit) says so; a second POST changes nothing.
    again = client.get(local_path(link))
    assert again.status_code == 200
    assert SUBSCRIBED in again.text
    assert PageParts(again.text).buttons == 0
    twice = client.post(local_path(link), content=b"", headers={"Content-Type": FORM})
    assert twice.status_code == 200
    assert SUBSCRIBED in twice.text
    assert subscriber_statuses(built) == {"ada@example.org": "active"}

    report = digests.send_digests(built, now=clock)
    assert (report.made, report.sent) == ([1], 1)
    digest = read_messages(built.delivery.outbox_dir / "digest-0001")
    assert recipient_addresses(digest) == ["ada@example.org"]


def test_the_answer_never_reveals_whether_an_address_is_known(built, client, now):
    add_subscribers(built, ["bo@example.org"], now)
    new = sign_up(client, built, "ada@example.org")
    active = sign_up(client, built, "bo@example.org")
    active_in_capitals = sign_up(client, built, "BO@example.org")
    pending = sign_up(client, built, "ada@example.org")
    for response in (active, active_in_capitals, pending):
        assert response.status_code == new.status_code == 200
        assert visible_text(response.text) == visible_text(new.text)
    assert CHECK_INBOX in new.text
    # The active address got nothing; the pending one a second link (up to 3 a day).
    assert recipient_addresses(confirmations_sent(built)) == ["ada@example.org", "ada@example.org"]
    assert query_rows(built, "SELECT email FROM signups") == [("ada@example.org",)]
    assert subscriber_statuses(built) == {"bo@example.org": "active"}


def test_an_address_gets_at_most_three_confirmations_a_day(built, client, clock):
    answers = [sign_up(client, built, "ada@example.org") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert all(CHECK_INBOX in a.text for a in answers)
    assert len(confirmations_sent(built)) == 3
    clock.now += timedelta(hours=25)  # the window has passed
    assert sign_up(client, built, "ada@example.org").status_code == 200
    assert len(confirmations_sent(built)) == 4


def test_a_filled_honeypot_is_answered_politely_and_ignored(built, client):
    response = client.post(
        base_path(built) + "subscribe",
        data={"email": "bot@example.org", "name": "", "website": "https://spam.example/"},
    )
    assert response.status_code == 200
    assert CHECK_INBOX in response.text
    assert_nothing_stored(built)


@pytest.mark.sqlite_only
def test_a_slow_database_does_not_stall_other_requests(built, client, monkeypatch):
    # `publisher run` holding the write lock: the sign-up waits, feeds do not.
    lock = sqlite3.connect(built.state_db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    # Told when the sign-up begins its transaction: from there it waits on the lock.
    waiting_for_lock = threading.Event()
    transaction = Store.transaction

    def announced(store: Store) -> AbstractContextManager[None]:
        waiting_for_lock.set()
        return transaction(store)

    monkeypatch.setattr(Store, "transaction", announced)
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                str(client.base_url.join(base_path(built) + "subscribe")),
                data={"email": "ada@example.org"},
                timeout=20,
            )
        )
    )
    waiting.start()
    try:
        assert waiting_for_lock.wait(10), "the sign-up never reached the database"
        started = time.monotonic()
        feed = client.get(feeds_path(built) + "rss.xml", timeout=5)
        assert feed.status_code == 200
        assert time.monotonic() - started < 2
        assert answers == []  # still waiting for the lock
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        waiting.join(20)
    assert [a.status_code for a in answers] == [200]
    assert recipient_addresses(confirmations_sent(built)) == ["ada@example.org"]


# -- confirmation links ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spoil",
    [
        forged,
        lambda token: token[:-5],
        lambda token: token.split(".", 1)[1],
        lambda token: "2." + token.split(".", 1)[1],  # another sign-up's id
        lambda token: token.rsplit(".", 1)[0] + ".",
        lambda _token: "",
        lambda _token: "x" * 5000,
    ],
    ids=["changed-mac", "truncated", "no-id", "other-id", "no-mac", "empty", "long"],
)
def test_spoiled_confirmation_links_get_400_and_activate_nothing(built, client, spoil):
    link = pending_link(client, built, "ada@example.org")
    bad = spoil(link_token(link))
    response = client.get(base_path(built) + "confirm", params={"token": bad})
    assert response.status_code == 400
    assert BAD_LINK in response.text
    assert "not valid" in response.text
    assert subscriber_statuses(built) == {}
    assert query_rows(built, "SELECT email FROM signups") == [("ada@example.org",)]
    assert SUBSCRIBED in press(client, link).text  # the real link still works
    assert subscriber_statuses(built) == {"ada@example.org": "active"}


def test_following_the_link_changes_nothing_until_the_button_is_pressed(built, client, clock):
    link = pending_link(client, built, "ada@example.org")
    # A link scanner: GET and HEAD, any number of times.
    for _ in range(2):
        shown = client.get(local_path(link))
        assert shown.status_code == 200
        assert "Confirm your subscription" in shown.text
        assert "ada@example.org" in shown.text
        assert PageParts(shown.text).buttons == 1
        head = client.head(local_path(link))
        assert head.status_code == 200
        assert head.content == b""
    assert subscriber_statuses(built) == {}
    assert query_rows(built, "SELECT confirmed_at FROM signups") == [(None,)]

    done = press(client, link)
    assert done.status_code == 200
    assert SUBSCRIBED in done.text
    assert subscriber_statuses(built) == {"ada@example.org": "active"}
    assert query_rows(built, "SELECT confirmed_at FROM signups") == [(clock().isoformat(),)]


@pytest.mark.parametrize(
    "spoil",
    [forged, lambda token: token[:-5], lambda _token: "", lambda token: token + "x"],
    ids=["changed-mac", "truncated", "empty", "long"],
)
def test_a_spoiled_token_on_post_gets_400_and_changes_nothing(built, client, spoil):
    link = pending_link(client, built, "ada@example.org")
    response = client.post(
        base_path(built) + "confirm",
        params={"token": spoil(link_token(link))},
        content=b"",
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 400
    assert BAD_LINK in response.text
    assert "not valid" in response.text
    assert subscriber_statuses(built) == {}
    assert query_rows(built, "SELECT confirmed_at FROM signups") == [(None,)]


def test_confirmation_links_expire_after_48_hours(built, client, clock, now):
    link = pending_link(client, built, "ada@example.org")
    clock.now = now + timedelta(hours=49)
    shown = client.get(local_path(link))
    pressed = client.post(local_path(link), content=b"", headers={"Content-Type": FORM})
    for response in (shown, pressed):
        assert response.status_code == 400
        assert BAD_LINK in response.text
        assert "expired" in response.text
    assert subscriber_statuses(built) == {}


def test_a_link_is_still_good_after_47_hours(built, client, clock, now):
    link = pending_link(client, built, "ada@example.org")
    clock.now = now + timedelta(hours=47)
    response = press(client, link)
    assert response.status_code == 200
    assert SUBSCRIBED in response.text


def test_a_confirmation_link_from_another_site_gets_400(built, clock, tmp_path, monkeypatch):
    # Another site: its own copy, its own secret, the same address pending (id 1 too).
    monkeypatch.setenv(tokens.SECRET_ENV, "another-site-secret-" + "a" * 20)
    other = load_config(shutil.copytree(SITES / "basic", tmp_path / "other") / "publisher.toml")
    with WebServer(other, now=clock) as server, httpx.Client(base_url=server.origin) as client:
        foreign = pending_link(client, other, "ada@example.org")
    monkeypatch.setenv(tokens.SECRET_ENV, "this-site-secret-" + "b" * 20)
    with WebServer(built, now=clock) as server, httpx.Client(base_url=server.origin) as client:
        own = pending_link(client, built, "ada@example.org")
        assert link_token(own).split(".")[0] == link_token(foreign).split(".")[0] == "1"
        for response in (
            client.get(local_path(foreign)),
            client.post(local_path(foreign), content=b"", headers={"Content-Type": FORM}),
        ):
            assert response.status_code == 400
            assert BAD_LINK in response.text
        assert subscriber_statuses(built) == {}
        assert SUBSCRIBED in press(client, own).text
    assert subscriber_statuses(built) == {"ada@example.org": "active"}


# -- unsubscribe -----------------------------------------------------------------------


def test_one_click_unsubscribes_exactly_that_subscriber(built, client, mailed, clock, now):
    link = mailed["bo@example.org"]
    assert urlsplit(link).path == unsubscribe_path(built) == "/news/unsubscribe"

    shown = client.get(local_path(link))
    assert shown.status_code == 200
    assert "Unsubscribe" in shown.text
    form = unsubscribe_form(shown.text, link)
    assert (form.get("method") or "").lower() == "post"
    assert PageParts(shown.text).buttons >= 1
    assert (
        subscriber_statuses(built)["bo@example.org"] == "active"
    )  # showing the page changes nothing

    for _ in range(2):  # a second POST (a retrying provider) is still fine
        done = client.post(local_path(link), content=ONE_CLICK, headers={"Content-Type": FORM})
        assert done.status_code == 200
        assert UNSUBSCRIBED in done.text
    assert subscriber_statuses(built) == {
        "ada@example.org": "active",
        "bo@example.org": "unsubscribed",
        "cy@example.org": "active",
    }

    new_article(built)
    clock.now = now + timedelta(hours=2)
    report = digests.send_digests(built, now=clock)
    assert (report.made, report.sent) == ([2], 2)
    second = read_messages(built.delivery.outbox_dir / "digest-0002")
    assert recipient_addresses(second) == ["ada@example.org", "cy@example.org"]


def test_the_unsubscribe_button_works(built, client, mailed):
    shown = client.get(local_path(mailed["cy@example.org"]))
    form = unsubscribe_form(shown.text, mailed["cy@example.org"])
    action = form.get("action") or local_path(mailed["cy@example.org"])  # none: this same URL
    # What a browser sends for a form with only a button: an empty urlencoded body.
    done = client.post(action, content=b"", headers={"Content-Type": FORM})
    assert done.status_code == 200
    assert UNSUBSCRIBED in done.text
    assert subscriber_statuses(built)["cy@example.org"] == "unsubscribed"
    assert subscriber_statuses(built)["ada@example.org"] == "active"


def test_an_unsubscribe_on_the_web_outlives_remove_and_an_old_list(
    built, client, mailed, runner, tmp_path
):
    from publisher.cli import cli

    done = client.post(
        local_path(mailed["bo@example.org"]), content=ONE_CLICK, headers={"Content-Type": FORM}
    )
    assert UNSUBSCRIBED in done.text
    config = ["--config", str(built.config_path)]
    removed = runner.invoke(cli, [*config, "subscribers", "remove", "bo@example.org"])
    assert (removed.exit_code, removed.stdout) == (0, "removed bo@example.org\n")
    old_list = tmp_path / "last-year.csv"
    old_list.write_text("email\n" + "\n".join(READERS) + "\n", encoding="utf-8")
    imported = runner.invoke(cli, [*config, "subscribers", "import", str(old_list)])
    assert (imported.exit_code, imported.stderr) == (
        0,
        f"warning: {old_list}:3: bo@example.org asked not to receive the digest; skipped\n",
    )
    assert subscriber_statuses(built) == {"ada@example.org": "active", "cy@example.org": "active"}
    (reason,) = query_rows(built, "SELECT reason FROM suppressions")
    assert reason == ("unsubscribed",)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "spoil",
    [
        forged,
        lambda token: token[:-5],
        lambda token: token.split(".", 1)[0],
        lambda token: "2." + token.split(".", 1)[1],  # another subscriber's id
        lambda token: "99." + token.split(".", 1)[1],  # nobody's id
        lambda _token: tokens.make_token(b"another site's secret!!", 1, "ada@example.org"),
        lambda _token: "",
        lambda token: token + "x",
    ],
    ids=[
        "changed-mac",
        "truncated",
        "id-only",
        "other-id",
        "unknown-id",
        "foreign",
        "empty",
        "long",
    ],
)
def test_spoiled_unsubscribe_links_get_400_and_change_nothing(shared, method, spoil):
    site, client = shared.site, shared.client
    mailed = shared.links
    token = link_token(mailed["ada@example.org"])
    assert token.startswith("1.")
    bad = spoil(token)
    response = client.request(
        method,
        unsubscribe_path(site),
        params={"token": bad},
        content=ONE_CLICK if method == "POST" else None,
        headers={"Content-Type": FORM} if method == "POST" else None,
    )
    assert response.status_code == 400
    assert BAD_UNSUBSCRIBE in response.text
    assert set(subscriber_statuses(site).values()) == {"active"}


def test_an_unsubscribe_without_a_token_gets_400(shared):
    site, client = shared.site, shared.client
    for method in ("GET", "POST"):
        response = client.request(method, unsubscribe_path(site))
        assert response.status_code == 400
        assert BAD_UNSUBSCRIBE in response.text
    assert set(subscriber_statuses(site).values()) == {"active"}


# -- digest archive ----------------------------------------------------------------------


def test_the_archive_lists_digests_and_their_web_copies_hold_no_subscriber_data(
    built, client, mailed, clock, now
):
    tokens = {link_token(link) for link in mailed.values()}
    new_article(built)
    clock.now = now + timedelta(hours=2)
    assert digests.send_digests(built, now=clock).made == [2]

    archive = client.get(base_path(built) + "digests/")
    assert archive.status_code == 200
    assert "Past digests" in archive.text
    links = digest_links(archive.text)
    assert links == [base_path(built) + "digests/2/", base_path(built) + "digests/1/"]

    for number, link in ((1, links[1]), (2, links[0])):
        copy = client.get(local_path(link))
        assert copy.status_code == 200
        assert copy.headers["content-type"] == "text/html; charset=utf-8"
        assert (
            copy.content == (built.site_dir / "digests" / str(number) / "index.html").read_bytes()
        )
        for address in READERS:
            assert address not in copy.text
        for token in tokens:
            assert token not in copy.text
        assert "token=" not in copy.text


def test_an_empty_archive_says_so(built, client):
    archive = client.get(base_path(built) + "digests/")
    assert archive.status_code == 200
    assert "Past digests" in archive.text
    assert digest_links(archive.text) == []
