"""A `--fix` killed at any moment leaves every file either as it was or fully fixed, never half-written."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

from tests.helpers import write_project

TASK = '''from proj.celery import app


@app.task
def work_{i}(x):
    return x


@app.task(bind=True, max_retries=None)
def retry_{i}(self, x):
    return x
'''
FILES = 120


def _project(root):
    files = {"proj/__init__.py": "", "proj/celery.py": "from celery import Celery\napp = Celery('proj')\n"}
    files.update({f"proj/tasks_{i}.py": TASK.format(i=i) for i in range(FILES)})
    write_project(root, files)


def _run(cwd, **kw):
    return subprocess.Popen([sys.executable, "-m", "qlint", "check", "--fix", "--unsafe-fixes", "--no-cache",
                             "--output-format", "concise", "."], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


def test_killed_fix_leaves_old_or_new_files(tmp_path):
    expected_dir = tmp_path / "expected"
    work = tmp_path / "work"
    _project(expected_dir)
    _run(expected_dir).wait(timeout=300)
    fixed = {p.name: p.read_bytes() for p in (expected_dir / "proj").glob("tasks_*.py")}
    original = TASK.format(i=0)
    assert fixed["tasks_0.py"] != original.encode(), "the fix must change the files for this test to mean anything"

    _project(work)
    originals = {p.name: p.read_bytes() for p in (work / "proj").glob("tasks_*.py")}
    delay = 0.2
    finished = False
    while not finished and delay < 120:
        proc = _run(work)
        try:
            proc.wait(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for path in (work / "proj").glob("tasks_*.py"):
            assert path.read_bytes() in (originals[path.name], fixed[path.name]), f"{path.name} is half-written"
        delay *= 1.6
    assert finished
    assert {p.name: p.read_bytes() for p in (work / "proj").glob("tasks_*.py")} == fixed
    shutil.rmtree(tmp_path, ignore_errors=True)
