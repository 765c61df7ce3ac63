"""Front matter YAML to Python values: a quick reader for the usual shape, PyYAML for the rest.

Nearly every article's front matter is a handful of `key: value` lines with
quoted or plain text, a flow list of tags and perhaps a block list. For those
the quick reader gives exactly what PyYAML would, at a tenth of the cost (a
cold build of 10,000 articles spent a third of its parsing time in PyYAML's
constructors). Anything it is not sure of (escapes, anchors, nesting,
numbers, continuation lines, tabs) goes to PyYAML, which also reports the
errors; `tests/content/test_frontmatter.py` checks the two agree.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


def _loader_class() -> type[yaml.SafeLoader]:
    # The C loader is about 7x faster; python-frontmatter silently falls back to
    # the pure-Python one, so we pick explicitly. Timestamps are left as strings
    # so that every date goes through one ISO 8601 parser with one time-zone rule.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class FrontMatterLoader(base):  # type: ignore[valid-type,misc]
        pass

    FrontMatterLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    # An explicit `!!timestamp` tag stays a string too (PyYAML's own constructor
    # fails with AttributeError on a value it cannot match).
    FrontMatterLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", FrontMatterLoader.construct_yaml_str
    )
    return FrontMatterLoader


LOADER = _loader_class()

# One line of the usual shape: `key:` then, after spaces, a value (or nothing).
_ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*?))? *")
_ITEM = re.compile(r"( *)- +(.*?) *")
_DOUBLE = re.compile(r'"((?:[^"\\]|\\["\\/])*)"')
_ESCAPE = re.compile(r"\\(.)")
# The commonest line of all, `key: "text"`, read in one step.
_QUOTED_ENTRY = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*): +"((?:[^"\\]|\\["\\/])*)" *')
# And the commonest list: `["a", "b"]`.
_QUOTED_LIST = re.compile(r'\[(?: *"[^"\\]*" *(?:, *"[^"\\]*" *)*)?\]')
_QUOTED_ITEM = re.compile(r'"([^"\\]*)"')
_SINGLE = re.compile(r"'((?:[^']|'')*)'")
_FLOW_ITEM = re.compile(
    r""" *(?:"([^"\\]*)"|'((?:[^']|'')*)'|([^ ,\[\]{}#&*!|>'"%@`?:\-][^,\[\]{}#:]*?)) *(,|$)"""
)
# Characters that start something other than plain text, in block context.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# Anything but a newline and printable text (as libyaml counts it) goes to
# PyYAML: tabs, other line breaks (\r, NEL, U+2028/9), byte order marks.
_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def load(source: str) -> Any:
    """The value of *source* as PyYAML's LOADER reads it.

    :raises yaml.YAMLError, ValueError, LookupError: as PyYAML does, for what it refuses.
    """
    quick = read_simple(source)
    if quick is not None:
        return quick
    return yaml.load(source, Loader=LOADER)


def read_simple(source: str) -> dict[str, Any] | None:
    """The mapping in *source* when it has only the usual shape, else None (ask PyYAML)."""
    if _UNUSUAL.search(source):
        return None
    lines = source.split("\n")
    result: dict[str, Any] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        quoted = _QUOTED_ENTRY.fullmatch(line)
        if quoted is not None and _is_text_key(quoted[1]):
            text = quoted[2]
            result[quoted[1]] = _ESCAPE.sub(r"\1", text) if "\\" in text else text
            continue
        if not line.strip(" ") or line.startswith("#"):
            continue
        entry = _ENTRY.fullmatch(line)
        if entry is None or not _is_text_key(entry[1]):
            return None
        key, raw = entry[1], entry[2]
        if raw:
            value = _value(raw)
            if value is _UNSURE:
                return None
        else:
            items, index = _block_items(lines, index)
            if items is _UNSURE:
                return None
            value = items
        result[key] = value
    return result if result else None


class _Unsure:
    """A value the quick reader leaves to PyYAML."""


_UNSURE: Any = _Unsure()


def _value(raw: str) -> Any:
    if raw[0] == "[":
        return _flow_list(raw)
    return _scalar(raw)


def _scalar(raw: str) -> Any:
    if raw[0] == '"':
        quoted = _DOUBLE.fullmatch(raw)
        if quoted is None:
            return _UNSURE
        return _ESCAPE.sub(r"\1", quoted[1]) if "\\" in quoted[1] else quoted[1]
    if raw[0] == "'":
        quoted = _SINGLE.fullmatch(raw)
        return quoted[1].replace("''", "'") if quoted else _UNSURE
    return _plain(raw)


def _plain(raw: str) -> Any:
    if raw[0] in _INDICATORS or ": " in raw or " #" in raw or raw.endswith(":"):
        return _UNSURE
    tag = _resolve(raw)
    if tag == _STR:
        return raw
    if tag == _BOOL:
        return yaml.constructor.SafeConstructor.bool_values[raw.lower()]
    if tag == _NULL:
        return None
    return _UNSURE  # numbers and the rest: PyYAML's constructors decide


def _flow_value(double: str | None, single: str | None, plain: str | None) -> Any:
    """One flow-list item's value, or _UNSURE (a null item, or a plain one we cannot read)."""
    if double is not None:
        return double
    if single is not None:
        return single.replace("''", "'")
    value = _plain(plain or "")
    return _UNSURE if value is None else value


def _flow_list(raw: str) -> Any:
    if _QUOTED_LIST.fullmatch(raw):
        return _QUOTED_ITEM.findall(raw)
    if not raw.endswith("]"):
        return _UNSURE
    inner = raw[1:-1]
    if not inner.strip(" "):
        return []
    items: list[Any] = []
    position = 0
    while position < len(inner):
        item = _FLOW_ITEM.match(inner, position)
        if item is None or item.end() == position:
            return _UNSURE
        value = _flow_value(*item.groups()[:3])
        if value is _UNSURE:
            return _UNSURE
        items.append(value)
        position = item.end()
        if not item.group(4):  # no comma: the last item
            break
        if position == len(inner):
            return _UNSURE  # a trailing comma: leave it to PyYAML
    return items if position == len(inner) else _UNSURE


def _block_items(lines: list[str], index: int) -> tuple[Any, int]:
    """A block list under a `key:` line (or None when none follows), and the next line."""
    items: list[Any] = []
    indent: str | None = None
    while index < len(lines):
        line = lines[index]
        if not line.strip(" "):
            break  # an item after a blank line is not read as a key line: PyYAML decides
        if line[0] not in " -":
            break
        item = _ITEM.fullmatch(line)
        if item is None or (indent is not None and item[1] != indent):
            return _UNSURE, index
        indent = item[1]
        value = _scalar(item[2]) if item[2] else _UNSURE
        if value is _UNSURE or value is None:
            return _UNSURE, index
        items.append(value)
        index += 1
    return (items if items else None), index


@lru_cache(maxsize=256)  # a site uses a dozen keys over thousands of files
def _is_text_key(key: str) -> bool:
    return _resolve(key) == _STR


def _resolve(value: str) -> str:
    """The tag PyYAML's resolver gives a plain scalar (as `Resolver.resolve` does)."""
    resolvers = LOADER.yaml_implicit_resolvers.get(value[0] if value else "", [])
    for tag, regexp in resolvers + LOADER.yaml_implicit_resolvers.get(None, []):
        if regexp.match(value):
            return str(tag)
    return _STR
