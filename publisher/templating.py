"""One Jinja2 environment: the site's templates/ first, then the packaged defaults.

Jinja2 itself is imported on first use: a build with nothing to do never needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import traceback
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import TemplateError

if TYPE_CHECKING:  # Jinja2 is imported when a template is first needed, not by a quick build
    import jinja2

# Text templates (plain-text email, Markdown scaffolds) must not be HTML-escaped.
_PLAIN_SUFFIXES = (".txt.j2", ".md.j2")
# The folder, in the state folder, that keeps templates compiled by earlier runs.
COMPILED_TEMPLATES = "compiled-templates"


@cache
def packaged_templates_dir() -> Path:
    """The default templates: inside the installed wheel, or the repo's templates/.

    The wheel maps the top-level templates/ folder to publisher/templates; an
    editable install or a source checkout finds it beside the package.
    """
    inside = Path(__file__).parent / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).parent.parent / "templates"


def _autoescape(name: str | None) -> bool:
    return name is None or not name.endswith(_PLAIN_SUFFIXES)


def yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML) for front matter."""
    return json.dumps(value, ensure_ascii=False)


def make_environment(
    site_templates: Path | None, *, reload: bool = True, state_dir: Path | None = None
) -> jinja2.Environment:
    """Site templates override packaged ones file by file (a ChoiceLoader).

    *reload* false: a template is read once and never looked at again (a
    build renders 10,000 pages, each extending and including others, and
    would stat every one of their files for each). With *state_dir*,
    compiled templates are kept in it for the next run (see `_bytecode_cache`).
    """
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if site_templates is not None and site_templates.is_dir():
        loaders.append(jinja2.FileSystemLoader(site_templates))
    loaders.append(jinja2.FileSystemLoader(packaged_templates_dir()))
    environment = _environment_class()(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=reload,
        bytecode_cache=None if state_dir is None else _bytecode_cache(state_dir),
    )
    environment.filters["yaml_string"] = yaml_string
    return environment


def _bytecode_cache(state_dir: Path) -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: a build that renders a few pages spent 60 ms
    of its 1.3 s compiling the page templates. A template's entry is used only for
    the same source (Jinja2 compares a checksum) and the same Python; a folder that
    cannot be made means no cache, never a failed run."""
    folder = state_dir / COMPILED_TEMPLATES
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return _quiet_cache_class()(str(folder), "%s.cache")


@cache
def _quiet_cache_class() -> type[jinja2.FileSystemBytecodeCache]:
    import pickle

    import jinja2

    class QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
        """Only ever a help: an entry that cannot be read (damaged, cut short) is compiled
        again, and one that cannot be written is not kept."""

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError, TypeError, pickle.UnpicklingError):
                bucket.reset()  # what pickle (the checksum) and marshal (the code) raise

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    return QuietBytecodeCache


def load_template(environment: jinja2.Environment, name: str) -> jinja2.Template:
    """The compiled template *name* (compiled once per environment).

    :raises TemplateError: on a missing template or a syntax error, naming file and line.
    """
    import jinja2

    try:
        return environment.get_template(name)
    except jinja2.TemplateSyntaxError as err:
        where = f"{err.filename or err.name or name}:{err.lineno}"
        raise TemplateError(where, f"template syntax error: {err.message}") from err
    except jinja2.TemplateNotFound as err:
        raise TemplateError(name, "template not found") from err


def templates_fingerprint(site_templates: Path | None, folder: str) -> str:
    """A hash of every template under *folder* that a site would render, without Jinja2.

    A build compares it to decide whether its pages can stay as they are: the
    site's own files override the packaged ones by name, as the loader does.
    """
    chosen: dict[str, Path] = {}
    for root in (packaged_templates_dir(), site_templates):
        if root is None or not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                chosen[path.relative_to(root).as_posix()] = path
    digest = hashlib.sha256()
    for name in sorted(chosen):
        try:
            data = chosen[name].read_bytes()
        except OSError:
            data = b"\0unreadable"
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


@cache
def _environment_class() -> type[jinja2.Environment]:
    """Jinja2's Environment, reading `card.title` of a dict as its key at the first try.

    The templates are given dicts; Jinja2 looks an attribute up on the object
    first and only then as a key, through a raised AttributeError each time:
    a quarter of the time of rendering a page of ten cards.
    """
    import jinja2

    class Environment(jinja2.Environment):
        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

    return Environment


def render_template(environment: jinja2.Environment, name: str, **context: Any) -> str:
    """Render *name*, turning Jinja2's errors into a TemplateError naming file and line.

    :raises TemplateError: on a missing template, a syntax error or an undefined variable.
    """
    import jinja2

    template = load_template(environment, name)
    try:
        return template.render(**context)
    except jinja2.UndefinedError as err:
        where = _where(template, err)
        raise TemplateError(where, f"undefined variable: {err.message}") from err
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as err:
        where = _where(template, err)
        raise TemplateError(where, f"template error: {err}") from err


def _where(template: jinja2.Template, err: BaseException) -> str:
    """The template's file and the line being rendered when *err* happened."""
    filename = template.filename or template.name or "template"
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(err.__traceback__)
        if frame.filename == template.filename
    ]
    return f"{filename}:{lines[-1]}" if lines else filename
