"""The pipeline: read -> prefilter -> extract facts -> project model -> rules -> suppressions.

Data flows one way: rules never parse, reporters never read files. The fix loop in
``qlint.lint.fixing`` drives this engine again after each round of edits, re-extracting
only the files it changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pathspec

from qlint.frameworks import arq, celery, dramatiq, huey, rq, taskiq
from qlint.lint import extract, parallel, prefilter
from qlint.lint.cache import FactCache, file_key
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Diagnostic
from qlint.lint.facts import FileFacts
from qlint.lint.model import Project
from qlint.lint.modules import ModuleNames
from qlint.lint.noqa import Suppressions
from qlint.lint.production import GLOB_STYLE, classifier
from qlint.lint.registry import Rule, all_rules, code_matches
from qlint.lint.source import SourceFile, UndecodableSource
from qlint.lint.trees import Trees
from qlint.manifests import collect as manifests
from qlint.manifests import sidekiq, yamldoc
from qlint.settings import Settings

FRAMEWORKS = (celery, rq, dramatiq, huey, taskiq, arq)
def _used(project: Project, framework) -> bool:
    """A framework's tasks, apps and call sites all resolve through an import of one of its
    packages (``framework.PACKAGE_HINTS``: a top-level package whose name holds one, such as
    ``django_rq`` or ``taskiq_redis``). Where no parsed file imports one, collecting it would find
    nothing, slowly. A framework without hints (Celery: its settings need no import) always is."""
    hints = getattr(framework, "PACKAGE_HINTS", None)
    if hints is None:
        return True
    heads = getattr(project, "_import_heads", None)
    if heads is None or heads[0] != len(project.files):  # computed once per set of files
        names = {target.partition(".")[0] for facts in project.all_parsed_files()
                 for target in (*facts.imports.values(), *facts.star_imports)}
        heads = project._import_heads = (len(project.files), names)
    return any(hint in head for head in heads[1] for hint in hints)


@dataclass
class FileError:
    path: Path
    message: str


def _rule_failure(rule: type[Rule], exc: Exception) -> str:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "qlint" in f.filename]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (f"internal error in rule {rule.code} ({rule.name}){where}: {type(exc).__name__}: {exc}; "
            "its findings are missing, every other rule's are reported; please report it")




def _readable(raw: bytes, grammar: bool) -> bool:
    """The bytes decode as Python source (and, with ``grammar``, parse)."""
    try:
        src = SourceFile.from_bytes(Path("<prefilter>"), raw)
        if grammar:
            extract.parse(src)
    except (UndecodableSource, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


# Bytes that make a file worth parsing for a rule whatever the framework prefilter says (a noqa
# comment naming QLT codes, to judge; a password literal). Every rule's are searched, and the
# cache keeps which matched, so that a cached verdict holds whichever rules a run selects.
@lru_cache(maxsize=1)
def _rule_seeds() -> tuple:
    return tuple((r.code, p) for r in all_rules() if (p := getattr(r, "prefilter_seed", None)) is not None)


class Linter:
    """Holds every Python file's facts for one run; ``lint`` runs the rules over them."""

    def __init__(self, settings: Settings, rules: list[type[Rule]], *, use_prefilter: bool = True,
                 cache: FactCache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.workers = parallel.worker_count()
        self.rules = rules
        self.use_prefilter = use_prefilter
        self.production = classifier(settings)
        self.names = ModuleNames([Path(settings.root) / src for src in settings.src])
        self.aliases: dict[str, str] = {}  # another name a module is imported by -> its name
        self.sources: dict[str, SourceFile] = {}
        self.facts: dict[str, FileFacts] = {}
        self.modules: dict[str, tuple[Path, bool]] = {}  # module name -> (path, is_package), unparsed ones
        self._changes = 0  # facts or manifests replaced: a collected model of before is stale
        self.trees = Trees()
        self._collected: tuple[tuple, Project] | None = None
        self.errors: list[FileError] = []
        self.checked = 0
        self.from_cache = 0
        self.rule_failures: list[str] = []  # internal errors of rules, reported and exit 2
        self._per_file = [(pathspec.PathSpec.from_lines(GLOB_STYLE, [glob]), codes)
                          for glob, codes in settings.per_file_ignores.items()]
        # Rules judged after suppression (QLT001).
        self._selected_seeds = {r.code for r in rules if getattr(r, "prefilter_seed", None) is not None}
        self._late = [r for r in rules if getattr(r, "after_suppression", False)]
        self.suppressions: dict[str, Suppressions] | None = None  # as the last ``_suppress`` left them
        self.manifests: dict[str, manifests.ManifestFile] = {}
        self.skipped: list[tuple[Path, str]] = []  # manifests not read, and why (verbose output)
        # Files named on the command line (pre-commit passes the changed ones): their syntax
        # errors are reported even when the prefilter skips them.
        self.named: set[str] = set()
        self._keys: dict[str, str] = {}  # path -> cache key of the bytes read by ``load``

    # -- loading ---------------------------------------------------------------------
    def load(self, paths: list[Path], context: list[Path] = ()) -> None:
        """Read ``paths``; ``context`` files are only parsed if a checked file's facts refer to them."""
        for path in context:
            name, is_pkg = self._module_name(path)
            self.modules.setdefault(name, (path, is_pkg))
        extraction = parallel.Extraction(self.workers)
        for path in paths:
            self.checked += 1
            name, is_pkg = self._module_name(path)
            if not self.production.is_production(path) and str(path) not in self.named:
                # Test and example code is context: parsed only if production code refers to it.
                self.modules.setdefault(name, (path, is_pkg))
                continue
            if self._skipped_unread(path, name, is_pkg):
                self.modules.setdefault(name, (path, is_pkg))
                continue
            try:
                st = os.stat(path) if self.cache is not None else None
                with open(path, "rb") as handle:
                    raw = handle.read()
            except OSError as exc:
                self.errors.append(FileError(path, f"cannot read file: {exc.strerror or exc}"))
                continue
            if self.cache is not None:
                self.cache.remember_stat(path, st, name, is_pkg, self._key(path, raw, name, is_pkg))
            if self._skippable(path, raw, name, is_pkg):
                self.modules.setdefault(name, (path, is_pkg))
            else:
                self._submit((path, raw, name, is_pkg), extraction)
        self._receive(extraction)
        self._close()
        if self.cache is not None:
            self.cache.save()

    def load_manifests(self, paths: list[Path]) -> None:
        """Kubernetes / docker-compose YAML and Procfiles: read, never executed."""
        for path in paths:
            self.checked += 1
            if not self.production.is_production(path) and str(path) not in self.named:
                continue  # a compose file for tests, a fixture: no production worker is started there
            try:
                raw = path.read_bytes()
            except OSError as exc:
                self.errors.append(FileError(path, f"cannot read file: {exc.strerror or exc}"))
                continue
            self.add_manifest(path, raw)

    def add_manifest(self, path: Path, raw: bytes) -> None:
        try:
            src = SourceFile.from_bytes(path, raw)
        except UndecodableSource as exc:
            if yamldoc.looks_like_manifest(raw):
                self.errors.append(FileError(path, str(exc)))
            else:
                self.skipped.append((path, str(exc)))
            return
        try:
            found = manifests.read(src)
        except yamldoc.Skipped as exc:
            self.skipped.append((path, str(exc)))
            return
        except yamldoc.Invalid as exc:
            if yamldoc.looks_like_manifest(raw):
                self.errors.append(FileError(path, str(exc)))
            else:  # some other YAML file (a CI workflow's cousin): not ours to judge
                self.skipped.append((path, str(exc)))
            return
        self.manifests[str(path)] = found
        self.sources[str(path)] = src
        self._changes += 1

    def _skippable(self, path: Path, raw: bytes, name: str, is_pkg: bool) -> bool:
        """The prefilter's verdict. A file it would skip but that cannot be decoded (a binary
        file, a wrong encoding) is read for real, so that its error is reported as it is without
        the prefilter. Its grammar is checked only when the file was named on the command line:
        parsing every file would cost more than all the rest of a cold run, and a file without
        task code holds no finding either way."""
        if not self.use_prefilter:
            return False
        key = self._key(path, raw, name, is_pkg) if self.cache is not None else ""
        named = str(path) in self.named
        if self.cache is not None and not named:
            # The verdict depends only on the bytes and the path, both in the key, and on which
            # rules' seeds matched (kept with it): a cached verdict saves every token search.
            # (A named file's grammar is checked all the same.)
            seeds = self.cache.skipped(key)
            if seeds is not None:
                return not self._selected_seeds.intersection(seeds)
            if self.cache.candidate(key):
                return False
        if prefilter.is_seed(raw) or prefilter.is_settings_path(path.parts):
            if self.cache is not None:
                self.cache.put(key, skip=False)
            return False
        seeds = [code for code, p in _rule_seeds() if p.search(raw)]
        ok = _readable(raw, grammar=named)
        if ok and self.cache is not None:
            self.cache.put(key, skip=True, seeds=seeds)
        return ok and not self._selected_seeds.intersection(seeds)

    def _module_name(self, path: Path) -> tuple[str, bool]:
        """The module's name (qlint.lint.modules), its other import names remembered."""
        name, is_pkg = self.names.name(path)
        for alias in self.names.aliases(path):
            self.aliases.setdefault(alias, name)
        return name, is_pkg

    def _key(self, path: Path, raw: bytes, name: str, is_pkg: bool) -> str:
        key = self._keys.get(str(path))
        if key is None:
            key = self._keys[str(path)] = file_key(path, raw, name, is_pkg)
        return key

    def _skipped_unread(self, path: Path, name: str, is_pkg: bool) -> bool:
        """A file the cache knows the prefilter skips, known unchanged by its size and time."""
        if self.cache is None or not self.use_prefilter or str(path) in self.named:
            return False
        key = self.cache.key_by_stat(path, name, is_pkg)
        if key is None:
            return False
        seeds = self.cache.skipped(key)
        if seeds is None or self._selected_seeds.intersection(seeds):
            return False
        self._keys[str(path)] = key
        return True

    def add_source(self, src: SourceFile, module: str | None = None) -> None:
        """A file given on stdin (or re-read after a fix)."""
        self.checked += 1
        name, is_pkg = self._module_name(src.path) if module is None else (module, False)
        self._extract(src, name, is_pkg)
        self._close()

    def _parse_many(self, items: list[tuple[Path, bytes, str, bool]]) -> None:
        """Parse a batch: cached files from the cache, the rest across a process pool when it pays."""
        extraction = parallel.Extraction(self.workers)
        for item in items:
            self._submit(item, extraction)
        self._receive(extraction)

    def _submit(self, item: tuple[Path, bytes, str, bool], extraction: parallel.Extraction) -> None:
        """A file to parse: from the cache now, or handed to ``extraction``."""
        path, raw, name, is_pkg = item
        if self.cache is not None:
            entry = self.cache.get(file_key(path, raw, name, is_pkg))
            if entry is not None and ("facts" in entry or "error" in entry):
                self._parse(path, raw, name, is_pkg, entry)
                return
        extraction.add(item)

    def _receive(self, extraction: parallel.Extraction) -> None:
        for (path, raw, name, is_pkg), result in extraction.results():
            if result is None:  # not sent to a worker: extract here
                self._parse(path, raw, name, is_pkg)
                continue
            facts, error = result
            key = file_key(path, raw, name, is_pkg) if self.cache is not None else None
            if error is not None:
                self.errors.append(FileError(path, error))
                if key is not None and not error.startswith(parallel.INTERNAL):
                    self.cache.put(key, error=error)
                continue
            src = SourceFile.from_bytes(path, raw)
            if key is not None:
                self.cache.put(key, facts=facts)
            self._keep(src, facts, name)

    def _parse(self, path: Path, raw: bytes, name: str, is_pkg: bool, entry: dict | None = None) -> FileFacts | None:
        cache_key = file_key(path, raw, name, is_pkg) if self.cache is not None else None
        if entry is None and self.cache is not None:
            entry = self.cache.get(cache_key)
        if entry is not None and "error" in entry:
            self.errors.append(FileError(path, entry["error"]))
            return None
        try:
            src = SourceFile.from_bytes(path, raw)
        except UndecodableSource as exc:
            self.errors.append(FileError(path, str(exc)))
            return None
        if entry is not None and "facts" in entry:
            self.from_cache += 1
            return self._keep(src, entry["facts"], name)
        return self._extract(src, name, is_pkg, cache_key)

    def _extract(self, src: SourceFile, name: str, is_pkg: bool, cache_key: str | None = None) -> FileFacts | None:
        facts, error = parallel.extract_source(src, name, is_pkg)
        if error is not None or facts is None:
            self.errors.append(FileError(src.path, error or "cannot parse"))
            if cache_key is not None and self.cache is not None and not (error or "").startswith(parallel.INTERNAL):
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
        self._changes += 1
        self.trees.forget(key)
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
        """Parse every unparsed file that spells a name the parsed files bind as task machinery,
        then every file that calls a task's enqueue method (``charge.send(...)`` in a module
        that imports ``charge`` from the project and never names the framework)."""
        if not self.use_prefilter:
            return
        seen: set[str] = set()
        while any(self.production.is_production(path) for path, _ in self.modules.values()):
            project = self._project()
            names = set()
            for framework in FRAMEWORKS:
                if _used(project, framework):
                    names |= framework.exported_names(project)
            names -= seen
            if not names:
                break
            seen |= names
            if not self._parse_mentioning(prefilter.names_pattern(names), "\0".join(sorted(names))):
                break
        called: set[str] = set()
        while any(self.production.is_production(path) for path, _ in self.modules.values()):
            tasks = {t.function.name if t.function is not None else t.cls.name
                     for t in self._collect().tasks if t.function is not None or t.cls is not None}
            tasks -= called
            if not tasks:
                return
            called |= tasks
            if not self._parse_mentioning(prefilter.calls_pattern(tasks), "calls\0" + "\0".join(sorted(tasks))):
                return

    def _parse_mentioning(self, pattern, question_text: str) -> bool:
        """Parse the unparsed production files ``pattern`` matches; whether there were any."""
        # A warm run asks the same question of the same bytes: the answer is cached per file
        # version and question, so unchanged files are neither read nor searched again.
        question = hashlib.blake2b(question_text.encode(), digest_size=8).hexdigest()
        batch = []
        for name, (path, is_pkg) in list(self.modules.items()):
            if not self.production.is_production(path):
                continue  # never scanned for task machinery: parsed only when named
            key = self._keys.get(str(path))
            if key is not None and self.cache is not None and \
                    self.cache.mentions(key, question) is False:
                continue
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            found = prefilter.mentions(raw, pattern)
            if key is not None and self.cache is not None:
                self.cache.put_mentions(key, question, found)
            if found:
                batch.append((path, raw, name, is_pkg))
        if not batch:
            return False
        self._parse_many(batch)
        return True

    def _project(self) -> Project:
        return Project(list(self.facts.values()), loader=self._load_module, module_names=list(self.modules),
                       production=self.production.is_production, aliases=self.aliases)

    def model(self) -> Project:
        """The project model with every framework's apps and tasks collected (``qlint tasks``)."""
        project = self._collect()
        if self.cache is not None:  # modules parsed on demand while resolving names
            self.cache.save()
        return project

    def _state(self) -> tuple:
        return self._changes, len(self.modules), len(self.aliases), len(self.manifests)

    def _collect(self, reuse: bool = False) -> Project:
        """Frameworks' apps, tasks and sites; manifests' workloads and workers; what the workers change.
        With ``reuse``, the model the call-site closure last collected is taken when nothing was
        read since (collecting a generated module's 30,000 tasks twice cost seconds); rules get
        it once, since they may annotate what they read."""
        if reuse and self._collected is not None and self._collected[0] == self._state():
            project = self._collected[1]
            self._collected = None
            return project
        self._collected = None
        project = self._build()
        self._collected = (self._state(), project)
        return project

    def _build(self) -> Project:
        project = self._project()
        for framework in FRAMEWORKS:
            if _used(project, framework):
                framework.collect(project)
        # A compose file for tests starts no production worker: it neither counts nor is judged.
        production = [m for key, m in self.manifests.items() if self.production.is_production(key)]
        workloads, workers = manifests.join(production, {fw.FRAMEWORK: fw.CLI for fw in FRAMEWORKS})
        # Shell scripts tell how workers are started (their flags), but are no deployment to judge.
        project.workloads = [w for w in workloads if w.kind != "script"]
        project.workers = [w for w in workers if w.workload.kind != "script"]
        project.script_workers = [w for w in workers if w.workload.kind == "script"]
        project.templates = [t for m in production for t in m.templates]  # SQS queues and their consumers
        project.task_queues = [q for m in production for q in m.task_queues]  # Cloud Tasks (queue.yaml)
        configs = {m.path: m.sidekiq_config for m in production if m.sidekiq_config is not None}
        project.sidekiq = sidekiq.processes(project.workloads, configs, str(self.settings.root))
        project.databases = {m.path: m.database for m in production if m.database is not None}
        for framework in FRAMEWORKS:  # what the worker commands change (a pool, a consumer type, a scheduler)
            apply = getattr(framework, "apply_workers", None)
            if apply is not None:
                apply(project)
        return project

    # -- linting ---------------------------------------------------------------------
    def lint(self) -> list[Diagnostic]:
        project = self._collect(reuse=True)
        ctx = RuleContext(project, self.sources, self.settings, self.trees)
        for rule_cls in self.rules:
            if rule_cls in self._late:
                continue
            ctx.rule = rule_cls
            try:
                rule_cls().check(ctx)
            except Exception as exc:  # noqa: BLE001 - a bug in one rule must not hide the others' findings
                self.rule_failures.append(_rule_failure(rule_cls, exc))
        if self.cache is not None:  # modules parsed on demand while resolving names
            self.cache.save()
        self.suppressions = None
        kept = self._suppress(ctx.diagnostics)
        if self._late and self.suppressions is not None:  # not when noqa is off (flake8 --disable-noqa)
            for rule_cls in self._late:  # QLT001: the noqa comments, judged by what they suppressed
                kept.extend(d for d in rule_cls().check_suppressions(self, self.suppressions)
                            if self.production.is_production(str(d.path)))
            kept.sort(key=lambda d: d.sort_key)
        return kept

    def _suppress(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        kept = []
        suppressions: dict[str, Suppressions] = {}
        for d in diagnostics:
            key = str(d.path)
            if self._ignored_by_config(d) or not self.production.is_production(key):
                continue
            src = self.sources.get(key)
            if src is not None:
                if key not in suppressions:
                    suppressions[key] = Suppressions.for_yaml(src) if key in self.manifests else \
                        Suppressions.for_python(src, self.noqa_comments(key))
                sup = suppressions[key]
                if sup.file_level or code_matches(sup.file_codes, d.code) or sup.suppresses(d.code, d.noqa_rows):
                    continue
            kept.append(d)
        kept.sort(key=lambda d: d.sort_key)
        self.suppressions = suppressions  # which directives were used: QLT001 reads them
        return kept

    def noqa_comments(self, key: str) -> list | None:
        facts = self.facts.get(key)
        return facts.noqa_comments if facts is not None else None

    def _ignored_by_config(self, d: Diagnostic) -> bool:
        return self.ignored(d.path, d.code)

    def ignored(self, path: Path | str, code: str) -> bool:
        """Whether ``per-file-ignores`` turns ``code`` off for ``path``."""
        if not self._per_file:
            return False
        try:
            rel = os.path.relpath(path, self.settings.root)
        except ValueError:
            return False
        rel = rel.replace(os.sep, "/")
        return any(spec.match_file(rel) and code_matches(codes, code) for spec, codes in self._per_file)

    def replace_source(self, src: SourceFile) -> None:
        key = str(src.path)
        self.trees.forget(key)
        if key in self.manifests:
            self.manifests[key] = manifests.read(src)
            self.sources[key] = src
            self._changes += 1
            return
        old = self.facts.get(key)
        name, is_pkg = (old.module, old.is_package) if old else self._module_name(src.path)
        self._extract(src, name, is_pkg)
