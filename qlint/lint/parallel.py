"""Fact extraction that cannot crash the run, and a process pool to spread it over cores.

Parsing and the traversal are CPU-bound: with N cores a large batch of files is extracted
about N times faster in worker processes. Facts are plain dataclasses,
so they come back through pickling; the parent keeps the bytes it read and rebuilds the
``SourceFile`` itself.
"""

from __future__ import annotations

import ast
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from qlint.lint.extract import extract
from qlint.lint.facts import FileFacts
from qlint.lint.source import SourceFile, UndecodableSource

INTERNAL = "internal error"
# Below this many files the pool's start-up costs more than it saves.
MIN_BATCH = 8


def worker_count() -> int:
    env = os.environ.get("QLINT_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def syntax_message(exc: SyntaxError) -> str:
    message = exc.msg or "invalid syntax"
    where = f" (line {exc.lineno}, column {exc.offset or 1})" if exc.lineno else ""
    return f"SyntaxError: {message}{where}"


def extract_source(src: SourceFile, name: str, is_pkg: bool) -> tuple[FileFacts | None, str | None]:
    """Facts, or the message that says why there are none. Never raises for bad input."""
    try:
        return extract(src, name, is_pkg), None
    except SyntaxError as exc:
        if "too many" in str(exc.msg):  # "too many nested parentheses", "too many statically nested blocks"
            return None, "file is nested too deeply to parse"
        return None, syntax_message(exc)
    except (RecursionError, MemoryError):
        return None, "file is nested too deeply to parse"
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        return None, f"cannot parse: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug of qlint's: name the file, keep the run going
        return None, f"{INTERNAL} while reading this file ({type(exc).__name__}: {exc}); please report it"


def _work(item: tuple[Path, bytes, str, bool]) -> tuple[FileFacts | None, str | None]:
    path, raw, name, is_pkg = item
    try:
        src = SourceFile.from_bytes(path, raw)
    except UndecodableSource as exc:
        return None, str(exc)
    return extract_source(src, name, is_pkg)


def extract_all(items: list[tuple[Path, bytes, str, bool]], workers: int) -> list | None:
    """Results in order, or None when a pool cannot help (one core) or could not run."""
    if workers < 2 or len(items) < MIN_BATCH:
        return None
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(_work, items, chunksize=max(1, len(items) // (workers * 8))))
    except (BrokenProcessPool, OSError, AssertionError):
        # AssertionError: a daemonic process (a flake8 --jobs worker) may not start children.
        return None  # the caller extracts in this process, where errors are reported per file
