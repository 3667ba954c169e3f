"""``--output-format full`` (the default): ruff's annotated-snippet style.

::

    QLT101 [*] message
     --> app/tasks.py:3:5
      |
    3 |     send_email.delay(user)
      |     ^^^^^^^^^^^^^^^^
    help: Pass the id instead

The engine hands over only the finding's first line (``Diagnostic.source_line``), so unlike
ruff there are no context lines and no fix diff; the layout otherwise matches ruff's output
for a finding on a file's last line. Tabs are shown as four spaces and wide characters
count two columns, so the caret sits under the reported characters in a terminal.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from qlint.lint.diagnostics import Applicability, Diagnostic
from qlint.report._common import (
    Style,
    Summary,
    fix_applies,
    footer,
    show_fix_status,
    shown_path,
)

TAB_WIDTH = 4
UNSAFE_NOTE = "This is an unsafe fix and may change runtime behavior"


def _char_width(char: str) -> int:
    if char == "\t":
        return TAB_WIDTH
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(c) for c in text)


def caret_span(diagnostic: Diagnostic, line: str) -> tuple[int, int]:
    """(display offset, caret count) of the reported range on its first line; at least one caret."""
    start = max(diagnostic.location.column - 1, 0)
    if diagnostic.end_location.row == diagnostic.location.row:
        end = max(diagnostic.end_location.column - 1, start)
    else:  # the range goes on: underline to the end of this line
        end = max(len(line), start)
    offset = _width(line[:start]) + max(start - len(line), 0)
    count = _width(line[start:end]) + max(end - max(len(line), start), 0)
    return offset, max(count, 1)


def _snippet(d: Diagnostic, style: Style) -> list[str]:
    line = d.source_line.rstrip("\r\n")
    shown = line.replace("\t", " " * TAB_WIDTH)
    number = str(d.location.row)
    pad = " " * (len(number) + 1)
    bar = style.gutter("|")
    offset, count = caret_span(d, line)
    return [
        f"{pad}{bar}",
        f"{style.gutter(number)} {bar}" + (f" {shown}" if shown else ""),
        f"{pad}{bar} {' ' * offset}{style.severity('^' * count, d.severity)}",
    ]


def _one(d: Diagnostic, *, root: Path, marked: bool, summary: Summary, style: Style) -> str:
    fixable = marked and fix_applies(d, summary.unsafe_fixes_enabled)
    marker = " " + style.star() if fixable else ""
    number = str(d.location.row)
    lines = [
        style.severity(d.code, d.severity) + marker + style.bold(" " + d.message),
        (f"{' ' * len(number)}{style.gutter('-->')} "
         f"{shown_path(d, root)}:{number}:{d.location.column}"),
        *_snippet(d, style),
    ]
    if d.fix is not None and d.fix.message:
        lines.append(style.help("help") + style.bold(": " + d.fix.message))
    if d.fix is not None and d.fix.applicability is Applicability.UNSAFE:
        lines.append(style.note("note") + style.bold(": " + UNSAFE_NOTE))
    return "\n".join(lines) + "\n\n"


def render_full(diagnostics: list[Diagnostic], *, root: Path, summary: Summary,
                style: Style) -> str:
    marked = show_fix_status(diagnostics, summary)
    body = "".join(_one(d, root=root, marked=marked, summary=summary, style=style)
                   for d in diagnostics)
    return body + footer(diagnostics, summary, style)
