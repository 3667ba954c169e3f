"""The same answer however qlint is run.

Every Python file of the realistic projects is checked five ways: a whole-project run, named
from the project's root, named from its own folder, on stdin with ``--stdin-filename``, and
through the flake8 plugin. Each way must report exactly the findings the whole-project run
reports in that file: a file named alone is still judged with its whole project as context.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EVERY_RULE, write_project
from qlint.cli import main
from test_frameworks_realistic import PROJECTS

SELECT = ["--select", EVERY_RULE[0], "--extend-select", ",".join(EVERY_RULE[1:])]


def _run(cwd: Path, argv: list[str], capsys, monkeypatch, stdin: bytes | None = None,
         select: list[str] = SELECT) -> list[dict]:
    monkeypatch.chdir(cwd)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    capsys.readouterr()
    code = main(["check", "--no-cache", "--output-format", "json", *select, *argv])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return json.loads(out.out or "[]")


def _keyed(root: Path, found: list[dict]) -> list[tuple]:
    return sorted((Path(f["filename"]).resolve().relative_to(root).as_posix(), f["location"]["row"],
                   f["location"]["column"], f["code"], f["message"]) for f in found)


def _flake8(root: Path, files: list[str]) -> list[tuple]:
    env = dict(os.environ, QLINT_NO_CACHE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select", "QLT", *files], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    found = []
    for line in proc.stdout.splitlines():
        path, row, col, rest = line.split(":", 3)
        found.append((Path(path).as_posix().removeprefix("./"), int(row), int(col), rest.split()[0]))
    return sorted(found)


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_way_of_running_gives_the_whole_project_answer(tmp_path, name, capsys, monkeypatch):
    root = tmp_path.resolve()
    write_project(root, PROJECTS[name])
    (root / ".git").mkdir()  # a repository: its root is the project's, wherever qlint runs
    whole = _keyed(root, _run(root, ["."], capsys, monkeypatch))
    python = sorted(rel for rel in PROJECTS[name] if rel.endswith(".py"))
    assert whole, "the realistic project has findings to compare"
    for rel in python:
        expected = [f for f in whole if f[0] == rel]
        path = root / rel
        named = _keyed(root, _run(root, [rel], capsys, monkeypatch))
        assert named == expected, f"{rel} named from the root"
        local = _keyed(root, _run(path.parent, [path.name], capsys, monkeypatch))
        assert local == expected, f"{rel} named from its folder"
        piped = _keyed(root, _run(root, ["--stdin-filename", rel, "-"], capsys, monkeypatch,
                                  stdin=path.read_bytes()))
        assert piped == expected, f"{rel} on stdin"
    # flake8 runs the default rules (a prefix never turns an opt-in rule on) and reports columns
    # from 1 as qlint does
    default = _keyed(root, _run(root, ["."], capsys, monkeypatch, select=[]))
    assert _flake8(root, python) == sorted(f[:4] for f in default if f[0] in python)
