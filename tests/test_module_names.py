"""Module names from paths (RULES.md principle 5, "Reach"): regular packages, namespace
folders without ``__init__.py``, source roots (``src/``, the ``src`` setting), aliases."""

from __future__ import annotations

import pytest

from qlint.lint.modules import ModuleNames
from tests.helpers import findings, make_linter, write_project


@pytest.fixture
def names(tmp_path):
    return ModuleNames([tmp_path, tmp_path / "src"])


@pytest.mark.parametrize("files,path,expected", [
    ({"proj/__init__.py": ""}, "proj/tasks.py", ("proj.tasks", False)),
    ({"proj/__init__.py": ""}, "proj/__init__.py", ("proj", True)),
    ({"proj/__init__.py": ""}, "proj/sub/tasks.py", ("proj.sub.tasks", False)),  # namespace inside a package
    ({}, "proj/celery.py", ("proj.celery", False)),  # no __init__.py anywhere: the path from the root
    ({}, "proj/settings/base.py", ("proj.settings.base", False)),
    ({}, "manage.py", ("manage", False)),
    ({}, "src/proj/tasks.py", ("proj.tasks", False)),  # src/ is a source root
    ({"server/polar/__init__.py": ""}, "server/polar/worker.py", ("polar.worker", False)),
    ({}, "deploy/k8s-config/x.py", ("x", False)),  # not importable by its path: the stem
    ({"__init__.py": "", "mayan/__init__.py": ""}, "mayan/celery.py", ("mayan.celery", False)),  # root not a package
])
def test_names(tmp_path, names, files, path, expected):
    write_project(tmp_path, {**files, path: ""})
    assert names.name(tmp_path / path) == expected


def test_aliases(tmp_path, names):
    write_project(tmp_path, {"server/polar/__init__.py": "", "server/polar/worker.py": "", "proj/tasks.py": ""})
    assert names.aliases(tmp_path / "server/polar/worker.py") == ("server.polar.worker",)
    assert names.aliases(tmp_path / "proj/tasks.py") == ()


def test_a_namespace_project_resolves_its_imports(tmp_path):
    """No __init__.py anywhere: tasks import the app as ``proj.celery``, settings are a
    ``from .base import *`` package, and messages name ``proj.tasks``, not ``tasks``."""
    write_project(tmp_path, {
        "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings.production")\n',
        "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n'
                          'app.config_from_object("django.conf:settings", namespace="CELERY")\n',
        "proj/settings/base.py": "CELERY_TASK_TIME_LIMIT = 120\n",
        "proj/settings/production.py": "from .base import *\n\nDEBUG = False\n",
        "proj/tasks.py": "from proj.celery import app\n\n@app.task\ndef one():\n    pass\n\n"
                         "@app.task(soft_time_limit=200)\ndef two():\n    pass\n",
    })
    project = make_linter(tmp_path).model()
    assert {t.name for t in project.tasks} == {"proj.tasks.one", "proj.tasks.two"}
    (app,) = project.apps
    assert app.settings["task_time_limit"].value == 120  # through the star import of a relative module
    assert all(t.norm["time_limit"].value == 120 for t in project.tasks)
    assert findings(tmp_path, ["QLT101"]) == []  # the limit reaches the tasks


def test_src_setting_adds_a_source_root(tmp_path):
    write_project(tmp_path, {
        "backend/app/celery.py": 'from celery import Celery\n\napp = Celery("app", task_time_limit=60)\n',
        "backend/app/tasks.py": "from app.celery import app\n\n@app.task\ndef one():\n    pass\n",
    })
    project = make_linter(tmp_path).model()
    assert [t.name for t in project.tasks] == []  # `app.celery` is not a module of this project's roots
    project = make_linter(tmp_path, src=[".", "backend"]).model()
    assert [t.name for t in project.tasks] == ["app.tasks.one"]
    assert project.tasks[0].norm["time_limit"].value == 60


def test_an_import_by_the_alias_resolves(tmp_path):
    write_project(tmp_path, {
        "server/polar/__init__.py": "",
        "server/polar/celery.py": 'from celery import Celery\n\napp = Celery("p", task_time_limit=30)\n',
        "server/jobs.py": "from server.polar.celery import app\n\n@app.task\ndef job():\n    pass\n",
    })
    project = make_linter(tmp_path).model()
    (task,) = project.tasks
    assert task.norm["time_limit"].value == 30
