"""``--output-format concise``: one ``path:row:col: CODE [*] message`` line per finding.

Grep- and editor-friendly (the ``path:row:col:`` prefix is what editors jump to), followed
by ruff's footer so a human still sees the totals.
"""

from __future__ import annotations

from pathlib import Path

from qlint.lint.diagnostics import Diagnostic
from qlint.report._common import (
    Style,
    Summary,
    fix_applies,
    footer,
    show_fix_status,
    shown_path,
)


def render_concise(diagnostics: list[Diagnostic], *, root: Path, summary: Summary,
                   style: Style) -> str:
    marked = show_fix_status(diagnostics, summary)
    colon = style.cyan(":")
    out: list[str] = []
    for d in diagnostics:
        fixable = marked and fix_applies(d, summary.unsafe_fixes_enabled)
        marker = f"{style.star()} " if fixable else ""
        out.append(
            f"{style.bold(shown_path(d, root))}{colon}{d.location.row}{colon}{d.location.column}"
            f"{colon} {style.code(d.code)} {marker}{d.message}\n"
        )
    return "".join(out) + footer(diagnostics, summary, style)
