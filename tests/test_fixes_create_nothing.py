"""Fixes never create findings: after ``--fix --unsafe-fixes`` with every rule on, a new check
reports nothing the first one did not (no code appears more often in a file than before).
Over every rule's INVALID examples and the realistic projects of each framework."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from qlint.lint.registry import all_rules
from tests.helpers import EVERY_RULE, findings, fix, write_project
from tests.test_frameworks_realistic import PROJECTS


def _cases():
    for framework in sorted(PROJECTS):
        yield pytest.param(PROJECTS[framework], id=f"realistic-{framework}")
    for rule in all_rules():
        for i, case in enumerate(rule.INVALID):  # other rules' fixes apply to each as well
            yield pytest.param(case.file_map, id=f"{rule.code}-INVALID-{i}")


def _per_file(found) -> Counter:
    return Counter((path, code) for path, _row, code, _message in found)


@pytest.mark.parametrize("files", list(_cases()))
def test_fixing_creates_no_finding(tmp_path, files):
    write_project(tmp_path, files)
    before = findings(tmp_path, EVERY_RULE)
    outcome = fix(tmp_path, EVERY_RULE)
    for path, fixed in outcome.fixed.items():
        Path(path).write_text(fixed.text, encoding="utf-8")
    after = findings(tmp_path, EVERY_RULE)
    grown = _per_file(after) - _per_file(before)
    assert not grown, [f for f in after if (f[0], f[2]) in grown]


def _qlint(root: Path, *args: str) -> str:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "qlint", "check", "--no-cache", *args], cwd=root,
                            capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode in (0, 1), result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_available_diff_and_fix_count_the_same_fixes(tmp_path, framework):
    """"N fixes available", "Would fix N errors" and "(N fixed, ...)" agree."""
    import re

    write_project(tmp_path, PROJECTS[framework])
    (tmp_path / ".git").mkdir()
    hint = _qlint(tmp_path)
    safe = re.search(r"\[\*\] (\d+) fixable with `--fix`", hint)
    unsafe = re.search(r"(\d+) unsafe fix(?:es)? available", hint)
    available = (int(safe.group(1)) if safe else 0) + (int(unsafe.group(1)) if unsafe else 0)
    assert available, hint
    would = re.search(r"Would fix (\d+) error", _qlint(tmp_path, "--diff", "--unsafe-fixes"))
    fixed = re.search(r"\((\d+) fixed, \d+ remaining\)", _qlint(tmp_path, "--fix", "--unsafe-fixes"))
    assert would and fixed
    assert int(would.group(1)) == int(fixed.group(1)) == available
