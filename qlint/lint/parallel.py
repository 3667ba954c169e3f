"""Fact extraction that cannot crash the run, and a process pool to spread it over cores.

libcst's parse and metadata pass are pure Python and CPU-bound: with N cores a batch of
files is extracted about N times faster in worker processes. Facts are plain dataclasses,
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

import libcst as cst

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


def cpython_check(source: bytes | str) -> str | None:
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


def syntax_message(exc: cst.ParserSyntaxError) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid syntax"
    return f"SyntaxError: {first} (line {exc.raw_line}, column {exc.raw_column + 1})"


def extract_source(src: SourceFile, name: str, is_pkg: bool) -> tuple[FileFacts | None, str | None]:
    """Facts, or the message that says why there are none. Never raises for bad input."""
    if cpython_check(src.text) == "deep":
        # libcst's native parser overflows its stack (a segfault) on input CPython rejects as
        # too deeply nested: thousands of nested brackets or a long chain of operators.
        return None, "file is nested too deeply to parse"
    try:
        return extract(src, name, is_pkg), None
    except cst.ParserSyntaxError as exc:
        return None, syntax_message(exc)
    except RecursionError:
        return None, "file is nested too deeply to parse"
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
