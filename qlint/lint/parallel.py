"""Fact extraction that cannot crash the run, and a process pool to spread it over cores.

Parsing and the traversal are CPU-bound: with N cores a large batch of files is extracted
about N times faster in worker processes. Facts are plain dataclasses,
so they come back through pickling; the parent keeps the bytes it read and rebuilds the
``SourceFile`` itself.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from qlint.lint.extract import extract
from qlint.lint.facts import FileFacts
from qlint.lint.noqa import python_comments
from qlint.lint.source import SourceFile, UndecodableSource

INTERNAL = "internal error"
# Below this many files the pool's start-up costs more than it saves.
MIN_BATCH = 8


def _follow_parent(parent: int) -> None:
    """A pool worker ends when the process that started it does (killed by a pre-commit or CI
    timeout, SIGKILL): at once where Linux can tell it (``PR_SET_PDEATHSIG``), else within half
    a second, by a thread watching whether it has been handed to another parent."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=watch, name="qlint-parent-watch", daemon=True).start()


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
        facts = extract(src, name, is_pkg)
        facts.noqa_comments = python_comments(src)
        return facts, None
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


def _work_many(items: list[tuple[Path, bytes, str, bool]]) -> list[tuple[FileFacts | None, str | None]]:
    return [_work(item) for item in items]


# Files per task sent to a worker: small enough that both workers start while the scan is
# still finding files, large enough that pickling round trips stay a small cost.
CHUNK = 8


class Extraction:
    """Files handed to worker processes as the scan finds them, so that reading and the
    prefilter (in this process) overlap with parsing (in the workers).

    ``results`` gives every item with its result in the order added, or with None where the
    pool could not help (one core, a small batch, a pool that could not start): the caller
    extracts those in this process, where errors are reported per file.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.failed = workers < 2
        self.buffer: list[tuple[Path, bytes, str, bool]] = []
        self.pending: list[tuple[list, Future | None]] = []
        self.started = 0  # items sent to the pool

    def add(self, item: tuple[Path, bytes, str, bool]) -> None:
        self.buffer.append(item)
        if len(self.buffer) >= CHUNK:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        items, self.buffer = self.buffer, []
        if not items:
            return
        future = None
        # Below MIN_BATCH files in all, the pool's start-up costs more than it saves.
        if not self.failed and (self.pool is not None or not final or len(items) >= MIN_BATCH):
            try:
                if self.pool is None:
                    self.pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_follow_parent,
                                                    initargs=(os.getpid(),))
                future = self.pool.submit(_work_many, items)
                self.started += len(items)
            except (BrokenProcessPool, OSError, AssertionError, RuntimeError):
                # AssertionError: a daemonic process (a flake8 --jobs worker) may not start children.
                self.failed = True
        self.pending.append((items, future))

    def results(self) -> list[tuple[tuple[Path, bytes, str, bool], tuple[FileFacts | None, str | None] | None]]:
        self._flush(final=True)
        # The scan is over and this process would only wait: it takes back the batches no worker
        # has started (the last ones: workers take from the front) and extracts them itself.
        done: dict[int, list] = {}
        for index in range(len(self.pending) - 1, -1, -1):
            items, future = self.pending[index]
            if future is None or not future.cancel():
                break
            done[index] = [_work(item) for item in items]
        out = []
        for index, (items, future) in enumerate(self.pending):
            results = done.get(index)
            if results is None and future is not None and not self.failed:
                try:
                    results = future.result()
                except (BrokenProcessPool, OSError, AssertionError):
                    self.failed = True
            out.extend(zip(items, results if results is not None else [None] * len(items)))
        self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        return out
