"""``qlint check --add-noqa``: the edit primitives, the per-file plan, and the command."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from helpers import norm, write_project
from qlint.cli import main
from qlint.commands.add_noqa import UNFIT, UNSAFE, plan_file
from qlint.fixers.noqa import add_codes, apply, unfit_rows
from qlint.lint.noqa import Suppressions
from qlint.lint.source import SourceFile


def _add(text: str, findings, name: str = "t.py") -> tuple[str, int, list]:
    """``findings``: (row, code) pairs; the directive may sit on the finding's row only."""
    src = SourceFile.from_text(Path(name), text)
    plan = plan_file(src, [(row, code, (row,)) for row, code in findings])
    new = plan.raw.decode(src.encoding) if plan.raw is not None else text
    return new, plan.added, plan.skipped


# -- one line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, codes, after", [
    ("x = 1\n", ["QLT101"], "x = 1  # noqa: QLT101\n"),
    ("x = 1   \n", ["QLT101"], "x = 1  # noqa: QLT101\n"),
    ("x = 1  # keep me\n", ["QLT101"], "x = 1  # keep me  # noqa: QLT101\n"),
    ("x = 1\n", ["QLT201", "QLT101"], "x = 1  # noqa: QLT101, QLT201\n"),
    ("x = 1  # noqa: QLT201\n", ["QLT101"], "x = 1  # noqa: QLT101, QLT201\n"),
    ("x = 1  # noqa:QLT201,E501\n", ["QLT101"], "x = 1  # noqa: E501, QLT101, QLT201\n"),
    ("x = 1  # noqa: e501\n", ["QLT101"], "x = 1  # noqa: e501, QLT101\n"),
    ("x = 1  # type: ignore  # noqa: E501\n", ["QLT101"], "x = 1  # type: ignore  # noqa: E501, QLT101\n"),
    ("x = 1  # noqa: E501, see #12\n", ["QLT101"], "x = 1  # noqa: E501, QLT101, see #12\n"),
    ("x = 1\r\ny = 2\r\n", ["QLT101"], "x = 1  # noqa: QLT101\r\ny = 2\r\n"),
    ("x = 1", ["QLT101"], "x = 1  # noqa: QLT101"),
])
def test_add_codes(before, codes, after):
    src = SourceFile.from_text(Path("t.py"), before)
    edit = add_codes(src, 1, codes, Suppressions.for_python(src).directives.get(1))
    assert apply(src, [edit]).decode("utf-8") == after


def test_add_codes_nothing_to_do():
    src = SourceFile.from_text(Path("t.py"), "x = 1  # noqa: QLT101\ny = 2  # noqa\n")
    sup = Suppressions.for_python(src)
    assert add_codes(src, 1, ["qlt101"], sup.directives[1]) is None
    assert add_codes(src, 2, ["QLT101"], sup.directives[2]) is None


# -- a file --------------------------------------------------------------------------------------

def test_findings_on_one_line_share_a_directive():
    text, added, skipped = _add("a = 1\nb = 2\n", [(1, "QLT201"), (1, "QLT101"), (2, "QLT101"), (1, "QLT101")])
    assert text == "a = 1  # noqa: QLT101, QLT201\nb = 2  # noqa: QLT101\n"
    assert added == 2 and skipped == []


def test_already_suppressed_findings_are_left_alone():
    text, added, _ = _add("a = 1  # noqa\nb = 2  # noqa: QLT1\n", [(1, "QLT101"), (2, "QLT101")])
    assert added == 0 and text == "a = 1  # noqa\nb = 2  # noqa: QLT1\n"


def test_never_inside_a_multiline_string_or_continuation():
    source = norm('''
        x = """first
        second"""
        y = 1 + \\
            2
        z = 3  # a comment \\
        f(a,
          b)
        ''')
    assert unfit_rows(SourceFile.from_text(Path("t.py"), source)) == {1, 3}
    text, added, skipped = _add(source, [(1, "QLT101"), (2, "QLT101"), (3, "QLT102"), (5, "QLT201"), (6, "QLT202")])
    assert skipped == [(1, "QLT101", UNFIT), (3, "QLT102", UNFIT)]
    assert added == 3
    assert text == norm('''
        x = """first
        second"""  # noqa: QLT101
        y = 1 + \\
            2
        z = 3  # a comment \\  # noqa: QLT201
        f(a,  # noqa: QLT202
          b)
        ''')


def test_a_directive_that_would_not_count_is_skipped():
    # After code, ``# flake8: noqa: E501`` is neither a file nor a line directive, so a
    # ``# noqa`` appended to that comment would be part of it and suppress nothing.
    text, added, skipped = _add("x = 1  # flake8: noqa: E501\ny = 2\n", [(1, "QLT101"), (2, "QLT101")])
    assert skipped == [(1, "QLT101", UNSAFE)]
    assert text == "x = 1  # flake8: noqa: E501\ny = 2  # noqa: QLT101\n" and added == 1


def test_encoding_bom_and_line_endings_survive():
    raw = "# -*- coding: latin-1 -*-\r\nname = 'café'\r\n".encode("latin-1")
    src = SourceFile.from_bytes(Path("t.py"), raw)
    plan = plan_file(src, [(2, "QLT101", (2,))])
    assert plan.raw == "# -*- coding: latin-1 -*-\r\nname = 'café'  # noqa: QLT101\r\n".encode("latin-1")

    raw = b"\xef\xbb\xbfname = '\xc3\xa9'\n"
    plan = plan_file(SourceFile.from_bytes(Path("t.py"), raw), [(1, "QLT101", (1,))])
    assert plan.raw == b"\xef\xbb\xbfname = '\xc3\xa9'  # noqa: QLT101\n"


def test_yaml():
    source = norm("""
        command: celery worker -P threads  # keep
        args: ['-c', '#1']
        script: |
          celery worker
          exit 0
        image: app  # noqa: QLT702
        """)
    assert unfit_rows(SourceFile.from_text(Path("k.yaml"), source)) == {4, 5}
    text, added, skipped = _add(source, [(1, "QLT701"), (2, "QLT703"), (4, "QLT704"), (6, "QLT701")], "k.yaml")
    assert skipped == [(4, "QLT704", UNFIT)] and added == 3
    assert text == norm("""
        command: celery worker -P threads  # keep  # noqa: QLT701
        args: ['-c', '#1']  # noqa: QLT703
        script: |
          celery worker
          exit 0
        image: app  # noqa: QLT701, QLT702
        """)


# -- the command ---------------------------------------------------------------------------------

APP = """
from celery import Celery

app = Celery("proj")
app.conf.accept_content = ["json", "pickle"]  # see INC-12
"""

TASKS = '''
from proj.celery import app


@app.task
def sync(store_id):
    return store_id


@app.task(
    bind=True,
)
def charge(self, order_id):
    return order_id


@app.task(time_limit=60, soft_time_limit=30)  # noqa: QLT101
def bounded(order_id):
    return """
    text"""


# Most tasks set a limit: the two that do not are outliers, reported (and suppressed) one by one.
@app.task(time_limit=60, soft_time_limit=30)
def also_bounded():
    pass


@app.task(time_limit=60, soft_time_limit=30)
def bounded_too():
    pass
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASKS})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QLINT_NO_CACHE", "1")
    return tmp_path


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, out, err


def test_add_noqa_then_check_is_clean_but_for_unused_directives(project, capsys):
    rc, out, err = run(capsys, "--add-noqa", "--select", "QLT101,QLT501")
    assert (rc, out) == (0, "")
    assert err == "Added 3 noqa directives.\n"
    assert (project / "proj/celery.py").read_text() == norm(APP).replace(
        "# see INC-12", "# see INC-12  # noqa: QLT501")
    tasks = (project / "proj/tasks.py").read_text()
    assert "@app.task  # noqa: QLT101\ndef sync" in tasks
    assert "@app.task(  # noqa: QLT101\n    bind=True," in tasks  # the decorator line of a multi-line task
    assert run(capsys, "--select", "QLT101,QLT501")[0] == 0
    # Nothing left to add; the fixes were not applied.
    assert run(capsys, "--add-noqa", "--select", "QLT101,QLT501") == (0, "", "")
    assert '"pickle"]' in (project / "proj/celery.py").read_text()


def test_qlt001_is_reported_not_suppressed(project, capsys):
    rc, _, err = run(capsys, "--add-noqa")
    assert rc == 0 and err.startswith("Added ")
    assert "  # noqa: QLT101  # noqa" not in (project / "proj/tasks.py").read_text()
    rc, out, _ = run(capsys, "--output-format", "concise")
    assert rc == 1 and out.count("QLT001") == 1 and "proj/tasks.py:16:" in out
    assert run(capsys, "--fix")[0] == 0
    assert "@app.task(time_limit=60, soft_time_limit=30)\n" in (project / "proj/tasks.py").read_text()


def test_skipped_findings_are_listed(project, capsys):
    write_project(project, {"proj/util.py": '''
        from proj.tasks import sync

        TEXT = sync.apply_async((1,), serializer="pickle").id + """a
        b"""
        '''})
    rc, _, err = run(capsys, "--add-noqa", "--select", "QLT501", "proj/util.py")
    assert rc == 0
    assert "proj/util.py:3: no `# noqa` added for QLT501" in err and "Added" not in err
    assert "Skipped 1 finding (listed above)." in err


def test_only_checked_files_are_edited(project, capsys):
    before = (project / "proj/celery.py").read_text()
    rc, _, err = run(capsys, "--add-noqa", "--select", "QLT101,QLT501", "proj/tasks.py")
    assert (rc, err) == (0, "Added 2 noqa directives.\n")
    assert (project / "proj/celery.py").read_text() == before


@pytest.mark.parametrize("extra", [["--fix"], ["--diff"], ["-"]])
def test_usage_errors(project, capsys, extra):
    rc, _, err = run(capsys, "--add-noqa", *extra)
    assert rc == 2 and "`--add-noqa` cannot be combined" in err


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes read-only files")
def test_read_only_file(project, capsys):
    path = project / "proj/tasks.py"
    path.chmod(stat.S_IRUSR)
    try:
        rc, _, err = run(capsys, "--add-noqa", "--select", "QLT101")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert rc == 2 and "cannot add noqa directives" in err
