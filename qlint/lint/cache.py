"""A cache of per-file facts, keyed by content hash, module name and qlint version.

Extraction is most of qlint's time, and facts depend only on a file's bytes and its module
name, never on settings (rules run on every run). The cache lives in ``.qlint_cache/``
beside the configuration (with a ``CACHEDIR.TAG`` and a ``.gitignore`` holding ``*``,
as ruff's does).

It is JSON with an explicit whitelist of fact classes, never pickle: the cache sits in the
tree being linted, and qlint must never run code that tree supplies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qlint import __version__
from qlint.lint import facts as facts_module

CACHE_DIR = ".qlint_cache"
TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by qlint.\n"
# Bump when the shape of the facts changes without a version change (development builds).
SCHEMA = "3"
_CLASSES = {cls.__name__: cls for cls in (
    facts_module.Span, facts_module.Value, facts_module.Keyword, facts_module.CallFact, facts_module.HandlerFact,
    facts_module.Param, facts_module.FunctionFact, facts_module.ClassFact, facts_module.AttrAssign,
    facts_module.FileFacts,
)}


def _encode(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return {"__f": repr(obj)}  # keeps inf and nan
    if dataclasses.is_dataclass(obj) and type(obj).__name__ in _CLASSES:
        return {"__t": type(obj).__name__,
                "v": {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if isinstance(obj, tuple):
        return {"__tuple": [_encode(x) for x in obj]}
    if isinstance(obj, (set, frozenset)):
        return {"__set": [_encode(x) for x in sorted(obj, key=repr)], "frozen": isinstance(obj, frozenset)}
    if isinstance(obj, dict):
        return {"__dict": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, bytes):
        return {"__bytes": obj.hex()}
    if isinstance(obj, complex):
        return {"__complex": [obj.real, obj.imag]}
    raise TypeError(f"cannot cache a {type(obj).__name__}")


def _decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "__t" in obj:
        cls = _CLASSES[obj["__t"]]  # KeyError for anything else: the entry is dropped
        return cls(**{k: _decode(v) for k, v in obj["v"].items()})
    if "__f" in obj:
        return float(obj["__f"])
    if "__tuple" in obj:
        return tuple(_decode(x) for x in obj["__tuple"])
    if "__set" in obj:
        items = [_decode(x) for x in obj["__set"]]
        return frozenset(items) if obj.get("frozen") else set(items)
    if "__dict" in obj:
        return {_hashable(_decode(k)): _decode(v) for k, v in obj["__dict"]}
    if "__bytes" in obj:
        return bytes.fromhex(obj["__bytes"])
    if "__complex" in obj:
        return complex(*obj["__complex"])
    raise ValueError("unknown cache entry")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def file_key(path: Path, raw: bytes, module: str, is_package: bool) -> str:
    digest = hashlib.blake2b(raw, digest_size=16)
    digest.update(f"\0{path}\0{module}\0{is_package}".encode())
    return digest.hexdigest()


class FactCache:
    """Entries: key -> {"skip": prefilter verdict, "facts": FileFacts, "error": message}, each optional."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only  # ``--diff`` writes nothing, not even the cache
        self.directory = root / CACHE_DIR / f"{__version__}-{SCHEMA}"
        self.path = self.directory / "facts.json"
        self._entries: dict[str, Any] = {}
        self._used: set[str] = set()
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self._entries = data

    def get(self, key: str) -> dict | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            decoded = dict(entry)
            if "facts" in entry:
                decoded["facts"] = _decode(entry["facts"])
                if not isinstance(decoded["facts"], facts_module.FileFacts):
                    raise ValueError("not facts")
        except (KeyError, TypeError, ValueError, AttributeError):
            self._entries.pop(key, None)
            self._dirty = True
            return None
        self._used.add(key)
        return decoded

    def put(self, key: str, *, facts=None, error: str | None = None, skip: bool = False) -> None:
        # One entry per file version holds both verdicts: the prefilter's, and the facts (or
        # error) once the file was parsed because a name it spells was needed.
        entry: dict[str, Any] = dict(self._entries.get(key) or {})
        if facts is not None:
            try:
                entry["facts"] = _encode(facts)
            except TypeError:
                return
        elif error is not None:
            entry["error"] = error
        else:
            entry["skip"] = skip
        self._entries[key] = entry
        self._used.add(key)
        self._dirty = True

    MAX_ENTRIES = 50_000

    def save(self) -> None:
        """Write the entries atomically. Entries this run did not use are kept (a run over one
        folder must not evict the rest of the project) until the cache grows past ``MAX_ENTRIES``;
        then only this run's are kept, so stale versions of changed files age out."""
        if not self._dirty or self.read_only:
            return
        entries = self._entries
        if len(entries) > self.MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self._used}
        try:
            self._prepare()
            fd, tmp = tempfile.mkstemp(prefix=".facts.", dir=self.directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entries, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
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
