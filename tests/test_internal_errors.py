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


def test_the_pool_and_this_process_split_a_batch_without_changing_it(tmp_path):
    """Files go to worker processes as the scan finds them, and this process takes back the
    batches no worker has started: every file's result, in order, is what extracting it here
    gives (a syntax error's message included)."""
    from pathlib import Path as _Path

    from qlint.lint import parallel

    items = []
    for index in range(60):
        body = "def f(:\n" if index % 17 == 5 else f"from celery import shared_task\n\n@shared_task\ndef t{index}():\n    return {index}\n"
        items.append((_Path(f"/p/m{index}.py"), body.encode() * (1 + index % 3), f"m{index}", False))
    extraction = parallel.Extraction(2)
    for item in items:
        extraction.add(item)
    got = extraction.results()
    assert [item for item, _ in got] == items
    expected = [parallel._work(item) for item in items]
    for (item, result), (facts, error) in zip(got, expected):
        assert result is not None  # the pool ran (or this process did the work itself)
        assert result[1] == error
        assert (result[0] is None) == (facts is None)
        if facts is not None:
            assert [fn.name for fn in result[0].functions] == [fn.name for fn in facts.functions]
