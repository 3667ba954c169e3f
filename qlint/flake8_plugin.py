"""flake8 plugin: qlint's Python rules as ``QLT`` codes (entry point ``flake8.extension``).

flake8 instantiates :class:`QlintChecker` once per file, in each worker process of its
``--jobs`` pool. Cross-file rules (a time limit set in the app's config module, one finding
on an app for all its tasks) need the whole project, so each process keeps one
:class:`_ProjectState` per (settings root, configuration file), built by the first file
checked there: it reads the project as ``qlint check`` does (through the cache) and runs the
rules once; each file then gets its own findings. A file whose text differs from the one on
disk (``lines``: stdin, an editor's unsaved buffer) replaces it in the model, which is linted
again, so the answer is the same as ``qlint check`` gives for that text.

Suppression: flake8 applies its own ``# noqa`` to what the plugin yields (prefix match,
the finding's logical line). The plugin also applies qlint's, so a file gets the same
findings from ``flake8`` as from ``qlint check``: qlint accepts everything flake8 does and
more (a comment on any line of the finding's statement, e.g. on the ``def`` line of a task
reported on its decorator; ``# qlint: noqa[: CODES]`` file directives). Under flake8's
``--disable-noqa`` neither applies. qlint's rule selection (``select``/``ignore``) and
``per-file-ignores`` always apply; flake8's ``--select``/``--ignore`` filter further.

Importing this module is cheap; qlint's engine is imported on first use.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from qlint.lint.diagnostics import Diagnostic
    from qlint.settings import Settings

try:
    from qlint import __version__ as _version
except Exception:  # pragma: no cover - qlint always has a version
    _version = "0"

# Reported on line 1 when the ``[tool.qlint]`` configuration cannot be used (no rule has it).
CONFIG_ERROR = "QLT000"

# Per process: directory -> Settings, and (root, config path) -> project state.
_SETTINGS: dict[str, "Settings"] = {}
_PROJECTS: dict[tuple[str, str], "_ProjectState"] = {}


def _settings_for(path: Path) -> "Settings":
    from qlint.settings import load_settings

    directory = os.path.dirname(str(path))
    settings = _SETTINGS.get(directory)
    if settings is None:
        settings = _SETTINGS[directory] = load_settings(None, [path])
    return settings


def _linter_class():
    from qlint.lint.engine import Linter

    class PluginLinter(Linter):
        """A Linter whose ``# noqa`` handling can be switched off (flake8's ``--disable-noqa``)."""

        apply_noqa = True

        def _suppress(self, diagnostics: list["Diagnostic"]) -> list["Diagnostic"]:
            if self.apply_noqa:
                return super()._suppress(diagnostics)
            kept = [d for d in diagnostics if not self._ignored_by_config(d)]
            kept.sort(key=lambda d: d.sort_key)
            return kept

    return PluginLinter


class _ProjectState:
    """One project's model in this process: the whole project read once (through the cache),
    linted once; each file flake8 hands over gets its share of those findings. A file whose
    text differs from what was read (stdin, an editor's unsaved buffer) replaces it in the
    model, which is then linted again."""

    def __init__(self, settings: "Settings") -> None:
        from qlint.lint.cache import FactCache
        from qlint.lint.discovery import discover
        from qlint.lint.registry import select_rules

        self.settings = settings
        rules = select_rules(settings.select, settings.extend_select, settings.ignore)
        # Read-only: several flake8 workers would otherwise race to rewrite the same file.
        cache = None if os.environ.get("QLINT_NO_CACHE") else FactCache(settings.root, read_only=True)
        self.linter = _linter_class()(settings, rules, cache=cache)
        if multiprocessing.current_process().daemon:
            # A flake8 --jobs worker: it may not start processes of its own (qlint's parse pool).
            self.linter.workers = 1
        found = discover([Path(settings.root)], settings)
        # flake8's name for a file ("./proj/tasks.py", a symlink) -> the discovered path, so
        # a checked file replaces its entry instead of joining the model twice.
        self._by_real = {os.path.realpath(p): p for p in found.python}
        self.linter.load(found.python)
        self.linter.load_manifests([*found.yaml, *found.procfiles, *found.scripts, *found.terraform])
        self._findings: dict[bool, dict[str, list["Diagnostic"]]] = {}  # apply_noqa -> path -> findings

    def path_for(self, filename: str) -> Path:
        absolute = os.path.abspath(filename)
        return self._by_real.get(os.path.realpath(absolute), Path(absolute))

    def _read_as(self, key: str, text: str) -> bool:
        """Whether the model already holds ``text`` for this file (or skipped it, unchanged)."""
        src = self.linter.sources.get(key)
        if src is not None:
            return src.text == text
        if key in self.linter.facts or os.path.realpath(key) not in self._by_real:
            return False
        try:
            with open(key, encoding="utf-8", newline="") as handle:
                return handle.read() == text  # the prefilter skipped it: no task code, no finding
        except (OSError, UnicodeError):
            return False

    def check(self, path: Path, text: str, apply_noqa: bool) -> list["Diagnostic"]:
        from qlint.lint.source import SourceFile

        linter = self.linter
        key = str(path)
        if not self._read_as(key, text):
            try:
                src = SourceFile.from_text(path, text)
            except UnicodeError:
                return []
            before = len(linter.errors)
            linter.add_source(src)
            self._findings.clear()
            if any(str(e.path) == key for e in linter.errors[before:]):
                # The file could not be read (flake8 reports its own E999 for syntax errors):
                # nothing to say, rather than findings from stale facts.
                del linter.errors[before:]
                return []
        elif any(str(e.path) == key for e in linter.errors):
            return []
        by_path = self._findings.get(apply_noqa)
        if by_path is None:
            linter.apply_noqa = apply_noqa
            by_path = self._findings[apply_noqa] = {}
            for d in linter.lint():
                by_path.setdefault(str(d.path), []).append(d)
        return by_path.get(key, [])


def _state_for(filename: str) -> tuple[_ProjectState, Path]:
    path = Path(os.path.abspath(filename))
    settings = _settings_for(path)
    key = (str(settings.root), str(settings.config_path))
    state = _PROJECTS.get(key)
    if state is None:
        state = _PROJECTS[key] = _ProjectState(settings)
    return state, state.path_for(filename)


class QlintChecker:
    """flake8 checker. ``tree`` is unused (qlint parses ``lines`` itself), but a plugin
    that asks for neither ``tree`` nor ``logical_line``/``physical_line`` is not loaded."""

    name = "qlint"
    version = _version

    def __init__(self, tree: ast.AST, lines: list[str], filename: str = "stdin", options: Any = None) -> None:
        self.lines = lines
        self.filename = filename
        self.options = options

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        from qlint.settings import ConfigError

        try:
            state, path = _state_for(self.filename)
        except ConfigError as exc:
            # A finding, not an exception: flake8 would print a traceback (from a worker, too),
            # and a silent pass would hide that nothing was checked.
            yield 1, 0, f"{CONFIG_ERROR} invalid qlint configuration: {exc}", type(self)
            return
        disable_noqa = bool(getattr(self.options, "disable_noqa", False))
        for d in state.check(path, "".join(self.lines), not disable_noqa):
            # qlint's columns are 1-based characters; flake8 wants a 0-based offset.
            yield d.location.row, max(d.location.column - 1, 0), f"{d.code} {d.message}", type(self)
