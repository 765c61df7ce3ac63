"""web.forms: only exactly the pages' own urlencoded forms are read; anything else is a 400."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from support.web import (
    BAD_ADDRESS,
    FORM,
    UNREADABLE,
    assert_nothing_stored,
    base_path,
    local_path,
    pending_link,
    press,
    subscriber_statuses,
)


@pytest.mark.parametrize(
    ("content_type", "body", "title", "reason"),
    [
        (FORM, b"email=%zz&&=", UNREADABLE, ""),
        (FORM, b"email=ada\xff%40example.org", UNREADABLE, ""),
        (FORM, b"email=ada%ff%40example.org", UNREADABLE, ""),
        (FORM, b"email=ada%40example.org&email=bo%40example.org", UNREADABLE, ""),
        (FORM, b"&".join(b"f%d=1" % n for n in range(11)), UNREADABLE, ""),
        ("application/json", b'{"email": "ada@example.org"}', UNREADABLE, ""),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
            b"ada@example.org\r\n--xyz--\r\n",
            UNREADABLE,
            "",
        ),
        ("text/plain", b"email=ada%40example.org", UNREADABLE, ""),
        (FORM, b"email=not-an-email", BAD_ADDRESS, "An email address must have an @-sign."),
        (FORM, b"email=", BAD_ADDRESS, "it is empty"),
        (FORM, b"", BAD_ADDRESS, "it is empty"),
        (
            FORM,
            b"email=" + quote("x@example.org\r\nBcc: y@example.org").encode(),
            BAD_ADDRESS,
            "it contains a line break or control character",
        ),
        (
            FORM,
            b"email=" + quote("x@example.org\nBcc: y@example.org").encode(),
            BAD_ADDRESS,
            "it contains a line break or control character",
        ),
        (
            FORM,
            b"email=ada%40example.org&name=" + quote("Ada\x1b[31m").encode(),
            BAD_ADDRESS,
            "contains a control character",
        ),
    ],
)
def test_bad_signups_get_400_and_store_nothing(built, client, content_type, body, title, reason):
    response = client.post(
        base_path(built) + "subscribe", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert title in response.text
    assert reason in response.text
    assert_nothing_stored(built)


def test_a_signup_without_a_content_type_gets_400(built, server):
    status, _headers, body = server.raw(
        b"POST /news/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Length: 21\r\n\r\nemail=ada%40example.o"
    )
    assert status == 400
    assert UNREADABLE.encode() in body
    assert_nothing_stored(built)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"a=%zz&&="),
        (FORM, b"a=1&a=2"),
        ("application/json", b"{}"),
        ("text/plain", b""),
    ],
)
def test_a_malformed_confirmation_form_gets_400_and_changes_nothing(
    built, client, content_type, body
):
    link = pending_link(client, built, "ada@example.org")
    response = client.post(local_path(link), content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert UNREADABLE in response.text
    assert subscriber_statuses(built) == {}
    assert press(client, link).status_code == 200  # the real link still works
    assert subscriber_statuses(built) == {"ada@example.org": "active"}
