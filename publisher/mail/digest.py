"""Choose the articles for the next digest and render it once: MJML → HTML, plus a text part.

Rendering happens once per digest. Per-recipient values (the unsubscribe URL
and the preferences page's) appear in the output as placeholders that
mail.compose fills in per message, so MJML is never compiled per recipient.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

from publisher.errors import TemplateError
from publisher.model import Article, DigestArticle, RenderedDigest, newest_first
from publisher.templating import render_template

MJML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
# Letters and underscores only: untouched by Jinja2's escaping, MJML and URL quoting.
UNSUBSCRIBE_PLACEHOLDER = "__PUBLISHER_UNSUBSCRIBE_URL__"
PREFERENCES_PLACEHOLDER = "__PUBLISHER_PREFERENCES_URL__"  # the same token, the choices page
HTML_LIMIT = 100 * 1024  # Gmail clips messages above about 102 KB


@dataclass(frozen=True, slots=True)
class DigestSite:
    """What the templates may say about the site."""

    title: str
    description: str
    base_url: str
    language: str
    timezone: ZoneInfo
    postal_address: str | None
    # The web copy belongs to no one, so it has no unsubscribe link (one without
    # a token is refused): it offers the sign-up form instead.
    signup_url: str


def select_articles(
    articles: Iterable[Article], *, now: datetime, limit: int | None
) -> tuple[DigestArticle, ...]:
    """The published ones among *articles*, newest first; at most *limit* of them.

    Which articles are new to the subscribers is the ledger's business (by
    publication number); this only drops what is not public now (a draft
    again, or dated later after an edit) and freezes the rest.
    """
    fresh = newest_first(a for a in articles if a.is_published(now))
    if limit is not None:
        fresh = fresh[:limit]
    return tuple(
        DigestArticle(
            id=article.id,
            title=article.title,
            link=article.link,
            date=article.date,
            authors=tuple(a.name for a in article.authors),
            summary=article.summary,
        )
        for article in fresh
    )


def render_digest(
    environment: jinja2.Environment,
    site: DigestSite,
    articles: Sequence[DigestArticle],
    *,
    subject_template: str,
    number: int,
    created_at: datetime,
    web_url: str,
    max_articles: int,
) -> RenderedDigest:
    """Render subject, HTML (via MJML) and text once, and the web copy.

    :raises TemplateError: naming the template and line for Jinja2 or MJML problems.
    """
    shown = list(articles[:max_articles])
    local_created = created_at.astimezone(site.timezone)
    context = {
        "site": site,
        "site_title": site.title,
        "number": number,
        "date": local_created,
        "articles": [_card(a, site.timezone) for a in shown],
        "count": len(articles),
        "more_count": len(articles) - len(shown),
        "web_url": web_url,
        "preheader": _preheader(shown),
        "postal_address": site.postal_address,
    }
    subject = _render_subject(environment, subject_template, context)
    html = _mjml_to_html(
        environment,
        render_template(
            environment,
            MJML_TEMPLATE,
            **context,
            unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
            preferences_url=PREFERENCES_PLACEHOLDER,
            is_web_copy=False,
        ),
    )
    text = render_template(
        environment,
        TEXT_TEMPLATE,
        **context,
        unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        preferences_url=PREFERENCES_PLACEHOLDER,
        is_web_copy=False,
    )
    web_context = {
        **context,
        "articles": [_card(a, site.timezone) for a in articles],
        "more_count": 0,
    }
    web_html = _mjml_to_html(
        environment,
        render_template(
            environment,
            MJML_TEMPLATE,
            **web_context,
            is_web_copy=True,
        ),
    )
    return RenderedDigest(subject=subject, html=html, text=text, web_html=web_html)


def _card(article: DigestArticle, timezone: ZoneInfo) -> dict[str, object]:
    local = article.date.astimezone(timezone)
    return {
        "title": article.title,
        "link": article.link,
        "date": local,
        "date_text": f"{local.day} {local:%B %Y}",
        "authors": list(article.authors),
        "author_text": _join_names(article.authors),
        "summary": article.summary,
    }


def _join_names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _preheader(articles: Sequence[DigestArticle]) -> str:
    # The grey line mail clients show after the subject: the first titles.
    text = " · ".join(" ".join(a.title.split()) for a in articles[:3])
    return text if len(text) <= 140 else text[:139].rstrip() + "…"


@functools.lru_cache(maxsize=8)  # a run renders a digest per segment with one environment
def _subject_template(environment: jinja2.Environment, source: str) -> jinja2.Template:
    # A subject is a header, not HTML: its own environment, without autoescape.
    return environment.overlay(autoescape=False).from_string(source)


def _render_subject(
    environment: jinja2.Environment, source: str, context: dict[str, object]
) -> str:
    try:
        subject = _subject_template(environment, source).render(**context)
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as err:
        # A subject is configuration, not code: any failure in it is the template's.
        where = "[digest] subject"
        raise TemplateError(where, f"template error: {err}") from err
    # A subject is one line whatever the titles hold: no header injection.
    return re.sub(r"\s+", " ", subject).strip()


def _mjml_to_html(environment: jinja2.Environment, source: str) -> str:
    import mjml

    try:
        # fonts={}: MRML's default map turns Roboto, Open Sans, Lato, Droid Sans
        # or Ubuntu anywhere in a font stack into a Google Fonts <link> and
        # @import, which every subscriber's mail client would fetch on opening.
        html: str = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as err:
        raise _mjml_error(environment, source, str(err)) from err
    return html


def _mjml_error(environment: jinja2.Environment, source: str, detail: str) -> TemplateError:
    """Say where MRML stopped: the template line when it can be found, else the rendered one.

    MRML reports a byte span of the rendered MJML ("at position 2085:2096"),
    or nothing at all when the input ends with an element still open.
    """
    if "end of stream" in detail:
        return TemplateError(MJML_TEMPLATE, f"MJML error: {detail} (a tag is not closed)")
    located = _line_of(detail, source)
    if located is None:
        return TemplateError(MJML_TEMPLATE, f"MJML error: {detail}")
    line, text, token = located
    where = MJML_TEMPLATE
    template_line = _template_line(environment, text)
    if template_line is not None:
        where += f":{template_line}"
    return TemplateError(where, f"MJML error: {detail} ({token!r} on line {line} of the output)")


def _line_of(message: str, source: str) -> tuple[int, str, str] | None:
    """The rendered line MRML's byte position falls on: (number, its text, the token)."""
    match = re.search(r"position (\d+)(?::(\d+))?", message)
    if not match:
        return None
    data = source.encode("utf-8")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if start > len(data):
        return None
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", start)
    text = data[line_start : len(data) if line_end < 0 else line_end]
    token = data[start:end].decode("utf-8", errors="replace")
    return data.count(b"\n", 0, start) + 1, text.decode("utf-8", errors="replace"), token


def _template_line(environment: jinja2.Environment, rendered: str) -> int | None:
    # Loops and {%- -%} make rendered lines drift from template lines, but a
    # line of plain markup usually appears in the template verbatim, once.
    wanted = rendered.strip()
    if not wanted or environment.loader is None:
        return None
    try:
        template_source = environment.loader.get_source(environment, MJML_TEMPLATE)[0]
    except jinja2.TemplateNotFound:
        return None
    found = [n for n, line in enumerate(template_source.splitlines(), 1) if line.strip() == wanted]
    return found[0] if len(found) == 1 else None
