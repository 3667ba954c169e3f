"""What a rule sees: the project model, the settings, and a way to report."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from qlint.fixers.style import project_style
from qlint.lint.diagnostics import Applicability, Diagnostic, Edit, Fix
from qlint.lint.facts import FileFacts, Span
from qlint.lint.model import Project
from qlint.lint.registry import Rule
from qlint.lint.source import SourceFile
from qlint.lint.trees import Trees
from qlint.settings import Settings


class RuleContext:
    def __init__(self, project: Project, sources: dict[str, SourceFile], settings: Settings,
                 trees: Trees | None = None) -> None:
        self.project = project
        self.sources = sources
        self.settings = settings
        self.diagnostics: list[Diagnostic] = []
        self.rule: type[Rule] | None = None
        self._seen: set[tuple[str, str, int]] = set()
        # Function trees the rules read, shared so that each file is parsed once (and, kept by
        # the linter, once per version of the file over a --fix run's rounds).
        self.trees = trees if trees is not None else Trees()

    def source(self, facts: FileFacts) -> SourceFile:
        return self.sources[facts.path]

    @property
    def line_length(self) -> int:
        """The project's line length (ruff's, black's or flake8's setting, else 88): a fix that
        adds arguments to a call writes it over several lines rather than pass it."""
        return project_style(self.settings.root, tuple(self.settings.src)).line_length

    def display(self, path: str) -> str:
        """A file's path for a message: relative to the project root when it is under it."""
        try:
            rel = Path(path).resolve().relative_to(self.settings.root.resolve())
        except ValueError:
            return str(path)
        return rel.as_posix()

    def text(self, facts: FileFacts, span: Span) -> str:
        """The source text of ``span`` in ``facts``' file ("" for a file that is not loaded)."""
        src = self.sources.get(facts.path)
        return src.utf8[span.start:span.end].decode("utf-8", "replace") if src is not None else ""

    def fix(self, facts: FileFacts, message: str, edits: Iterable[Edit],
            applicability: Applicability = Applicability.UNSAFE) -> Fix | None:
        """A fix of the finding about to be reported in ``facts``' file. An edit whose ``path``
        names another file (the app's settings module) is located in that file."""
        located = []
        for e in edits:
            path = e.path if e.path and e.path != facts.path else None
            src = self.sources.get(path or facts.path)
            target = self.project.by_path(path) if path else facts
            if src is None or target is None or not target.exact_offsets:
                return None
            located.append(Edit(e.start, e.end, e.content, src.location(e.start), src.location(e.end), path))
        if not located:
            return None
        return Fix(applicability, message, tuple(sorted(located, key=lambda e: (e.path or "", e.start, e.end))))

    def report(self, facts: FileFacts, span: Span, message: str, *, fix: Fix | None = None,
               statement: Span | None = None) -> None:
        """Report the current rule at ``span``; a noqa on any line of ``statement`` (default: the span) applies."""
        rule = self.rule
        assert rule is not None
        key = (rule.code, facts.path, span.start)
        if key in self._seen:  # one finding per anchor, however many conditions hold there
            return
        self._seen.add(key)
        src = self.source(facts)
        start = src.location(span.start)
        end = src.location(span.end)
        if span.end == span.start:  # a line anchor: underline to the end of the line
            end = src.location(src.line_span(start.row)[1])
        stmt = statement or span
        rows = tuple(range(src.row_of(stmt.start), src.row_of(max(stmt.start, stmt.end - 1)) + 1))
        self.diagnostics.append(Diagnostic(
            code=rule.code, name=rule.name, message=message, path=Path(facts.path), location=start,
            end_location=end, severity=rule.severity, fix=fix, noqa_rows=rows, source_line=src.line_text(start.row),
        ))
