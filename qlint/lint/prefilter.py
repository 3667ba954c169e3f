"""Byte-level prefilter: which files can possibly hold a fact a rule reads.

The prefilter may never change a result (``tests/test_prefilter.py`` proves findings are
identical with it on and off). It is a two-phase test run by the engine:

1. *Seeds*: files whose bytes mention a task framework at all (``FRAMEWORK_TOKENS``).
2. *Closure*: after the seeds are parsed, any file that mentions a name the seeds bind
   (an app, a decorator wrapper, a task base class: a user of them must spell the name),
   or that a parsed file imports (constants, config modules), is parsed too, until
   nothing new is reached.
"""

from __future__ import annotations

import re
from typing import Iterable

from qlint.lint.facts import FileFacts

class Seed:
    """A byte pattern behind a cheap test: it can only match where one of ``hints`` occurs.

    A substring search runs at memory speed; a regex alternation, or a pattern starting with
    ``\\b``, steps through every byte in Python's ``re``. Each hint must be a necessary
    condition of the pattern (``tests/test_prefilter.py`` checks they appear in it), so
    the two-step test decides exactly as the pattern alone does.
    """

    def __init__(self, pattern: bytes, hints: tuple[bytes, ...], flags: int = 0, window: int | None = None) -> None:
        self.pattern = re.compile(pattern, flags)
        self.hints = hints
        self.fold = bool(flags & re.IGNORECASE)  # hints are then lower case, tested on lowered bytes
        # With ``window``, every match is at most that long: the pattern is only tried around each
        # occurrence of a hint, never over the whole of a file that holds a hint but no match.
        self.window = window

    def search(self, raw: bytes) -> re.Match[bytes] | None:
        haystack = raw.lower() if self.fold else raw
        if self.window is None:
            if not any(hint in haystack for hint in self.hints):
                return None
            return self.pattern.search(raw)
        window = self.window
        for hint in self.hints:
            at = haystack.find(hint)
            while at >= 0:
                # A match holding this occurrence starts and ends inside the slice, away from its
                # edges (``\b`` looks at the byte before ``pos``). A match ending at ``endpos`` may
                # be cut short there (``Broker\b`` in ``Brokers``): not trusted; if real, it holds
                # a hint of its own and is found from that occurrence's slice.
                end = at + len(hint) + 2 * window
                found = self.pattern.search(raw, max(0, at - window), end)
                if found is not None and (found.end() < end or end >= len(raw)):
                    return found
                at = haystack.find(hint, at + 1)
        return None


# A file without any of these cannot define a task, an app, a wrapper, or settings.
FRAMEWORK_TOKENS = Seed(
    rb"celery|CELERY|shared_task|\btask|Task\b|_task\b|\.conf[.\[]|config_from_object|retry|apply_async"
    rb"|\brq\b|django_rq|enqueue|dramatiq|\bactor|Actor\b|huey|HUEY|taskiq|\barq\b|WorkerSettings|Broker\b",
    (b"celery", b"CELERY", b"task", b"Task", b".conf", b"config_from_object", b"retry", b"apply_async", b"rq",
     b"enqueue", b"dramatiq", b"actor", b"Actor", b"huey", b"HUEY", b"WorkerSettings", b"Broker"),
    window=24,  # the longest alternative, ``config_from_object``, is 18 bytes
)


def is_seed(raw: bytes) -> bool:
    return FRAMEWORK_TOKENS.search(raw) is not None


def is_settings_path(parts: tuple[str, ...]) -> bool:
    """Django settings are found by module name, not by import: always parse them."""
    return parts[-1] == "settings.py" or "settings" in parts[:-1]


def exported_names(files: Iterable[FileFacts]) -> set[str]:
    """Names bound at module level by parsed files: a user of any of them must spell it."""
    names: set[str] = set()
    for facts in files:
        if facts.error is not None:
            continue
        names.update(facts.assigns)
        names.update(c.name for c in facts.classes if c.qualname == c.name)
        names.update(fn.name for fn in facts.functions if fn.depth == 0 and fn.returns)
    return names


def mentions(raw: bytes, pattern: Seed | None) -> bool:
    return pattern is not None and pattern.search(raw) is not None


# Methods that send a task (or make its signature) on every framework: ``charge.delay(...)``,
# ``charge.send(...)``, ``charge.kiq(...)``.
ENQUEUE_METHODS = ("delay", "apply_async", "delay_on_commit", "apply_async_on_commit", "s", "si", "signature",
                   "send", "send_with_options", "kiq", "map", "starmap", "chunks", "schedule", "call_local")


class CallSeed:
    """``<name>.<enqueue method>(`` for a name of a set (up to 8 spaces or tabs around the dot
    and before the parenthesis; the name an identifier). It is searched by its method part,
    which starts with a literal ``.`` that ``re`` finds at memory speed (a pattern leading with
    the identifier is tried at every byte: 1.4 s on 1,800 files), and the name before it is then
    read back and looked up (``tests/test_prefilter.py`` holds the seed to the full pattern's
    answers). A regex alternation of every task's name would cost seconds to build for a
    generated module's thousands of tasks."""

    METHODS = sorted(ENQUEUE_METHODS, key=len, reverse=True)
    _METHOD = re.compile(rb"\.[ \t]{0,8}(?:" + b"|".join(m.encode() for m in METHODS) + rb")[ \t]{0,8}\(")

    def __init__(self, names: set[str]) -> None:
        self.names = {n.encode() for n in names}

    def search(self, raw: bytes) -> bytes | None:
        """The name before the first ``<name>.<method>(`` whose name is in the set."""
        # (No substring pre-test: ``. delay(`` is a call too, and the scan is as fast as one.)
        for match in self._METHOD.finditer(raw):
            name = _name_before(raw, match.start())
            if name is not None and name in self.names:
                return name
        return None

_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _name_before(raw: bytes, dot: int) -> bytes | None:
    """The identifier that ends at most 8 spaces or tabs before ``dot`` (the full pattern's group)."""
    end = dot
    while end > 0 and dot - end < 8 and raw[end - 1] in b" \t":
        end -= 1
    start = end
    while start > 0 and raw[start - 1] in _WORD:
        start -= 1
    while start < end and raw[start] in b"0123456789":
        start += 1  # an identifier starts with a letter or ``_``: ``9abc`` ends in ``abc``
    return raw[start:end] if start < end else None


def calls_pattern(names: set[str]) -> CallSeed | None:
    """``<name>.<enqueue method>(`` for any of ``names`` (a task's function or class name)."""
    return CallSeed(names) if names else None


def names_pattern(names: set[str]) -> Seed | None:
    """Any of ``names`` as a whole word. Each name is its own hint, so the pattern is only tried
    around an occurrence of one (the closure asks this of every file the prefilter skipped)."""
    if not names:
        return None
    encoded = sorted((n.encode() for n in names), key=len, reverse=True)
    alternatives = b"|".join(re.escape(n) for n in encoded)
    return Seed(rb"\b(?:" + alternatives + rb")\b", tuple(encoded), window=len(encoded[0]) + 1)
