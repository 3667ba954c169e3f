"""Reading code written for a newer Python than the one qlint runs on, at CPython's speed.

Modern code bases use syntax an older interpreter's parser rejects: PEP 758's
``except A, B:`` (3.14) and PEP 695's ``def f[T]()``, ``class C[T]:`` and ``type X = ...``
(3.12). libcst reads them all, but some fifty times slower than CPython's parser, and
such files are often a code base's largest. So the line CPython rejects is rewritten into
the older grammar *without changing a single byte offset or line*: ``except A, B:`` becomes
``except(A,B):``, type parameters become blanks, and ``type X = v`` becomes
``pass;X;   v``. Nothing a rule reads lives in the blanked bytes (a type alias binds no task,
setting or call of interest), so the facts are those of the original text, and every fix
edits the original. What cannot be rewritten this way is left to libcst.
"""

from __future__ import annotations

import re

from qlint.lint.scan import line_starts, matching_close

# Rewrites per file before giving up: each costs one more parse of the file.
MAX_REWRITES = 200

_EXCEPT = re.compile(rb"\bexcept\b")
_GENERIC_DEF = re.compile(rb"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+\w+[ \t]*(\[)")
_TYPE_STATEMENT = re.compile(rb"^([ \t]*)type[ \t]+(\w+)[ \t]*[\[=]")
_BLANKS = frozenset(b" \t\f")
_LINE_ENDS = frozenset(b"\r\n")


def _line_bounds(data: bytearray, lineno: int) -> tuple[int, int] | None:
    starts = line_starts(data)
    if not 1 <= lineno <= len(starts):
        return None
    start = starts[lineno - 1]
    end = starts[lineno] if lineno < len(starts) else len(data)
    while end > start and data[end - 1] in _LINE_ENDS:
        end -= 1
    return start, end


def _blank(data: bytearray, start: int, end: int) -> None:
    """Spaces over ``start``..``end``, line breaks kept (so every line stays where it was); a
    line broken inside the region ends with a backslash instead, so it still continues."""
    for i in range(start, end):
        if data[i] in _LINE_ENDS:
            if i > start and data[i - 1] not in _LINE_ENDS:
                data[i - 1] = 0x5C
        else:
            data[i] = 0x20


def _parenthesize_except(data: bytearray, start: int, end: int) -> bool:
    """``except A, B:`` -> ``except(A,B):``: blanks between the names make room for the
    parentheses (any left over go before them), so the colon stays in place."""
    match = _EXCEPT.search(data, start, end)
    if match is None:
        return False
    colon = data.find(b":", match.end(), end)
    if colon < 0:
        return False
    segment = bytes(data[match.end():colon])
    if b"#" in segment or b"\\" in segment or b"(" in segment:
        return False
    compact = b"(" + re.sub(rb"\s+", b"", segment) + b")"
    if len(compact) > len(segment):
        return False
    data[match.end():colon] = b" " * (len(segment) - len(compact)) + compact
    return True


def downgrade(data: bytearray, error: SyntaxError) -> bool:
    """Rewrite, in place and at the same length, the construct ``error`` points at. False when
    the line holds nothing this module knows how to rewrite."""
    bounds = _line_bounds(data, error.lineno or 0)
    if bounds is None:
        return False
    start, end = bounds
    if error.msg == "multiple exception types must be parenthesized":
        return _parenthesize_except(data, start, end)
    line = bytes(data[start:end])
    generic = _GENERIC_DEF.match(line)
    if generic is not None:
        open_at = start + generic.start(1)
        close = matching_close(data, open_at, len(data))
        if close < 0:
            return False
        _blank(data, open_at, close + 1)
        return True
    alias = _TYPE_STATEMENT.match(line)
    if alias is not None:
        # ``type Pair[T] = tuple[T, T]`` -> ``pass;Pair;     tuple[T, T]``: the value stays an
        # expression statement, so a value spanning lines keeps its brackets.
        keyword = start + len(alias.group(1))
        name_end = start + alias.end(2)
        equals = name_end
        while data[equals] in _BLANKS:
            equals += 1
        if data[equals] == 0x5B:  # type parameters
            close = matching_close(data, equals, len(data))
            if close < 0:
                return False
            equals = close + 1
        while equals < len(data) and data[equals] != 0x3D:
            equals += 1
        if equals >= len(data) or data[equals + 1:equals + 2] == b"=":
            return False
        head = b"pass;" + data[start + alias.start(2):name_end] + b";"
        if any(c in _LINE_ENDS for c in data[keyword:keyword + len(head) + 1]):
            return False
        _blank(data, keyword, equals + 1)
        data[keyword:keyword + len(head)] = head
        return True
    return False
