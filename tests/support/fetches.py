"""What an HTML message or page makes its reader's client fetch when it is opened.

Links (`<a href>`, `<area href>`) are fetched only when clicked. Everything
else that carries a URL may be fetched on opening: src, srcset, background,
poster, form actions, `<link href>` and every other href, a meta refresh, and
CSS url(...) and @import in `<style>` elements and style attributes. Outlook
reads the markup inside conditional comments (`<!--[if mso]>…<![endif]-->`),
so that is parsed too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

_CLICKED_ONLY = {"a", "area"}
_URL_ATTRIBUTES = {
    "src",
    "background",
    "poster",
    "action",
    "formaction",
    "data",
    "lowsrc",
    "dynsrc",
    "href",
    "xlink:href",
}
_SRCSET_ATTRIBUTES = {"srcset", "imagesrcset"}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.I | re.S)
_CSS_IMPORT = re.compile(r"""@import\s+(['"])(.*?)\1""", re.I | re.S)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]+)", re.I)


class _Fetches(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name in _SRCSET_ATTRIBUTES:
                self.urls.extend(c.split()[0] for c in value.split(",") if c.strip())
            elif name == "style":
                self.urls.extend(css_urls(value))
            elif name in _URL_ATTRIBUTES and not (name.endswith("href") and tag in _CLICKED_ONLY):
                self.urls.append(value)
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.urls.extend(_REFRESH_URL.findall(values.get("content", "")))
        if tag == "style":
            self._in_style = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(css_urls(data))

    def handle_comment(self, data: str) -> None:
        # <!--[if mso]>markup<![endif]-->: the markup is real to Outlook.
        if data.startswith("[if") and "]>" in data:
            inner = data.split("]>", 1)[1].removesuffix("<![endif]")
            self.urls.extend(fetched_urls(inner))


def css_urls(css: str) -> list[str]:
    """The URLs a stylesheet loads: url(...) values and @import "..." targets."""
    return [m.group(2) for m in _CSS_URL.finditer(css)] + [
        m.group(2) for m in _CSS_IMPORT.finditer(css)
    ]


def fetched_urls(html: str) -> list[str]:
    """Every URL *html* may make a client fetch when it is opened, in document order."""
    parser = _Fetches()
    parser.feed(html)
    parser.close()
    return [url.strip() for url in parser.urls]


def foreign_fetches(html: str, base_url: str) -> list[str]:
    """The fetched URLs that go to a host other than *base_url*'s.

    Relative URLs, data: and cid: URLs name no host and stay with the message.
    """
    own = urlsplit(base_url).hostname
    return [url for url in fetched_urls(html) if urlsplit(url).hostname not in (None, own)]
