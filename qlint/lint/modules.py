"""Module names from file paths, as Python imports them.

A file inside regular packages (folders with ``__init__.py``) is named from the highest of
them, through namespace folders between (``proj/__init__.py`` + ``proj/sub/tasks.py`` is
``proj.sub.tasks``): the package's parent is what is on ``sys.path``. A file with no regular
package above it is named by its path relative to the deepest source root holding it (the
project root and its ``src/`` by default, as ruff's ``src`` setting): ``proj/celery.py`` in a
project without ``__init__.py`` files is ``proj.celery``, not ``celery``. A module inside
packages whose top sits below a source root can also be imported by its path from that root;
that spelling is kept as an alias, so an import written either way resolves.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from qlint.lint.paths import real_path


@lru_cache(maxsize=8192)
def _is_package_dir(directory: Path) -> bool:
    return (directory / "__init__.py").is_file()


@lru_cache(maxsize=8192)
def _is_repo_root(directory: Path) -> bool:
    return (directory / ".git").exists()


@lru_cache(maxsize=8192)
def _package_parts(folder_name: str) -> tuple[str, ...]:
    """The regular packages a module in ``folder_name`` sits in (computed once per folder)."""
    folder = Path(folder_name)
    directory = folder.resolve() if folder.exists() else folder
    chain = []  # folders from the file's upwards
    top = -1  # index in ``chain`` of the highest folder that is a regular package
    current = directory
    for index in range(12):
        if not current.name:
            break
        chain.append(current.name)
        if _is_package_dir(current):
            top = index
        if _is_repo_root(current) or current.parent == current:
            break
        current = current.parent
    return tuple(reversed(chain[: top + 1])) if top >= 0 else ()


def _split(path: str | os.PathLike[str]) -> tuple[str, str]:
    folder, _, filename = os.fspath(path).rpartition(os.sep)
    stem = filename.rpartition(".")[0] if "." in filename.lstrip(".") else filename
    return folder or ".", stem


class ModuleNames:
    """Names modules for one project: ``roots`` are its source roots (absolute)."""

    def __init__(self, roots: list[Path] | tuple[Path, ...] = ()) -> None:
        real = {os.path.realpath(r) for r in roots}
        self.roots = tuple(sorted(real, key=len, reverse=True))  # deepest first
        self._relative: dict[str, tuple[str, ...] | None] = {}

    def _root_parts(self, folder: str) -> tuple[str, ...] | None:
        """``folder`` relative to the deepest source root holding it, as name parts."""
        found = self._relative.get(folder, False)
        if found is not False:
            return found
        real = real_path(folder)
        result = None
        for root in self.roots:
            if real == root:
                result = ()
                break
            if real.startswith(root.rstrip(os.sep) + os.sep):
                parts = tuple(real[len(root.rstrip(os.sep)) + 1:].split(os.sep))
                result = parts if all(p.isidentifier() for p in parts) else None
                break
        self._relative[folder] = result
        return result

    def name(self, path: str | os.PathLike[str]) -> tuple[str, bool]:
        """(dotted module name, whether the file is a package's ``__init__``)."""
        folder, stem = _split(path)
        parts = _package_parts(folder)
        if parts:
            relative = self._root_parts(folder)
            if relative is not None and len(relative) < len(parts):
                # A source root is on ``sys.path``: packages above it (a repository root with an
                # ``__init__.py``) are no part of the name.
                parts = relative
        else:
            parts = self._root_parts(folder) or ()
        is_package = stem == "__init__"
        parts = (*parts, stem) if not is_package else parts
        return ".".join(parts) or stem, is_package

    def aliases(self, path: str | os.PathLike[str]) -> tuple[str, ...]:
        """Other names the module can be imported by: its path from a source root when that
        differs from its package name (``server/polar/worker.py``: ``server.polar.worker``)."""
        folder, stem = _split(path)
        relative = self._root_parts(folder)
        if relative is None:
            return ()
        name, is_package = self.name(path)
        parts = relative if is_package else (*relative, stem)
        alias = ".".join(parts)
        return (alias,) if alias and alias != name else ()


# Files named without a project (``extract(src)`` with no module name): the current folder.
_DEFAULT = ModuleNames()


def module_name(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """A module's name outside any project's settings (regular packages, else the file's stem)."""
    return _DEFAULT.name(path)
