"""QLT001 unused-noqa: which directives are judged, after suppression, and its fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import findings, fix, make_linter, norm, write_project
from qlint.fixers.noqa import apply, remove_codes
from qlint.lint.engine import Linter
from qlint.lint.noqa import Suppressions
from qlint.lint.registry import get_rule, select_rules
from qlint.lint.source import SourceFile

# Not ``from qlint.rules.qlt001_unused_noqa import ...``: importing one rule module before the
# registry loads would make the registry believe every rule is loaded.
RULE_MODULE = sys.modules[get_rule("QLT001").__module__]

APP = """
from celery import Celery

app = Celery("proj")

@app.task{decorator}
def sync_inventory(store_id):
    pass
"""


def task(tmp_path: Path, decorator: str) -> None:
    write_project(tmp_path, {"tasks.py": APP.format(decorator=decorator)})


def qlt001(tmp_path: Path, codes=None, **kw) -> list[tuple[int, str]]:
    return [(row, msg) for _, row, code, msg in findings(tmp_path, codes, **kw) if code == "QLT001"]


def test_default_on():
    assert "QLT001" in {r.code for r in select_rules(None)}


@pytest.mark.parametrize("decorator, unused", [
    ("  # noqa: QLT101", None),  # suppresses the task's QLT101
    ("  # noqa: QLT1", None),
    ("  # noqa: QLT101, QLT201", "`QLT201`"),
    ("(time_limit=60, soft_time_limit=30)  # noqa: QLT101", "`QLT101`"),
    ("(time_limit=60, soft_time_limit=30)  # noqa: QLT101,QLT501", "`QLT101`, `QLT501`"),
    ("(time_limit=60, soft_time_limit=30)  # noqa: E501, F401", None),  # other tools
    ("(time_limit=60, soft_time_limit=30)  # noqa", None),  # blanket
    ("(time_limit=60, soft_time_limit=30)  # noqa: QLT999", None),  # unknown: maybe a newer qlint's
    ("(time_limit=60, soft_time_limit=30)  # noqa: QLT101, QLT001", None),  # names QLT001 itself
    ("(time_limit=60, soft_time_limit=30)  # noqa: QLT0, QLT101", None),
])
def test_judged_codes(tmp_path, decorator, unused):
    task(tmp_path, decorator)
    got = qlt001(tmp_path, ["QLT001", "QLT101", "QLT201", "QLT501"])
    if unused is None:
        assert got == []
    else:
        assert got == [(5, f"Unused `noqa` directive (unused: {unused})")]


def test_only_codes_of_rules_that_ran(tmp_path):
    task(tmp_path, "(time_limit=60, soft_time_limit=30)  # noqa: QLT101, QLT2")
    assert qlt001(tmp_path, ["QLT001"]) == []  # nothing else ran: nothing judged
    assert [m for _, m in qlt001(tmp_path, ["QLT001", "QLT101"])] == ["Unused `noqa` directive (unused: `QLT101`)"]
    # a prefix is judged when every rule it covers ran
    assert [m for _, m in qlt001(tmp_path, ["QLT001", "QLT101", "QLT201"])] == [
        "Unused `noqa` directive (unused: `QLT101`)"]
    # QLT2 covers the opt-in QLT206, which the prefix does not enable: not every rule ran
    assert [m for _, m in qlt001(tmp_path, ["QLT001", "QLT1", "QLT2"])] == [
        "Unused `noqa` directive (unused: `QLT101`)"]
    assert [m for _, m in qlt001(tmp_path, ["QLT001", "QLT1", "QLT2", "QLT206"])] == [
        "Unused `noqa` directive (unused: `QLT101`, `QLT2`)"]


def test_directive_on_another_line_of_the_statement_is_used(tmp_path):
    write_project(tmp_path, {"tasks.py": """
        from celery import Celery

        app = Celery("proj")

        @app.task(
            bind=True,
        )
        def charge(self, order_id):  # noqa: QLT101
            return order_id
        """})
    assert findings(tmp_path, ["QLT001", "QLT101"]) == []


@pytest.mark.parametrize("head", ["# qlint: noqa", "# flake8: noqa", "# qlint: noqa: QLT001", "# qlint: noqa: QLT0"])
def test_file_directives_silence_it(tmp_path, head):
    write_project(tmp_path, {"tasks.py": head + "\n" + norm(APP.format(
        decorator="(time_limit=60, soft_time_limit=30)  # noqa: QLT101"))})
    assert qlt001(tmp_path, ["QLT001", "QLT101"]) == []


def test_file_exempted_code_is_not_judged(tmp_path):
    write_project(tmp_path, {"tasks.py": "# qlint: noqa: QLT101\n" + norm(APP.format(
        decorator="(time_limit=60, soft_time_limit=30)  # noqa: QLT101, QLT501"))})
    assert [m for _, m in qlt001(tmp_path, ["QLT001", "QLT101", "QLT501"])] == [
        "Unused `noqa` directive (unused: `QLT501`)"]


def test_per_file_ignores(tmp_path):
    task(tmp_path, "(time_limit=60, soft_time_limit=30)  # noqa: QLT101, QLT501")
    codes = ["QLT001", "QLT101", "QLT501"]
    assert [m for _, m in qlt001(tmp_path, codes, per_file_ignores={"tasks.py": ["QLT101"]})] == [
        "Unused `noqa` directive (unused: `QLT501`)"]
    assert qlt001(tmp_path, codes, per_file_ignores={"tasks.py": ["QLT001"]}) == []
    assert qlt001(tmp_path, codes, per_file_ignores={"other.py": ["QLT001"]}) != []


def test_file_without_celery_is_read_with_the_prefilter_on(tmp_path):
    write_project(tmp_path, {"util.py": "TIMEOUT = 30  # noqa: QLT101\n"})
    on = findings(tmp_path, ["QLT001", "QLT101"], use_prefilter=True)
    off = findings(tmp_path, ["QLT001", "QLT101"], use_prefilter=False)
    assert on == off == [("util.py", 1, "QLT001", "Unused `noqa` directive (unused: `QLT101`)")]
    # Without QLT001 the file is not worth parsing.
    assert str(tmp_path / "util.py") not in make_linter(tmp_path, ["QLT101"]).sources


def test_not_judged_when_noqa_is_off(tmp_path):
    """flake8's --disable-noqa: the plugin's Linter does not suppress, so nothing is judged."""
    task(tmp_path, "(time_limit=60, soft_time_limit=30)  # noqa: QLT101")

    class NoNoqa(Linter):
        def _suppress(self, diagnostics):
            return sorted(diagnostics, key=lambda d: d.sort_key)

    linter = make_linter(tmp_path, ["QLT001", "QLT101"])
    linter.__class__ = NoNoqa
    assert linter.lint() == []


def test_fix_converges(tmp_path):
    write_project(tmp_path, {"tasks.py": """
        from celery import Celery

        app = Celery("proj")

        @app.task  # noqa: QLT101, QLT201
        def a(x):
            pass

        @app.task(time_limit=60, soft_time_limit=30)  # noqa: QLT101  # keep
        def b(x):
            pass
        """})
    outcome = fix(tmp_path, ["QLT001", "QLT101", "QLT201"], unsafe=False)
    assert outcome.count == 2 and outcome.per_code == {"QLT001": 2}
    assert outcome.fixed[str(tmp_path / "tasks.py")].text == norm("""
        from celery import Celery

        app = Celery("proj")

        @app.task  # noqa: QLT101
        def a(x):
            pass

        @app.task(time_limit=60, soft_time_limit=30)  # keep
        def b(x):
            pass
        """)
    assert outcome.remaining == []


# -- the fix's edit, on its own -----------------------------------------------------------------

def _remove(text: str, codes, row: int = 1) -> str:
    src = SourceFile.from_text(Path("t.py"), text)
    directive = Suppressions.for_python(src).directives[row]
    return apply(src, [remove_codes(src, directive, codes)]).decode("utf-8")


@pytest.mark.parametrize("before, codes, after", [
    ("x = 1  # noqa: QLT101\n", ["QLT101"], "x = 1\n"),
    ("x = 1\t# noqa: QLT101   \n", ["QLT101"], "x = 1\n"),
    ("x = 1  # keep me  # noqa: QLT101\n", ["QLT101"], "x = 1  # keep me\n"),
    ("x = 1  # noqa: QLT101  # type: ignore\n", ["QLT101"], "x = 1  # type: ignore\n"),
    ("x = 1  # noqa: QLT101, see #12\n", ["QLT101"], "x = 1  # see #12\n"),
    ("x = 1  # noqa: QLT101 because\n", ["QLT101"], "x = 1  # because\n"),
    ("x = 1  # noqa: QLT101, QLT201, E501\n", ["QLT201"], "x = 1  # noqa: QLT101, E501\n"),
    ("x = 1  # noqa:qlt101,e501\n", ["QLT101"], "x = 1  # noqa: e501\n"),
    ("x = 1  # noqa: QLT101,QLT201\n", ["QLT101", "QLT201"], "x = 1\n"),
    ("x = 1  # noqa: QLT101\r\ny = 2\r\n", ["QLT101"], "x = 1\r\ny = 2\r\n"),
    ("x = 'é'  # noqa: QLT101\n", ["QLT101"], "x = 'é'\n"),
])
def test_remove_codes(before, codes, after):
    assert _remove(before, codes) == after


def test_remove_own_line_directive_deletes_the_line():
    assert _remove("x = 1\r\n    # noqa: QLT101\r\ny = 2\r\n", ["QLT101"], row=2) == "x = 1\r\ny = 2\r\n"
    assert _remove("x = 1\n# noqa: QLT101", ["QLT101"], row=2) == "x = 1\n"


def test_yaml_directives():
    """No YAML rule exists yet; the judging and the fix work on YAML suppressions all the same."""
    text = ("command: celery worker  # noqa: QLT701\n"
            "args: ['-c', '#1']  # keep  # noqa: QLT702, QLT701\n"
            "image: x  # noqa: QLT703, E1\n")
    src = SourceFile.from_text(Path("k8s.yaml"), text)
    sup = Suppressions.for_yaml(src)
    assert sup.suppresses("QLT701", [1])
    mod = RULE_MODULE
    known = {"QLT701", "QLT702", "QLT703"}
    original = mod.all_codes
    mod.all_codes = lambda: known
    try:
        got = mod.unused_noqa(src, sup, judged=known)
    finally:
        mod.all_codes = original
    assert [(d.location.row, d.message) for d in got] == [
        (2, "Unused `noqa` directive (unused: `QLT702`, `QLT701`)"),
        (3, "Unused `noqa` directive (unused: `QLT703`)"),
    ]
    fixed = apply(src, [e for d in got for e in d.fix.edits]).decode()
    assert fixed == ("command: celery worker  # noqa: QLT701\n"
                     "args: ['-c', '#1']  # keep\n"
                     "image: x  # noqa: E1\n")
