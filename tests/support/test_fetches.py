"""support/fetches.py finds every kind of resource a page would fetch from elsewhere."""

from __future__ import annotations

import pytest

from support.fetches import foreign_fetches


@pytest.mark.parametrize(
    ("html", "foreign"),
    [
        ('<img src="https://cdn.example/x.png">', ["https://cdn.example/x.png"]),
        ('<img srcset="/a.png 1x, https://cdn.example/b.png 2x">', ["https://cdn.example/b.png"]),
        ('<td background="https://cdn.example/bg.png">', ["https://cdn.example/bg.png"]),
        ('<video poster="//cdn.example/p.jpg"></video>', ["//cdn.example/p.jpg"]),
        ('<form action="https://collect.example/"></form>', ["https://collect.example/"]),
        (
            '<link href="https://fonts.googleapis.com/css?family=Roboto" rel="stylesheet">',
            ["https://fonts.googleapis.com/css?family=Roboto"],
        ),
        (
            "<style>@import url(https://fonts.googleapis.com/css?family=Lato);</style>",
            ["https://fonts.googleapis.com/css?family=Lato"],
        ),
        ("<style>@import 'https://cdn.example/a.css';</style>", ["https://cdn.example/a.css"]),
        (
            "<div style=\"background:url('https://pixel.example/t.gif')\"></div>",
            ["https://pixel.example/t.gif"],
        ),
        (
            '<!--[if mso]><img src="https://cdn.example/o.png"><![endif]-->',
            ["https://cdn.example/o.png"],
        ),
        (
            '<meta http-equiv="refresh" content="0; url=https://away.example/">',
            ["https://away.example/"],
        ),
        ('<a href="https://elsewhere.example/">followed only when clicked</a>', []),
        ('<img src="https://meridian.example/logo.png" srcset="/logo@2x.png 2x">', []),
        ('<img src="data:image/png;base64,iVBORw0KGgo=">', []),
    ],
)
def test_the_fetch_check_finds_every_kind_of_foreign_resource(html, foreign):
    assert foreign_fetches(html, "https://meridian.example/") == foreign
