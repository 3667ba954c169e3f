"""A bug in one rule or in reading one file is reported, named, and the rest of the run goes on."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from qlint.lint import parallel
from qlint.rules.qlt501_pickle_serializer_enabled import PickleSerializerEnabled
from tests.helpers import make_linter, write_project

PROJECT = {
    "tasks.py": textwrap.dedent("""
        from celery import Celery

        app = Celery("proj")
        app.conf.accept_content = ["pickle"]

        @app.task
        def work():
            pass
    """),
}


def test_a_failing_rule_is_named_and_other_rules_still_report(tmp_path, monkeypatch):
    write_project(tmp_path, PROJECT)

    def boom(self, ctx):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(PickleSerializerEnabled, "check", boom)
    linter = make_linter(tmp_path, ["QLT101", "QLT501"])
    codes = {d.code for d in linter.lint()}
    assert codes == {"QLT101"}
    (failure,) = linter.rule_failures
    assert "QLT501" in failure and "pickle-serializer-enabled" in failure and "ZeroDivisionError" in failure


def test_a_failing_extraction_names_the_file_and_the_run_goes_on(tmp_path, monkeypatch):
    write_project(tmp_path, {**PROJECT, "other.py": "from celery import shared_task\n"})
    real = parallel.extract

    def flaky(src, name, is_pkg):
        if src.path.name == "other.py":
            raise KeyError("simulated bug")
        return real(src, name, is_pkg)

    monkeypatch.setattr(parallel, "extract", flaky)
    linter = make_linter(tmp_path, ["QLT101"])
    assert {d.code for d in linter.lint()} == {"QLT101"}
    (error,) = linter.errors
    assert error.path.name == "other.py" and "internal error" in error.message and "KeyError" in error.message


def test_cli_exits_2_and_still_prints_findings_when_a_rule_fails(tmp_path):
    write_project(tmp_path, PROJECT)
    # Run the CLI in a child that breaks one rule first, as a bug would.
    code = ("import sys\n"
            "from qlint.rules.qlt501_pickle_serializer_enabled import PickleSerializerEnabled as R\n"
            "R.check = lambda self, ctx: 1 / 0\n"
            "from qlint.cli import main\n"
            "sys.exit(main(['check', '--no-cache', '--output-format', 'concise', '.']))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2
    assert "QLT101" in res.stdout
    assert "internal error in rule QLT501" in res.stderr
    assert "Traceback" not in res.stderr
