"""The import rules that import-linter's contracts cannot state, read from the source.

A name of ours that starts with `_` belongs to its module: no other module
imports it or reaches it as an attribute. A private module (`cli/_common.py`)
belongs to its package: the modules inside that package may import it, no one
outside. And no module of ours is loaded by a string (`importlib.import_module`,
`__import__`), which no import graph, and so no contract, can see.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def find_violations(package_dir: Path) -> list[str]:
    """`path:line: what` for each break of the rules in the package at *package_dir*.

    Paths are relative to the package's parent folder, as `publisher/cli/digests.py`.
    """
    modules = _modules(package_dir)
    return [
        f"{module.path.relative_to(package_dir.parent).as_posix()}:{line}: {message}"
        for module in sorted(modules.values(), key=lambda m: m.path)
        for line, message in _FileCheck(module, modules).violations()
    ]


def _modules(package_dir: Path) -> dict[str, Module]:
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = Module(".".join(parts), path, is_package)
    return modules


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_within(importer: str, owner: str) -> bool:
    return importer == owner or importer.startswith(f"{owner}.")


class _FileCheck:
    """One module's imports and attribute uses, held against the rules."""

    def __init__(self, module: Module, modules: dict[str, Module]) -> None:
        self.module = module
        self.modules = modules
        self.root = module.name.split(".")[0]
        self.tree = ast.parse(module.path.read_bytes(), filename=str(module.path))
        self.bound: dict[str, str] = {}  # local name -> the module of ours it names
        self.importlib_names: set[str] = set()  # local names of importlib itself
        self.loader_names: set[str] = {"__import__"}  # local names of the loaders

    def violations(self) -> Iterator[tuple[int, str]]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                yield from self._check_import(node)
            elif isinstance(node, ast.ImportFrom):
                yield from self._check_import_from(node)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute):
                yield from self._check_attribute(node)
            elif isinstance(node, ast.Call):
                yield from self._check_call(node)

    def _is_ours(self, name: str) -> bool:
        return _is_within(name, self.root)

    def _check_import(self, node: ast.Import) -> Iterator[tuple[int, str]]:
        for alias in node.names:
            yield from self._check_path(node.lineno, alias.name)
            if alias.name == "importlib" or (
                alias.name.startswith("importlib.") and not alias.asname
            ):
                self.importlib_names.add(alias.asname or "importlib")
            elif self._is_ours(alias.name):
                local = alias.asname or alias.name.split(".")[0]
                self.bound[local] = alias.name if alias.asname else local

    def _check_import_from(self, node: ast.ImportFrom) -> Iterator[tuple[int, str]]:
        base = self._resolve(node)
        yield from self._check_path(node.lineno, base)
        for alias in node.names:
            target = f"{base}.{alias.name}"
            if base == "importlib" and alias.name in DYNAMIC_IMPORTS:
                self.loader_names.add(alias.asname or alias.name)
            if target in self.modules:
                self.bound[alias.asname or alias.name] = target
            if _is_private(alias.name):
                yield from self._check_private(node.lineno, base, alias.name, "imports")

    def _resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.name.split(".")
        if not self.module.is_package:
            parts.pop()
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, node.module] if node.module else parts)

    def _check_path(self, line: int, dotted: str) -> Iterator[tuple[int, str]]:
        """A private segment in an imported module's path: `a._b.c` belongs to `a`."""
        parts = dotted.split(".")
        for index, part in enumerate(parts):
            if _is_private(part):
                owner, name = ".".join(parts[:index]), part
                yield from self._check_private(line, owner, name, "imports")
                return

    def _check_private(
        self, line: int, owner: str, name: str, verb: str
    ) -> Iterator[tuple[int, str]]:
        if not self._is_ours(owner):
            return  # another project's privacy (`_typeshed` for types) is its own affair
        target = f"{owner}.{name}"
        if target in self.modules:
            if not _is_within(self.module.name, owner):
                yield line, f"{verb} the private module {target} from outside {owner}"
        elif self.module.name != owner:
            yield line, f"{verb} the private name {name} of {owner}"

    def _check_attribute(self, node: ast.Attribute) -> Iterator[tuple[int, str]]:
        owner = self._module_named_by(node.value)
        if owner is not None and _is_private(node.attr):
            yield from self._check_private(node.lineno, owner, node.attr, "uses")

    def _module_named_by(self, node: ast.expr) -> str | None:
        """The module of ours that `name` or `name.sub.sub` stands for, if any."""
        if isinstance(node, ast.Name):
            return self.bound.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self._module_named_by(node.value)
            if parent is not None and f"{parent}.{node.attr}" in self.modules:
                return f"{parent}.{node.attr}"
        return None

    def _check_call(self, node: ast.Call) -> Iterator[tuple[int, str]]:
        function = self._dynamic_import(node.func)
        if function is None:
            return
        argument = node.args[0] if node.args else None
        for keyword in node.keywords:
            if keyword.arg == "name":
                argument = keyword.value
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            name = argument.value
            if self._is_ours(name) or name.startswith("."):
                yield node.lineno, f"loads {name} by a string ({function})"
        else:
            yield node.lineno, f"loads a module by a computed name ({function})"

    def _dynamic_import(self, func: ast.expr) -> str | None:
        """`importlib.import_module`, `import_module` or `__import__`, if *func* is one."""
        if isinstance(func, ast.Name):
            return func.id if func.id in self.loader_names else None
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in DYNAMIC_IMPORTS
            and isinstance(func.value, ast.Name)
            and func.value.id in self.importlib_names
        ):
            return f"{func.value.id}.{func.attr}"
        return None
