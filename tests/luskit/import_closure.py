"""The repository's own modules a module imports, transitively, found statically with `ast`.

Every import statement counts, wherever it sits (top level, inside a function, under `if TYPE_CHECKING`), since a
stage's lazy imports run too; importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`. Modules outside
PACKAGES (numpy, torch, the standard library) are left out: DVC tracks this repository's code, the lock file pins
the rest. Imports by name (importlib.import_module("training.models.c3d")) count too: any string constant that is
exactly a repository module's dotted name is taken as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("luskit", "curation", "labeling", "training")


def module_file(root: Path, dotted: str) -> Path | None:
    """root/a/b.py or root/a/b/__init__.py for "a.b", or None when it is not one of the repository's modules."""
    if dotted.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _parents(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_names(root: Path, dotted: str, path: Path) -> set[str]:
    """Dotted names of the repository modules `path` (module `dotted`) imports directly, with their packages."""
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.update(_parents(base))
            for alias in node.names:  # `from pkg import mod` imports the submodule pkg.mod when there is one
                found.add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count(".") >= 1:
            found.update(_parents(node.value))  # a module named in a string (importlib); non-modules drop out below
    return {name for name in found if module_file(root, name) is not None}


def closure(root: Path, start: str) -> dict[str, Path]:
    """{dotted name: file} of `start`, its packages, and every repository module they import, transitively."""
    todo, seen = list(_parents(start)), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(imported_names(root, name, path) - set(seen))
    return seen
