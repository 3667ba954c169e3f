"""Applying fixes: non-overlapping edits, re-parse, re-lint until nothing is left, atomic write."""

from __future__ import annotations

from dataclasses import dataclass, field

from qlint.lint import chunks, extract
from qlint.lint.diagnostics import Applicability, Diagnostic, Fix
from qlint.lint.engine import FileError, Linter
from qlint.lint.source import SourceFile
from qlint.manifests import collect as manifests
from qlint.manifests import yamldoc

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


def _validate(before: SourceFile, text: str, cst) -> None:
    """Raise when ``text`` no longer parses: with CPython (``_still_parses``) and with libcst, so
    that the result stays workable for libcst-based codemods. A large module is judged a piece
    at a time (``chunks``): each piece between top-level statements parses alone exactly when
    the whole does, and only one piece's trees are alive at once (libcst's tree of a 5 MB
    module is gigabytes). When some piece does not parse alone, the whole is judged."""
    pieces = chunks.pieces_of(text.encode("utf-8"), str(before.path))
    if pieces is not None:
        try:
            for index in range(len(pieces)):
                pieces.parse(index)
                cst.parse_module(pieces.text(index))
            return
        except (SyntaxError, ValueError, cst.ParserSyntaxError):
            pass
    _still_parses(before, text)
    cst.parse_module(text)


def threshold(unsafe: bool) -> Applicability:
    return Applicability.UNSAFE if unsafe else Applicability.SAFE


def applicable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix is not None and d.fix.applicability.rank >= threshold(unsafe).rank


def apply_edits(utf8: bytes, fixes: list[Fix], path: str = "") -> tuple[bytes, list[Fix]]:
    """Apply fixes in order of position, skipping any that overlaps one already applied (as ruff).

    Only the edits of each fix that change ``path`` are applied here (all of them when the
    fixes have no edits in other files); ``fix_loop`` makes sure a fix spanning several files
    is applied in all of them or none."""
    out = []
    cursor = 0
    last_end = -1
    applied = []
    parts = [(fix, fix.parts(path)[path]) for fix in fixes if path in fix.parts(path)]
    for fix, edits in sorted(parts, key=lambda p: (p[1][0].start, p[1][-1].end)):
        if last_end >= 0 and edits[0].start <= last_end:
            continue
        for edit in edits:
            out.append(utf8[cursor:edit.start])
            out.append(edit.content.encode("utf-8"))
            cursor = edit.end
        last_end = max(e.end for e in edits)
        applied.append(fix)
    out.append(utf8[cursor:])
    return b"".join(out), applied


def _non_overlapping(by_target: dict[str, list[tuple[Diagnostic, list]]]) -> set[int]:
    """The fixes (by id) to apply this round: in every file they change, none overlaps a fix
    before it. A fix that must yield in one of its files yields in all of them (it is tried
    again next round, on the re-linted files)."""
    blocked: set[int] = set()
    for parts in by_target.values():
        last_end = -1
        for d, edits in sorted(parts, key=lambda p: (p[1][0].start, p[1][-1].end)):
            if last_end >= 0 and edits[0].start <= last_end:
                blocked.add(id(d.fix))
                continue
            last_end = max(e.end for e in edits)
    return {id(d.fix) for parts in by_target.values() for d, _ in parts} - blocked


@dataclass
class FixOutcome:
    fixed: dict[str, SourceFile] = field(default_factory=dict)  # path -> new source (only changed files)
    originals: dict[str, SourceFile] = field(default_factory=dict)
    count: int = 0  # fixes applied
    per_code: dict[str, int] = field(default_factory=dict)
    per_file: dict[str, int] = field(default_factory=dict)
    errors: list[FileError] = field(default_factory=list)
    remaining: list[Diagnostic] = field(default_factory=list)


def _targets(diagnostics: list[Diagnostic], fix_id: int) -> list[str]:
    for d in diagnostics:
        if d.fix is not None and id(d.fix) == fix_id:
            return list(d.fix.parts(str(d.path)))
    return []


def fix_loop(linter: Linter, unsafe: bool, only: set[str] | None = None) -> FixOutcome:
    """Lint, apply every applicable fix, re-parse, re-lint; stop when nothing more is fixable.

    ``only``: the files that may be edited (the checked ones, not files read for context).
    """
    import libcst as cst  # only a run that fixes pays for importing it

    outcome = FixOutcome()
    rejected: set[tuple[str, str, int, int]] = set()
    diagnostics = linter.lint()
    for _ in range(MAX_ITERATIONS):
        # Each applicable fix split into the files it changes (an app-level fix may write the
        # app's settings module); every one of them must be a file this run may edit.
        by_target: dict[str, list[tuple[Diagnostic, list]]] = {}
        for d in diagnostics:
            key = (str(d.path), d.code, d.location.row, d.location.column)
            if not applicable(d, unsafe) or key in rejected:
                continue
            parts = d.fix.parts(str(d.path))
            if only is not None and not all(target in only for target in parts):
                continue
            if not all(target in linter.sources for target in parts):
                continue
            for target, edits in parts.items():
                by_target.setdefault(target, []).append((d, edits))
        if not by_target:
            break
        chosen = _non_overlapping(by_target)
        new_sources: dict[str, SourceFile] = {}
        failed: set[int] = set()
        for path, parts in by_target.items():
            src = linter.sources[path]
            fixes = [d.fix for d, _ in parts if id(d.fix) in chosen]
            new_utf8, applied = apply_edits(src.utf8, fixes, path)
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
                    _validate(src, text, cst)
                new_raw = src.encode(new_utf8)
            except (SyntaxError, ValueError, MemoryError, cst.ParserSyntaxError, UnicodeError, RecursionError, yamldoc.Invalid, yamldoc.Skipped) as exc:
                diags = [d for d, _ in parts if id(d.fix) in chosen]
                codes = sorted({d.code for d in diags})
                outcome.errors.append(FileError(src.path, f"fix introduced an error and was not applied "
                                                f"({', '.join(codes)}): {type(exc).__name__}"))
                failed |= {id(d.fix) for d in diags}
                continue
            new_sources[path] = SourceFile.from_text(src.path, text, encoding=src.encoding, bom=src.bom, raw=new_raw)
        # A fix counts once, and only if every file it changes took it.
        done = chosen - failed
        if failed:
            # A file that failed takes nothing this round; the fixes that also changed another
            # file are taken back there, and that file is redone without them next round.
            for d in diagnostics:
                if d.fix is not None and id(d.fix) in failed:
                    rejected.add((str(d.path), d.code, d.location.row, d.location.column))
            retry = {path for path, parts in by_target.items() if any(id(d.fix) in failed for d, _ in parts)}
            for path in retry:
                new_sources.pop(path, None)
            done = {f for f in done if all(path not in retry for path in _targets(diagnostics, f))}
        changed = False
        for path, new_src in new_sources.items():
            outcome.originals.setdefault(path, linter.sources[path])
            linter.replace_source(new_src)
            outcome.fixed[path] = new_src
            changed = True
        counted: set[int] = set()
        for d in diagnostics:
            if d.fix is not None and id(d.fix) in done and id(d.fix) not in counted:
                counted.add(id(d.fix))
                outcome.count += 1
                outcome.per_code[d.code] = outcome.per_code.get(d.code, 0) + 1
                outcome.per_file[str(d.path)] = outcome.per_file.get(str(d.path), 0) + 1
        if not changed:
            break
        diagnostics = linter.lint()
    outcome.remaining = diagnostics
    return outcome
