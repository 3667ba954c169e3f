"""Edit primitives for ``# noqa`` comments, in Python files and YAML manifests.

Every primitive returns one :class:`~qlint.lint.diagnostics.Edit` against
``SourceFile.utf8`` that stays on one line: no line break is added or removed (except by
:func:`remove_codes` deleting a line that holds nothing but the directive), so CRLF line
endings and the file's encoding survive ``SourceFile.encode``.

- :func:`add_codes`: ``x = 1`` -> ``x = 1  # noqa: QLT101``; ``x = 1  # keep me`` ->
  ``x = 1  # keep me  # noqa: QLT101``; an existing ``# noqa: QLT201`` becomes
  ``# noqa: QLT101, QLT201`` (every code sorted, as ``ruff --add-noqa`` writes them; the
  spelling of codes already there is kept, and so is any text after the directive).
- :func:`remove_codes`: drops codes from a directive, or the whole directive with the
  spaces before it when none remain (other comments on the line stay), as ruff's RUF100 fix.
- :func:`unfit_rows`: rows whose line cannot take a trailing comment (it ends inside a
  multi-line string, or continues with a backslash; in YAML, a line of a block scalar).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from qlint.lint.diagnostics import Edit
from qlint.lint.noqa import INLINE_NOQA, Directive
from qlint.lint.source import SourceFile

_SEPARATORS = re.compile(r"[,\s]+")
_BLANKS = b" \t\f"
YAML_SUFFIXES = (".yaml", ".yml")


def is_yaml(path: Path | str) -> bool:
    return Path(path).suffix.lower() in YAML_SUFFIXES


def listed_codes(src: SourceFile, directive: Directive) -> list[str]:
    """The codes of a directive as written (case kept, duplicates dropped)."""
    text = src.utf8[directive.start:directive.end].decode("utf-8", "surrogatepass")
    match = INLINE_NOQA.match(text)
    if match is None or match.group("codes") is None:
        return []
    out: list[str] = []
    for item in _SEPARATORS.split(match.group("codes")):
        if item and item.upper() not in (c.upper() for c in out):
            out.append(item)
    return out


def _sorted(codes) -> list[str]:
    return sorted(codes, key=lambda c: (c.upper(), c))


def add_codes(src: SourceFile, row: int, codes, directive: Directive | None = None) -> Edit | None:
    """Make line ``row`` suppress ``codes``: merge them into ``directive`` (the line
    directive on that row, if any) or append ``  # noqa: CODES`` to the line.

    None when there is nothing to do (a blanket directive, or every code already listed).
    """
    codes = {c.upper() for c in codes}
    if directive is not None and directive.row == row:
        if directive.codes is None:
            return None
        existing = listed_codes(src, directive)
        have = {c.upper() for c in existing}
        new = [c for c in codes if c not in have]
        if not new:
            return None
        return Edit(directive.start, directive.end, "# noqa: " + ", ".join(_sorted(existing + new)))
    start, end = src.line_span(row)
    trimmed = end
    while trimmed > start and src.utf8[trimmed - 1] in _BLANKS:
        trimmed -= 1
    sep = "  " if trimmed > start else ""
    return Edit(trimmed, end, f"{sep}# noqa: " + ", ".join(_sorted(codes)))


def remove_codes(src: SourceFile, directive: Directive, codes) -> Edit:
    """Drop ``codes`` (as listed, compared case-insensitively) from ``directive``; when no
    code would remain, delete the directive (ruff's ``delete_noqa``):

    - alone on its line: the whole line, with its line break;
    - at the end of the line: the directive and the blanks before it
      (``x = 1  # keep me  # noqa: QLT101`` -> ``x = 1  # keep me``);
    - followed by another comment: the directive and the blanks after it
      (``# noqa: QLT101  # type: ignore`` -> ``# type: ignore``);
    - followed by free text: the directive, leaving ``# `` before the text
      (``# noqa: QLT101, see #12`` -> ``# see #12``).
    """
    drop = {c.upper() for c in codes}
    keep = [c for c in listed_codes(src, directive) if c.upper() not in drop]
    if keep:
        return Edit(directive.start, directive.end, "# noqa: " + ", ".join(keep))
    data = src.utf8
    line_start, line_end = src.line_span(directive.row)
    before = directive.start
    while before > line_start and data[before - 1] in _BLANKS:
        before -= 1
    after = directive.end
    while after < line_end and data[after] in _BLANKS:
        after += 1
    if before == line_start and after == line_end:
        starts = src.line_starts
        next_start = starts[directive.row] if directive.row < len(starts) else len(data)
        return Edit(line_start, next_start, "")
    if after == line_end:
        return Edit(before, line_end, "")
    if data[after:after + 1] == b"#":
        return Edit(directive.start, after, "")
    while after < line_end and data[after] in b", \t\f":
        after += 1
    return Edit(directive.start, after, "# ")


def apply(src: SourceFile, edits: list[Edit]) -> bytes:
    """``src.utf8`` with non-overlapping ``edits`` applied."""
    out = []
    cursor = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        out.append(src.utf8[cursor:edit.start])
        out.append(edit.content.encode("utf-8"))
        cursor = edit.end
    out.append(src.utf8[cursor:])
    return b"".join(out)


# ---------------------------------------------------------------- where a comment cannot go


def unfit_rows(src: SourceFile) -> set[int]:
    return _yaml_unfit_rows(src) if is_yaml(src.path) else _python_unfit_rows(src)


def _python_unfit_rows(src: SourceFile) -> set[int]:
    """Rows whose line ends inside a multi-line token (a triple-quoted string, an f-string
    on 3.12+) or continues with a backslash: a ``#`` appended there would be part of the
    string, or a syntax error."""
    rows: set[int] = set()
    comment_rows: set[int] = set()
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    open_fstrings: list[int] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src.text, newline=None).readline):
            if tok.type == tokenize.COMMENT:
                comment_rows.add(tok.start[0])
            elif fstring_start is not None and tok.type == fstring_start:
                open_fstrings.append(tok.start[0])
            elif fstring_end is not None and tok.type == fstring_end and open_fstrings:
                rows.update(range(open_fstrings.pop(), tok.end[0]))
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE) and tok.end[0] > tok.start[0]:
                rows.update(range(tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError):
        pass  # not valid Python: nothing was reported in it; callers verify their edits anyway
    data = src.utf8
    for row in range(1, len(src.line_starts) + 1):
        start, end = src.line_span(row)
        if end > start and data[end - 1] == 0x5C and row not in comment_rows:  # "\"
            rows.add(row)
    return rows


_BLOCK_HEADER = re.compile(r"(?:^|:|-)[ \t]+[|>][0-9+-]*[ \t]*(?:#.*)?$")


def _yaml_unfit_rows(src: SourceFile) -> set[int]:
    """Rows inside a block scalar (``args: |`` / ``- >-``): a ``#`` there is text."""
    rows: set[int] = set()
    parent: int | None = None  # indent of the line that opened the current block scalar
    for row in range(1, len(src.line_starts) + 1):
        line = src.line_text(row)
        indent = len(line) - len(line.lstrip(" "))
        if parent is not None:
            if not line.strip() or indent > parent:
                rows.add(row)
                continue
            parent = None
        if _BLOCK_HEADER.search(line):
            parent = indent
    return rows
