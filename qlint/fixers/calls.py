"""Edit primitives for calls, keywords, literals and class bodies.

Each returns text edits against ``SourceFile.utf8`` and touches nothing else: the
argument layout (one line, or one argument per line with or without a trailing comma)
is read from the text around the call and continued in the same style.
"""

from __future__ import annotations

import re

from qlint.lint.diagnostics import Edit
from qlint.lint.facts import CallFact, ClassFact, Keyword, Value
from qlint.lint.scan import line_end
from qlint.lint.source import SourceFile

_STRING_PREFIX = re.compile(r"^([rRbBuUfF]*)(\"\"\"|'''|\"|')")
# What may precede a call that is its line's statement: indentation, then ``@``, an assignment or ``return``.
_STATEMENT_PREFIX = re.compile(rb"^[ \t]*(?:@[ \t]*|[A-Za-z_][\w.]*[ \t]*(?::[^=]*)?=[ \t]*|return[ \t]+)?$")


def _line_end(data: bytes, offset: int) -> int:
    """Where the line's text ends: before its ``\r\n`` or ``\n``."""
    nl = line_end(data, offset)
    return nl - 1 if nl < len(data) and nl > 0 and data[nl - 1] == 0x0D else nl


def _indent_of_line(data: bytes, offset: int) -> str:
    start = data.rfind(b"\n", 0, offset) + 1
    end = start
    while end < len(data) and data[end] in (0x20, 0x09):
        end += 1
    return data[start:end].decode("utf-8")


def _last_argument_end(call: CallFact) -> int | None:
    ends = [a.span.end for a in call.args] + [k.span.end for k in call.kwargs.values()]
    if call.args_end is not None and ends and not call.has_star:
        ends.append(call.args_end)  # a parenthesized argument ends after its ``)``
    return max(ends) if ends else None


def add_keywords(src: SourceFile, call: CallFact, items: list[tuple[str, str]],
                 line_length: int | None = None) -> list[Edit]:
    """Add ``name=value`` arguments to a call, turning ``@app.task`` into ``@app.task(...)``.

    With ``line_length``, a call on one line that the new arguments would push past it is
    written one argument per line with a trailing comma, as ruff's formatter and black write a
    call that does not fit (and keep it so: the trailing comma is their "magic" one)."""
    text = ", ".join(f"{k}={v}" for k, v in items)
    data = src.utf8
    if line_length is not None:
        exploded = _exploded(src, call, items, line_length)
        if exploded is not None:
            return exploded
    if not call.is_call:
        return [Edit(call.func_end, call.func_end, f"({text})")]
    assert call.lpar is not None and call.rpar is not None
    last = _last_argument_end(call)
    if last is None or call.has_star and last is None:
        inner = data[call.lpar:call.rpar]
        if inner.strip():  # only ``*args``: put ours after them
            last = call.rpar - (len(inner) - len(inner.rstrip()))
        else:
            return [Edit(call.lpar, call.lpar, text)]
    after = data[last:call.rpar]
    comma = after.lstrip().startswith(b",")
    multiline = b"\n" in data[call.lpar:call.rpar] and b"\n" in data[call.lpar:last] or (
        b"\n" in after and comma)
    if not multiline:
        if comma:
            pos = last + after.index(b",") + 1
            return [Edit(pos, pos, " " + text + ",")]
        return [Edit(last, last, ", " + text)]
    indent = _indent_of_line(data, last)
    newline = src.newline
    lines = "".join(f"{newline}{indent}{k}={v}," for k, v in items)
    if comma:
        pos = _line_end(data, last + after.index(b","))
        pos = min(pos, call.rpar) if b"\n" not in data[last:call.rpar] else pos
        return [Edit(pos, pos, lines)]
    # No trailing comma: add one after the last argument, then ours on new lines without one.
    end = _line_end(data, last)
    if end > call.rpar:
        end = call.rpar
    body = "".join(f",{newline}{indent}{k}={v}" for k, v in items)
    if end == last:
        return [Edit(last, last, body)]
    return [Edit(last, last, ","), Edit(end, end, body[1:])]


def _line_width(data: bytes, offset: int) -> int:
    """The width in characters of the line holding ``offset``."""
    start = data.rfind(b"\n", 0, offset) + 1
    return len(data[start:_line_end(data, offset)].decode("utf-8", "replace"))


def _exploded(src: SourceFile, call: CallFact, items: list[tuple[str, str]], line_length: int,
              grow: int = 0) -> list[Edit] | None:
    """The call's arguments and the new ones one per line, when it is on one line and adding
    them there would pass ``line_length``; None otherwise (or when the call holds what qlint
    does not rewrite: ``*args``, comments, several lines)."""
    data = src.utf8
    added = ", ".join(f"{k}={v}" for k, v in items)
    if not call.is_call:
        if _line_width(data, call.func_end) + grow + len(added) + 2 <= line_length:
            return None
        start = end = call.func_end
        existing: list[str] = []
        wrap_open, wrap_close = True, True
    else:
        if call.lpar is None or call.rpar is None or call.has_star:
            return None
        inner = data[call.lpar:call.rpar]
        if b"\n" in inner or b"\r" in inner or b"#" in inner:
            return None
        if not inner.strip() and not items:
            return None  # ``f()``: nothing to put on lines of its own
        grow += len(added) + (2 if inner.strip() and items else 0)
        if _line_width(data, call.lpar) + grow <= line_length:
            return None
        spans = sorted([(a.span.start, a.span.end) for a in call.args] +
                       [(k.span.start, k.span.end) for k in call.kwargs.values()])
        existing = [data[a:b].decode("utf-8") for a, b in spans]
        if call.args_end is not None and spans and call.args_end > spans[-1][1]:
            return None  # a parenthesized last argument: its text is more than its span
        start, end = call.lpar, call.rpar
        wrap_open, wrap_close = False, False
    line_start = data.rfind(b"\n", 0, start) + 1
    # Only a call that is its line's statement (a decorator, ``x = f(...)``, ``return f(...)``):
    # inside a larger expression the formatter would split the outer one instead.
    if not _STATEMENT_PREFIX.match(data[line_start:call.span.start]):
        return None
    close = call.func_end if not call.is_call else call.rpar + 1
    if data[close:_line_end(data, close)].strip()[:1] not in (b"", b"#"):
        return None
    indent = _indent_of_line(data, line_start)
    if "\t" in indent:
        return None
    nl = src.newline
    body = "".join(f"{nl}{indent}    {arg}," for arg in [*existing, *(f"{k}={v}" for k, v in items)])
    text = ("(" if wrap_open else "") + body + nl + indent + (")" if wrap_close else "")
    return [Edit(start, end, text)]


def rename_method(src: SourceFile, call: CallFact, method: str, line_length: int | None = None) -> list[Edit]:
    """``x.apply_async(...)`` -> ``x.<method>(...)``; the arguments one per line when the longer
    name would push the line past ``line_length``."""
    start = call.func_end - len(call.method)
    edits = [Edit(start, call.func_end, method)]
    if line_length is not None:
        exploded = _exploded(src, call, [], line_length, grow=len(method) - len(call.method))
        if exploded is not None:
            edits += exploded
    return edits


def wrap_call(src: SourceFile, call: CallFact, outer: str, prefix: str, line_length: int | None = None) -> list[Edit]:
    """``f(x)`` -> ``outer(prefix f(x))`` (``transaction.on_commit(lambda: f(x))``); written as
    ``outer(`` / ``    prefix f(x),`` / ``)`` when one line would pass ``line_length``."""
    data = src.utf8
    text = data[call.span.start:call.span.end].decode("utf-8")
    one_line = f"{outer}({prefix}{text})"
    if line_length is not None and b"\n" not in data[call.span.start:call.span.end]:
        line_start = data.rfind(b"\n", 0, call.span.start) + 1
        width = _line_width(data, call.span.start) + len(one_line) - len(text)
        if width > line_length and _STATEMENT_PREFIX.match(data[line_start:call.span.start]):
            indent = _indent_of_line(data, line_start)
            if "\t" not in indent:
                nl = src.newline
                return [Edit(call.span.start, call.span.end, f"{outer}({nl}{indent}    {prefix}{text},{nl}{indent})")]
    return [Edit(call.span.start, call.span.end, one_line)]


def replace_value(keyword: Keyword, text: str) -> Edit:
    return Edit(keyword.value.span.start, keyword.value.span.end, text)


def replace_span(value: Value, text: str) -> Edit:
    return Edit(value.span.start, value.span.end, text)


def string_like(src: SourceFile, value: Value, new: str) -> str:
    """``new`` as a string literal in the quote style of ``value``'s literal."""
    original = src.utf8[value.span.start:value.span.end].decode("utf-8")
    match = _STRING_PREFIX.match(original)
    quote = match.group(2) if match else '"'
    if len(quote) == 3:
        quote = quote[0]
    return f"{quote}{new}{quote}"


def delete_element(seq: Value, index: int) -> Edit | None:
    """Remove element ``index`` of a literal list/tuple/set with its separating comma."""
    elements = seq.elements
    if len(elements) < 2:
        return None
    if index + 1 < len(elements):
        return Edit(elements[index].span.start, elements[index + 1].span.start, "")
    return Edit(elements[index - 1].span.end, elements[index].span.end, "")


def add_class_attributes(src: SourceFile, cls: ClassFact, items: list[tuple[str, str]]) -> list[Edit]:
    if cls.body_insert is None:
        return []
    newline = src.newline
    text = "".join(f"{cls.body_indent}{k} = {v}{newline}" for k, v in items)
    return [Edit(cls.body_insert, cls.body_insert, text)]


def fresh_name(used: set[str], base: str = "exc") -> str:
    name = base
    i = 1
    while name in used:
        name = f"{base}{i}"
        i += 1
    return name
