"""Every rule's embedded VALID / INVALID examples run as tests (Fixit's model)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from qlint.lint.registry import all_rules
from qlint.lint.source import SourceFile
from qlint.manifests import collect as manifests
from tests.helpers import findings, fix, norm, write_project


def _cases(kind):
    for rule in all_rules():
        for i, case in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, case, id=f"{rule.code}-{kind}-{i}")


@pytest.mark.parametrize("rule,case", list(_cases("VALID")))
def test_valid(tmp_path, rule, case):
    write_project(tmp_path, case.file_map)
    assert [f for f in findings(tmp_path, [rule.code, *case.select]) if f[2] == rule.code] == []


@pytest.mark.parametrize("rule,case", list(_cases("INVALID")))
def test_invalid(tmp_path, rule, case):
    write_project(tmp_path, case.file_map)
    got = [f for f in findings(tmp_path, [rule.code, *case.select]) if f[2] == rule.code]
    assert sorted((p, row) for p, row, _, _ in got) == sorted(case.expect)
    if case.message:
        assert all(case.message in msg for _, _, _, msg in got)


@pytest.mark.parametrize("rule,case", list(_cases("INVALID")))
def test_fix(tmp_path, rule, case):
    """The fix gives the expected text, re-parses, and a second --fix changes nothing."""
    write_project(tmp_path, case.file_map)
    outcome = fix(tmp_path, [rule.code, *case.select])
    expected = case.fixed_map
    changed = {p: s.text for p, s in outcome.fixed.items()}
    if expected is None:
        assert changed == {}, "a rule without a fix in this example changed a file"
        return
    assert {k: v for k, v in changed.items()} == {str(tmp_path / k): norm(v) for k, v in expected.items()}
    for path, text in changed.items():
        if path.endswith((".yaml", ".yml", ".json", ".tf")) or "Procfile" in path:
            manifests.read(SourceFile.from_text(Path(path), text))  # still loads, as the same kind of file
        else:
            cst.parse_module(text)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    again = fix(tmp_path, [rule.code, *case.select])
    assert again.fixed == {}, "a second --fix changed the output again"
