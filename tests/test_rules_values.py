"""Edge cases beyond the embedded examples: QLT103, QLT104, QLT107, QLT306."""

from __future__ import annotations

from tests.helpers import findings, fix, write_project


def _found(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code]) if c == code]


def _fixed(tmp_path, files, code):
    write_project(tmp_path, files)
    outcome = fix(tmp_path, [code])
    return {str(p).replace(str(tmp_path) + "/", ""): s.text for p, s in outcome.fixed.items()}


WRAPPERS = {
    "proj/__init__.py": "",
    "proj/app.py": """
import dramatiq
from huey import RedisHuey

huey = RedisHuey("app")
limited = huey.task(timeout=-5)
fast_actor = dramatiq.actor(time_limit=30, on_failure="gone")
""",
    "proj/tasks.py": """
from proj.app import fast_actor, limited

@limited
def a():
    pass

@limited
def b():
    pass

@fast_actor
def c():
    pass

@fast_actor
def d():
    pass
""",
}


# -- QLT103 ----------------------------------------------------------------------------

def test_qlt103_pool_from_django_settings_and_limit_from_a_base_class(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")

class Bounded(Task):
    time_limit = 120
""",
        "proj/settings.py": """
CELERY_WORKER_POOL = "solo"
""",
        "proj/tasks.py": """
from proj.celery import app, Bounded

@app.task(base=Bounded)
def a():
    pass

@app.task(base=Bounded)
def b():
    pass
""",
    }
    got = _found(tmp_path, files, "QLT103")
    assert [(p, row) for p, row, _ in got] == [("proj/celery.py", 7)]
    assert "`solo` pool" in got[0][2]


def test_qlt103_no_limit_values_and_prefork_are_silent(tmp_path):
    files = {"tasks.py": """
from celery import Celery
from taskiq import InMemoryBroker

app = Celery("proj")
app.conf.worker_pool = "threads"
broker = InMemoryBroker()

@app.task(time_limit=0, soft_time_limit=None)
def a():
    pass

@broker.task(timeout=None)
def b():
    pass
"""}
    assert _found(tmp_path, files, "QLT103") == []


# -- QLT104 ----------------------------------------------------------------------------

def test_qlt104_wrapper_defaults_are_reported_and_fixed_once_where_written(tmp_path):
    got = _found(tmp_path, WRAPPERS, "QLT104")
    assert [(p, row) for p, row, _ in got] == [("proj/app.py", 6)]
    fixed = _fixed(tmp_path, WRAPPERS, "QLT104")
    assert list(fixed) == ["proj/app.py"]
    assert 'dramatiq.actor(time_limit=30000, on_failure="gone")' in fixed["proj/app.py"]


def test_qlt104_boundaries_and_literal_kinds(tmp_path):
    files = {"tasks.py": """
import dramatiq

@dramatiq.actor(time_limit=1000, min_backoff=True, max_backoff=999, max_age=1.5)
def a():
    pass
"""}
    got = _found(tmp_path, files, "QLT104")
    assert len(got) == 2 and all(row == 3 for _, row, _ in got)
    fixed = _fixed(tmp_path, files, "QLT104")["tasks.py"]
    assert "@dramatiq.actor(time_limit=1000, min_backoff=True, max_backoff=999000, max_age=1500)" in fixed


def test_qlt104_celery_memory_thresholds_and_environment_defaults(tmp_path):
    files = {"tasks.py": """
import os

from celery import Celery

app = Celery("proj")
app.conf.worker_max_memory_per_child = 20_000
app.conf.worker_max_memory_per_child = 100_000_000
app.conf.worker_max_memory_per_child = 100_000_001
app.conf.worker_max_memory_per_child = int(os.environ.get("MAX_MEM", "19999"))
"""}
    got = _found(tmp_path, files, "QLT104")
    assert [row for _, row, _ in got] == [8, 9]
    assert "environment variable MAX_MEM" in got[1][2]
    assert _fixed(tmp_path, files, "QLT104") == {}


def test_qlt104_memory_setting_of_a_non_celery_project_is_ignored(tmp_path):
    files = {"tasks.py": """
import dramatiq

worker_max_memory_per_child = 512

@dramatiq.actor(max_retries=3)
def a():
    pass
"""}
    assert _found(tmp_path, files, "QLT104") == []


# -- QLT107 ----------------------------------------------------------------------------

def test_qlt107_wrapper_default_is_reported_once_in_the_wrapper_module(tmp_path):
    got = _found(tmp_path, WRAPPERS, "QLT107")
    assert [(p, row) for p, row, _ in got] == [("proj/app.py", 5)]
    assert "`timeout=-5`" in got[0][2]


def test_qlt107_rq_minus_one_and_duration_strings_are_not_invalid(tmp_path):
    files = {"tasks.py": """
from redis import Redis
from rq import Queue

def job(x):
    pass

queue = Queue(connection=Redis(), default_timeout=0)
queue.enqueue(job, 1, job_timeout=-1)
queue.enqueue(job, 2, job_timeout="2h")
queue.enqueue_in(60, job, 3, job_timeout="90s")
"""}
    assert _found(tmp_path, files, "QLT107") == []


# -- QLT306 ----------------------------------------------------------------------------

def test_qlt306_wrapper_default_reported_once_without_a_guess_when_nothing_is_close(tmp_path):
    got = _found(tmp_path, WRAPPERS, "QLT306")
    assert [(p, row) for p, row, _ in got] == [("proj/app.py", 6)]
    assert "did you mean" not in got[0][2]


def test_qlt306_a_module_constant_holding_the_name_is_judged(tmp_path):
    files = {"tasks.py": """
import dramatiq

HANDLER = "report_failure"
TYPO = "report_failur"

@dramatiq.actor(on_failure=HANDLER)
def a():
    pass

@dramatiq.actor(on_retry_exhausted=TYPO)
def report_failure(message_data, info):
    pass
"""}
    got = _found(tmp_path, files, "QLT306")
    assert [row for _, row, _ in got] == [10]
    assert "did you mean `report_failure`" in got[0][2]
