"""Output formats: exact text for the human ones, structure for JSON, schema for SARIF."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest

if importlib.util.find_spec("qlint") is None:  # not installed and pytest's pythonpath unset
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qlint
from qlint.lint.diagnostics import Applicability, Diagnostic, Edit, Fix, Severity
from qlint.lint.registry import Rule
from qlint.lint.source import Location
from qlint.report import FORMATS, Summary, render, render_statistics
from qlint.report.full import caret_span
from qlint.report.github import escape_data, escape_property

ANSI = re.compile(r"\x1b\[")


class FakeDelay(Rule):
    """## What it does
    Checks for ORM objects passed to `.delay()`.

    ## Why is this bad?
    They are pickled and go stale.
    """

    code = "QLT101"
    name = "orm-object-in-task-args"
    summary = "ORM object passed as a task argument"
    severity = Severity.ERROR
    fix_availability = "Sometimes"


class FakeRetry(Rule):
    """## What it does
    Checks for tasks without a retry policy.
    """

    code = "QLT102"
    name = "task-without-retry"
    summary = "Task has no retry policy"
    severity = Severity.WARNING
    fix_availability = "Always"


class FakeInfo(Rule):
    """Informational."""

    code = "QLT201"
    name = "info-rule"
    summary = "Just so you know"
    severity = Severity.INFO


RULES = {r.code: r for r in (FakeDelay, FakeRetry, FakeInfo)}
ROOT = Path("/proj").absolute()


def at(row: int, col: int) -> Location:
    return Location(row, col)


def make_fix(applicability=Applicability.SAFE, message="Pass the id instead",
             loc=(3, 22), end=(3, 26), content="user.id") -> Fix:
    return Fix(applicability, message, (Edit(40, 44, content, at(*loc), at(*end)),))


def diag(code="QLT101", *, path="app/tasks.py", loc=(3, 22), end=(3, 26), fix=None,
         message="ORM object `user` passed to `send.delay()`", severity=None,
         source_line="    send_email.delay(user)\n", display_path="") -> Diagnostic:
    rule = RULES[code]
    return Diagnostic(code=code, name=rule.name, message=message, path=ROOT / path,
                      location=at(*loc), end_location=at(*end),
                      severity=severity or rule.severity, fix=fix, source_line=source_line,
                      display_path=display_path)


@pytest.fixture
def mixed() -> list[Diagnostic]:
    """A safe fix, an unsafe fix, no fix; given out of order."""
    return [
        diag("QLT102", loc=(10, 1), end=(10, 9), message="Task `send` has no retry policy",
             fix=make_fix(Applicability.UNSAFE, "Add `autoretry_for`", (9, 1), (9, 1),
                          "@retry\n"),
             source_line="def send():"),
        diag("QLT101", fix=make_fix()),
        diag("QLT201", path="app/other.py", loc=(1, 1), end=(1, 5), message="Note this",
             source_line="pass"),
    ]


def run(diags, fmt, **kw):
    return render(diags, fmt, rules=RULES, root=ROOT, **kw)


# --- concise ---------------------------------------------------------------------------

def test_concise_exact(mixed):
    assert run(mixed, "concise") == (
        "app/other.py:1:1: QLT201 Note this\n"
        "app/tasks.py:3:22: QLT101 [*] ORM object `user` passed to `send.delay()`\n"
        "app/tasks.py:10:1: QLT102 Task `send` has no retry policy\n"
        "Found 3 errors.\n"
        "[*] 1 fixable with `--fix` (1 unsafe fix available with `--fix --unsafe-fixes`).\n"
    )


def test_concise_unsafe_enabled_marks_both(mixed):
    out = run(mixed, "concise", summary=Summary(unsafe_fixes_enabled=True))
    assert "QLT102 [*] Task" in out and "QLT101 [*] ORM" in out
    assert out.endswith("Found 3 errors.\n[*] 2 fixable with `--fix`.\n")


def test_footer_only_unsafe_and_singular():
    d = diag("QLT102", fix=make_fix(Applicability.UNSAFE))
    assert run([d], "concise").splitlines()[-2:] == [
        "Found 1 error.", "1 unsafe fix available with `--fix --unsafe-fixes`."]
    assert run([d, d], "concise").splitlines()[-1] == (
        "2 unsafe fixes available with `--fix --unsafe-fixes`.")


def test_footer_no_fixes_and_display_only():
    d = diag("QLT101", fix=make_fix(Applicability.DISPLAY_ONLY))
    assert run([d], "concise") == (
        "app/tasks.py:3:22: QLT101 ORM object `user` passed to `send.delay()`\n"
        "Found 1 error.\n")


def test_footer_fix_mode():
    d = diag("QLT102", fix=make_fix(Applicability.UNSAFE))
    out = run([d], "concise", summary=Summary(fixed=2, fix_mode=True))
    assert out.splitlines()[-2:] == [
        "Found 3 errors (2 fixed, 1 remaining).",
        "1 unsafe fix available with `--fix --unsafe-fixes`."]
    safe = diag("QLT101", fix=make_fix())
    # In fix mode a leftover finding gets no [*] (it could not be fixed).
    assert "[*] ORM" not in run([safe], "concise", summary=Summary(fixed=1, fix_mode=True))


def test_no_diagnostics():
    assert run([], "concise") == "All checks passed!\n"
    assert run([], "full") == "All checks passed!\n"
    assert run([], "concise", summary=Summary(fixed=1, fix_mode=True)) == (
        "Found 1 error (1 fixed, 0 remaining).\n")
    assert run([], "full", summary=Summary(fixed=3, fix_mode=True)) == (
        "Found 3 errors (3 fixed, 0 remaining).\n")


def test_display_path_and_outside_root():
    d1 = diag(display_path="-")
    d2 = diag()
    d2.path = Path("/elsewhere/x.py").absolute()
    out = run([d1, d2], "concise")
    assert out.splitlines()[:2] == [
        f"{d2.path}:3:22: QLT101 ORM object `user` passed to `send.delay()`",
        "-:3:22: QLT101 ORM object `user` passed to `send.delay()`"]


# --- full ------------------------------------------------------------------------------

def test_full_exact(mixed):
    out = run(mixed, "full")
    assert out.split("\n\n")[1] == (
        "QLT101 [*] ORM object `user` passed to `send.delay()`\n"
        " --> app/tasks.py:3:22\n"
        "  |\n"
        "3 |     send_email.delay(user)\n"
        "  |                      ^^^^\n"
        "help: Pass the id instead"
    )
    assert (
        "QLT102 Task `send` has no retry policy\n"
        "  --> app/tasks.py:10:1\n"
        "   |\n"
        "10 | def send():\n"
        "   | ^^^^^^^^\n"
        "help: Add `autoretry_for`\n"
        "note: This is an unsafe fix and may change runtime behavior\n"
        "\n"
        "Found 3 errors.\n"
    ) in out
    assert out.startswith("QLT201 Note this\n --> app/other.py:1:1\n")


def test_full_multiline_range_underlines_to_end_of_line():
    d = diag(loc=(3, 5), end=(5, 2), source_line="    send_email.delay(\n")
    assert "  |     ^^^^^^^^^^^^^^^^^\n" in run([d], "full")


def test_caret_span_tabs_wide_chars_and_empty_ranges():
    assert caret_span(diag(loc=(1, 2), end=(1, 5)), "\tfoo(bar)") == (4, 3)
    assert caret_span(diag(loc=(1, 4), end=(1, 5)), "世界 = 1") == (5, 1)
    assert caret_span(diag(loc=(1, 1), end=(1, 3)), "世界 = 1") == (0, 4)
    assert caret_span(diag(loc=(1, 3), end=(1, 3)), "abc") == (2, 1)
    assert caret_span(diag(loc=(1, 4), end=(1, 4)), "abc") == (3, 1)  # at end of line
    d = diag(loc=(1, 1), end=(1, 4), source_line="\tx = 1")
    assert "1 |     x = 1\n  | ^^^^^^\n" in run([d], "full")


def test_colour_only_when_asked(mixed):
    for fmt in FORMATS:
        assert not ANSI.search(run(mixed, fmt)), fmt
        assert not ANSI.search(run([], fmt)), fmt
    assert not ANSI.search(render_statistics(mixed, rules=RULES))
    assert ANSI.search(run(mixed, "full", color=True))
    assert ANSI.search(run(mixed, "concise", color=True))
    assert ANSI.search(render_statistics(mixed, rules=RULES, color=True))
    for fmt in ("json", "json-lines", "github", "sarif"):  # machine formats never
        assert not ANSI.search(run(mixed, fmt, color=True)), fmt


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown output format"):
        run([], "pylint")


# --- json / json-lines -----------------------------------------------------------------

def test_json_keys_and_values(mixed):
    data = json.loads(run(mixed, "json"))
    assert [o["code"] for o in data] == ["QLT201", "QLT101", "QLT102"]
    first = data[1]
    assert set(first) == {"cell", "code", "name", "message", "filename", "location",
                          "end_location", "fix", "url", "severity", "noqa_row"}
    assert first["filename"] == str(ROOT / "app/tasks.py")
    assert Path(first["filename"]).is_absolute()
    assert first["location"] == {"row": 3, "column": 22}
    assert first["end_location"] == {"row": 3, "column": 26}
    assert first["noqa_row"] == 3
    assert first["severity"] == "error"
    assert first["url"] == FakeDelay.url()
    assert first["name"] == "orm-object-in-task-args"
    assert first["fix"] == {"applicability": "safe", "message": "Pass the id instead",
                            "edits": [{"content": "user.id", "location": {"row": 3, "column": 22},
                                       "end_location": {"row": 3, "column": 26}}]}
    assert data[2]["fix"]["applicability"] == "unsafe"
    assert data[0]["fix"] is None and data[0]["severity"] == "info"


def test_json_empty():
    assert json.loads(run([], "json")) == []
    assert run([], "json").strip() == "[]"


def test_json_lines(mixed):
    out = run(mixed, "json-lines")
    lines = out.splitlines()
    assert len(lines) == 3 and out.endswith("\n")
    assert [json.loads(line)["code"] for line in lines] == ["QLT201", "QLT101", "QLT102"]
    assert json.loads(lines[0]) == json.loads(run(mixed, "json"))[0]
    assert run([], "json-lines") == ""


def test_json_relative_path_taken_from_root():
    d = diag()
    d.path = Path("app/tasks.py")
    assert json.loads(run([d], "json"))[0]["filename"] == str(ROOT / "app/tasks.py")


# --- github ----------------------------------------------------------------------------

def test_github_exact(mixed):
    lines = run(mixed, "github").splitlines()
    assert lines[0] == ("::notice title=qlint (QLT201),file=app/other.py,line=1,col=1,"
                        "endLine=1,endColumn=5::app/other.py:1:1: QLT201 Note this")
    assert lines[1] == ("::error title=qlint (QLT101),file=app/tasks.py,line=3,col=22,"
                        "endLine=3,endColumn=26::app/tasks.py:3:22: QLT101 ORM object `user` "
                        "passed to `send.delay()`%0A  help: Pass the id instead")
    assert lines[2].startswith("::warning title=qlint (QLT102),file=app/tasks.py,line=10,")


def test_github_escaping():
    d = diag(path="we,ird:dir/100%.py", message="50% done\nsecond\rline", loc=(2, 1),
             end=(4, 3))
    line = run([d], "github")
    assert line.count("\n") == 1 and line.endswith("\n")
    props, data = line.rstrip("\n").split("::", 2)[1:]
    assert props == ("error title=qlint (QLT101),file=we%2Cird%3Adir/100%25.py,"
                     "line=2,endLine=4")  # no col/endColumn across lines
    assert data == "we,ird:dir/100%25.py:2:1: QLT101 50%25 done%0Asecond%0Dline"
    assert escape_data("a%b\r\n:,") == "a%25b%0D%0A:,"
    assert escape_property("a%b\r\n:,") == "a%25b%0D%0A%3A%2C"


# --- sarif -----------------------------------------------------------------------------

def _schema() -> dict:
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "shared" / "data" / "sarif-schema-2.1.0.json",
                  here.parent / "data" / "sarif-schema-2.1.0.json"]
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    pytest.fail("SARIF schema not found")  # pragma: no cover


def _validate(document: dict) -> None:
    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)  # draft-04 per its $schema
    cls.check_schema(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(document)


def test_sarif_with_findings_and_fixes(mixed, monkeypatch):
    monkeypatch.setattr("qlint.lint.registry._docs_base", lambda: "https://docs.example.test/qlint")
    outside = diag("QLT101", fix=make_fix(), display_path="ignored")
    outside.path = Path("/elsewhere/has space.py").absolute()
    doc = json.loads(run(mixed + [outside], "sarif"))
    _validate(doc)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run_ = doc["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "qlint" and driver["version"] == qlint.__version__
    assert [r["id"] for r in driver["rules"]] == ["QLT101", "QLT102", "QLT201"]
    rule = driver["rules"][0]
    assert rule["name"] == "orm-object-in-task-args"
    assert rule["shortDescription"]["text"] == FakeDelay.summary
    assert rule["fullDescription"]["text"] == FakeDelay.explanation()
    assert rule["help"]["markdown"] == FakeDelay.explanation()
    assert rule["helpUri"] == FakeDelay.url()
    assert [r["defaultConfiguration"]["level"] for r in driver["rules"]] == [
        "error", "warning", "note"]
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")

    results = run_["results"]
    by_rule = {r["ruleId"]: r for r in results if "uriBaseId" in
               r["locations"][0]["physicalLocation"]["artifactLocation"]}
    r101 = by_rule["QLT101"]
    assert driver["rules"][r101["ruleIndex"]]["id"] == "QLT101"
    assert r101["level"] == "error" and by_rule["QLT201"]["level"] == "note"
    phys = r101["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "app/tasks.py", "uriBaseId": "%SRCROOT%"}
    assert phys["region"] == {"startLine": 3, "startColumn": 22, "endLine": 3, "endColumn": 26}
    replacement = r101["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement == {"deletedRegion": {"startLine": 3, "startColumn": 22, "endLine": 3,
                                             "endColumn": 26},
                           "insertedContent": {"text": "user.id"}}
    assert "fixes" not in by_rule["QLT201"]
    (far,) = [loc for r in results
              if "uriBaseId" not in (loc := r["locations"][0]["physicalLocation"]
                                     ["artifactLocation"])]
    assert far["uri"].startswith("file://") and "has%20space.py" in far["uri"]
    assert "uriBaseId" not in far


def test_sarif_without_a_docs_url_has_no_help_uri(mixed):
    rules = json.loads(render(mixed, "sarif", rules=RULES, root=ROOT))["runs"][0]["tool"]["driver"]["rules"]
    assert rules and all("helpUri" not in r for r in rules)


def test_sarif_empty_run_lists_every_rule():
    doc = json.loads(run([], "sarif"))
    _validate(doc)
    assert doc["runs"][0]["results"] == []
    assert len(doc["runs"][0]["tool"]["driver"]["rules"]) == len(RULES)


def test_sarif_skips_fix_without_locations():
    d = diag(fix=Fix(Applicability.SAFE, "x", (Edit(0, 1, ""),)))
    doc = json.loads(run([d], "sarif"))
    _validate(doc)
    assert "fixes" not in doc["runs"][0]["results"][0]


# --- statistics ------------------------------------------------------------------------

def test_statistics_lines():
    diags = [diag("QLT102", fix=make_fix()) for _ in range(12)]
    diags += [diag("QLT101", fix=make_fix()), diag("QLT101")]
    diags += [diag("QLT201"), diag("QLT201")]
    out = render_statistics(diags, rules=RULES)
    assert out.splitlines() == [
        "12\tQLT102\t[*] task-without-retry",
        " 2\tQLT101\t[-] orm-object-in-task-args",
        " 2\tQLT201\t[ ] info-rule",
        "Found 16 errors.",
        "[*] 13 fixable with `--fix`.",
    ]


def test_statistics_without_fixes_and_unsafe():
    assert render_statistics([diag("QLT201")], rules=RULES).splitlines()[0] == (
        "1\tQLT201\tinfo-rule")
    unsafe = [diag("QLT102", fix=make_fix(Applicability.UNSAFE))]
    assert render_statistics(unsafe, rules=RULES).splitlines()[0] == (
        "1\tQLT102\ttask-without-retry")
    enabled = render_statistics(unsafe, rules=RULES, summary=Summary(unsafe_fixes_enabled=True))
    assert enabled.splitlines()[0] == "1\tQLT102\t[*] task-without-retry"
    assert render_statistics([], rules=RULES) == ""
