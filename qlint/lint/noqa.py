"""``# noqa`` comments, with flake8's semantics, for Python files and YAML manifests.

Line directives (flake8 7.x ``NOQA_INLINE_REGEXP``, searched in each comment):

- ``# noqa`` is blanket. ``# noqa: QLT101,QLT2`` / ``# noqa:QLT101 QLT2`` lists codes,
  separated by commas and/or whitespace. A code is letters then digits and matches by
  prefix, so ``QLT2`` covers ``QLT201`` (flake8: ``code.startswith(tuple(codes))``).
- As in flake8, only one optional space may follow the colon, and anything that is not
  a code list turns the directive blanket: ``# noqa QLT101``, ``# noqa:  QLT101`` (two
  spaces), ``# noqa: QLT`` (no digits) and ``# noqa: fix later`` all suppress every
  code. A list stops at the first thing that is not a code: ``# noqa: QLT101, see #12``
  lists QLT101 only. Only the first ``noqa`` of a comment counts.
- Deliberate differences from flake8: ``#noqa`` (no space) and ``#   noqa`` are
  accepted (flake8 ignores them; ruff accepts them); codes are compared
  case-insensitively (flake8 keeps ``# noqa:qlt101`` as a code list that matches
  nothing); comments are found with ``tokenize``, so ``"# noqa"`` inside a string does
  not count (flake8 searches the raw line); and when several lines of one statement
  carry directives, all of them count (flake8 uses the first).
- A directive covers the rows of its "noqa line", as flake8's ``_noqa_line_mapping``
  builds it: the physical line, widened over multi-line tokens (a triple-quoted string
  whose closing line carries the comment) and backslash continuations. It does *not*
  cover the other lines of a bracketed multi-line call; a rule that wants that passes
  every row of its statement to :meth:`Suppressions.suppresses`, which suppresses when
  any of the rows is covered.

File directives, on a line of their own (only whitespace before the ``#``):

- ``# qlint: noqa`` and ``# flake8: noqa`` exempt the whole file.
- ``# qlint: noqa: QLT101,QLT2`` exempts those codes (prefix match) in the whole file,
  as ``# ruff: noqa: F401`` does in ruff.
- ``# flake8: noqa: QLT101`` exempts the whole file, because flake8 7.x does exactly
  that (its ``NOQA_FILE`` is ``\\s*# flake8[:=]\\s*noqa`` matched at the start of a
  line, with no anchor after ``noqa``): the codes are not a filter there.
- A file directive after code on the same line is not a file directive (flake8 only
  warns), nor is it a line directive.

YAML: a comment starts at ``#`` at the start of a line or after whitespace, outside
single- and double-quoted scalars (a quote opens a scalar only at its start). Each line
is scanned on its own, so a quoted scalar spanning lines is not tracked, and a ``#``
line inside a block scalar (``args: |``) counts as a comment, which lets a shell script
embedded in a manifest carry its ``# noqa``. Only ``# qlint: noqa`` is a file directive
in YAML (flake8 never reads YAML).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Iterable

from qlint.lint.source import SourceFile

_CODES = r"(?P<codes>(?:[A-Z]+[0-9]+(?:[,\s]+)?)+)"
INLINE_NOQA = re.compile(r"#\s*noqa(?::\s?" + _CODES + r")?", re.IGNORECASE)
FILE_NOQA = re.compile(r"#\s*(?P<tool>qlint|flake8)\s*[:=]\s*noqa(?::\s?" + _CODES + r")?",
                       re.IGNORECASE)
_HAS_NOQA = re.compile(rb"noqa", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(eq=False)
class Directive:
    """One line directive. ``start``/``end`` delimit it in ``SourceFile.utf8``, from
    its ``#`` to the end of ``noqa`` (blanket) or of its last code."""

    row: int
    codes: tuple[str, ...] | None  # None: blanket ``# noqa``
    start: int
    end: int
    # What it suppressed: the listed codes that matched a finding, or for a blanket
    # directive the codes of the findings it suppressed.
    used: set[str] = field(default_factory=set)
    # The rows it covers (its "noqa line"); ``row`` alone unless widened.
    first_row: int = 0
    last_row: int = 0

    def __post_init__(self) -> None:
        if not self.first_row:
            self.first_row = self.row
        if not self.last_row:
            self.last_row = self.row

    @property
    def unused_codes(self) -> tuple[str, ...]:
        """Listed codes that suppressed nothing (empty for a blanket directive)."""
        return tuple(c for c in self.codes or () if c not in self.used)

    def matches(self, code: str) -> list[str]:
        """The entries of this directive that cover ``code`` (``[code]`` if blanket)."""
        if self.codes is None:
            return [code]
        return [c for c in self.codes if code.startswith(c)]


def _parse_codes(match: re.Match[str]) -> tuple[tuple[str, ...] | None, int]:
    """(codes or None for blanket, end offset of the directive within the match string)."""
    codes_text = match.group("codes")
    if codes_text is None:
        return None, match.end()
    codes: list[str] = []
    for item in _SEPARATORS.split(codes_text):
        item = item.upper()
        if item and item not in codes:
            codes.append(item)
    stripped = codes_text.rstrip(", \t\f\v")
    return tuple(codes), match.start("codes") + len(stripped)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass
class Suppressions:
    file_level: bool = False
    # Codes (prefixes) exempted in the whole file by ``# qlint: noqa: CODES``.
    file_codes: tuple[str, ...] = ()
    directives: dict[int, Directive] = field(default_factory=dict)
    # row -> the directives covering it (a directive covers its whole noqa line).
    _by_row: dict[int, list[Directive]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def for_python(cls, src: SourceFile, comments: list | None = None) -> "Suppressions":
        """``comments``: ``python_comments(src)`` when already known (the fact cache keeps them)."""
        result = cls()
        if comments is None:
            comments = python_comments(src)
        for row, col, text, first_row, last_row, own_line in comments:
            result._add_comment(src, row, col, text, first_row, last_row, own_line,
                                file_tools=("qlint", "flake8"))
        return result

    @classmethod
    def for_yaml(cls, src: SourceFile) -> "Suppressions":
        result = cls()
        data = src.utf8
        if not _HAS_NOQA.search(data):
            return result
        for row in range(1, len(src.line_starts) + 1):
            start, end = src.line_span(row)
            line = data[start:end]
            if b"#" not in line or not _HAS_NOQA.search(line):
                continue
            at = _yaml_comment_start(line)
            if at is None:
                continue
            text = line[at:].decode("utf-8", "surrogatepass")
            own_line = not line[:at].strip()
            # ``col`` in characters, as for Python.
            col = len(line[:at].decode("utf-8", "surrogatepass"))
            result._add_comment(src, row, col, text, row, row, own_line, file_tools=("qlint",))
        return result

    def _add_comment(self, src: SourceFile, row: int, col: int, text: str, first_row: int,
                     last_row: int, own_line: bool, *, file_tools: tuple[str, ...]) -> None:
        file_match = FILE_NOQA.match(text)
        if file_match is not None:
            if own_line and file_match.group("tool").lower() in file_tools:
                codes, _ = _parse_codes(file_match)
                if codes is None or file_match.group("tool").lower() == "flake8":
                    self.file_level = True
                else:
                    self.file_codes += tuple(c for c in codes if c not in self.file_codes)
            return
        match = INLINE_NOQA.search(text)
        if match is None:
            return
        codes, end = _parse_codes(match)
        line_start = src.line_starts[row - 1]
        line = src.utf8[line_start:src.line_span(row)[1]].decode("utf-8", "surrogatepass")
        comment_start = line_start + _utf8_len(line[:col])
        directive = Directive(
            row=row,
            codes=codes,
            start=comment_start + _utf8_len(text[:match.start()]),
            end=comment_start + _utf8_len(text[:end]),
            first_row=first_row,
            last_row=last_row,
        )
        self.directives[row] = directive
        for covered in range(first_row, last_row + 1):
            self._by_row.setdefault(covered, []).append(directive)

    # ------------------------------------------------------------------ querying

    def suppresses(self, code: str, rows: Iterable[int]) -> bool:
        """Whether a finding of ``code`` on ``rows`` is suppressed; marks what was used.

        Every directive covering one of the rows and matching the code is marked used
        (so none of them is reported as unused later).
        """
        code = code.upper()
        if self.file_level:
            return True
        if self.file_codes and code.startswith(self.file_codes):
            return True
        if not self._by_row:
            return False
        suppressed = False
        seen: set[int] = set()
        for row in rows:
            for directive in self._by_row.get(row, ()):
                if id(directive) in seen:
                    continue
                seen.add(id(directive))
                matched = directive.matches(code)
                if matched:
                    directive.used.update(matched)
                    suppressed = True
        return suppressed

    def __bool__(self) -> bool:
        return self.file_level or bool(self.file_codes) or bool(self.directives)


# ----------------------------------------------------------------------- Python


_Comment = tuple  # (row, col, text, first_row, last_row, own_line)


def python_comments(src: SourceFile) -> list[_Comment]:
    """The comments of a Python file that mention ``noqa``, with the rows they cover."""
    if not _HAS_NOQA.search(src.utf8):
        return []
    try:
        return _python_comments(src.text)
    except (tokenize.TokenError, SyntaxError):
        return _fallback_comments(src)


def _python_comments(text: str) -> list[_Comment]:
    """Comments mentioning ``noqa``, each with the rows of its noqa line (flake8's
    ``_noqa_line_mapping``: a range closes at every NL/NEWLINE token)."""
    comments: list[_Comment] = []
    pending: list[tuple[int, int, str, bool]] = []
    min_row = max_row = 0
    readline = io.StringIO(text, newline=None).readline
    skip = (tokenize.ENDMARKER, tokenize.DEDENT)
    newlines = (tokenize.NL, tokenize.NEWLINE)
    for tok in tokenize.generate_tokens(readline):
        kind = tok.type
        if kind in skip:
            continue
        s_row, e_row = tok.start[0], tok.end[0]
        if not min_row or s_row < min_row:
            min_row = s_row
        if e_row > max_row:
            max_row = e_row
        if kind == tokenize.COMMENT:
            if "noqa" in tok.string.lower():
                own_line = not tok.line[:tok.start[1]].strip()
                pending.append((s_row, tok.start[1], tok.string, own_line))
        elif kind in newlines:
            for row, col, string, own_line in pending:
                comments.append((row, col, string, min_row, max_row, own_line))
            pending.clear()
            min_row = max_row = 0
    for row, col, string, own_line in pending:
        comments.append((row, col, string, row, row, own_line))
    return comments


def _fallback_comments(src: SourceFile) -> list[_Comment]:
    """For text ``tokenize`` rejects: the first ``#`` of each line that mentions noqa
    (string literals are not recognised, as in flake8)."""
    comments: list[_Comment] = []
    data = src.utf8
    for row in range(1, len(src.line_starts) + 1):
        start, end = src.line_span(row)
        line = data[start:end]
        if b"#" not in line or not _HAS_NOQA.search(line):
            continue
        text = line.decode("utf-8", "surrogatepass")
        for match in re.finditer(r"#", text):
            rest = text[match.start():]
            if FILE_NOQA.match(rest) or INLINE_NOQA.match(rest):
                own_line = not text[:match.start()].strip()
                comments.append((row, match.start(), rest, row, row, own_line))
                break
    return comments


# ------------------------------------------------------------------------- YAML


def _yaml_comment_start(line: bytes) -> int | None:
    """Byte offset of the comment in one YAML line, or None."""
    quote = 0
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quote == 0x27:  # '...': '' is an escaped quote
            if c == 0x27:
                if i + 1 < n and line[i + 1] == 0x27:
                    i += 2
                    continue
                quote = 0
        elif quote == 0x22:  # "...": backslash escapes
            if c == 0x5C:
                i += 2
                continue
            if c == 0x22:
                quote = 0
        elif c == 0x23:  # '#'
            if i == 0 or line[i - 1] in b" \t":
                return i
        elif c in b"'\"" and (i == 0 or line[i - 1] in b" \t[{,"):
            quote = c
        i += 1
    return None
