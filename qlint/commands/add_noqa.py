"""``qlint check --add-noqa``: suppress every current finding in place, as ``ruff --add-noqa``.

For adopting qlint on legacy code: run it once, commit, and the team starts from a clean
``qlint check`` and removes the comments as the code gets fixed (QLT001 reports the ones
that no longer suppress anything, and ``--fix`` removes them).

- Each finding left after the run (after ``# noqa``, file directives and
  ``per-file-ignores``) gets its code on its own row, the diagnostic's row: for a task,
  the decorator line. Findings on one line share one comment (``# noqa: QLT101, QLT201``,
  codes sorted); an existing ``# noqa: CODES`` on the line is extended; another comment
  on the line stays, the directive goes after it (``x = 1  # keep me  # noqa: QLT101``).
- QLT001 findings are not suppressed (fix them with ``--fix``), and no fix is applied.
- A finding whose row ends inside a multi-line string (or continues with a backslash; in
  YAML, a line of a block scalar) is skipped: a ``#`` there would be text, or a syntax
  error. Skipped findings are listed on stderr. Every edited file is re-read to check that
  each added directive suppresses its finding; one that would not is skipped too.
- Files are written atomically, in their own encoding, with their line endings.
- stderr gets ``Added N noqa directives.`` (one per line edited, as ruff counts; nothing
  when N is 0 or with ``--quiet``). Exit code 0, or 2 when a file could not be read,
  parsed or written.
"""

from __future__ import annotations

import ast
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from qlint.fixers.noqa import add_codes, apply, is_yaml, unfit_rows
from qlint.lint.atomic import write_source
from qlint.lint.diagnostics import Diagnostic, Edit
from qlint.lint.engine import FileError, Linter
from qlint.lint.noqa import Suppressions
from qlint.lint.source import SourceFile, UndecodableSource
from qlint.report.output import display, print_errors

UNFIT = "the line ends inside a multi-line string or continues on the next line"
UNSAFE = "a comment there would not suppress it"

# (row, code, the rows a directive may sit on to suppress it)
Finding = tuple[int, str, tuple[int, ...]]


@dataclass
class FilePlan:
    raw: bytes | None = None  # the new bytes, None when nothing changes
    added: int = 0  # lines that got (or extended) a directive
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (row, code, why)


def _suppressions(src: SourceFile) -> Suppressions:
    return Suppressions.for_yaml(src) if is_yaml(src.path) else Suppressions.for_python(src)


def _compiles(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<qlint>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def plan_file(src: SourceFile, findings: list[Finding]) -> FilePlan:
    """The edits that make every finding of one file (Python or YAML) suppressed."""
    result = FilePlan()
    sup = _suppressions(src)
    unfit = unfit_rows(src)
    rows: dict[int, list[Finding]] = {}
    for finding in findings:
        row, code, noqa_rows = finding
        if sup.suppresses(code, noqa_rows or (row,)):
            continue  # already suppressed (findings handed over by something other than the engine)
        if row in unfit:
            result.skipped.append((row, code, UNFIT))
            continue
        rows.setdefault(row, []).append(finding)
    python = not is_yaml(src.path)
    compiled = python and _compiles(src.text)
    while rows:
        edits: dict[int, Edit] = {}
        for row, items in rows.items():
            edit = add_codes(src, row, {code for _, code, _ in items}, sup.directives.get(row))
            if edit is not None:
                edits[row] = edit
        if not edits:
            return result
        utf8 = apply(src, list(edits.values()))
        text = utf8.decode("utf-8", "surrogatepass")
        if compiled and not _compiles(text):  # never expected: give up on the file rather than break it
            result.skipped.extend((row, code, UNSAFE) for items in rows.values() for row, code, _ in items)
            return result
        new = SourceFile.from_text(src.path, text, encoding=src.encoding, bom=src.bom)
        check = _suppressions(new)
        failed = {row for row, items in rows.items()
                  if not all(check.suppresses(code, noqa_rows or (row,)) for _, code, noqa_rows in items)}
        if failed:
            for row in sorted(failed):
                result.skipped.extend((row, code, UNSAFE) for _, code, _ in rows.pop(row))
            continue
        result.raw = src.encode(utf8)
        result.added = len(edits)
        return result
    return result


def _findings(diagnostics: list[Diagnostic]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for d in diagnostics:
        out.setdefault(str(d.path), []).append((d.location.row, d.code, tuple(d.noqa_rows)))
    return out


def run_add_noqa(linter: Linter, checked: set[str], errors: list[FileError], *, quiet: bool, cwd: Path) -> int:
    """Lint (no fixes), add the directives, write the files; the exit code."""

    late = {r.code for r in linter.rules if getattr(r, "after_suppression", False)}
    diagnostics = [d for d in linter.lint() if str(d.path) in checked and d.code not in late]
    errors.extend(e for e in linter.errors if str(e.path) in checked)
    added = 0
    skipped: list[tuple[str, int, str, str]] = []
    for key, findings in sorted(_findings(diagnostics).items()):
        src = linter.sources.get(key)
        try:
            if src is None:
                src = SourceFile.from_bytes(Path(key), Path(key).read_bytes())
        except (OSError, UndecodableSource) as exc:
            errors.append(FileError(Path(key), f"cannot add noqa directives: {exc}"))
            continue
        plan = plan_file(src, findings)
        skipped.extend((key, *item) for item in plan.skipped)
        if plan.raw is None:
            continue
        try:
            write_source(Path(key), plan.raw)
        except OSError as exc:
            errors.append(FileError(Path(key), f"cannot add noqa directives: {exc.strerror or exc}"))
            continue
        added += plan.added
    for key, row, code, why in sorted(skipped):
        print(f"qlint: warning: {display(Path(key), cwd)}:{row}: no `# noqa` added for {code}: {why}",
              file=sys.stderr)
    if added and not quiet:
        print(f"Added {added} noqa directive{'s' if added != 1 else ''}.", file=sys.stderr)
    if skipped and not quiet:
        print(f"Skipped {len(skipped)} finding{'s' if len(skipped) != 1 else ''} (listed above).", file=sys.stderr)
    print_errors(errors, cwd)
    return 2 if errors else 0
