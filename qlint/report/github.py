"""``--output-format github``: GitHub Actions workflow commands that become PR annotations.

Shape as ruff 0.17 prints it (one line)::

    ::error title=qlint (QLT101),file=a.py,line=3,col=5,endLine=3,endColumn=9::a.py:3:5: QLT101 m

Unlike ruff we apply the escaping of ``actions/toolkit`` (``core/src/command.ts``): without
it a ``%``, a newline, or a ``:``/``,`` in a file name breaks or truncates the command.
As in ruff, ``col``/``endColumn`` are left out when the range spans lines (GitHub rejects
that combination, ruff issue #22074), and the fix message follows as an escaped
``help:`` line.
"""

from __future__ import annotations

from pathlib import Path

from qlint.lint.diagnostics import Diagnostic, Severity
from qlint.report._common import shown_path

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(d: Diagnostic, root: Path) -> str:
    path = shown_path(d, root)
    start, end = d.location, d.end_location
    props = [("title", f"qlint ({d.code})"), ("file", path), ("line", str(start.row))]
    if start.row == end.row:
        props += [("col", str(start.column)), ("endLine", str(end.row)),
                  ("endColumn", str(end.column))]
    else:
        props.append(("endLine", str(end.row)))
    properties = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    data = f"{path}:{start.row}:{start.column}: {d.code} {d.message}"
    if d.fix is not None and d.fix.message:
        data += f"\n  help: {d.fix.message}"
    return f"::{COMMAND.get(d.severity, 'error')} {properties}::{escape_data(data)}\n"


def render_github(diagnostics: list[Diagnostic], *, root: Path) -> str:
    return "".join(_annotation(d, root) for d in diagnostics)
