"""Find the files to lint: walk the paths, honour excludes and ``.gitignore``, classify.

Semantics follow ruff:

- ``exclude`` / ``extend-exclude`` are gitignore-style patterns relative to
  ``settings.root``. A pattern without a slash (``build``, ``*.egg-info/``) matches a
  file or folder of that name at any depth; a pattern with a slash is anchored to the
  root. For a path outside ``settings.root`` only the slash-free patterns apply, to its
  name.
- With ``respect-gitignore`` every ``.gitignore`` from the walk root downwards applies
  to its own folder and below; when the walk root is inside a git work tree, the
  ``.gitignore`` files of its ancestors up to the work tree's top and
  ``.git/info/exclude`` apply too. A deeper file overrides a shallower one, and
  ``!pattern`` re-includes, as in git.
- Patterns are matched against each entry *itself* while walking and an excluded folder
  is never entered (so its content is excluded with it). They never apply to a path
  given explicitly: ``qlint check build/foo.py`` lints the file, ``qlint check build``
  walks the folder, and a ``.gitignore`` holding ``.*`` does not make ``qlint check .``
  lint nothing. With ``force_exclude`` explicit paths matching ``exclude`` (or inside an
  excluded folder) are dropped, as pre-commit needs; ``.gitignore`` is not consulted
  for explicit paths.
- Directory symlinks are followed, but a folder is walked once: a symlink to a folder
  already walked is skipped, and one pointing to its own ancestor is reported as a
  loop. Real paths win over symlinked ones, and a file reached twice is listed once.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pathspec import GitIgnoreSpec

from qlint.settings import Settings

PYTHON_SUFFIXES = frozenset({".py", ".pyi"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})
_SHEBANG_READ = 256
_GLOB_SPECIALS = re.compile(r"[*?\[\]\\]")


@dataclass
class Discovered:
    """Absolute paths, each list sorted and free of duplicates."""

    python: list[Path] = field(default_factory=list)
    yaml: list[Path] = field(default_factory=list)
    procfiles: list[Path] = field(default_factory=list)
    scripts: list[Path] = field(default_factory=list)  # ``*.sh``: worker command lines, read for their flags
    terraform: list[Path] = field(default_factory=list)  # ``*.tf``: SQS queues and their consumers
    # Files named explicitly that are none of the above (a walk does not collect them).
    other: list[Path] = field(default_factory=list)
    # (path, message): missing explicit paths, unreadable folders, symlink loops.
    errors: list[tuple[Path, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- patterns


def _self_match(regex: re.Pattern[str], text: str) -> bool:
    """Whether a pathspec pattern matches ``text`` itself, not a folder above it.

    pathspec's regexes also match everything below a matching folder (marked by the
    ``ps_d`` group); the walker prunes excluded folders, so it needs the match of the
    entry alone. Folders are passed with a trailing slash.
    """
    m = regex.fullmatch(text)
    if m is None:
        return False
    if "ps_d" not in regex.groupindex:
        return True
    end = m.end("ps_d")
    return end == -1 or end == len(text)


@dataclass
class _Run:
    """Consecutive patterns of one polarity, split by how cheaply they can be tested."""

    include: bool  # True: a match ignores; False: a match re-includes (``!pattern``)
    names: set[str] = field(default_factory=set)
    dir_names: set[str] = field(default_factory=set)
    suffixes: tuple[str, ...] = ()
    dir_suffixes: tuple[str, ...] = ()
    name_regexes: list[re.Pattern[str]] = field(default_factory=list)  # slash-free globs
    path_regexes: list[re.Pattern[str]] = field(default_factory=list)  # anchored globs

    def matches(self, name: str, rel: str | None, is_dir: bool) -> bool:
        if name in self.names or (is_dir and name in self.dir_names):
            return True
        if self.suffixes and name.endswith(self.suffixes):
            return True
        if is_dir and self.dir_suffixes and name.endswith(self.dir_suffixes):
            return True
        if self.name_regexes:
            text = name + "/" if is_dir else name
            for regex in self.name_regexes:
                if _self_match(regex, text):
                    return True
        if self.path_regexes and rel is not None:
            text = rel + "/" if is_dir else rel
            for regex in self.path_regexes:
                if _self_match(regex, text):
                    return True
        return False


class IgnoreRules:
    """Gitignore-style patterns relative to one folder, with git's last-match-wins."""

    def __init__(self, lines: Iterable[str]):
        self.runs: list[_Run] = []
        for raw in lines:
            self._add(raw.rstrip("\r\n"))
        self.runs.reverse()  # evaluated from the last pattern backwards

    def __bool__(self) -> bool:
        return bool(self.runs)

    def _run(self, include: bool) -> _Run:
        if not self.runs or self.runs[-1].include != include:
            self.runs.append(_Run(include))
        return self.runs[-1]

    def _add(self, line: str) -> None:
        if not line.strip() or line.startswith("#"):
            return
        if line.startswith("./"):  # convenience for `exclude`: "./build" means "/build"
            line = line[1:]
        text = line if "\\" in line else line.rstrip(" ")
        include = not text.startswith("!")
        body = text if include else text[1:]
        dir_only = body.endswith("/")
        stem = body.rstrip("/") if dir_only else body
        if not stem:
            return
        run = self._run(include)
        if "\\" not in text and "/" not in stem:
            if not _GLOB_SPECIALS.search(stem):
                (run.dir_names if dir_only else run.names).add(stem)
                return
            if stem.startswith("*") and not _GLOB_SPECIALS.search(stem[1:]) and stem[1:]:
                if dir_only:
                    run.dir_suffixes += (stem[1:],)
                else:
                    run.suffixes += (stem[1:],)
                return
        try:
            patterns = GitIgnoreSpec.from_lines([line]).patterns
        except ValueError:  # a malformed pattern matches nothing, as in git
            return
        for pattern in patterns:
            regex = getattr(pattern, "regex", None)
            if regex is None or pattern.include is None:
                continue
            (run.path_regexes if "/" in stem else run.name_regexes).append(regex)

    def decide(self, name: str, rel: str | None, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included by ``!pattern``; None: no pattern matches.

        ``rel`` is the path relative to the patterns' folder (None when unknown: then
        only the slash-free patterns apply, to ``name``).
        """
        for run in self.runs:
            if run.matches(name, rel, is_dir):
                return run.include
        return None


def _read_rules(path: str) -> IgnoreRules | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            rules = IgnoreRules(fh.read().splitlines())
    except OSError:
        return None
    return rules or None


# ------------------------------------------------------------------- classification


def _has_python_shebang(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SHEBANG_READ)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return False
    first = head.split(b"\n", 1)[0]
    return b"python" in first or b"pypy" in first


def _template_name(lower: str) -> bool:
    """A CloudFormation template in JSON, as such files are named (``template.json``,
    ``orders.template.json``, ``stack-template.json``, ``*.template``)."""
    if lower.startswith(".") or ".env" in lower:
        return False  # ``.env.template``: a dotenv example
    return lower == "template.json" or lower.endswith((".template.json", "-template.json", "_template.json",
                                                       ".template"))


def _classify_name(name: str, path: str | os.PathLike[str]) -> str:
    base, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        return "python"
    if suffix in YAML_SUFFIXES or _template_name(name.lower()):
        return "yaml"  # (JSON is YAML: a CloudFormation template in JSON is read by the same loader)
    if name == "Procfile" or base == "Procfile":
        return "procfile"
    if suffix == ".sh":
        return "script"
    if suffix == ".tf":
        return "terraform"
    if not suffix and not name.startswith(".") and _has_python_shebang(path):
        return "python"
    return "other"


def classify(path: Path) -> str:
    """``"python"``, ``"yaml"``, ``"procfile"``, ``"script"`` (``*.sh``) or ``"other"``.

    Python: ``*.py``, ``*.pyi``, or an extensionless file whose first line is a python
    shebang (only such files are opened, and only their first bytes read). YAML:
    ``*.yaml``, ``*.yml``, and CloudFormation templates in JSON (``template.json``,
    ``*.template.json``, ``*.template``). Procfile: ``Procfile`` and ``Procfile.<anything>``.
    """
    return _classify_name(Path(path).name, path)


# ------------------------------------------------------------------------ excludes


def _relative_to(path: str, root: str) -> str | None:
    if path == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix):
        return path[len(prefix):].replace(os.sep, "/")
    return None


def _relative_to_root(path: str, settings: Settings) -> str | None:
    """``path`` (absolute) relative to ``settings.root``, with ``/`` separators.

    ``""`` for the root itself; None when the path is not below the root. Symlinks are
    resolved only when the plain comparison fails.
    """
    root = os.path.abspath(settings.root)
    rel = _relative_to(path, root)
    if rel is not None:
        return rel
    real_root = os.path.realpath(root)
    for candidate in (path, os.path.realpath(path)):
        rel = _relative_to(candidate, real_root)
        if rel is not None:
            return rel
    return None


class _ExcludeCache:
    """Compiled ``settings.effective_excludes``, built once per settings object."""

    _cache: dict[tuple[str, ...], IgnoreRules] = {}

    @classmethod
    def rules(cls, settings: Settings) -> IgnoreRules:
        key = tuple(settings.effective_excludes)
        rules = cls._cache.get(key)
        if rules is None:
            if len(cls._cache) > 32:
                cls._cache.clear()
            rules = cls._cache[key] = IgnoreRules(key)
        return rules


def is_excluded(path: Path, settings: Settings) -> bool:
    """Whether ``exclude``/``extend-exclude`` cover ``path`` or a folder above it.

    For ``--force-exclude`` (explicit files, directories and the stdin file name). The
    root itself, and anything above it, is never excluded. A path outside
    ``settings.root`` is tested by its name only. ``.gitignore`` is not consulted.
    """
    rules = _ExcludeCache.rules(settings)
    if not rules:
        return False
    absolute = os.path.abspath(path)
    if _relative_to(os.path.abspath(settings.root), absolute) is not None:
        return False  # the root or a folder above it
    is_dir = os.path.isdir(absolute)
    rel = _relative_to_root(absolute, settings)
    if rel is None:
        return rules.decide(os.path.basename(absolute), None, is_dir) is True
    if rel == "":
        return False
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        entry_is_dir = is_dir if depth == len(parts) else True
        if rules.decide(parts[depth - 1], "/".join(parts[:depth]), entry_is_dir) is True:
            return True
    return False


# ------------------------------------------------------------------------- walking


def _git_context(root: str) -> list[tuple[str, IgnoreRules]]:
    """Ignore rules that apply to ``root`` from above it: the ancestors' ``.gitignore``
    files up to the top of the git work tree, and ``.git/info/exclude``, shallowest
    first. Empty when ``root`` is not inside a git work tree."""
    ancestors: list[str] = []
    current = root
    top = None
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            top = current
            break
        parent = os.path.dirname(current)
        if parent == current:
            break
        ancestors.append(parent)
        current = parent
    if top is None:
        return []
    levels: list[tuple[str, IgnoreRules]] = []
    info = _read_rules(os.path.join(top, ".git", "info", "exclude"))
    if info:
        levels.append((top, info))
    # `ancestors` lists root's parents up to `top` (inclusive, empty when `top` is root
    # itself), deepest first. The root's own .gitignore is read by the walk.
    for directory in reversed(ancestors):
        rules = _read_rules(os.path.join(directory, ".gitignore"))
        if rules:
            levels.append((directory, rules))
    return levels


_Levels = tuple  # tuple[tuple[str, IgnoreRules], ...]: (folder, its rules), shallowest first
_Pending = tuple  # (folder, its path relative to settings.root or None, _Levels)


def _gitignored(levels: _Levels, path: str, name: str,
                is_dir: bool) -> bool:
    for base, rules in reversed(levels):  # deepest folder first
        rel = path[len(base) + 1:].replace(os.sep, "/") if base != os.sep else path[1:]
        decision = rules.decide(name, rel, is_dir)
        if decision is not None:
            return decision
    return False


def _dir_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


_FIELD = {"python": "python", "yaml": "yaml", "procfile": "procfiles", "script": "scripts", "terraform": "terraform",
          "other": "other"}


class _Walker:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.excludes = _ExcludeCache.rules(settings)
        self.respect_gitignore = settings.respect_gitignore
        self.result = Discovered()
        self.seen_files: set[tuple[int, int] | str] = set()
        self.visited_dirs: set[tuple[int, int]] = set()
        self.deferred_files: list[tuple[str, str]] = []  # symlinked files: (path, name)

    # -- files

    def add_file(self, path: str, name: str, key: tuple[int, int] | str,
                 explicit: bool = False) -> None:
        if key in self.seen_files:
            return
        kind = _classify_name(name, path)
        if kind == "other" and not explicit:
            return
        self.seen_files.add(key)
        getattr(self.result, _FIELD[kind]).append(Path(path))

    def add_explicit_file(self, path: str) -> None:
        try:
            st = os.stat(path)
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:
            key = path
        self.add_file(path, os.path.basename(path), key, explicit=True)

    # -- folders

    def walk(self, root: str) -> None:
        rel_root = _relative_to_root(root, self.settings)
        levels = tuple(_git_context(root)) if self.respect_gitignore else ()
        stack: list[_Pending] = [(root, rel_root, levels)]
        deferred: list[_Pending] = []  # symlinked folders, walked after the real ones
        while stack or deferred:
            from_link = not stack
            if from_link:
                deferred.sort(key=lambda item: item[0])
                stack.append(deferred.pop(0))
            directory, rel, levels = stack.pop()
            key = _dir_key(directory)
            if key is None:
                continue  # vanished, or a symlink whose target went away
            if key in self.visited_dirs:
                if from_link and self._is_loop(directory):
                    self.result.errors.append((Path(directory), "symlink loop"))
                continue
            self.visited_dirs.add(key)
            self._scan(directory, rel, levels, key[0], stack, deferred)
        self._flush_deferred_files()

    @staticmethod
    def _is_loop(link: str) -> bool:
        """A symlinked folder whose target is the folder holding it or one above."""
        target = os.path.realpath(link)
        parent = os.path.realpath(os.path.dirname(link))
        return parent == target or parent.startswith(target.rstrip(os.sep) + os.sep)

    def _scan(self, directory: str, rel: str | None, levels: _Levels, dev: int,
              stack: list[_Pending], deferred: list[_Pending]) -> None:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            self.result.errors.append((Path(directory), exc.strerror or str(exc)))
            return
        if self.respect_gitignore:
            for entry in entries:
                if entry.name == ".gitignore":
                    rules = _read_rules(entry.path)
                    if rules:
                        levels = levels + ((directory, rules),)
                    break
        excludes = self.excludes
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
                is_link = entry.is_symlink()
            except OSError:
                continue
            entry_rel = None if rel is None else (f"{rel}/{name}" if rel else name)
            if excludes and excludes.decide(name, entry_rel, is_dir) is True:
                continue
            path = entry.path
            if levels and _gitignored(levels, path, name, is_dir):
                continue
            if is_dir:
                (deferred if is_link else subdirs).append((path, entry_rel, levels))
            elif is_link:
                self.deferred_files.append((path, name))
            else:
                try:
                    if not entry.is_file():
                        continue  # sockets, fifos, devices
                    key: tuple[int, int] | str = (dev, entry.inode())
                except OSError:
                    continue
                self.add_file(path, name, key)
        subdirs.sort(key=lambda item: item[0], reverse=True)
        stack.extend(subdirs)

    def _flush_deferred_files(self) -> None:
        for path, name in sorted(self.deferred_files):
            try:
                st = os.stat(path)
            except OSError:
                continue  # a dangling symlink
            if not stat.S_ISREG(st.st_mode):
                continue
            self.add_file(path, name, (st.st_dev, st.st_ino))
        self.deferred_files.clear()


def discover(paths: list[Path], settings: Settings, *, force_exclude: bool = False) -> Discovered:
    """The files under ``paths`` to lint, classified. Never raises for file-system errors."""
    walker = _Walker(settings)
    result = walker.result
    files: list[str] = []
    dirs: list[str] = []
    for given in paths:
        absolute = os.path.abspath(given)
        try:
            st = os.stat(absolute)
        except FileNotFoundError:
            result.errors.append((Path(given), "No such file or directory"))
            continue
        except OSError as exc:
            result.errors.append((Path(given), exc.strerror or str(exc)))
            continue
        if force_exclude and is_excluded(Path(absolute), settings):
            continue
        (dirs if stat.S_ISDIR(st.st_mode) else files).append(absolute)
    for path in files:
        walker.add_explicit_file(path)
    for path in dirs:
        walker.walk(path)
    result.python = sorted(set(result.python))
    result.yaml = sorted(set(result.yaml))
    result.procfiles = sorted(set(result.procfiles))
    result.scripts = sorted(set(result.scripts))
    result.terraform = sorted(set(result.terraform))
    result.other = sorted(set(result.other))
    return result
