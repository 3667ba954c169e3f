"""``--statistics``: one line per rule code, as ruff 0.17 prints it (after flake8's format).

``count<TAB>CODE<TAB>[*] name`` with the count right-aligned and the code padded to the
widest code. The marker is ``[*]`` when every finding of the code is fixable in this run,
``[-]`` when some are, ``[ ]`` when none are, and the marker column is left out entirely
when nothing at all is fixable. Rows are sorted by count (descending), then code.
Nothing is printed when there are no findings; otherwise ruff's footer follows.
"""

from __future__ import annotations

from qlint.lint.diagnostics import Diagnostic
from qlint.report._common import Style, Summary, fix_applies, footer


def render_statistics_text(diagnostics: list[Diagnostic], *, rules: dict, summary: Summary,
                           style: Style) -> str:
    if not diagnostics:
        return ""
    groups: dict[str, list[Diagnostic]] = {}
    for d in sorted(diagnostics, key=lambda d: d.code):
        groups.setdefault(d.code, []).append(d)
    rows = []
    for code, members in groups.items():
        fixable = sum(1 for d in members if fix_applies(d, summary.unsafe_fixes_enabled))
        rule = rules.get(code)
        name = members[0].name or (rule.name if rule is not None else "")
        rows.append((len(members), code, fixable, name))
    rows.sort(key=lambda row: -row[0])  # stable: codes stay sorted within a count

    count_width = len(str(max(row[0] for row in rows)))
    code_width = max(len(row[1]) for row in rows)
    any_fixable = any(row[2] for row in rows)
    out = []
    for count, code, fixable, name in rows:
        if not any_fixable:
            marker = ""
        elif fixable == count:
            marker = f"{style.star()} "
        elif fixable:
            marker = "[" + style.cyan("-") + "] "
        else:
            marker = "[ ] "
        padding = " " * (code_width - len(code))
        out.append(f"{' ' * (count_width - len(str(count)))}{style.bold(str(count))}\t"
                   f"{style.code(code)}{padding}\t{marker}{name}\n")
    return "".join(out) + footer(diagnostics, summary, style)
