"""The flake8 plugin, run through real ``flake8`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import textwrap

import pytest


pytest.importorskip("flake8")

CELERY = """
from celery import Celery

app = Celery("proj")
"""

CELERY_LIMITED = CELERY + "app.conf.task_time_limit = 60\n"

TASKS = """
from proj.celery import app

@app.task
def sync(store_id):
    pass
"""


def flake8(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, QLINT_NO_CACHE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "flake8", "--isolated", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stdout.splitlines()


def codes(proc: subprocess.CompletedProcess) -> list[tuple[str, int, int, str]]:
    result = []
    for line in lines(proc):
        path, row, col, rest = line.split(":", 3)
        result.append((Path(path).as_posix().removeprefix("./"), int(row), int(col), rest.split()[0]))
    return result


def write_project(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


# Most of the app's tasks set their limits: a task without one is an outlier, reported on its own
# decorator (when most tasks lack a limit, the app is reported once instead: tested below).
BOUNDED = "from proj.celery import app\n\n" + "".join(
    f"@app.task(time_limit=60, soft_time_limit=30)\ndef bounded_{i}():\n    pass\n\n" for i in range(4))


def project(root: Path, *, celery: str = CELERY, tasks: str = TASKS, **extra: str) -> None:
    write_project(root, {"proj/__init__.py": "", "proj/celery.py": celery, "proj/tasks.py": tasks,
                         "proj/bounded.py": BOUNDED, **extra})


def test_plugin_is_registered(tmp_path):
    proc = flake8(tmp_path, "--version")
    assert "qlint-tasks:" in proc.stdout  # flake8 names a plugin by its distribution


def test_finding_on_decorator_with_flake8_columns(tmp_path):
    project(tmp_path)
    proc = flake8(tmp_path, "--select", "QLT1", "proj")
    assert codes(proc) == [("proj/tasks.py", 3, 1, "QLT101")]
    assert lines(proc)[0].startswith("proj/tasks.py:3:1: QLT101 Task `proj.tasks.sync` ")
    assert proc.returncode == 1


def test_indented_finding_column(tmp_path):
    project(tmp_path, tasks="""
        from proj.celery import app

        if True:
            @app.task
            def sync(store_id):
                pass
    """)
    proc = flake8(tmp_path, "--select", "QLT1", "proj/tasks.py")
    assert codes(proc) == [("proj/tasks.py", 4, 5, "QLT101")]


def test_limit_in_config_module_seen_when_only_tasks_file_is_checked(tmp_path):
    project(tmp_path, celery=CELERY_LIMITED)
    proc = flake8(tmp_path, "--select", "QLT", "proj/tasks.py")
    assert lines(proc) == []
    assert proc.returncode == 0
    proc = flake8(tmp_path, "--select", "QLT", "./proj/tasks.py")
    assert lines(proc) == []


def test_config_module_of_a_sub_folder_project(tmp_path):
    # Run from above the project (no qlint configuration): the root is the cwd.
    project(tmp_path / "svc", celery=CELERY_LIMITED)
    assert lines(flake8(tmp_path, "--select", "QLT", "svc/proj/tasks.py")) == []


def test_noqa_on_the_finding_line(tmp_path):
    project(tmp_path, tasks="""
        from proj.celery import app

        @app.task  # noqa: QLT101
        def sync(store_id):
            pass


        @app.task  # noqa: QLT1
        def prefix(store_id):
            pass


        @app.task  # noqa: QLT201
        def other_code(store_id):
            pass
    """)
    proc = flake8(tmp_path, "--select", "QLT1", "proj")
    assert codes(proc) == [("proj/tasks.py", 13, 1, "QLT101")]
    # qlint's unused-noqa rule sees what qlint's suppression used, as under `qlint check`.
    proc = flake8(tmp_path, "--select", "QLT001", "proj")
    assert codes(proc) == [("proj/tasks.py", 13, 12, "QLT001")]
    assert lines(flake8(tmp_path, "--select", "QLT001", "--disable-noqa", "proj")) == []


def test_noqa_on_the_def_line_as_qlint_documents(tmp_path):
    project(tmp_path, tasks="""
        from proj.celery import app

        @app.task
        def sync(store_id):  # noqa: QLT101
            pass
    """)
    assert lines(flake8(tmp_path, "--select", "QLT1", "proj")) == []


def test_disable_noqa(tmp_path):
    project(tmp_path, tasks="""
        from proj.celery import app

        @app.task  # noqa: QLT101
        def sync(store_id):
            pass


        @app.task
        def other(store_id):  # noqa: QLT101
            pass
    """)
    proc = flake8(tmp_path, "--select", "QLT1", "--disable-noqa", "proj")
    assert [c[1] for c in codes(proc)] == [3, 8]


def test_file_noqa(tmp_path):
    project(tmp_path, tasks="# qlint: noqa: QLT101\n" + TASKS.lstrip("\n"))
    assert lines(flake8(tmp_path, "--select", "QLT1", "proj")) == []


def test_extend_ignore(tmp_path):
    project(tmp_path)
    proc = flake8(tmp_path, "--extend-ignore", "QLT", "proj")
    assert not any(c[3].startswith("QLT") for c in codes(proc))
    # flake8's default checks still run.
    assert flake8(tmp_path, "--extend-ignore", "QLT,E,W,F,C", "proj").stdout == ""


PICKLE_CELERY = CELERY + 'app.conf.task_serializer = "pickle"\n'  # line 4


def test_select_one_code(tmp_path):
    project(tmp_path, celery=PICKLE_CELERY)
    proc = flake8(tmp_path, "--select", "QLT501", "proj")
    assert codes(proc) == [("proj/celery.py", 4, 1, "QLT501")]
    proc = flake8(tmp_path, "--select", "QLT1,QLT5", "proj")
    assert sorted(c[3] for c in codes(proc)) == ["QLT101", "QLT501"]


def test_qlint_configuration_ignore(tmp_path):
    project(tmp_path, celery=PICKLE_CELERY)
    (tmp_path / "pyproject.toml").write_text('[tool.qlint]\nignore = ["QLT101", "QLT3", "QLT4"]\n',
                                             encoding="utf-8")
    proc = flake8(tmp_path, "--select", "QLT", "proj")
    assert codes(proc) == [("proj/celery.py", 4, 1, "QLT501")]


def test_qlint_per_file_ignores(tmp_path):
    project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.qlint.per-file-ignores]\n"proj/tasks.py" = ["QLT1"]\n',
                                             encoding="utf-8")
    assert lines(flake8(tmp_path, "--select", "QLT1", "proj")) == []


def test_jobs_give_the_same_output(tmp_path):
    files = {f"proj/tasks_{i}.py": TASKS for i in range(6)}
    project(tmp_path, celery=PICKLE_CELERY, **files)
    serial = flake8(tmp_path, "--select", "QLT101,QLT501", "--jobs", "1", "proj")
    parallel = flake8(tmp_path, "--select", "QLT101,QLT501", "--jobs", "2", "proj")
    assert sorted(lines(serial)) == sorted(lines(parallel))
    # QLT501, and QLT101 once on the app for its 7 tasks without a limit (of 11): both in celery.py
    assert codes(serial) == [("proj/celery.py", 3, 7, "QLT101"), ("proj/celery.py", 4, 1, "QLT501")]
    assert "7 of its 11 tasks" in lines(serial)[0]
    # the same answer file by file: a task file named alone gets no per-task finding
    assert lines(flake8(tmp_path, "--select", "QLT101", "proj/tasks_3.py")) == []
    assert codes(flake8(tmp_path, "--select", "QLT101", "proj/celery.py")) == [("proj/celery.py", 3, 7, "QLT101")]


def test_jobs_keep_cross_file_facts(tmp_path):
    files = {f"proj/tasks_{i}.py": TASKS for i in range(6)}
    project(tmp_path, celery=CELERY_LIMITED, **files)
    paths = [f"proj/tasks_{i}.py" for i in range(6)]
    assert lines(flake8(tmp_path, "--select", "QLT", "--jobs", "2", *paths)) == []


def test_jobs_workers_do_not_start_a_parse_pool(tmp_path):
    # Checking base.py makes qlint parse the twelve files that spell BaseTask: a batch it
    # would spread over a process pool, which a flake8 worker (a daemon) cannot start.
    base = "from celery import Task\n\n\nclass BaseTask(Task):\n    pass\n"
    tasks = "from proj.base import BaseTask\nfrom proj.celery import app\n\n\n@app.task(base=BaseTask)\ndef a():\n    pass\n"
    files = {f"proj/tasks_{i}.py": tasks for i in range(12)}
    project(tmp_path, celery=CELERY_LIMITED, **{"proj/base.py": base}, **files)
    proc = flake8(tmp_path, "--select", "QLT1", "--jobs", "2", "proj")
    assert lines(proc) == [] and proc.stderr == ""


def test_syntax_error_is_e999(tmp_path):
    project(tmp_path, **{"proj/broken.py": "from proj.celery import app\n\n@app.task\ndef broken(:\n    pass\n"})
    proc = flake8(tmp_path, "--select", "QLT1,E999", "proj")
    # The column of a syntax error depends on the Python version.
    assert [(c[0], c[1], c[3]) for c in codes(proc)] == [("proj/broken.py", 4, "E999"), ("proj/tasks.py", 3, "QLT101")]
    assert lines(proc)[0].split(": ", 1)[1].startswith("E999 SyntaxError")
    assert proc.stderr == ""


def test_stdin_uses_the_text_flake8_read(tmp_path):
    project(tmp_path)
    text = "from proj.celery import app\n\n\n@app.task(time_limit=30)\ndef sync():\n    pass\n\n\n@app.task\ndef late():\n    pass\n"
    proc = flake8(tmp_path, "--select", "QLT", "--stdin-display-name", "proj/tasks.py", "-", stdin=text)
    assert codes(proc) == [("proj/tasks.py", 9, 1, "QLT101")]


def test_stdin_sees_the_project(tmp_path):
    project(tmp_path, celery=CELERY_LIMITED)
    proc = flake8(tmp_path, "--select", "QLT", "--stdin-display-name", "proj/tasks.py", "-",
                  stdin=TASKS.lstrip("\n"))
    assert lines(proc) == []


def test_unsaved_text_wins_over_the_file_on_disk(tmp_path):
    # The config module as flake8 reads it (stdin) drops the limit the file on disk has.
    project(tmp_path, celery=CELERY_LIMITED)
    proc = flake8(tmp_path, "--select", "QLT1,QLT5", "--stdin-display-name", "proj/celery.py", "-",
                  stdin=(CELERY + 'app.conf.task_serializer = "pickle"\n').lstrip("\n"))
    assert codes(proc) == [("proj/celery.py", 4, 1, "QLT501")]


def test_invalid_configuration_is_a_finding_not_a_traceback(tmp_path):
    project(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.qlint]\nbogus = 1\n", encoding="utf-8")
    proc = flake8(tmp_path, "--select", "QLT", "proj/tasks.py")
    assert codes(proc) == [("proj/tasks.py", 1, 1, "QLT000")]
    assert "unknown configuration key `bogus`" in proc.stdout


def test_plain_stdin(tmp_path):
    project(tmp_path)
    proc = flake8(tmp_path, "--select", "QLT", "-", stdin=TASKS.lstrip("\n"))
    assert codes(proc) == [("stdin", 3, 1, "QLT101")]
