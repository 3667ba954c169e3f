"""One finding per fix (RULES.md, principle 2), and fixes that write another file than their finding's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from qlint.lint.diagnostics import Applicability, Edit, Fix
from qlint.rules._app_level import count_text, shared
from tests.helpers import findings, fix, write_project
from tests.test_cli import qlint, write
from tests.test_report import _schema as sarif_schema

DJANGO = {
    "manage.py": 'import os\n\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n',
    "proj/__init__.py": "",
    "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n'
                      'app.config_from_object("django.conf:settings", namespace="CELERY")\n',
    "proj/settings.py": 'DEBUG = False\nCELERY_BROKER_URL = "redis://redis:6379/0"\n',
}


def _tasks(n_bare: int, n_limited: int) -> str:
    lines = ["from celery import shared_task", ""]
    for i in range(n_bare):
        lines += ["@shared_task", f"def bare_{i}():", "    pass", ""]
    for i in range(n_limited):
        lines += ["@shared_task(time_limit=60)", f"def limited_{i}():", "    pass", ""]
    return "\n".join(lines)


def _qlt101(tmp_path) -> list[tuple[str, int]]:
    return [(p, row) for p, row, code, _ in findings(tmp_path, ["QLT101"])]


@pytest.mark.parametrize("bare,limited,app_level", [
    (2, 0, True), (2, 2, True), (5, 3, True), (3, 3, True),  # two or more, at least half
    (1, 0, False), (1, 3, False), (2, 3, False), (3, 4, False),  # one alone, or the outliers
])
def test_half_rule(tmp_path, bare, limited, app_level):
    write_project(tmp_path, {**DJANGO, "proj/tasks.py": _tasks(bare, limited)})
    found = _qlt101(tmp_path)
    if app_level:
        assert found == [("proj/celery.py", 3)]
    else:
        assert [p for p, _ in found] == ["proj/tasks.py"] * bare


def test_app_level_message_counts_and_fix_goes_to_the_settings_module(tmp_path):
    write_project(tmp_path, {**DJANGO, "proj/tasks.py": _tasks(3, 1)})
    (msg,) = [m for *_, m in findings(tmp_path, ["QLT101"])]
    assert "Celery app `proj.celery.app`" in msg and "3 of its 4 tasks" in msg
    outcome = fix(tmp_path, ["QLT101"])
    assert {Path(p).name for p in outcome.fixed} == {"settings.py"}
    settings = (tmp_path / "proj/settings.py").read_text()
    new = outcome.fixed[str(tmp_path / "proj/settings.py")].text
    assert new == settings + "CELERY_TASK_TIME_LIMIT = 300\nCELERY_TASK_SOFT_TIME_LIMIT = 270\n"
    assert outcome.count == 1
    (tmp_path / "proj/settings.py").write_text(new)
    assert _qlt101(tmp_path) == []  # the one setting bounds every task
    assert fix(tmp_path, ["QLT101"]).fixed == {}


def test_an_app_soft_limit_is_kept(tmp_path):
    files = {**DJANGO, "proj/tasks.py": _tasks(2, 0)}
    files["proj/settings.py"] += "CELERY_TASK_SOFT_TIME_LIMIT = 600\n"
    write_project(tmp_path, files)
    new = fix(tmp_path, ["QLT101"]).fixed[str(tmp_path / "proj/settings.py")].text
    assert new.endswith("CELERY_TASK_SOFT_TIME_LIMIT = 600\nCELERY_TASK_TIME_LIMIT = 300\n") is False
    assert "CELERY_TASK_TIME_LIMIT = 660" in new and new.count("SOFT_TIME_LIMIT") == 1


def test_each_app_is_judged_on_its_own_tasks(tmp_path):
    write_project(tmp_path, {
        "a/__init__.py": "", "b/__init__.py": "",
        "a/celery.py": 'from celery import Celery\n\napp = Celery("a")\n\n@app.task\ndef one():\n    pass\n\n'
                       '@app.task\ndef two():\n    pass\n',
        "b/celery.py": 'from celery import Celery\n\napp = Celery("b")\n\n@app.task(time_limit=60)\n'
                       'def three():\n    pass\n\n@app.task(time_limit=60)\ndef four():\n    pass\n\n'
                       '@app.task\ndef five():\n    pass\n',
    })
    assert sorted(_qlt101(tmp_path)) == [("a/celery.py", 3), ("b/celery.py", 13)]


def test_a_setting_that_leaves_several_tasks_unbounded_is_reported_once(tmp_path):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 0

@app.task
def one():
    pass

@app.task
def two():
    pass
"""})
    ((path, row, code, msg),) = findings(tmp_path, ["QLT101"])
    assert (path, row) == ("proj/celery.py", 4) and "2 Celery tasks" in msg


def test_dramatiq_middleware_list_once(tmp_path):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/broker.py": """
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries

dramatiq.set_broker(RedisBroker(middleware=[Retries()]))
""", "proj/actors.py": "import dramatiq\n\n" + "".join(
        f"@dramatiq.actor\ndef a{i}():\n    pass\n\n" for i in range(4))})
    ((path, row, _, msg),) = findings(tmp_path, ["QLT101"])
    assert (path, row) == ("proj/broker.py", 5)
    assert "4 Dramatiq tasks" in msg and "and 1 more" in msg


def test_shared_groups_and_singles():
    items = [("a", 1), ("a", 2), ("b", 3), (None, 4), ("c", 5), ("c", 6)]
    once, singles = shared(items, lambda i: i[0], lambda key, members: {"a": 4, "c": 5}.get(key, 1))
    assert [(k, [i[1] for i in m]) for k, m in once] == [("a", [1, 2])]
    assert sorted(i[1] for i in singles) == [3, 4, 5, 6]
    assert count_text(3, 3, "task") == "all 3 of its tasks"
    assert count_text(1, 3, "task") == "1 of its 3 tasks"


# -- fixes that edit another file ---------------------------------------------------------

def test_cross_file_fix_needs_every_file_it_edits(tmp_path):
    """A named-files run may edit only the named files: the settings module is not one."""
    write(tmp_path, {**DJANGO, "proj/tasks.py": _tasks(2, 0)})
    res = qlint(tmp_path, "check", "--select", "QLT101", "--fix", "--unsafe-fixes", "--no-cache", "proj/celery.py",
                "proj/tasks.py")
    assert res.rc == 1, res.err
    assert (tmp_path / "proj/settings.py").read_text() == DJANGO["proj/settings.py"]
    res = qlint(tmp_path, "check", "--select", "QLT101", "--fix", "--unsafe-fixes", "--no-cache")
    assert res.rc == 0, res.out + res.err
    assert "CELERY_TASK_TIME_LIMIT = 300" in (tmp_path / "proj/settings.py").read_text()


def test_cross_file_fix_in_json_and_sarif(tmp_path):
    write(tmp_path, {**DJANGO, "proj/tasks.py": _tasks(2, 0)})
    res = qlint(tmp_path, "check", "--select", "QLT101", "--output-format", "json", "--no-cache")
    (finding,) = json.loads(res.out)
    assert finding["filename"].endswith("proj/celery.py")
    (edit,) = finding["fix"]["edits"]
    assert edit["filename"] == str(tmp_path / "proj/settings.py")
    assert edit["location"]["row"] == 2 and edit["content"].startswith("\nCELERY_TASK_TIME_LIMIT = 300")
    res = qlint(tmp_path, "check", "--select", "QLT101", "--output-format", "sarif", "--no-cache")
    sarif = json.loads(res.out)
    jsonschema.validate(sarif, sarif_schema())
    (change,) = sarif["runs"][0]["results"][0]["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "proj/settings.py"
    res = qlint(tmp_path, "check", "--select", "QLT101", "--diff", "--unsafe-fixes", "--no-cache")
    assert "+++ proj/settings.py" in res.out and "+CELERY_TASK_TIME_LIMIT = 300" in res.out


def test_fix_parts_by_file():
    fix_ = Fix(Applicability.UNSAFE, "x", (Edit(5, 5, "b", path="/p/s.py"), Edit(1, 2, "a"), Edit(0, 0, "c", path="/p/s.py")))
    assert {k: [e.content for e in v] for k, v in fix_.parts("/p/own.py").items()} == {
        "/p/s.py": ["c", "b"], "/p/own.py": ["a"]}


# -- which app a shared task belongs to ----------------------------------------------------

TWO_APPS = {
    "shop/__init__.py": "", "reports/__init__.py": "", "common/__init__.py": "",
    "shop/celery.py": 'from celery import Celery\n\napp = Celery("shop")\napp.conf.worker_pool = "solo"\n',
    "reports/celery.py": 'from celery import Celery\n\napp = Celery("reports")\napp.conf.task_time_limit = 60\n',
}
SHARED = "from celery import shared_task\n\n@shared_task(soft_time_limit=30, time_limit=40)\ndef one():\n    pass\n"


def test_shared_task_bound_to_the_app_of_its_package(tmp_path):
    write_project(tmp_path, {**TWO_APPS, "shop/tasks.py": SHARED, "reports/tasks.py": SHARED})
    found = sorted({(p, c) for p, _, c, _ in findings(tmp_path, ["QLT103"])})
    # the solo pool of the shop app ignores the shop task's limits; the reports task runs on prefork
    assert found == [("shop/tasks.py", "QLT103")]


def test_shared_task_of_ambiguous_app_is_left_alone(tmp_path):
    """In a package of its own, with two apps configured differently, qlint cannot tell which
    app runs the task: rules that depend on app configuration stay silent (principle 3)."""
    bare = "from celery import shared_task\n\n@shared_task\ndef two():\n    pass\n"
    write_project(tmp_path, {**TWO_APPS, "common/tasks.py": SHARED + "\n\n" + bare})
    assert findings(tmp_path, ["QLT101", "QLT103"]) == []
    from tests.helpers import make_linter

    (task, other) = [t for t in make_linter(tmp_path).model().tasks]
    assert task.apps == [] and "several Celery apps" in task.opaque


def test_shared_task_of_alike_apps_is_bound_to_them(tmp_path):
    files = {"a/__init__.py": "", "b/__init__.py": "", "common/__init__.py": "",
             "a/celery.py": 'from celery import Celery\n\napp = Celery("a")\n',
             "b/celery.py": 'from celery import Celery\n\napp = Celery("b")\n',
             "common/tasks.py": "from celery import shared_task\n\n@shared_task\ndef one():\n    pass\n"}
    write_project(tmp_path, files)
    assert [(p, row) for p, row, *_ in findings(tmp_path, ["QLT101"])] == [("common/tasks.py", 3)]
