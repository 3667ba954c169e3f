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


def _group_members(pgid: int) -> list[int]:
    """Live processes of a process group (from /proc; Linux)."""
    import os

    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields[0]: state, fields[2]: process group
            members.append(int(entry))
    return members


def test_a_killed_run_leaves_no_worker_behind(tmp_path):
    """Killed while its parse pool works (a pre-commit or CI timeout), qlint leaves no process.
    The project is large enough that the pool is busy when the kill comes; the test insists it
    saw worker processes alive before the kill, so it cannot pass by missing them."""
    import os
    import time

    import pytest

    if not os.path.isdir("/proc"):
        pytest.skip("reads /proc")
    body = "".join(f"@app.task\ndef t{i}(x):\n    return x + {i}\n\n" for i in range(300))
    files = {"proj/__init__.py": "", "proj/celery.py": "from celery import Celery\napp = Celery('proj')\n"}
    files.update({f"proj/tasks_{i}.py": "from proj.celery import app\n\n" + body for i in range(200)})
    write_project(tmp_path, files)
    env = dict(os.environ, QLINT_WORKERS="2")
    saw_workers = False
    for delay in (0.6, 1.0, 1.5, 2.5):
        proc = subprocess.Popen([sys.executable, "-m", "qlint", "check", "--no-cache", "."], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        time.sleep(delay)
        seen = _group_members(proc.pid)
        saw_workers = saw_workers or len(seen) > 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 5
        while _group_members(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert _group_members(proc.pid) == [], f"workers of a killed run are still alive (group had {seen})"
    assert saw_workers, "no worker process was alive at any kill: the test did not test anything"
