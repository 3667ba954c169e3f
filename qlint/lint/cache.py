"""A cache of per-file facts, keyed by content hash, module name and qlint version.

Extraction is most of qlint's time, and facts depend only on a file's bytes and its module
name, never on settings (rules run on every run). The cache lives in ``.qlint_cache/``
beside the configuration (with a ``CACHEDIR.TAG`` and a ``.gitignore`` holding ``*``,
as ruff's does).

Facts are pickled, and read back by an unpickler that can name nothing but the fact
classes and ``set``/``frozenset``/``complex`` (the "restricting globals" recipe of the
``pickle`` documentation): the cache sits in the tree being linted, and qlint must never
run code that tree supplies. Any other global makes the entry unreadable, and it is
dropped. (Decoding JSON into the fact classes in Python was half of a warm run.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

from qlint import __version__
from qlint.lint import facts as facts_module
from qlint.lint.atomic import replace_file

CACHE_DIR = ".qlint_cache"
TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by qlint.\n"
# Bump when the shape of the facts changes without a version change (development builds).
SCHEMA = "16"
_CLASSES = {cls.__name__: cls for cls in (
    facts_module.Span, facts_module.Value, facts_module.Keyword, facts_module.CallFact, facts_module.HandlerFact,
    facts_module.Param, facts_module.FunctionFact, facts_module.ClassFact, facts_module.AttrAssign,
    facts_module.FileFacts, facts_module.Application,
)}


_BUILTINS = {"set": set, "frozenset": frozenset, "complex": complex}


class _FactsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == facts_module.__name__ and name in _CLASSES:
            return _CLASSES[name]
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not a fact class")


def _encode(facts: facts_module.FileFacts) -> bytes:
    return pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Any:
    return _FactsUnpickler(io.BytesIO(data)).load()


def file_key(path: Path, raw: bytes, module: str, is_package: bool) -> str:
    digest = hashlib.blake2b(raw, digest_size=16)
    digest.update(f"\0{path}\0{module}\0{is_package}".encode())
    return digest.hexdigest()


class FactCache:
    """Per file version: the prefilter's verdict, and the facts (or the error) once parsed.

    Verdicts live in one small ``index.json``; facts in one file each under ``facts/``, read
    only when that file is needed and written only when new, so a warm run reads what it
    uses and a run that changed one file writes one file.
    """

    MAX_ENTRIES = 50_000

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only  # ``--diff`` writes nothing, not even the cache
        self.directory = root / CACHE_DIR / f"{__version__}-{SCHEMA}"
        self.index_path = self.directory / "index.json"
        self._index: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, Any] = {}  # key -> encoded facts not written yet
        self._used: set[str] = set()
        self._dirty = False
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            self._index = {k: v for k, v in data.items() if isinstance(v, dict)}
        # path -> [mtime_ns, size, module, is_package, key]: the key of the bytes last read there.
        self.paths_path = self.directory / "paths.json"
        self._paths: dict[str, list] = {}
        self._paths_dirty = False
        try:
            paths = json.loads(self.paths_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            paths = None
        if isinstance(paths, dict):
            self._paths = {k: v for k, v in paths.items() if isinstance(v, list) and len(v) == 5}

    def _facts_path(self, key: str) -> Path:
        return self.directory / "facts" / key[:2] / f"{key}.pickle"

    def skipped(self, key: str) -> list[str] | None:
        """For a file version the framework prefilter skips: the codes of the rules whose own
        seeds it matches (it is parsed when one of them runs). None when not known to skip."""
        entry = self._index.get(key)
        if entry is not None and entry.get("skip"):
            self._used.add(key)
            seeds = entry.get("seeds", [])
            return seeds if isinstance(seeds, list) else []
        return None

    def get(self, key: str) -> dict | None:
        entry = self._index.get(key)
        if entry is None:
            return None
        decoded: dict[str, Any] = {k: v for k, v in entry.items() if k != "facts"}
        if entry.get("facts"):
            try:
                raw = self._pending.get(key)
                if raw is None:
                    raw = self._facts_path(key).read_bytes()
                facts = _decode(raw)
                if not isinstance(facts, facts_module.FileFacts):
                    raise ValueError("not facts")
            except (OSError, KeyError, TypeError, ValueError, AttributeError, EOFError, IndexError,
                    pickle.UnpicklingError, MemoryError, RecursionError):
                entry.pop("facts", None)
                self._dirty = True
                if not decoded:
                    return None
            else:
                decoded["facts"] = facts
        self._used.add(key)
        return decoded

    def candidate(self, key: str) -> bool:
        """The framework prefilter keeps this file version (it is parsed)."""
        entry = self._index.get(key)
        return entry is not None and entry.get("skip") is False

    def key_by_stat(self, path: Path, module: str, is_package: bool) -> str | None:
        """The key of ``path``'s bytes when its size and modification time (to the nanosecond)
        are those recorded when they were last read: a warm run need not read or hash a file
        the prefilter skipped."""
        record = self._paths.get(str(path))
        if record is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if record[:4] == [st.st_mtime_ns, st.st_size, module, is_package] and isinstance(record[4], str):
            return record[4]
        return None

    def remember_stat(self, path: Path, st: os.stat_result, module: str, is_package: bool, key: str) -> None:
        record = [st.st_mtime_ns, st.st_size, module, is_package, key]
        if self._paths.get(str(path)) != record:
            self._paths[str(path)] = record
            self._paths_dirty = True

    def mentions(self, key: str, question: str) -> bool | None:
        """The cached answer to "does this file version spell one of these names" (``question``
        identifies the names), or None."""
        entry = self._index.get(key)
        answers = entry.get("mentions") if entry is not None else None
        if isinstance(answers, dict) and question in answers:
            self._used.add(key)
            return bool(answers[question])
        return None

    def put_mentions(self, key: str, question: str, answer: bool) -> None:
        entry = self._index.setdefault(key, {})
        answers = entry.get("mentions")
        if not isinstance(answers, dict) or len(answers) >= 4:  # the last few sets of names only
            answers = entry["mentions"] = {}
        answers[question] = answer
        self._used.add(key)
        self._dirty = True

    def put(self, key: str, *, facts=None, error: str | None = None, skip: bool = False,
            seeds: list[str] = ()) -> None:
        entry = self._index.setdefault(key, {})
        if facts is not None:
            try:
                self._pending[key] = _encode(facts)
            except (TypeError, pickle.PicklingError, RecursionError):
                return
            entry["facts"] = True
        elif error is not None:
            entry["error"] = error
        else:
            if entry.get("skip") == skip and not seeds:
                self._used.add(key)
                return
            entry["skip"] = skip
            if seeds:
                entry["seeds"] = list(seeds)
        self._used.add(key)
        self._dirty = True

    def save(self) -> None:
        """Write new facts files and the index, each atomically. Entries this run did not use
        are kept (a run over one folder must not evict the rest of the project) until there
        are more than ``MAX_ENTRIES``; then only this run's are kept."""
        if not (self._dirty or self._paths_dirty) or self.read_only:
            return
        try:
            self._prepare()
            for key, encoded in self._pending.items():
                path = self._facts_path(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(path, encoded)
            self._pending.clear()
            if len(self._index) > self.MAX_ENTRIES:
                for key in [k for k in self._index if k not in self._used]:
                    if self._index.pop(key).get("facts"):
                        try:
                            self._facts_path(key).unlink()
                        except OSError:
                            pass
            _write_json(self.index_path, self._index)
            self._dirty = False
            if self._paths_dirty:
                if len(self._paths) > self.MAX_ENTRIES:
                    self._paths = {p: r for p, r in self._paths.items() if r[4] in self._index}
                _write_json(self.paths_path, self._paths)
                self._paths_dirty = False
        except OSError:
            pass  # a read-only tree still gets linted, just without a cache

    def _prepare(self) -> None:
        top = self.root / CACHE_DIR
        top.mkdir(parents=True, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", TAG), (".gitignore", "*\n")):
            target = top / name
            if not target.exists():
                target.write_text(text, encoding="utf-8")
        self.directory.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
