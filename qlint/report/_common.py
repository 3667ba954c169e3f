"""Pieces every output format shares: the run summary, paths, fix status, colour, footer.

They live in one place so that ``concise``, ``full`` and ``--statistics`` agree on what
"fixable in this run" means and print exactly the same footer, as ruff's printer does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qlint.lint.diagnostics import Applicability, Diagnostic, Severity


@dataclass
class Summary:
    """What the engine tells the human formats for the footer."""

    fixed: int = 0  # fixes applied in this run
    unsafe_fixes_enabled: bool = False
    fix_mode: bool = False  # --fix was given


def absolute_path(path: Path, root: Path) -> Path:
    """A diagnostic's file as an absolute path; a relative ``path`` is relative to ``root``."""
    path = Path(path)
    if path.is_absolute():
        return path
    return Path(os.path.abspath(Path(root) / path))


def relative_to_root(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root`` when it lies under it, else None (symlinks tried both ways)."""
    return _relative(str(path), str(root))


@lru_cache(maxsize=4096)
def _relative(path: str, root: str) -> Path | None:
    # Memoized: a generated module can carry tens of thousands of findings in one file.
    absolute = absolute_path(Path(path), Path(root))
    base = Path(os.path.abspath(root))
    try:
        return absolute.relative_to(base)
    except ValueError:
        pass
    try:  # through symlinks
        return absolute.resolve().relative_to(base.resolve())
    except ValueError:
        return None


def shown_path(diagnostic: Diagnostic, root: Path) -> str:
    """The file name humans see: ``display_path`` if set, else relative to root, else as given."""
    if diagnostic.display_path:
        return diagnostic.display_path
    relative = relative_to_root(diagnostic.path, root)
    return str(relative) if relative is not None else str(diagnostic.path)


def fix_applies(diagnostic: Diagnostic, unsafe_fixes_enabled: bool) -> bool:
    """ruff's ``fix.applies(required_applicability)``: safe always, unsafe only when enabled."""
    fix = diagnostic.fix
    if fix is None:
        return False
    required = Applicability.UNSAFE if unsafe_fixes_enabled else Applicability.SAFE
    return fix.applicability.rank >= required.rank


def hidden_unsafe(diagnostic: Diagnostic, unsafe_fixes_enabled: bool) -> bool:
    """An unsafe fix that ``--unsafe-fixes`` would enable (display-only fixes never count)."""
    fix = diagnostic.fix
    return (fix is not None and not unsafe_fixes_enabled
            and fix.applicability is Applicability.UNSAFE)


def show_fix_status(diagnostics: list[Diagnostic], summary: Summary) -> bool:
    """ruff marks findings ``[*]`` only outside fix mode and only if anything is applicable.

    In fix mode a finding that is still there could not be fixed, so no marker is shown.
    """
    return not summary.fix_mode and any(
        fix_applies(d, summary.unsafe_fixes_enabled) for d in diagnostics)


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order (file, row, column, code) whatever order the workers finished in."""
    return sorted(diagnostics, key=lambda d: d.sort_key)


SEVERITY_COLOUR = {Severity.ERROR: "91", Severity.WARNING: "93", Severity.INFO: "96"}


class Style:
    """ANSI styling as ruff uses it; every method is the identity when colour is off."""

    RESET = "\x1b[0m"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, text: str, *codes: str) -> str:
        if not self.enabled or not text:
            return text
        return "".join(f"\x1b[{c}m" for c in codes) + text + self.RESET

    def bold(self, text: str) -> str:
        return self._wrap(text, "1")

    def cyan(self, text: str) -> str:
        return self._wrap(text, "36")

    def gutter(self, text: str) -> str:
        return self._wrap(text, "1", "94")

    def code(self, text: str) -> str:
        return self._wrap(text, "1", "31")

    def severity(self, text: str, severity: Severity) -> str:
        return self._wrap(text, "1", SEVERITY_COLOUR.get(severity, "91"))

    def help(self, text: str) -> str:
        return self._wrap(text, "1", "96")

    def note(self, text: str) -> str:
        return self._wrap(text, "1", "33")

    def success(self, text: str) -> str:
        return self._wrap(text, "1", "32")

    def star(self) -> str:
        return "[" + self.cyan("*") + "]"


def _plural(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def footer(diagnostics: list[Diagnostic], summary: Summary, style: Style) -> str:
    """ruff 0.17's summary text after ``full``, ``concise`` and ``--statistics`` output.

    Wording verified against the ruff 0.17.6 binary:
    ``Found 4 errors.`` / ``Found 4 errors (1 fixed, 3 remaining).`` / ``All checks passed!``,
    then ``[*] 1 fixable with `--fix` (2 unsafe fixes available with `--fix --unsafe-fixes`).``,
    ``[*] 1 fixable with `--fix`.`` or ``1 unsafe fix available with `--fix --unsafe-fixes`.``
    """
    lines: list[str] = []
    remaining = len(diagnostics)
    fixed = summary.fixed
    total = fixed + remaining
    if fixed > 0:
        lines.append(f"Found {total} {_plural(total, 'error', 'errors')} "
                     f"({fixed} fixed, {remaining} remaining).")
    elif remaining > 0:
        lines.append(f"Found {remaining} {_plural(remaining, 'error', 'errors')}.")
    else:
        lines.append(style.success("All checks passed!"))

    enabled = summary.unsafe_fixes_enabled
    applicable = sum(1 for d in diagnostics if fix_applies(d, enabled))
    hidden = sum(1 for d in diagnostics if hidden_unsafe(d, enabled))
    fixes = _plural(hidden, "fix", "fixes")
    hint = f"{hidden} unsafe {fixes} available with `--fix --unsafe-fixes`"
    if applicable and hidden:
        lines.append(f"{style.star()} {applicable} fixable with `--fix` ({hint}).")
    elif applicable:
        lines.append(f"{style.star()} {applicable} fixable with `--fix`.")
    elif hidden:
        lines.append(f"{hint}.")
    return "".join(line + "\n" for line in lines)
