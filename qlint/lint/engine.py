"""The pipeline: read -> prefilter -> extract facts -> project model -> rules -> suppressions.

Data flows one way: rules never parse, reporters never read files. The fix loop in
``qlint.lint.fixing`` drives this engine again after each round of edits, re-extracting
only the files it changed.
"""

from __future__ import annotations

import ast
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
import pathspec

from qlint.frameworks import celery
from qlint.lint import prefilter
from qlint.lint.cache import FactCache, file_key
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Diagnostic
from qlint.lint.extract import extract, module_name
from qlint.lint.facts import FileFacts
from qlint.lint.model import Project
from qlint.lint.noqa import Suppressions
from qlint.lint.registry import Rule, code_matches
from qlint.lint.source import SourceFile, UndecodableSource
from qlint.settings import Settings

FRAMEWORKS = (celery,)


@dataclass
class FileError:
    path: Path
    message: str


@dataclass
class LintResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    checked: int = 0
    parsed: int = 0


def read_source(path: Path) -> SourceFile:
    return SourceFile.from_bytes(path, path.read_bytes())


def syntax_message(exc: cst.ParserSyntaxError) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid syntax"
    return f"SyntaxError: {first} (line {exc.raw_line}, column {exc.raw_column + 1})"


def _cpython_check(source: bytes | str) -> str | None:
    """Cheap check with CPython's own parser: None if it parses, else "deep" or "error"."""
    try:
        with warnings.catch_warnings():  # e.g. invalid escape sequences: not ours to report
            warnings.simplefilter("ignore")
            compile(source, "<qlint>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (RecursionError, MemoryError):
        return "deep"
    except SyntaxError as exc:
        return "deep" if "too many" in str(exc.msg) else "error"
    except (ValueError, UnicodeError):
        return "error"
    return None


def _parses(raw: bytes) -> bool:
    return _cpython_check(raw) is None


class Linter:
    """Holds every Python file's facts for one run; ``lint`` runs the rules over them."""

    def __init__(self, settings: Settings, rules: list[type[Rule]], *, use_prefilter: bool = True,
                 cache: FactCache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.rules = rules
        self.use_prefilter = use_prefilter
        self.sources: dict[str, SourceFile] = {}
        self.facts: dict[str, FileFacts] = {}
        self.modules: dict[str, tuple[Path, bool]] = {}  # module name -> (path, is_package), unparsed ones
        self.errors: list[FileError] = []
        self.checked = 0
        self._per_file = [(pathspec.PathSpec.from_lines("gitwildmatch", [glob]), codes)
                          for glob, codes in settings.per_file_ignores.items()]

    # -- loading ---------------------------------------------------------------------
    def load(self, paths: list[Path], context: list[Path] = ()) -> None:
        """Read ``paths``; ``context`` files are only parsed if a checked file's facts refer to them."""
        for path in context:
            name, is_pkg = module_name(path)
            self.modules.setdefault(name, (path, is_pkg))
        seeds: list[Path] = []
        for path in paths:
            self.checked += 1
            try:
                raw = path.read_bytes()
            except OSError as exc:
                self.errors.append(FileError(path, f"cannot read file: {exc.strerror or exc}"))
                continue
            name, is_pkg = module_name(path)
            if self._skippable(path, raw, name, is_pkg):
                self.modules.setdefault(name, (path, is_pkg))
            else:
                seeds.append(path)
                self._parse(path, raw, name, is_pkg)
        self._close()
        if self.cache is not None:
            self.cache.save()

    def _skippable(self, path: Path, raw: bytes, name: str, is_pkg: bool) -> bool:
        """The prefilter's verdict. A file it would skip but that cannot be decoded or parsed is
        parsed for real, so that its error is reported as it is without the prefilter."""
        if not self.use_prefilter or prefilter.is_seed(raw) or prefilter.is_settings_path(path.parts):
            return False
        key = file_key(path, raw, name, is_pkg) if self.cache is not None else ""
        if self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None and entry.get("skip"):
                return True
        ok = _parses(raw)
        if ok and self.cache is not None:
            self.cache.put(key, skip=True)
        return ok

    def add_source(self, src: SourceFile, module: str | None = None) -> None:
        """A file given on stdin (or re-read after a fix)."""
        self.checked += 1
        name, is_pkg = module_name(src.path) if module is None else (module, False)
        self._extract(src, name, is_pkg)
        self._close()

    def _parse(self, path: Path, raw: bytes, name: str, is_pkg: bool) -> FileFacts | None:
        cache_key = file_key(path, raw, name, is_pkg) if self.cache is not None else None
        entry = self.cache.get(cache_key) if self.cache is not None else None
        if entry is not None and "error" in entry:
            self.errors.append(FileError(path, entry["error"]))
            return None
        try:
            src = SourceFile.from_bytes(path, raw)
        except UndecodableSource as exc:
            self.errors.append(FileError(path, str(exc)))
            return None
        if entry is not None and "facts" in entry:
            return self._keep(src, entry["facts"], name)
        return self._extract(src, name, is_pkg, cache_key)

    def _extract(self, src: SourceFile, name: str, is_pkg: bool, cache_key: str | None = None) -> FileFacts | None:
        error = None
        if _cpython_check(src.text) == "deep":
            # libcst's native parser overflows its stack (a segfault) on input CPython rejects as
            # too deeply nested: thousands of nested brackets or a long chain of operators.
            error = "file is nested too deeply to parse"
        else:
            try:
                facts = extract(src, name, is_pkg)
            except cst.ParserSyntaxError as exc:
                error = syntax_message(exc)
            except RecursionError:
                error = "file is nested too deeply to parse"
        if error is not None:
            self.errors.append(FileError(src.path, error))
            if cache_key is not None and self.cache is not None:
                self.cache.put(cache_key, error=error)
            return None
        if cache_key is not None and self.cache is not None:
            self.cache.put(cache_key, facts=facts)
        return self._keep(src, facts, name)

    def _keep(self, src: SourceFile, facts: FileFacts, name: str) -> FileFacts:
        key = str(src.path)
        self.sources[key] = src
        self.facts[key] = facts
        self.modules.pop(name, None)
        return facts

    def _load_module(self, name: str) -> FileFacts | None:
        entry = self.modules.get(name)
        if entry is None:
            return None
        path, is_pkg = entry
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        return self._parse(path, raw, name, is_pkg)

    def _close(self) -> None:
        """Parse every unparsed file that spells a name the parsed files bind as task machinery."""
        if not self.use_prefilter:
            return
        seen: set[str] = set()
        while self.modules:
            project = self._project()
            names = set()
            for framework in FRAMEWORKS:
                names |= framework.exported_names(project)
            names -= seen
            if not names:
                return
            seen |= names
            pattern = prefilter.names_pattern(names)
            grew = False
            for name, (path, is_pkg) in list(self.modules.items()):
                try:
                    raw = path.read_bytes()
                except OSError:
                    continue
                if prefilter.mentions(raw, pattern):
                    self._parse(path, raw, name, is_pkg)
                    grew = True
            if not grew:
                return

    def _project(self) -> Project:
        return Project(list(self.facts.values()), loader=self._load_module, module_names=list(self.modules))

    # -- linting ---------------------------------------------------------------------
    def lint(self) -> list[Diagnostic]:
        project = self._project()
        for framework in FRAMEWORKS:
            framework.collect(project)
        ctx = RuleContext(project, self.sources, self.settings)
        for rule_cls in self.rules:
            ctx.rule = rule_cls
            rule_cls().check(ctx)
        if self.cache is not None:  # modules parsed on demand while resolving names
            self.cache.save()
        return self._suppress(ctx.diagnostics)

    def _suppress(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        kept = []
        suppressions: dict[str, Suppressions] = {}
        for d in diagnostics:
            key = str(d.path)
            if self._ignored_by_config(d):
                continue
            src = self.sources.get(key)
            if src is not None:
                if key not in suppressions:
                    suppressions[key] = Suppressions.for_python(src)
                sup = suppressions[key]
                if sup.file_level or code_matches(sup.file_codes, d.code) or sup.suppresses(d.code, d.noqa_rows):
                    continue
            kept.append(d)
        kept.sort(key=lambda d: d.sort_key)
        return kept

    def _ignored_by_config(self, d: Diagnostic) -> bool:
        if not self._per_file:
            return False
        try:
            rel = os.path.relpath(d.path, self.settings.root)
        except ValueError:
            return False
        rel = rel.replace(os.sep, "/")
        return any(spec.match_file(rel) and code_matches(codes, d.code) for spec, codes in self._per_file)

    def replace_source(self, src: SourceFile) -> None:
        key = str(src.path)
        old = self.facts.get(key)
        name, is_pkg = (old.module, old.is_package) if old else module_name(src.path)
        self._extract(src, name, is_pkg)
