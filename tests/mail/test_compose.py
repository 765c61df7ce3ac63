"""mail.compose: messages composed once and personalised per recipient.

Parsed back with the standard email package, as a mail client would.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.mail import compose
from publisher.mail.digest import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER
from publisher.model import RenderedDigest, Subscriber

SETTINGS = compose.MailSettings(
    sender="Meridian Briefing <briefing@meridian.example>",
    reply_to="Desk <desk@meridian.example>",
    list_name="Meridian Briefing",
    list_id="digest.meridian.example",
    unsubscribe_url="https://meridian.example/unsubscribe",
    unsubscribe_mailto="unsubscribe@meridian.example",
    preferences_url="https://meridian.example/preferences",
)
DATE = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def _rendered(
    subject: str = "Meridian Briefing: 2 new articles", body_extra: str = ""
) -> RenderedDigest:
    long_line = "<td>" + "wörd " * 20_000 + "</td>"  # MJML emits very long lines
    html = (
        f"<html><body><p>Hello — “quotes” {body_extra}</p>{long_line}"
        f'<a href="{PREFERENCES_PLACEHOLDER}">Choose what you receive</a>'
        f'<a href="{UNSUBSCRIBE_PLACEHOLDER}">Unsubscribe</a></body></html>'
    )
    text = (
        f"Hello — “quotes” {body_extra}\nChoose what you receive: {PREFERENCES_PLACEHOLDER}\n"
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n"
    )
    return RenderedDigest(subject=subject, html=html, text=text, web_html="<p>web</p>")


def _subscriber(sid: int = 42, address: str = "lena@example.org", name: str = "Lena Hofbauer"):
    return Subscriber(sid, address, name, "active", DATE)


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_message_structure_and_headers():
    template = compose.prepare(7, _rendered(), SETTINGS, date=DATE)
    message = compose.personalise(template, _subscriber(), "42.abc_DEF-123")
    parsed = _parse(message.data)
    assert parsed["From"] == "Meridian Briefing <briefing@meridian.example>"
    assert parsed["To"] == "Lena Hofbauer <lena@example.org>"
    assert parsed["Reply-To"] == "Desk <desk@meridian.example>"
    assert parsed["Subject"] == "Meridian Briefing: 2 new articles"
    assert parsed["Date"] == "Fri, 27 Nov 2026 07:00:00 +0000"
    assert parsed["Message-ID"] == message.message_id
    assert re.fullmatch(r"<digest-7\.42\.[0-9a-f]{12}@meridian\.example>", message.message_id)
    assert parsed["List-Id"] == "Meridian Briefing <digest.meridian.example>"
    assert parsed["List-Unsubscribe"] == (
        "<https://meridian.example/unsubscribe?token=42.abc_DEF-123>, "
        "<mailto:unsubscribe@meridian.example?subject=unsubscribe%2042.abc_DEF-123>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == (
        "Hello — “quotes” \n"
        "Choose what you receive: https://meridian.example/preferences?token=42.abc_DEF-123\n"
        "Unsubscribe: https://meridian.example/unsubscribe?token=42.abc_DEF-123\n"
    )
    html_text = html.get_content()
    assert html_text.startswith("<html><body><p>Hello — “quotes” </p><td>wörd wörd")
    assert html_text.endswith(
        '<a href="https://meridian.example/preferences?token=42.abc_DEF-123">'
        "Choose what you receive</a>"
        '<a href="https://meridian.example/unsubscribe?token=42.abc_DEF-123">Unsubscribe</a>'
        "</body></html>"
    )
    assert UNSUBSCRIBE_PLACEHOLDER not in message.data.decode("ascii")
    assert PREFERENCES_PLACEHOLDER not in message.data.decode("ascii")
    assert (message.sender, message.recipient) == ("briefing@meridian.example", "lena@example.org")


def test_wire_format_is_crlf_7bit_and_short_lines():
    template = compose.prepare(1, _rendered(), SETTINGS, date=DATE)
    data = compose.personalise(template, _subscriber(), "1.x").data
    data.decode("ascii")  # quoted-printable and encoded words: 7-bit clean
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert data.endswith(b"--\r\n")


def test_each_recipient_gets_only_their_own_link():
    template = compose.prepare(3, _rendered(), SETTINGS, date=DATE)
    first = compose.personalise(template, _subscriber(1, "a@example.org", "A"), "1.aaa")
    second = compose.personalise(template, _subscriber(2, "b@example.org", "B"), "2.bbb")
    assert b"token=1.aaa" in first.data
    assert b"token=2.bbb" not in first.data
    assert b"token=2.bbb" in second.data
    assert b"b@example.org" not in first.data
    assert first.message_id != second.message_id
    # The same recipient and digest always get the same Message-ID.
    assert compose.personalise(
        template, _subscriber(1, "a@example.org", "A"), "1.aaa"
    ).message_id == (first.message_id)


@pytest.mark.parametrize(
    "subject",
    [
        "Breaking:\r\nBcc: everyone@example.org",
        "Line one\nLine two",
        "“Quoted” <b>HTML</b> & ümlauts — and a very long subject that needs folding " * 3,
    ],
)
def test_subject_cannot_inject_headers(subject):
    template = compose.prepare(1, _rendered(subject=subject), SETTINGS, date=DATE)
    parsed = _parse(compose.personalise(template, _subscriber(), "1.x").data)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"]
    assert parsed["Subject"] == " ".join(subject.split())


def test_names_with_non_ascii_and_specials_are_encoded():
    template = compose.prepare(1, _rendered(), SETTINGS, date=DATE)
    for name in ("Željko Đurić", 'Tom "the Bomb", Jr.', "Evil\r\nBcc: x@example.org"):
        parsed = _parse(compose.personalise(template, _subscriber(name=name), "1.x").data)
        assert parsed["To"].addresses[0].addr_spec == "lena@example.org"
        assert parsed["To"].addresses[0].display_name == " ".join(name.split())
        assert parsed["Bcc"] is None


@settings(max_examples=200, deadline=None)
@given(
    html=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400),
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400),
    token=st.from_regex(r"[0-9]{1,6}\.[A-Za-z0-9_-]{1,43}", fullmatch=True),
)
def test_substitution_keeps_the_encoding_valid(html, text, token):
    html = html.replace("\r", "")
    text = text.replace("\r", "")
    leave, choose = UNSUBSCRIBE_PLACEHOLDER, PREFERENCES_PLACEHOLDER
    rendered = RenderedDigest(
        "s", f"{html}{leave}{html}{choose}{html}", f"{text}{choose}{leave}", ""
    )
    template = compose.prepare(1, rendered, SETTINGS, date=DATE)
    parsed = _parse(compose.personalise(template, _subscriber(), token).data)
    text_part, html_part = parsed.iter_parts()
    url = f"https://meridian.example/unsubscribe?token={token}"
    own = f"https://meridian.example/preferences?token={token}"
    assert text_part.get_payload(decode=True).decode("utf-8") == (text + own + url).replace(
        "\n", "\r\n"
    )
    assert html_part.get_payload(decode=True).decode("utf-8") == (
        html + url + html + own + html
    ).replace("\n", "\r\n")


@pytest.mark.parametrize(
    ("mailbox", "domain"),
    [
        ("Meridian Briefing <briefing@meridian.example>", "meridian.example"),
        ("briefing@gazette.example (Desk)", "gazette.example"),
        ("Desk <Briefing@Gazette.EXAMPLE>", "gazette.example"),
        ('"desk@elsewhere.example" <desk@gazette.example>', "gazette.example"),
        ("briefing", "localhost"),
        ("", "localhost"),
    ],
)
def test_address_domain(mailbox, domain):
    assert compose.address_domain(mailbox) == domain


def test_message_id_domain_is_the_senders_whatever_the_form_of_from():
    settings = replace(SETTINGS, sender="briefing@Meridian.Example (Desk)")
    template = compose.prepare(7, _rendered(), settings, date=DATE)
    message = compose.personalise(template, _subscriber(), "42.x")
    assert _parse(message.data)["Message-ID"] == message.message_id
    assert message.message_id == compose.message_id(
        7, 42, domain="meridian.example", site_key=compose.site_key(SETTINGS.list_id)
    )


def test_a_preview_link_is_escaped_in_the_html_and_plain_in_the_text():
    link = compose.unsubscribe_link("https://meridian.example/u?list=daily", "EXAMPLE")
    shown = compose.with_unsubscribe_link(_rendered(), link)
    assert link == "https://meridian.example/u?list=daily&token=EXAMPLE"
    assert shown.text.endswith(f"\nUnsubscribe: {link}\n")
    assert shown.html.endswith(
        '<a href="https://meridian.example/u?list=daily&amp;token=EXAMPLE">Unsubscribe</a>'
        "</body></html>"
    )
    assert UNSUBSCRIBE_PLACEHOLDER not in shown.text + shown.html


def test_a_preview_with_a_preferences_link_shows_each_where_it_goes():
    link = compose.unsubscribe_link("https://meridian.example/u", "EXAMPLE")
    own = compose.preferences_link("https://meridian.example/p?list=daily", "EXAMPLE")
    assert own == "https://meridian.example/p?list=daily&token=EXAMPLE"
    shown = compose.with_unsubscribe_link(_rendered(), link, own)
    assert f"\nChoose what you receive: {own}\nUnsubscribe: {link}\n" in shown.text
    assert '<a href="https://meridian.example/p?list=daily&amp;token=EXAMPLE">' in shown.html
    alone = compose.with_unsubscribe_link(_rendered(), link)  # one link: it stands in both
    assert f"\nChoose what you receive: {link}\nUnsubscribe: {link}\n" in alone.text
    for rendered in (shown, alone):
        assert PREFERENCES_PLACEHOLDER not in rendered.text + rendered.html


def test_each_message_of_a_real_digest_carries_its_own_preferences_link_and_the_web_copy_none():
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from publisher.mail.digest import DigestSite, render_digest
    from publisher.model import DigestArticle
    from publisher.templating import make_environment

    site = DigestSite(
        title="Meridian Briefing",
        description="Independent reporting.",
        base_url="https://meridian.example/",
        language="en",
        timezone=ZoneInfo("Europe/Vienna"),
        postal_address=None,
        signup_url="https://meridian.example/",
    )
    articles = [
        DigestArticle(
            id=f"urn:x:{n}",
            title=f"Talks, round {n}",
            link=f"https://meridian.example/{n}/",
            date=DATE - timedelta(days=n),
            authors=("Lena Hofbauer",),
            summary="Delegates met again. " * 40,
        )
        for n in range(1, 21)
    ]
    rendered = render_digest(
        make_environment(None),
        site,
        articles,
        subject_template="{{ site_title }}",
        number=3,
        created_at=DATE,
        web_url="https://meridian.example/digests/3/",
        max_articles=20,
    )
    template = compose.prepare(3, rendered, SETTINGS, date=DATE)
    for subscriber, token in (
        (_subscriber(1, "a@example.org", "A"), "1.aaa"),
        (_subscriber(), "42.b_-"),
    ):
        parsed = _parse(compose.personalise(template, subscriber, token).data)
        text_part, html_part = parsed.iter_parts()
        own = f"https://meridian.example/preferences?token={token}"
        text = text_part.get_content()
        html = html_part.get_content()
        assert f"Choose what you receive: {own}" in text.splitlines()
        assert re.search(rf'<a href="{re.escape(own)}"[^>]*>Choose what you receive</a>', html)
        assert len(html.encode("utf-8")) < 100 * 1024  # under Gmail's clipping
        # The headers stay as RFC 8058 has them: the https unsubscribe URL (and the
        # mailto), never the preferences page, and the one-click POST body.
        assert parsed["List-Unsubscribe"] == (
            f"<https://meridian.example/unsubscribe?token={token}>, "
            f"<mailto:unsubscribe@meridian.example?subject=unsubscribe%20{token}>"
        )
        assert parsed.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert "preferences" not in rendered.web_html
    assert "token=" not in rendered.web_html
    assert "Choose what you receive" not in rendered.web_html
