"""publisher.templating: site templates over the packaged ones, errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from publisher.errors import TemplateError
from publisher.templating import (
    COMPILED_TEMPLATES,
    make_environment,
    packaged_templates_dir,
    render_template,
    yaml_string,
)

NEW_ARTICLE = {
    "id": "urn:uuid:00000000-0000-4000-8000-000000000001",
    "title": 'Talks resume: "round two"',
    "date": "2026-11-27T13:00:00+01:00",
    "author": "Gazette Desk",
    "tags": ["vienna", "arms control"],
    "draft": True,
}


def _templates(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_site_template_overrides_the_packaged_one_of_its_name_and_no_other(tmp_path):
    site = _templates(tmp_path, {"new-article.md.j2": "---\ntitle: {{ title | yaml_string }}\n"})
    environment = make_environment(site)
    assert environment.get_template("new-article.md.j2").filename == str(site / "new-article.md.j2")
    packaged = environment.get_template("web/message.html.j2").filename
    assert packaged == str(packaged_templates_dir() / "web" / "message.html.j2")
    text = render_template(environment, "new-article.md.j2", **NEW_ARTICLE)
    assert text == '---\ntitle: "Talks resume: \\"round two\\""\n'


def test_without_a_site_folder_the_packaged_templates_serve(tmp_path):
    environment = make_environment(tmp_path / "templates")  # the site has none
    text = render_template(environment, "new-article.md.j2", **NEW_ARTICLE)
    front_matter = yaml.safe_load(text.split("---\n")[1])
    assert {key: front_matter[key] for key in NEW_ARTICLE} == NEW_ARTICLE
    assert environment.get_template("new-article.md.j2").filename.startswith(
        str(packaged_templates_dir())
    )


def test_html_templates_escape_and_text_templates_do_not(tmp_path):
    site = _templates(tmp_path, {"page.html.j2": "{{ value }}", "note.txt.j2": "{{ value }}"})
    environment = make_environment(site)
    value = "<b>Tom & Jerry</b>"
    assert render_template(environment, "page.html.j2", value=value) == (
        "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"
    )
    assert render_template(environment, "note.txt.j2", value=value) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<p>\n{{ site_name }}\n</p>\n",
            "{path}:2: undefined variable: 'site_name' is undefined",
        ),
        (
            "<p>\n{{ site.title }}\n</p>\n",  # StrictUndefined: an attribute of nothing fails too
            "{path}:2: undefined variable: 'site' is undefined",
        ),
        (
            "<p>\n\n{% if %}\n</p>\n",
            "{path}:3: template syntax error: Expected an expression, got 'end of statement block'",
        ),
        ("<p>{{ 1 / 0 }}</p>\n", "{path}:1: template error: division by zero"),
    ],
    ids=["undefined", "undefined-attribute", "syntax", "arithmetic"],
)
def test_a_broken_template_names_the_template_and_line(tmp_path, text, message):
    site = _templates(tmp_path, {"broken.html.j2": text})
    with pytest.raises(TemplateError) as caught:
        render_template(make_environment(site), "broken.html.j2")
    assert str(caught.value) == message.format(path=site / "broken.html.j2")


def test_a_missing_template_is_named(tmp_path):
    with pytest.raises(TemplateError) as caught:
        render_template(make_environment(tmp_path), "web/missing.html.j2")
    assert str(caught.value) == "web/missing.html.j2: template not found"


@pytest.mark.parametrize(
    "value", ['Talks resume: "round two"', "- a list?", "true", "Überraschung\tin Wien", "#1"]
)
def test_yaml_string_reads_back_as_the_same_text(value):
    assert yaml.safe_load(f"title: {yaml_string(value)}\n") == {"title": value}


# -- compiled templates kept in the state folder ------------------------------------------


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The templates Jinja2 compiles from source from now on."""
    import jinja2

    compiled: list[str] = []
    real = jinja2.Environment.compile

    def compile_(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", compile_)
    return compiled


def test_a_template_compiled_once_is_read_back_by_the_next_run(tmp_path, monkeypatch):
    site = _templates(tmp_path / "templates", {"note.txt.j2": "Hello {{ who }}.\n"})
    state = tmp_path / ".publisher"
    compiled = _compiles(monkeypatch)
    first = make_environment(site, state_dir=state)
    assert render_template(first, "note.txt.j2", who="Ada") == "Hello Ada.\n"
    assert compiled == ["note.txt.j2"]
    assert (state / COMPILED_TEMPLATES).stat().st_mode & 0o777 == 0o700
    again = make_environment(site, state_dir=state)  # a later run
    assert render_template(again, "note.txt.j2", who="Bo") == "Hello Bo.\n"
    assert compiled == ["note.txt.j2"]  # not compiled again


def test_an_edited_template_is_compiled_again(tmp_path, monkeypatch):
    site = _templates(tmp_path / "templates", {"note.txt.j2": "Hello {{ who }}.\n"})
    state = tmp_path / ".publisher"
    render_template(make_environment(site, state_dir=state), "note.txt.j2", who="Ada")
    _templates(site, {"note.txt.j2": "Goodbye {{ who }}.\n"})
    compiled = _compiles(monkeypatch)
    text = render_template(make_environment(site, state_dir=state), "note.txt.j2", who="Ada")
    assert text == "Goodbye Ada.\n"
    assert compiled == ["note.txt.j2"]


def test_a_damaged_or_unwritable_cache_is_no_cache(tmp_path):
    site = _templates(tmp_path / "templates", {"note.txt.j2": "Hello {{ who }}.\n"})
    state = tmp_path / ".publisher"
    render_template(make_environment(site, state_dir=state), "note.txt.j2", who="Ada")
    (entry,) = (state / COMPILED_TEMPLATES).iterdir()
    entry.write_bytes(entry.read_bytes()[:40])  # cut short, as by a full disk
    text = render_template(make_environment(site, state_dir=state), "note.txt.j2", who="Bo")
    assert text == "Hello Bo.\n"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state folder should be", encoding="utf-8")
    text = render_template(make_environment(site, state_dir=blocked), "note.txt.j2", who="Cy")
    assert text == "Hello Cy.\n"
