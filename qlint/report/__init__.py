"""Turn diagnostics into text in ruff-compatible output formats.

The engine decides *what* was found; this package only decides how it is shown, so that
every format (human, machine, CI) is produced from the same list and the same notion of
"fixable in this run". Every function returns the whole text (each line ends in ``\\n``;
an empty string means print nothing) and never writes to a stream itself.
"""

from __future__ import annotations

from pathlib import Path

from qlint.lint.diagnostics import Diagnostic
from qlint.report._common import Style, Summary, sort_diagnostics
from qlint.report.concise import render_concise
from qlint.report.full import render_full
from qlint.report.github import render_github
from qlint.report.json_format import render_json, render_json_lines
from qlint.report.sarif import render_sarif
from qlint.report.statistics import render_statistics_text

__all__ = ["FORMATS", "HUMAN_FORMATS", "Summary", "render", "render_statistics"]

FORMATS = ("full", "concise", "json", "json-lines", "github", "sarif")
# Only these get colour and the "Found N errors." footer, as in ruff.
HUMAN_FORMATS = ("full", "concise")


def render(diagnostics: list[Diagnostic], fmt: str, *, rules: dict, root: Path,
           color: bool = False, summary: Summary | None = None) -> str:
    """Render ``diagnostics`` in ``fmt`` (one of :data:`FORMATS`).

    ``rules`` maps code -> Rule class for every rule that ran (SARIF lists them all; JSON
    takes ``url`` from them). ``root`` is the project root that paths are shown relative
    to. ``color`` adds ANSI codes to the human formats only.
    """
    summary = summary or Summary()
    ordered = sort_diagnostics(diagnostics)
    style = Style(color)
    root = Path(root)
    if fmt == "full":
        return render_full(ordered, root=root, summary=summary, style=style)
    if fmt == "concise":
        return render_concise(ordered, root=root, summary=summary, style=style)
    if fmt == "json":
        return render_json(ordered, rules=rules, root=root)
    if fmt == "json-lines":
        return render_json_lines(ordered, rules=rules, root=root)
    if fmt == "github":
        return render_github(ordered, root=root)
    if fmt == "sarif":
        return render_sarif(ordered, rules=rules, root=root)
    raise ValueError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})")


def render_statistics(diagnostics: list[Diagnostic], *, rules: dict, color: bool = False,
                      summary: Summary | None = None) -> str:
    """ruff's ``--statistics`` table followed by its footer ("" when nothing was found)."""
    return render_statistics_text(diagnostics, rules=rules, summary=summary or Summary(),
                                  style=Style(color))
