"""QLT102, QLT201, QLT203 beyond their embedded examples: levels, sources, settings."""

from __future__ import annotations

from tests.helpers import findings, fix, norm, write_project


def _run(tmp_path, files, code, **settings):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code], **settings) if c == code]


def _fixed(tmp_path, code, **settings):
    outcome = fix(tmp_path, [code], **settings)
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


APP = """
from celery import Celery

app = Celery("proj")
"""


# -- QLT102 ---------------------------------------------------------------------------

def test_qlt102_decorator_and_base_class_are_different_levels(tmp_path):
    files = {"tasks.py": """
from celery import Celery, Task

app = Celery("proj")

class Limited(Task):
    time_limit = 60

@app.task(base=Limited, soft_time_limit=120)
def resize(image_id):
    pass
"""}
    assert _run(tmp_path, files, "QLT102") == []


def test_qlt102_wrapper_defaults_reported_in_wrapper_file(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP,
        "proj/decorators.py": """
from functools import partial
from celery import shared_task

limited_task = partial(shared_task, time_limit=100, soft_time_limit=100)
""",
        "proj/tasks.py": """
from proj.decorators import limited_task

@limited_task
def one():
    pass

@limited_task(bind=True)
def two(self):
    pass
""",
    }
    got = _run(tmp_path, files, "QLT102")
    assert [(p, r) for p, r, _ in got] == [("proj/decorators.py", 4)]
    assert "limited_task" in got[0][2]
    assert _fixed(tmp_path, "QLT102") == {"proj/decorators.py": norm("""
from functools import partial
from celery import shared_task

limited_task = partial(shared_task, time_limit=100, soft_time_limit=70)
""")}


def test_qlt102_wrapper_soft_and_decorator_hard_not_compared(tmp_path):
    files = {"tasks.py": """
from functools import partial
from celery import Celery, shared_task

app = Celery("proj")
limited_task = partial(shared_task, soft_time_limit=600)

@limited_task(time_limit=300)
def one():
    pass
"""}
    assert _run(tmp_path, files, "QLT102") == []


def test_qlt102_conf_update_dict_reported_at_entry(tmp_path):
    files = {"celeryconf.py": """
from celery import Celery

app = Celery("proj")
app.conf.update({
    "task_soft_time_limit": 600,
    "task_time_limit": 300,
})
"""}
    got = _run(tmp_path, files, "QLT102")
    assert [(p, r) for p, r, _ in got] == [("celeryconf.py", 5)]
    assert "`task_soft_time_limit=600` is not below `task_time_limit=300`" in got[0][2]
    assert _fixed(tmp_path, "QLT102")["celeryconf.py"].splitlines()[4] == '    "task_soft_time_limit": 270,'


def test_qlt102_config_last_write_wins(tmp_path):
    files = {"celeryconf.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 300
app.conf.task_soft_time_limit = 400
app.conf.task_soft_time_limit = 200
"""}
    assert _run(tmp_path, files, "QLT102") == []
    files["celeryconf.py"] = files["celeryconf.py"].replace("= 200", "= 500")
    assert [(p, r) for p, r, _ in _run(tmp_path, files, "QLT102")] == [("celeryconf.py", 6)]


def test_qlt102_env_default_reported_without_fix(tmp_path):
    files = {"celeryconf.py": """
import os
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 300
app.conf.task_soft_time_limit = int(os.environ.get("SOFT_LIMIT", "300"))
"""}
    got = _run(tmp_path, files, "QLT102")
    assert [(p, r) for p, r, _ in got] == [("celeryconf.py", 6)]
    assert "SOFT_LIMIT" in got[0][2]
    assert _fixed(tmp_path, "QLT102") == {}


def test_qlt102_env_without_default_and_no_hard_limit_are_silent(tmp_path):
    files = {"celeryconf.py": """
import os
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = int(os.environ["HARD"])
app.conf.task_soft_time_limit = 300

@app.task(time_limit=None, soft_time_limit=300)
def export():
    pass
"""}
    assert _run(tmp_path, files, "QLT102") == []


def test_qlt102_small_hard_limit_fix(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=20, soft_time_limit=25)
def ping():
    pass
"""}
    assert len(_run(tmp_path, files, "QLT102")) == 1
    fixed = _fixed(tmp_path, "QLT102")["tasks.py"]
    assert "time_limit=20, soft_time_limit=18" in fixed


# -- QLT201 ---------------------------------------------------------------------------

def test_qlt201_fix_uses_max_retries_setting(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(max_retries=None)
def notify(user_id):
    pass
"""}
    assert [(p, r) for p, r, _ in _run(tmp_path, files, "QLT201", max_retries=7)] == [("tasks.py", 5)]
    assert "@app.task(max_retries=7)" in _fixed(tmp_path, "QLT201", max_retries=7)["tasks.py"]


def test_qlt201_named_none_reported_without_fix(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP,
        "proj/constants.py": "FOREVER = None\n",
        "proj/tasks.py": """
from proj.celery import app
from proj.constants import FOREVER

@app.task(max_retries=FOREVER)
def notify(user_id):
    pass
""",
    }
    assert [(p, r) for p, r, _ in _run(tmp_path, files, "QLT201")] == [("proj/tasks.py", 4)]
    assert _fixed(tmp_path, "QLT201") == {}


def test_qlt201_decorator_overrides_wrapper_none(tmp_path):
    files = {"tasks.py": """
from functools import partial
from celery import Celery, shared_task

app = Celery("proj")
task = partial(shared_task, max_retries=None)

@task(max_retries=5)
def one():
    pass
"""}
    assert _run(tmp_path, files, "QLT201") == []


def test_qlt201_not_retry_calls_and_dramatiq_actor_counts(tmp_path):
    """``None`` in ``retry_kwargs`` and ``self.retry()`` means "the task's bound"; a Dramatiq actor's is unbounded."""
    files = {"tasks.py": """
import dramatiq
from celery import Celery

app = Celery("proj")

@dramatiq.actor(max_retries=None)
def one():
    pass

@app.task(bind=True, autoretry_for=(OSError,), retry_kwargs={"max_retries": None})
def two(self):
    self.retry(max_retries=None)
"""}
    assert [row for _, row, *_ in _run(tmp_path, files, "QLT201")] == [6]


# -- QLT203 ---------------------------------------------------------------------------

def test_qlt203_alias_in_another_module(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": APP,
        "proj/errors.py": "Anything = Exception\nRETRY_ON = (Anything,)\n",
        "proj/tasks.py": """
from proj.celery import app
from proj.errors import RETRY_ON, Anything

@app.task(autoretry_for=RETRY_ON)
def one():
    pass

@app.task(autoretry_for=(Anything,))
def two():
    pass
""",
    }
    got = _run(tmp_path, files, "QLT203")
    assert sorted((p, r) for p, r, _ in got) == [("proj/tasks.py", 4), ("proj/tasks.py", 8)]


def test_qlt203_unknown_dont_autoretry_for_exempts(tmp_path):
    files = {"tasks.py": """
from celery import Celery
from outside import DETERMINISTIC

app = Celery("proj")

@app.task(autoretry_for=(Exception,), dont_autoretry_for=DETERMINISTIC)
def one():
    pass
"""}
    assert _run(tmp_path, files, "QLT203") == []


def test_qlt203_base_class_exempted_only_for_some_tasks(tmp_path):
    files = {"tasks.py": """
from celery import Celery, Task

app = Celery("proj")

class Resilient(Task):
    autoretry_for = (Exception,)

@app.task(base=Resilient, dont_autoretry_for=(KeyError,))
def exempt():
    pass
"""}
    assert _run(tmp_path, files, "QLT203") == []
    files["tasks.py"] += """
@app.task(base=Resilient, max_retries=None)
def forever():
    pass
"""
    got = _run(tmp_path, files, "QLT203")
    assert [(p, r) for p, r, _ in got] == [("tasks.py", 6)]
    assert "forever" in got[0][2]


def test_qlt203_no_fix(tmp_path):
    files = {"tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(BaseException,))
def one():
    pass
"""}
    assert len(_run(tmp_path, files, "QLT203")) == 1
    assert _fixed(tmp_path, "QLT203") == {}
