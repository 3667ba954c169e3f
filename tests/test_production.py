"""Production code only (RULES.md, principle 1): one classifier, used by every rule.

Test, example, docs, benchmark and fixture files are read for context but never reported on,
and nothing written in them changes a finding about production code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlint.lint.production import DEFAULT_NON_PRODUCTION, Classifier
from qlint.settings import ConfigError, Settings, parse_table
from tests.helpers import findings, write_project
from tests.test_cli import json_run, qlint, write

APP = """
from celery import Celery

app = Celery("proj")
"""
TASK = """
from proj.celery import app

@app.task
def export(report_id):
    pass
"""


@pytest.mark.parametrize("path", [
    "tests/test_tasks.py", "proj/tests/factories.py", "proj/test/helpers.py", "proj/testing/celery.py",
    "t/unit/test_app.py", "proj/test_tasks.py", "proj/tasks_test.py", "proj/tasks_tests.py", "conftest.py",
    "proj/tests.py", "proj/settings/test.py", "proj/settings/testing.py", "proj/test_settings.py",
    "examples/celery/tasks.py", "docs/examples/broker.py", "docs/conf.py", "benchmarks/app.py",
    "proj/fixtures/tasks.py", ".semgrep/correctness/celery.py", "docker-compose.test.yml",
    "deploy/worker.test.yaml", "testapp/tasks.py", "proj/integration_tests/tasks.py",
])
def test_non_production_by_default(tmp_path, path):
    assert not Classifier(DEFAULT_NON_PRODUCTION, tmp_path).is_production(tmp_path / path)


@pytest.mark.parametrize("path", [
    "proj/tasks.py", "proj/contest.py", "proj/attestation.py", "proj/testimonials.py", "proj/latest.py",
    "proj/settings/production.py", "proj/documents/tasks.py", "proj/doctor.py", "proj/examples.py",
    "proj/t.py", "proj/latest/tasks.py", "docker-compose.yml", "docker-compose.prod.yml", "k8s/worker.yaml",
    "proj/contests/tasks.py", "proj/benchmarking.py",
])
def test_production_near_misses(tmp_path, path):
    assert Classifier(DEFAULT_NON_PRODUCTION, tmp_path).is_production(tmp_path / path)


def test_paths_are_relative_to_the_project_root(tmp_path):
    root = tmp_path / "tests" / "checkout" / "app"
    assert Classifier(DEFAULT_NON_PRODUCTION, root).is_production(root / "proj" / "tasks.py")
    assert not Classifier(DEFAULT_NON_PRODUCTION, root).is_production(root / "proj" / "tests" / "x.py")
    # outside the root and the current folder: the file's name alone decides
    outside = Path("/nonexistent/test_run0/proj")
    classifier = Classifier(DEFAULT_NON_PRODUCTION, root)
    assert classifier.is_production(outside / "tasks.py")
    assert not classifier.is_production(outside / "test_tasks.py")


def test_setting_replaces_and_extends(tmp_path):
    replaced = parse_table({"non-production": ["sandbox/"]}, tmp_path / "qlint.toml")
    assert replaced.effective_non_production == ["sandbox/"]
    extended = parse_table({"extend-non-production": ["sandbox/"]}, tmp_path / "qlint.toml")
    assert extended.effective_non_production == [*DEFAULT_NON_PRODUCTION, "sandbox/"]
    with pytest.raises(ConfigError, match="non-production"):
        parse_table({"non-production": "tests/"}, tmp_path / "qlint.toml")


def test_tasks_in_test_and_example_code_are_not_reported(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASK,
        "proj/tests/__init__.py": "", "proj/tests/test_tasks.py": TASK.replace("export", "fake_export"),
        "examples/tasks.py": TASK.replace("export", "demo"),
        "docs/examples/app.py": APP + "\n@app.task\ndef doc_task():\n    pass\n",
    })
    assert [(p, row, c) for p, row, c, _ in findings(tmp_path, ["QLT101"])] == [("proj/tasks.py", 3, "QLT101")]


def test_extend_non_production_silences_a_folder(tmp_path):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASK,
                             "sandbox/tasks.py": TASK.replace("export", "try_it")})
    # both tasks count: one finding on the app for its two tasks
    ((path, _, _, msg),) = findings(tmp_path, ["QLT101"])
    assert path == "proj/celery.py" and "all 2 of its tasks" in msg
    # the sandbox is no production code: its task neither counts nor is reported
    assert [p for p, *_ in findings(tmp_path, ["QLT101"], extend_non_production=["sandbox/"])] == ["proj/tasks.py"]
    # replacing the list makes tests production code again
    write_project(tmp_path, {"tests/test_tasks.py": TASK.replace("export", "t")})
    ((path, _, _, msg),) = findings(tmp_path, ["QLT101"], non_production=[])
    assert path == "proj/celery.py" and "all 3 of its tasks" in msg


def test_a_test_settings_module_counts_for_nothing(tmp_path):
    """A limit written only in test settings does not bound production tasks, and an eager or
    solo setting there does not silence or change anything."""
    write_project(tmp_path, {
        "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n',
        "proj/__init__.py": "",
        "proj/celery.py": APP + 'app.config_from_object("django.conf:settings", namespace="CELERY")\n',
        "proj/settings.py": "DEBUG = False\n",
        "proj/tasks.py": TASK,
        "tests/conftest.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")\n',
        "tests/settings.py": "CELERY_TASK_TIME_LIMIT = 60\nCELERY_WORKER_POOL = 'solo'\n",
    })
    assert [(p, row) for p, row, *_ in findings(tmp_path, ["QLT101"])] == [("proj/tasks.py", 3)]


def test_a_test_app_does_not_bind_shared_tasks(tmp_path):
    """A Celery app built in a test module is not an app of the project's shared tasks: its
    ``worker_pool = "solo"`` must not make them "run on solo" (QLT103) nor silence QLT101."""
    write_project(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": APP,
        "proj/tasks.py": "from celery import shared_task\n\n@shared_task(time_limit=60)\ndef a():\n    pass\n\n"
                         "@shared_task\ndef b():\n    pass\n",
        "tests/conftest.py": APP + 'app.conf.worker_pool = "solo"\napp.conf.task_time_limit = 5\n',
    })
    found = [(p, row, c) for p, row, c, _ in findings(tmp_path, ["QLT101", "QLT103"])]
    assert found == [("proj/tasks.py", 7, "QLT101")]


def test_a_compose_file_for_tests_is_neither_judged_nor_silencing(tmp_path):
    compose = """
services:
  worker:
    image: proj
    command: celery -A proj worker --max-tasks-per-child=100
"""
    write_project(tmp_path, {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASK,
                             "docker-compose.test.yml": compose})
    found = {(p, c) for p, _, c, _ in findings(tmp_path, ["QLT401", "QLT402", "QLT701"])}
    # the test compose file's --max-tasks-per-child does not silence the app's QLT401, and the
    # file itself gets no QLT402/QLT701
    assert found == {("proj/celery.py", "QLT401")}


def test_named_test_file_is_context_only_and_says_so(tmp_path):
    write(tmp_path, {"proj/__init__.py": "", "proj/celery.py": APP, "proj/tasks.py": TASK,
                     "proj/tests/test_tasks.py": TASK.replace("export", "fake")})
    res, found = json_run(tmp_path, "--select", "QLT101", "proj/tests/test_tasks.py")
    assert found == [] and res.rc == 0
    assert "non-production" in res.err
    res = qlint(tmp_path, "check", "--select", "QLT101", "-v", "--no-cache")
    assert res.rc == 1
    assert "1 non-production (context only)" in res.err
    # stdin placed in a test folder: the same
    res = qlint(tmp_path, "check", "--select", "QLT101", "--stdin-filename", "proj/tests/test_x.py", "-",
                stdin=TASK.encode())
    assert res.rc == 0 and "non-production" in res.err


def test_settings_default_is_the_documented_list():
    """Every pattern RULES.md's principle 1 names is matched by the default list."""
    assert Settings().effective_non_production == list(DEFAULT_NON_PRODUCTION)
    named = {"tests/": "tests/m.py", "test_*.py": "test_m.py", "*_test.py": "m_test.py", "conftest.py": "conftest.py",
             "t/": "t/m.py", "examples/": "examples/m.py", "docs/": "docs/m.py", "benchmarks/": "benchmarks/m.py",
             "fixtures/": "fixtures/m.py", ".semgrep/": ".semgrep/m.py",
             "docker-compose.test.yml": "docker-compose.test.yml", "*.test.yaml": "k8s/worker.test.yaml"}
    classifier = Classifier(DEFAULT_NON_PRODUCTION, Path("/p"))
    for example in named.values():
        assert not classifier.is_production(Path("/p") / example), example


_PARTS = ["tests", "test", "t", "src", "proj", "docs", "test_x.py", "a_test.py", "conftest.py", "tasks.py", "examples",
          "x_tests", "fixtures", "compose.test.yml", "docker-compose.test.yml", "a.test.yaml", "testing.py", "doc",
          "benchmarks", ".semgrep", "é", "a b"]


@given(st.lists(st.sampled_from(_PARTS), min_size=1, max_size=5),
       st.sampled_from([(), ("generated/",), ("!tests/keep.py", "legacy/")]))
@settings(max_examples=300, deadline=None)
def test_one_regex_decides_as_pathspec(parts, extra):
    """The classifier's single regex (no negations) answers as pathspec's glob-by-glob match;
    with a negation it is pathspec that answers."""
    import pathspec

    from qlint.lint.production import GLOB_STYLE

    patterns = (*DEFAULT_NON_PRODUCTION, *extra)
    classifier = Classifier(patterns, Path("/nowhere"))
    rel = "/".join(parts)
    expected = not pathspec.PathSpec.from_lines(GLOB_STYLE, patterns).match_file(rel)
    assert (classifier._any is None) == any(p.startswith("!") for p in extra)
    assert classifier.is_production(Path("/nowhere") / rel) == expected
