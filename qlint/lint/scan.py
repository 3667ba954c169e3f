"""Byte scanners for the few positions a syntax tree does not keep: a header's colon, the
parentheses after an argument, a statement's end. Each knows strings and comments, so a
``:`` or ``)`` inside ``"a:b"`` or ``# note: ...`` is never taken for syntax."""

from __future__ import annotations

import re

QUOTES = (0x22, 0x27)  # " '
_NEWLINE = re.compile(rb"\r\n|\r|\n")


def line_starts(data: bytes | bytearray) -> list[int]:
    """Offset of each line's first byte; lines end at ``\\r\\n``, ``\\r`` or ``\\n``, as CPython's
    tokenizer and libcst count them."""
    starts = [0]
    starts.extend(m.end() for m in _NEWLINE.finditer(data))
    return starts


def line_end(data: bytes, offset: int) -> int:
    """The offset of the ``\n`` that ends the line holding ``offset`` (the data's end on the last line)."""
    nl = data.find(b"\n", offset)
    return len(data) if nl < 0 else nl


def skip_string(data: bytes, i: int, end: int) -> int:
    """Index just after the string literal whose opening quote is at ``i``."""
    quote = data[i]
    if data[i:i + 3] == bytes((quote,)) * 3:
        close = bytes((quote,)) * 3
        i += 3
        while i < end:
            if data[i] == 0x5C:  # backslash
                i += 2
                continue
            if data.startswith(close, i):
                return i + 3
            i += 1
        return end
    i += 1
    while i < end:
        c = data[i]
        if c == 0x5C:
            i += 2
            continue
        if c == quote or c in (0x0A, 0x0D):
            return i + 1
        i += 1
    return end


def comment_end(data: bytes, i: int, end: int) -> int:
    """Where the comment starting at ``i`` ends: its line break (or ``end``)."""
    nl = data.find(b"\n", i, end)
    return end if nl < 0 else nl


def _structural(data: bytes, start: int, end: int, colon: bool) -> int:
    """Walk bytes outside strings and comments, counting brackets: the first ``:`` outside any
    bracket (``colon``), or the bracket that brings the count back to zero; -1 if none."""
    depth = 0
    i = start
    while i < end:
        c = data[i]
        if c in QUOTES:
            i = skip_string(data, i, end)
            continue
        if c == 0x23:  # "#"
            i = comment_end(data, i, end)
            continue
        if c in (0x28, 0x5B, 0x7B):
            depth += 1
        elif c in (0x29, 0x5D, 0x7D):
            depth -= 1
            if depth == 0 and not colon:
                return i
        elif c == 0x3A and depth == 0 and colon:
            return i
        i += 1
    return -1


def header_colon(data: bytes, start: int, end: int) -> int:
    """The ``:`` that ends a ``def``/``class`` header starting at ``start``: the first one outside
    brackets, strings and comments (never one in ``# note: ...``), or -1."""
    return _structural(data, start, end, colon=True)


def closing_parens_end(data: bytes, start: int, end: int) -> int:
    """After an argument ending at ``start``: the offset after the last ``)`` that closes
    parentheses around it, before any comma or ``end`` (the call's own ``)``)."""
    result = start
    i = start
    while i < end:
        c = data[i]
        if c == 0x29:
            result = i + 1
        elif c == 0x23:
            i = comment_end(data, i, end)
            continue
        elif c not in (0x20, 0x09, 0x0A, 0x0D, 0x0C, 0x5C):
            break
        i += 1
    return result


def matching_close(data: bytes, open_at: int, end: int) -> int:
    """Index of the bracket closing the one at ``open_at`` (before ``end``), or -1."""
    return _structural(data, open_at, end, colon=False)
