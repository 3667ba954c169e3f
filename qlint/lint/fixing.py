"""Applying fixes: non-overlapping edits, re-parse, re-lint until nothing is left, atomic write."""

from __future__ import annotations

from dataclasses import dataclass, field

from qlint.manifests import collect as manifests, yamldoc

from qlint.lint.diagnostics import Applicability, Diagnostic, Fix
from qlint.lint import extract
from qlint.lint.engine import FileError, Linter
from qlint.lint.source import SourceFile

MAX_ITERATIONS = 10


def _still_parses(before: SourceFile, text: str) -> None:
    try:
        extract.parse(SourceFile.from_text(before.path, text))
    except SyntaxError:
        try:
            extract.parse(before)
        except SyntaxError:
            return  # CPython could not read the file before either: libcst judges alone
        raise


def threshold(unsafe: bool) -> Applicability:
    return Applicability.UNSAFE if unsafe else Applicability.SAFE


def applicable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix is not None and d.fix.applicability.rank >= threshold(unsafe).rank


def apply_edits(utf8: bytes, fixes: list[Fix]) -> tuple[bytes, list[Fix]]:
    """Apply fixes in order of position, skipping any that overlaps one already applied (as ruff)."""
    out = []
    cursor = 0
    last_end = -1
    applied = []
    for fix in sorted(fixes, key=lambda f: (f.start, f.end)):
        if last_end >= 0 and fix.start <= last_end:
            continue
        for edit in fix.edits:
            out.append(utf8[cursor:edit.start])
            out.append(edit.content.encode("utf-8"))
            cursor = edit.end
        last_end = fix.end
        applied.append(fix)
    out.append(utf8[cursor:])
    return b"".join(out), applied


@dataclass
class FixOutcome:
    fixed: dict[str, SourceFile] = field(default_factory=dict)  # path -> new source (only changed files)
    originals: dict[str, SourceFile] = field(default_factory=dict)
    count: int = 0  # fixes applied
    per_code: dict[str, int] = field(default_factory=dict)
    per_file: dict[str, int] = field(default_factory=dict)
    errors: list[FileError] = field(default_factory=list)
    remaining: list[Diagnostic] = field(default_factory=list)


def fix_loop(linter: Linter, unsafe: bool, only: set[str] | None = None) -> FixOutcome:
    """Lint, apply every applicable fix, re-parse, re-lint; stop when nothing more is fixable.

    ``only``: the files that may be edited (the checked ones, not files read for context).
    """
    import libcst as cst  # only a run that fixes pays for importing it

    outcome = FixOutcome()
    rejected: set[tuple[str, str, int, int]] = set()
    diagnostics = linter.lint()
    for _ in range(MAX_ITERATIONS):
        by_file: dict[str, list[Diagnostic]] = {}
        for d in diagnostics:
            key = (str(d.path), d.code, d.location.row, d.location.column)
            if applicable(d, unsafe) and key not in rejected and (only is None or str(d.path) in only):
                by_file.setdefault(str(d.path), []).append(d)
        if not by_file:
            break
        changed = False
        for path, diags in by_file.items():
            src = linter.sources[path]
            new_utf8, applied = apply_edits(src.utf8, [d.fix for d in diags if d.fix is not None])
            if not applied or new_utf8 == src.utf8:
                continue
            try:
                text = new_utf8.decode("utf-8")
                if path in linter.manifests:  # a manifest must still load as the same kind of file
                    manifests.read(SourceFile.from_text(src.path, text))
                else:
                    # CPython's parser is the judge of "still parses" (but for syntax newer than
                    # this interpreter's that only libcst read before the fix); libcst's too, so
                    # the result stays workable for libcst-based codemods.
                    _still_parses(src, text)
                    cst.parse_module(text)
                new_raw = src.encode(new_utf8)
            except (SyntaxError, ValueError, MemoryError, cst.ParserSyntaxError, UnicodeError, RecursionError, yamldoc.Invalid, yamldoc.Skipped) as exc:
                codes = sorted({d.code for d in diags})
                outcome.errors.append(FileError(src.path, f"fix introduced an error and was not applied "
                                                f"({', '.join(codes)}): {type(exc).__name__}"))
                for d in diags:
                    rejected.add((path, d.code, d.location.row, d.location.column))
                continue
            outcome.originals.setdefault(path, src)
            new_src = SourceFile.from_text(src.path, text, encoding=src.encoding, bom=src.bom, raw=new_raw)
            linter.replace_source(new_src)
            outcome.fixed[path] = new_src
            applied_set = {id(f) for f in applied}
            for d in diags:
                if d.fix is not None and id(d.fix) in applied_set:
                    outcome.count += 1
                    outcome.per_code[d.code] = outcome.per_code.get(d.code, 0) + 1
                    outcome.per_file[path] = outcome.per_file.get(path, 0) + 1
            changed = True
        if not changed:
            break
        diagnostics = linter.lint()
    outcome.remaining = diagnostics
    return outcome
