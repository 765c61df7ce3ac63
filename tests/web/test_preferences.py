"""The preferences page of `publisher serve`, and the choices on the sign-up form, over HTTP.

A site with three topics and three cadences (support.web.CHOICES); READERS subscribed,
each reaching the page with the token their digests carry. Assertions stay on status
codes, page titles, the form's boxes and buttons, and the rows stored.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from support.web import (
    BAD_CHOICE,
    BAD_PREFERENCES,
    CHECK_INBOX,
    FOREIGN_FORM,
    FORM,
    NOT_SUBSCRIBED,
    PREFERENCES,
    SAVED,
    SUBSCRIBED,
    UNREADABLE,
    UNSUBSCRIBED,
    PageParts,
    assert_nothing_stored,
    base_path,
    confirmation_link,
    confirmations_sent,
    forged,
    local_path,
    personal_token,
    preferences_path,
    press,
    query_rows,
    stored_choices,
    subscriber_statuses,
    unsubscribe_path,
    visible_text,
)

from publisher import tokens
from publisher.config import SiteConfig
from publisher.mail import subscribers
from publisher.store import open_store

ADA = "ada@example.org"
TOPICS = ["diplomacy", "elections", "oceans"]
CADENCES = ["weekly on monday at 07:00", "daily at 07:00", "each article"]
NOTHING_CHOSEN = {address: (None, None) for address in ("ada@example.org", "bo@example.org")}


def _origin(client: httpx.Client) -> str:
    url = urlsplit(str(client.base_url))
    return f"{url.scheme}://{url.netloc}"


def _show(client: httpx.Client, site: SiteConfig, token: str) -> httpx.Response:
    return client.get(preferences_path(site), params={"token": token})


def _save(
    client: httpx.Client,
    site: SiteConfig,
    token: str,
    *,
    topics: list[str] | None = None,
    cadence: str | None = None,
    origin: str | None = "own",
    **more: str,
) -> httpx.Response:
    """POST the page's form as a browser on the page would (its Origin, boxes shown)."""
    data: dict[str, str | list[str]] = {"token": token, "topics_shown": "1", **more}
    if topics:
        data["topic"] = topics
    if cadence is not None:
        data["cadence"] = cadence
    headers = {} if origin is None else {"Origin": _origin(client) if origin == "own" else origin}
    return client.post(preferences_path(site), data=data, headers=headers)


def _events(site: SiteConfig) -> list[tuple[object, ...]]:
    return query_rows(site, "SELECT change, reason, source FROM subscriber_events ORDER BY id")


def _choices_of(site: SiteConfig) -> dict[str, tuple[object, object]]:
    return {a: c for a, c in stored_choices(site).items() if a in NOTHING_CHOSEN}


# -- the page --------------------------------------------------------------------------


def test_the_page_shows_the_subscriber_s_choices_with_each_topic_and_cadence_in_words(
    choosing, choosing_client
):
    shown = _show(choosing_client, choosing, personal_token(choosing, ADA))
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert PREFERENCES in shown.text
    parts = PageParts(shown.text)
    assert parts.offered("topic") == TOPICS
    assert parts.ticked("topic") == TOPICS  # everything: every box ticked
    assert parts.offered("cadence") == CADENCES
    assert parts.ticked("cadence") == ["weekly on monday at 07:00"]
    text = visible_text(shown.text)
    for words in (
        "Diplomacy",
        "Talks, treaties and the people at the table.",
        "Oceans &amp; fisheries",
        "Every Monday at 07:00",
        "Every day at 07:00",
        "A message for each new article (at most 5 a day)",
        "Times are Europe/Vienna time.",
        ADA,
        "Topics Everything",
    ):
        assert words in text, words
    # Two forms: the choices (the token hidden in it) and the one-click unsubscribe.
    choices, leave = parts.forms
    assert (choices.get("method"), choices.get("action")) == ("post", preferences_path(choosing))
    assert urlsplit(str(leave.get("action"))).path == unsubscribe_path(choosing)
    assert {"type": "hidden", "name": "token", "value": personal_token(choosing, ADA)} in (
        parts.inputs
    )
    assert SAVED not in shown.text
    assert stored_choices(choosing)[ADA] == (None, None)  # showing it changes nothing


def test_saving_stores_topics_and_cadence_and_shows_them_again_by_get(choosing, choosing_client):
    token = personal_token(choosing, ADA)
    saved = _save(
        choosing_client, choosing, token, topics=["oceans", "diplomacy"], cadence="daily at 07:00"
    )
    assert saved.status_code == 303  # POST, redirect, GET: a reload sends nothing again
    location = saved.headers["location"]
    assert urlsplit(location).path == preferences_path(choosing)
    assert stored_choices(choosing)[ADA] == ("diplomacy,oceans", "daily at 07:00")
    assert stored_choices(choosing)["bo@example.org"] == (None, None)

    again = choosing_client.get(location)
    assert again.status_code == 200
    assert SAVED in again.text
    parts = PageParts(again.text)
    assert parts.ticked("topic") == ["diplomacy", "oceans"]
    assert parts.ticked("cadence") == ["daily at 07:00"]
    assert "Topics Diplomacy, Oceans &amp; fisheries How often Every day at 07:00" in (
        visible_text(again.text)
    )
    (event,) = [e for e in _events(choosing) if str(e[1]).startswith("chose")]
    assert event == ("active", "chose Diplomacy, Oceans & fisheries · daily at 07:00", "web")

    # The same choices again change nothing and add no line to the history.
    assert (
        _save(
            choosing_client,
            choosing,
            token,
            topics=["diplomacy", "oceans"],
            cadence="daily at 07:00",
        ).status_code
        == 303
    )
    assert len([e for e in _events(choosing) if str(e[1]).startswith("chose")]) == 1


def test_every_topic_ticked_is_everything_and_the_default_cadence_stays_the_default(
    choosing, choosing_client
):
    token = personal_token(choosing, ADA)
    assert _save(choosing_client, choosing, token, topics=["elections"]).status_code == 303
    assert stored_choices(choosing)[ADA] == ("elections", None)  # no cadence sent: kept
    done = _save(
        choosing_client, choosing, token, topics=TOPICS, cadence="weekly on monday at 07:00"
    )
    assert done.status_code == 303
    assert stored_choices(choosing)[ADA] == (None, None)
    chose = _save(choosing_client, choosing, token, topics=TOPICS, cadence="each article")
    assert chose.status_code == 303
    assert stored_choices(choosing)[ADA] == (None, "each article")


def test_the_unsubscribe_button_on_the_page_unsubscribes(choosing, choosing_client):
    shown = _show(choosing_client, choosing, personal_token(choosing, ADA))
    _choices, leave = PageParts(shown.text).forms
    done = choosing_client.post(
        local_path(str(leave["action"])), content=b"", headers={"Content-Type": FORM}
    )
    assert done.status_code == 200
    assert UNSUBSCRIBED in done.text
    assert subscriber_statuses(choosing)[ADA] == "unsubscribed"


def test_one_who_left_is_told_so_with_a_way_back_and_no_form(choosing, choosing_client, now):
    token = personal_token(choosing, ADA)
    secret = tokens.load_secret(choosing.state_dir)
    with open_store(choosing.state) as store, store.transaction():
        subscribers.unsubscribe(store, secret, token, now=now)
    shown = _show(choosing_client, choosing, token)
    assert shown.status_code == 200
    assert NOT_SUBSCRIBED in shown.text
    parts = PageParts(shown.text)
    assert parts.forms == []
    assert base_path(choosing) in parts.links  # the sign-up form is on the home page
    posted = _save(choosing_client, choosing, token, topics=["oceans"])
    assert posted.status_code == 409
    assert NOT_SUBSCRIBED in posted.text
    assert stored_choices(choosing)[ADA] == (None, None)


def test_a_site_with_nothing_to_choose_shows_the_choices_in_words_and_the_unsubscribe(
    built, client, now
):
    from support.mailing import add_subscribers

    add_subscribers(built, [ADA], now)
    shown = _show(client, built, personal_token(built, ADA))
    assert shown.status_code == 200
    parts = PageParts(shown.text)
    assert parts.offered("topic") == parts.offered("cadence") == []
    assert [urlsplit(str(f.get("action"))).path for f in parts.forms] == [unsubscribe_path(built)]
    assert "Topics Everything How often Every Monday at 07:00" in visible_text(shown.text)


# -- refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spoil",
    [
        forged,
        lambda token: token[:-5],
        lambda token: "2." + token.split(".", 1)[1],  # another subscriber's id
        lambda token: "99." + token.split(".", 1)[1],  # nobody's id
        lambda _token: tokens.make_token(b"another site's secret!!", 1, ADA),
        lambda _token: "",
    ],
    ids=["changed-mac", "truncated", "other-id", "unknown-id", "foreign", "empty"],
)
def test_a_spoiled_token_gets_400_and_changes_nothing(choosing, choosing_client, spoil):
    bad = spoil(personal_token(choosing, ADA))
    shown = _show(choosing_client, choosing, bad)
    posted = _save(choosing_client, choosing, bad, topics=["oceans"], cadence="daily at 07:00")
    for response in (shown, posted):
        assert response.status_code == 400
        assert BAD_PREFERENCES in response.text
        assert PageParts(response.text).forms == []
    assert _choices_of(choosing) == NOTHING_CHOSEN
    assert _events(choosing) == [("→active", "added by the operator", "cli")] * 3


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [
        ("https://evil.example", None),
        ("https://gazette.example.evil.example", None),
        ("null", None),
        (None, "cross-site"),
        (None, "same-site"),
    ],
    ids=["other-site", "lookalike", "null", "fetch-cross-site", "fetch-same-site"],
)
def test_a_form_posted_from_another_site_is_refused(choosing, choosing_client, origin, fetch_site):
    headers = {"Origin": origin} if origin else {"Sec-Fetch-Site": fetch_site}
    response = choosing_client.post(
        preferences_path(choosing),
        data={"token": personal_token(choosing, ADA), "topics_shown": "1", "topic": "oceans"},
        headers=headers,
    )
    assert response.status_code == 403
    assert FOREIGN_FORM in response.text
    assert _choices_of(choosing) == NOTHING_CHOSEN


def test_the_site_s_public_origin_and_a_client_without_origin_are_let_through(
    choosing, choosing_client
):
    token = personal_token(choosing, ADA)
    # Behind a proxy that does not pass Host on, the browser names the public origin.
    public = _save(
        choosing_client, choosing, token, topics=["oceans"], origin="https://gazette.example"
    )
    assert public.status_code == 303
    bare = _save(choosing_client, choosing, token, topics=["elections"], origin=None)
    assert bare.status_code == 303
    assert stored_choices(choosing)[ADA] == ("elections", None)


@pytest.mark.parametrize(
    ("topics", "cadence", "problem"),
    [
        (["oceans", "weather"], None, "there is no topic 'weather' to choose"),
        ([], None, "choose at least one topic"),
        (["oceans"], "hourly", "expected 'daily at HH:MM'"),
        (["oceans"], "daily at 09:00", "'daily at 09:00' is not offered"),
    ],
    ids=["unknown-topic", "no-topic", "bad-cadence", "cadence-not-offered"],
)
def test_bad_values_get_400_naming_the_problem_and_nothing_is_saved(
    choosing, choosing_client, topics, cadence, problem
):
    response = _save(
        choosing_client, choosing, personal_token(choosing, ADA), topics=topics, cadence=cadence
    )
    assert response.status_code == 400
    text = visible_text(response.text)
    assert "Nothing was saved:" in text
    assert problem in text.replace("&#39;", "'")
    parts = PageParts(response.text)
    assert parts.ticked("topic") == TOPICS  # the stored choices, shown again
    assert _choices_of(choosing) == NOTHING_CHOSEN
    assert not [e for e in _events(choosing) if str(e[1]).startswith("chose")]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"token=1.x&token=2.y&topic=oceans"),
        (FORM, b"token=%zz&&="),
        ("application/json", b'{"token": "1.x"}'),
    ],
    ids=["token-twice", "broken", "json"],
)
def test_an_unreadable_form_gets_400(choosing, choosing_client, content_type, body):
    response = choosing_client.post(
        preferences_path(choosing),
        content=body,
        headers={"Content-Type": content_type, "Origin": _origin(choosing_client)},
    )
    assert response.status_code == 400
    assert UNREADABLE in response.text
    assert _choices_of(choosing) == NOTHING_CHOSEN


# -- the sign-up form ------------------------------------------------------------------


def test_the_sign_up_form_offers_the_choices_everything_ticked_and_the_default_chosen(choosing):
    home = (choosing.site_dir / "index.html").read_text(encoding="utf-8")
    parts = PageParts(home)
    assert [f["action"] for f in parts.forms] == [base_path(choosing) + "subscribe"]
    assert parts.ticked("topic") == parts.offered("topic") == TOPICS
    assert parts.offered("cadence") == CADENCES
    assert parts.ticked("cadence") == ["weekly on monday at 07:00"]
    assert "Talks, treaties and the people at the table." in home


def test_sign_up_with_choices_confirm_and_the_subscriber_has_them(choosing, choosing_client):
    response = choosing_client.post(
        base_path(choosing) + "subscribe",
        data={
            "email": "dee@example.org",
            "name": "Dee",
            "topics_shown": "1",
            "topic": ["elections", "diplomacy"],
            "cadence": "each article",
        },
    )
    assert response.status_code == 200
    assert CHECK_INBOX in response.text
    assert "dee@example.org" not in stored_choices(choosing)  # pending until confirmed
    (message,) = confirmations_sent(choosing)
    assert SUBSCRIBED in press(choosing_client, confirmation_link(message)).text
    assert stored_choices(choosing)["dee@example.org"] == ("diplomacy,elections", "each article")
    shown = _show(choosing_client, choosing, personal_token(choosing, "dee@example.org"))
    assert PageParts(shown.text).ticked("topic") == ["diplomacy", "elections"]
    assert PageParts(shown.text).ticked("cadence") == ["each article"]


def test_a_sign_up_that_keeps_the_defaults_stores_no_choice(choosing, choosing_client):
    response = choosing_client.post(
        base_path(choosing) + "subscribe",
        data={
            "email": "dee@example.org",
            "topics_shown": "1",
            "topic": TOPICS,
            "cadence": "weekly on monday at 07:00",
        },
    )
    assert response.status_code == 200
    press(choosing_client, confirmation_link(confirmations_sent(choosing)[-1]))
    assert stored_choices(choosing)["dee@example.org"] == (None, None)


def test_a_former_subscriber_who_signs_up_again_gets_the_new_choices(
    choosing, choosing_client, clock, now
):
    token = personal_token(choosing, ADA)
    assert _save(choosing_client, choosing, token, topics=["oceans"]).status_code == 303
    secret = tokens.load_secret(choosing.state_dir)
    with open_store(choosing.state) as store, store.transaction():
        subscribers.unsubscribe(store, secret, token, now=now)
    clock.now += timedelta(minutes=5)
    choosing_client.post(
        base_path(choosing) + "subscribe",
        data={"email": ADA, "topics_shown": "1", "topic": "elections", "cadence": "daily at 07:00"},
    )
    press(choosing_client, confirmation_link(confirmations_sent(choosing)[-1]))
    assert subscriber_statuses(choosing)[ADA] == "active"
    assert stored_choices(choosing)[ADA] == ("elections", "daily at 07:00")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"topics_shown": "1", "topic": "weather"}, "There is no topic 'weather' to choose"),
        ({"topics_shown": "1"}, "Choose at least one topic"),
        ({"cadence": "hourly"}, "Expected 'daily at HH:MM'"),
        ({"cadence": "daily at 09:00"}, "'daily at 09:00' is not offered"),
    ],
    ids=["unknown-topic", "no-topic", "bad-cadence", "cadence-not-offered"],
)
def test_a_sign_up_with_bad_choices_gets_400_and_stores_nothing(
    make_site, clock, now, fields, problem
):
    from support.web import add_choices
    from support.web_server import WebServer

    from publisher.config import load_config
    from publisher.pipelines import build

    folder = make_site("basic")
    add_choices(folder)
    site = load_config(folder / "publisher.toml")
    build.build(site, now=now)
    with (
        WebServer(site, now=clock) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        response = client.post(
            base_path(site) + "subscribe", data={"email": "dee@example.org", **fields}
        )
    assert response.status_code == 400
    assert BAD_CHOICE in response.text
    assert problem in visible_text(response.text).replace("&#39;", "'")
    assert_nothing_stored(site)


def test_a_site_without_topics_refuses_a_topic_on_the_sign_up(built, client):
    response = client.post(
        base_path(built) + "subscribe", data={"email": "dee@example.org", "topic": "energy"}
    )
    assert response.status_code == 400
    assert "this site has no topics" in response.text
    assert_nothing_stored(built)


# -- from a message --------------------------------------------------------------------


def test_the_link_in_each_message_opens_that_subscriber_s_own_page(
    choosing, choosing_client, clock
):
    import re

    from support.web import read_messages

    from publisher.pipelines import digests

    assert digests.send_digests(choosing, now=clock).sent == 3
    messages = [
        message
        for folder in sorted(choosing.delivery.outbox_dir.glob("digest-*"))
        for message in read_messages(folder)
    ]
    assert len(messages) == 3
    for message in messages:
        address = message["To"].addresses[0].addr_spec
        text = message.get_body(("plain",)).get_content()
        (link,) = re.findall(r"^Choose what you receive: (\S+)\r?$", text, re.M)
        assert link == choosing.digest.preferences_url + "?token=" + personal_token(
            choosing, address
        )
        html = message.get_body(("html",)).get_content()
        assert f'href="{link}"' in html
        shown = choosing_client.get(local_path(link))
        assert shown.status_code == 200
        assert address in shown.text
        assert PageParts(shown.text).ticked("topic") == TOPICS
