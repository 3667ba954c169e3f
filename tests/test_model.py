"""The project model: module names, apps, tasks and their options, as Celery sees them."""

from __future__ import annotations

from qlint.frameworks import celery
from qlint.lint.extract import module_name
from tests.helpers import findings, make_linter, write_project


def _project(tmp_path, files):
    write_project(tmp_path, files)
    linter = make_linter(tmp_path, ["QLT101"])
    project = linter._project()
    celery.collect(project)
    return project


def test_namespace_folder_inside_a_package(tmp_path):
    write_project(tmp_path, {"proj/__init__.py": "", "proj/sub/tasks.py": "x = 1\n", "loose.py": ""})
    assert module_name(tmp_path / "proj/sub/tasks.py") == ("proj.sub.tasks", False)
    assert module_name(tmp_path / "proj/__init__.py") == ("proj", True)
    assert module_name(tmp_path / "loose.py")[0] == "loose"


def test_task_in_namespace_folder_resolves_its_base(tmp_path):
    project = _project(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": "from celery import Celery\napp = Celery('proj')\n",
        "proj/sub/base.py": "from celery import Task\nclass Limited(Task):\n    time_limit = 60\n",
        "proj/sub/tasks.py": "from proj.celery import app\nfrom proj.sub.base import Limited\n\n"
                             "@app.task(base=Limited)\ndef work():\n    pass\n",
    })
    (task,) = project.tasks
    assert task.name == "proj.sub.tasks.work"
    assert task.option("time_limit").value == 60


def test_app_from_factory_is_found_and_its_config_is_unknown(tmp_path):
    project = _project(tmp_path, {
        "proj/__init__.py": "",
        "proj/worker.py": "from celery import Celery\n\ndef make():\n    c = Celery('proj')\n    return c\n\n"
                          "app = make()\n",
        "proj/tasks.py": "from proj.worker import app\n\n@app.task(max_retries=None)\ndef work():\n    pass\n",
    })
    assert [a.qualified for a in project.apps] == ["proj.worker.app"]
    assert not project.apps[0].config_complete
    assert [t.name for t in project.tasks] == ["proj.tasks.work"]


def test_factory_app_tasks_get_the_other_rules(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/worker.py": "from celery import Celery\n\ndef make():\n    return Celery('proj')\n\napp = make()\n",
        "proj/tasks.py": "from proj.worker import app\n\n@app.task(max_retries=None)\ndef work():\n    pass\n",
    })
    codes = {c for _, _, c, _ in findings(tmp_path)}
    assert codes == {"QLT201"}


def test_explicit_none_takes_the_app_setting(tmp_path):
    project = _project(tmp_path, {
        "tasks.py": "from celery import Celery\napp = Celery('p')\napp.conf.task_time_limit = 600\n\n"
                    "@app.task(time_limit=None)\ndef work():\n    pass\n",
    })
    (task,) = project.tasks
    assert task.option("time_limit").value == 600
    assert task.option("time_limit").source == "setting task_time_limit"


def test_external_base_makes_options_opaque(tmp_path):
    project = _project(tmp_path, {
        "tasks.py": "from celery import Celery\nfrom lib import Base\napp = Celery('p')\n\n"
                    "@app.task(base=Base)\ndef work():\n    pass\n",
    })
    (task,) = project.tasks
    assert "outside the project" in task.opaque
