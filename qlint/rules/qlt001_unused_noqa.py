from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from qlint.fixers.noqa import remove_codes
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Applicability, Diagnostic, Edit, Fix, Severity
from qlint.lint.noqa import Suppressions
from qlint.lint.prefilter import Seed
from qlint.lint.registry import Invalid, Rule, Valid, all_codes, code_matches, register
from qlint.lint.source import SourceFile

if TYPE_CHECKING:  # pragma: no cover
    from qlint.lint.engine import Linter

CODE = "QLT001"
NAME = "unused-noqa"


@register
class UnusedNoqa(Rule):
    """## What it does
    Checks for `# noqa: QLT...` comments that suppress nothing: a qlint code listed in a
    line directive for which no finding on that line was suppressed in this run.

    It follows ruff's `RUF100`, with these choices:
    - Only codes of rules that ran in this run are judged. A code of a rule that is not
      selected (`--select`, `ignore`, an opt-in rule left off), that `per-file-ignores` or
      a `# qlint: noqa: CODES` file directive turns off for the file, or that qlint does
      not know (a rule of a newer version) is left alone, as are codes of other tools
      (`E501`, `F401`) in the same comment. A prefix (`QLT2`) is judged when every rule
      it covers ran.
    - A blanket `# noqa` is not reported, nor are file directives (`# qlint: noqa`).
    - A directive that names `QLT001` itself (or a prefix of it) is never reported.
    - The rule runs after every other rule and after suppression, on Python files (and on
      YAML manifests' `# noqa` once qlint has YAML rules).

    ## Why is this bad?
    A stale suppression hides the next real finding on that line: once a task has its time
    limit, a leftover `# noqa: QLT101` lets a later change drop the limit again without a
    word. Reporting unused ones keeps `qlint check --add-noqa` a one-off adoption step: the
    comments go away as the code gets fixed (`qlint check --fix` removes them).

    If you also run ruff, tell it the `QLT` codes are not its own, or its `RUF100` removes
    them: `lint.external = ["QLT"]`.

    ## Example
    ```python
    @app.task(time_limit=300, soft_time_limit=270)  # noqa: QLT101
    def sync_inventory(store_id):
        ...
    ```

    Use instead:
    ```python
    @app.task(time_limit=300, soft_time_limit=270)
    def sync_inventory(store_id):
        ...
    ```

    ## Fix safety
    The fix is safe: it removes the unused codes from the comment, or the whole `# noqa`
    directive (and the spaces before it) when no code remains. Other comments on the line,
    and codes of other tools, stay.

    ## References
    - [ruff: unused-noqa (RUF100)](https://docs.astral.sh/ruff/rules/unused-noqa/)
    - [ruff: Error suppression](https://docs.astral.sh/ruff/linter/#error-suppression)
    """

    code = CODE
    name = NAME
    summary = "`# noqa` names a qlint code that it suppresses nothing of"
    severity = Severity.WARNING
    fix_availability = "Always"
    frameworks = ("any",)

    # Engine hooks (qlint.lint.engine.Linter): this rule is judged after the other rules and
    # after suppression, by ``check_suppressions``; and a file whose bytes match
    # ``prefilter_seed`` is parsed even when the framework prefilter would skip it (a
    # ``# noqa: QLT101`` in a file without Celery is unused, and must be seen to be).
    after_suppression: ClassVar[bool] = True
    prefilter_seed: ClassVar[Seed] = Seed(rb"noqa[ \t]*:[^\r\n]*qlt", (b"noqa",), re.IGNORECASE)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task  # noqa: QLT101
def sync_inventory(store_id):
    pass
""", select=("QLT101",), note="the directive suppresses a finding"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)  # noqa: E501
def sync_inventory(store_id):
    pass

TIMEOUT = 30  # noqa
""", select=("QLT101",), note="codes of other tools, and blanket `# noqa`, are not judged"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)  # noqa: QLT201
def sync_inventory(store_id):
    pass
""", select=("QLT101",), note="QLT201 did not run (only QLT101 is selected): not judged"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)  # noqa: QLT101, QLT001
def sync_inventory(store_id):
    pass
""", select=("QLT101",), note="a directive that names QLT001 is kept"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)  # noqa: QLT101
def sync_inventory(store_id):
    pass
""", expect=5, select=("QLT101",), message="unused: `QLT101`", fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
"""),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task  # noqa: QLT101, QLT201, E501
def sync_inventory(store_id):
    pass
""", expect=5, select=("QLT101", "QLT201"), message="unused: `QLT201`", fixed="""
from celery import Celery

app = Celery("proj")

@app.task  # noqa: QLT101, E501
def sync_inventory(store_id):
    pass
""", note="only the unused code goes; the others stay"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.accept_content = ["json"]  # keep: see INC-12  # noqa: QLT501
app.conf.task_serializer = "json"  # noqa: QLT501  # type: ignore
""", expect=[4, 5], select=("QLT501",), fixed="""
from celery import Celery

app = Celery("proj")
app.conf.accept_content = ["json"]  # keep: see INC-12
app.conf.task_serializer = "json"  # type: ignore
""", note="other comments on the line stay"),
        Invalid("""
TIMEOUT = 30  # noqa: QLT1
# noqa: QLT501
""", expect=[1, 2], select=("QLT1", "QLT501"), fixed="""
TIMEOUT = 30
""", note="a file without Celery; a prefix; a directive on a line of its own"),
    ]

    def check(self, ctx: RuleContext) -> None:
        """Nothing: the engine calls :meth:`check_suppressions` once suppression is done."""

    def check_suppressions(self, linter: "Linter", suppressions: dict[str, Suppressions]) -> list[Diagnostic]:
        """Findings for the directives of every parsed file. ``suppressions`` holds the
        files' directives as ``Linter._suppress`` used them (files missing from it had no
        finding to suppress)."""
        ran = {r.code for r in linter.rules if not getattr(r, "after_suppression", False)}
        out: list[Diagnostic] = []
        for key, src in linter.sources.items():
            sup = suppressions.get(key)
            if sup is None:
                sup = Suppressions.for_python(src, linter.noqa_comments(key))
            if not sup.directives or sup.file_level:
                continue
            path = Path(key)
            if code_matches(sup.file_codes, CODE) or linter.ignored(path, CODE):
                continue
            judged = {c for c in ran if not code_matches(sup.file_codes, c) and not linter.ignored(path, c)}
            out.extend(unused_noqa(src, sup, judged, path=path))
        return out


def judged_entry(entry: str, judged: set[str], known: Iterable[str]) -> bool:
    """Whether a listed code (or prefix) is qlint's and every rule it covers ran."""
    if not entry.startswith("QLT"):
        return False
    covered = [c for c in known if c.startswith(entry)]
    return bool(covered) and all(c in judged for c in covered)


def unused_noqa(src: SourceFile, sup: Suppressions, judged: set[str], path: Path | None = None) -> list[Diagnostic]:
    """QLT001 for the line directives of one file (Python or YAML) after suppression ran
    over its findings: ``judged`` are the codes of the rules that ran on it."""
    known = sorted(all_codes())
    out: list[Diagnostic] = []
    for row, directive in sorted(sup.directives.items()):
        if directive.codes is None or directive.matches(CODE):
            continue
        unused = [c for c in directive.unused_codes if judged_entry(c, judged, known)]
        if not unused:
            continue
        edit = remove_codes(src, directive, unused)
        fix = Fix(Applicability.SAFE, "Remove unused `noqa` directive" if len(unused) == len(directive.codes)
                  else "Remove unused codes from the `noqa` directive",
                  (Edit(edit.start, edit.end, edit.content, src.location(edit.start), src.location(edit.end)),))
        listed = ", ".join(f"`{c}`" for c in unused)
        out.append(Diagnostic(
            code=CODE, name=NAME, message=f"Unused `noqa` directive (unused: {listed})",
            path=path or src.path, location=src.location(directive.start),
            end_location=src.location(directive.end), severity=UnusedNoqa.severity, fix=fix,
            noqa_rows=(row,), source_line=src.line_text(row),
        ))
    return out
