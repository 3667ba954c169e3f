"""Hostile and broken YAML: a clear message or a skip, never a crash, a hang or unbounded memory.

Each case goes through the real engine (``Linter.load_manifests`` and ``lint``) with every
rule selected, and checks what happened to the file: read, skipped (with why), or reported
as an error that names the problem. Manifest-looking files that do not load are errors
(exit 2); other YAML (a CI file, data) that does not load is skipped.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import EVERY_RULE, make_linter

WORKER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "beat"]
"""


def outcome(tmp_path: Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    linter = make_linter(tmp_path, EVERY_RULE)
    started = time.perf_counter()
    diagnostics = linter.lint()
    elapsed = time.perf_counter() - started
    errors = [e.message for e in linter.errors]
    skipped = [why for _, why in linter.skipped]
    return diagnostics, errors, skipped, elapsed, str(path) in linter.manifests


def test_a_valid_manifest_is_read(tmp_path):
    diagnostics, errors, skipped, _, read = outcome(tmp_path, "worker.yaml", WORKER.encode())
    assert read and not errors and not skipped
    assert {d.code for d in diagnostics} >= {"QLT703", "QLT701"}


@pytest.mark.parametrize("cut", [10, 57, 120, len(WORKER) - 9])
def test_truncated_manifest_is_an_error_or_a_smaller_manifest(tmp_path, cut):
    _, errors, skipped, _, read = outcome(tmp_path, "worker.yaml", WORKER.encode()[:cut])
    cut_before_any_key = any("not a Kubernetes, docker-compose or CloudFormation manifest" in why for why in skipped)
    assert read or errors or cut_before_any_key, \
        "a truncated manifest is still valid YAML, an error naming the problem, or no longer a manifest"
    assert all(e.startswith("invalid YAML") for e in errors)


def test_alias_bomb_costs_nothing(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):  # 9**12 strings if expanded
        refs = ", ".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} [{refs}]")
    bomb = "apiVersion: v1\nkind: ConfigMap\n" + "\n".join(lines) + "\nspec:\n  template: *a11\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _, errors, _, elapsed, read = outcome(tmp_path, "bomb.yaml", bomb.encode())
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert read and not errors
    assert elapsed < 5 and grown_kb < 100_000


def test_alias_bomb_inside_a_workload_is_bounded(tmp_path):
    lines = ['x0: &x0 ["-c", "1", "-c", "1", "-c", "1", "-c", "1"]']
    for i in range(1, 10):
        lines.append(f"x{i}: &x{i} [{', '.join(f'*x{i - 1}' for _ in range(8))}]")
    anchors = "\n".join(f"  {line}" for line in lines)
    text = f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
anchors:
{anchors}
spec:
  template:
    spec:
      containers:
        - name: worker
          args: *x9
"""
    _, errors, _, elapsed, read = outcome(tmp_path, "worker.yaml", text.encode())
    assert read and not errors
    assert elapsed < 5


def test_deep_nesting_is_an_error_not_a_crash(tmp_path):
    deep = b"apiVersion: v1\nkind: Pod\nspec: " + b"[" * 20000 + b"]" * 20000 + b"\n"
    _, errors, skipped, elapsed, _ = outcome(tmp_path, "deep.yaml", deep)
    assert errors or skipped
    assert elapsed < 10


def test_binary_junk_named_yaml(tmp_path):
    _, errors, skipped, _, read = outcome(tmp_path, "junk.yaml", bytes(range(256)) * 40)
    assert not read
    assert errors or skipped


def test_ten_megabytes_are_skipped_quickly(tmp_path):
    big = (WORKER + "---\n") * (10_000_000 // (len(WORKER) + 4))
    _, errors, skipped, elapsed, read = outcome(tmp_path, "big.yaml", big.encode())
    assert not read and not errors
    assert any("larger than a manifest" in why for why in skipped)
    assert elapsed < 5


def test_tabs_in_indentation_are_a_clear_error(tmp_path):
    _, errors, _, _, read = outcome(tmp_path, "tabs.yaml", WORKER.replace("  name: worker", "\tname: worker").encode())
    assert not read
    assert errors and "invalid YAML" in errors[0] and "line" in errors[0]


def test_duplicate_keys_take_the_last_value(tmp_path):
    text = WORKER.replace("  replicas: 2\n", "  replicas: 2\n  replicas: 1\n").replace(
        "spec:\n  replicas", "spec:\n  strategy:\n    type: Recreate\n  replicas")
    diagnostics, errors, _, _, read = outcome(tmp_path, "dup.yaml", text.encode())
    assert read and not errors
    assert "QLT703" not in {d.code for d in diagnostics}  # one replica and Recreate, as a YAML loader sees it


def test_helm_template_is_skipped_with_the_reason(tmp_path):
    template = WORKER.replace("replicas: 2", "replicas: {{ .Values.replicas }}")
    _, errors, skipped, _, read = outcome(tmp_path, "deployment.yaml", template.encode())
    assert not read and not errors
    assert any("template" in why for why in skipped)


def test_yaml_that_is_not_a_manifest_and_does_not_load_is_skipped(tmp_path):
    _, errors, skipped, _, read = outcome(tmp_path, "notes.yml", b"key: [unclosed\n")
    assert not read and not errors and skipped


def test_a_github_workflow_is_not_mistaken_for_a_template(tmp_path):
    workflow = b"on: push\njobs:\n  test:\n    runs-on: ${{ matrix.os }}\n"
    _, errors, skipped, _, read = outcome(tmp_path, "ci.yml", workflow)
    assert not read and not errors
    assert skipped and "not a Kubernetes, docker-compose or CloudFormation manifest" in skipped[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000) | st.text(alphabet=" \t\n-:[]{}&*!|>'\"#,?%@`abckind", max_size=400).map(
    lambda s: s.encode()))
def test_fuzzed_yaml_never_crashes(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    diagnostics, errors, skipped, elapsed, read = outcome(root, "fuzz.yaml", b"kind: Deployment\n" + data)
    assert read or errors or skipped
    assert elapsed < 5
