"""RQ, django-rq, arq and Huey precision: which calls are RQ enqueues (QLT603 and every rule
reading enqueue sites), the queue default timeouts a job inherits (``Queue(default_timeout=...)``,
a subclass's ``DEFAULT_TIMEOUT``, django-rq's ``RQ_QUEUES[...]["DEFAULT_TIMEOUT"]``) as QLT101,
QLT105, QLT702 and ``qlint tasks`` see them, and what QLT502 does not call a broker setting."""

from __future__ import annotations

import math

import pytest

from qlint.lint.model import UNKNOWN
from tests.helpers import findings, make_linter, write_project

MODELS = """
from django.db import models

class Order(models.Model):
    pass
"""

SWALLOWING_JOB = """
from django_rq import job

@job("default")
def sync(order_id):
    try:
        pass
    except Exception:
        pass
    publish(order_id)
"""


def _found(tmp_path, files, code):
    write_project(tmp_path, files)
    return [(p, row, msg) for p, row, c, msg in findings(tmp_path, [code]) if c == code]


def _limits(tmp_path, files) -> dict[str, tuple]:
    """Each RQ task's effective limit as ``qlint tasks`` sees it: (seconds, where it comes from)."""
    write_project(tmp_path, files)
    project = make_linter(tmp_path, []).model()
    return {t.name: (t.norm["time_limit"].value, t.norm["time_limit"].source)
            for t in project.tasks if t.framework == "rq"}


# -- django-rq: RQ_QUEUES[name]["DEFAULT_TIMEOUT"] ----------------------------------------------------

def test_django_rq_queue_default_timeout_reaches_job_decorator_get_queue_and_enqueue(tmp_path):
    limits = _limits(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": """
RQ_QUEUES = {
    "default": {"HOST": "redis", "DEFAULT_TIMEOUT": 360},
    "low": {"HOST": "redis", "DEFAULT_TIMEOUT": "20m"},
    "high": {"HOST": "redis"},
}
""",
        "proj/jobs.py": """
import django_rq
from django_rq import get_queue, job

@job("default")
def on_default(n):
    pass

@job
def bare(n):
    pass

@job("high")
def on_high(n):
    pass

def on_low(n):
    pass

def via_enqueue(n):
    pass

def overridden(n):
    pass

def schedule():
    get_queue("low").enqueue(on_low, 1)
    django_rq.enqueue(via_enqueue, 2)
    get_queue("low", default_timeout=30).enqueue(overridden, 3)
""",
    })
    setting = "`RQ_QUEUES['default']['DEFAULT_TIMEOUT']` in `proj.settings`"
    assert limits["proj.jobs.on_default"] == (360, setting)
    assert limits["proj.jobs.bare"] == (360, setting)  # a bare ``@job`` is the "default" queue
    assert limits["proj.jobs.via_enqueue"] == (360, setting)  # ``get_queue().enqueue``
    assert limits["proj.jobs.on_low"] == (1200, "`RQ_QUEUES['low']['DEFAULT_TIMEOUT']` in `proj.settings`")
    assert limits["proj.jobs.on_high"] == (180, "default")  # no DEFAULT_TIMEOUT: RQ's own
    assert limits["proj.jobs.overridden"] == (30, "`get_queue(...)`")


def test_django_rq_queue_settings_through_a_name_and_its_update(tmp_path):
    """``RQ_QUEUES = {"default": PARAMS}`` with ``PARAMS.update({...})`` later in the module."""
    limits = _limits(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": """
import os

PARAMS = {"HOST": "redis", "DEFAULT_TIMEOUT": 60}
PARAMS.update({"DB": 1, "DEFAULT_TIMEOUT": int(os.environ.get("RQ_TIMEOUT", "900"))})
RQ_QUEUES = {"default": PARAMS, "low": PARAMS}
""",
        "proj/jobs.py": SWALLOWING_JOB,
    })
    value, source = limits["proj.jobs.sync"]
    assert value == 900 and "RQ_QUEUES['default']['DEFAULT_TIMEOUT']" in source


@pytest.mark.parametrize("settings,why", [
    ("", "not in the project's Django settings"),
    ("RQ_QUEUES = {'default': {'HOST': 'redis', **EXTRA}}\n", "cannot read"),
    ("RQ_QUEUES = {'default': {'HOST': 'redis'}}\nRQ_QUEUES.update(load_queues())\n", "cannot read"),
    ("RQ_QUEUES = {'default': {'DEFAULT_TIMEOUT': TIMEOUT}}\n", "RQ_QUEUES['default']['DEFAULT_TIMEOUT']"),
    ("RQ_QUEUES = {'low': {'DEFAULT_TIMEOUT': 60}}\n", "is not in `RQ_QUEUES`"),
])
def test_django_rq_queue_timeout_qlint_cannot_read_is_unknown_and_qlt105_stays_silent(tmp_path, settings, why):
    files = {"proj/__init__.py": "", "proj/settings.py": "DEBUG = False\n" + settings, "proj/jobs.py": SWALLOWING_JOB}
    value, source = _limits(tmp_path, files)["proj.jobs.sync"]
    assert value is UNKNOWN and why in source
    assert _found(tmp_path, files, "QLT105") == []


def test_django_rq_queue_timeout_in_qlt105_message(tmp_path):
    got = _found(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": "RQ_QUEUES = {'default': {'HOST': 'redis', 'DEFAULT_TIMEOUT': 360}}\n",
        "proj/jobs.py": SWALLOWING_JOB,
    }, "QLT105")
    assert [(p, row) for p, row, _ in got] == [("proj/jobs.py", 7)]
    assert "`timeout` of 360 s (`RQ_QUEUES['default']['DEFAULT_TIMEOUT']` in `proj.settings`)" in got[0][2]
    assert "180" not in got[0][2]


def test_django_rq_queue_timeout_decides_the_grace_period(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/settings.py": "RQ_QUEUES = {'default': {'HOST': 'redis', 'DEFAULT_TIMEOUT': 360}}\n",
        "proj/jobs.py": SWALLOWING_JOB,
        "docker-compose.yml": """
services:
  worker:
    image: app
    command: python manage.py rqworker default
    stop_grace_period: 200s
""",
    }
    got = _found(tmp_path, files, "QLT702")
    assert len(got) == 1 and "may run 360 s (`RQ_QUEUES['default']['DEFAULT_TIMEOUT']`" in got[0][2]
    files["proj/settings.py"] = "RQ_QUEUES = {'default': {'HOST': 'redis', 'DEFAULT_TIMEOUT': 120}}\n"
    assert _found(tmp_path, files, "QLT702") == []  # 200 s covers a 120 s job (RQ's 180 s would not count)


def test_django_rq_unbounded_queue_reported_once_where_it_is_set(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/settings.py": """
RQ_QUEUES = {
    "default": {"HOST": "redis"},
    "slow": {"HOST": "redis", "DEFAULT_TIMEOUT": -1},
}
""",
        "proj/jobs.py": """
from django_rq import job

@job("slow")
def export(n):
    pass

@job("slow")
def rebuild(n):
    pass

@job("default")
def ping(n):
    pass
""",
    }
    got = _found(tmp_path, files, "QLT101")
    assert [(p, row) for p, row, _ in got] == [("proj/settings.py", 3)]
    assert "2 RQ tasks (`proj.jobs.export`, `proj.jobs.rebuild`)" in got[0][2]


# -- plain RQ: the queue's own default ------------------------------------------------------------

def test_rq_queue_default_timeout_and_subclass_default_reach_enqueued_jobs(tmp_path):
    limits = _limits(tmp_path, {
        "app/__init__.py": "",
        "app/queues.py": """
from redis import Redis
from rq import Queue

class SlowQueue(Queue):
    DEFAULT_TIMEOUT = 1800

redis = Redis()
reports = Queue("reports", connection=redis, default_timeout="15m")
slow = SlowQueue("slow", connection=redis)
zero = Queue("zero", connection=redis, default_timeout=0)

def queue_for(name):
    return Queue(name, connection=redis, default_timeout=600)
""",
        "app/jobs.py": """
from rq.decorators import job
from app.queues import queue_for, redis, reports, slow, zero

def report(n):
    pass

def heavy(n):
    pass

def fallback(n):
    pass

def made(n):
    pass

def hidden(n):
    pass

def two_queues(n):
    pass

@job(reports)
def decorated(n):
    pass

def schedule(options):
    reports.enqueue(report, 1)
    slow.enqueue(heavy, 1)
    zero.enqueue(fallback, 1)
    queue_for("x").enqueue(made, 1)
    reports.enqueue(hidden, 1, **options)
    reports.enqueue(two_queues, 1)
    slow.enqueue(two_queues, 2, job_timeout=60)
""",
    })
    assert limits["app.jobs.report"] == (900, "`default_timeout` of `Queue(...)`")
    assert limits["app.jobs.decorated"] == (900, "`default_timeout` of `Queue(...)`")
    assert limits["app.jobs.heavy"] == (1800, "`SlowQueue.DEFAULT_TIMEOUT`")
    assert limits["app.jobs.fallback"] == (180, "default")  # ``parse_timeout(0) or DEFAULT_TIMEOUT``
    assert limits["app.jobs.made"] == (600, "`default_timeout` of `Queue(...)`")
    assert limits["app.jobs.hidden"][0] is UNKNOWN  # ``**options`` may carry ``job_timeout``
    assert limits["app.jobs.two_queues"][0] == 900  # the longer of 900 s (reports) and 60 s


def test_rq_job_on_an_unbounded_queue_is_covered_by_the_queue_finding(tmp_path):
    files = {"tasks.py": """
from redis import Redis
from rq import Queue

def export(n):
    pass

endless = Queue("endless", connection=Redis(), default_timeout=-1)

def later():
    endless.enqueue(export, 1)
"""}
    assert _limits(tmp_path, files)["tasks.export"][0] == math.inf
    assert [(p, row) for p, row, _ in _found(tmp_path, files, "QLT101")] == [("tasks.py", 7)]


# -- which calls are RQ enqueues ------------------------------------------------------------------

def test_project_enqueue_and_delay_methods_are_not_task_calls(tmp_path):
    """netbox's shape: a job model's ``enqueue`` classmethod that records a row and enqueues
    the job itself; a runner class forwarding to it; a model method named ``delay``."""
    got = _found(tmp_path, {
        "core/__init__.py": "",
        "core/models.py": MODELS + """
import django_rq

class Job(models.Model):
    @classmethod
    def enqueue(cls, func, instance=None, user=None, **kwargs):
        job = cls.objects.create(user=user)
        django_rq.get_queue("default").enqueue(func, job_id=job.pk, **kwargs)
        return job

    def delay(self, order):
        pass
""",
        "core/runner.py": """
from core.models import Job

class Runner:
    @classmethod
    def enqueue(cls, *args, **kwargs):
        return Job.enqueue(cls.handle, *args, **kwargs)

    @classmethod
    def handle(cls, job_id, job):
        pass
""",
        "core/celery.py": """
from celery import Celery

app = Celery("core")

@app.task
def notify(order_id):
    pass
""",
        "core/views.py": """
from django.shortcuts import get_object_or_404
from rq.job import Job as RQJob
from core.models import Job, Order
from core.runner import Runner

def sync(request, pk):
    order = get_object_or_404(Order, pk=pk)
    Runner.enqueue(instance=order, user=request.user)
    Job.enqueue(print, instance=order, user=request.user)
    Job.objects.get(pk=1).delay(order)
    return RQJob
""",
    }, "QLT603")
    assert got == []


RECEIVER_HEAD = """
from redis import Redis
from rq import Queue
from shop.models import Order

def notify(order):
    order.notified = True
    order.save()
"""


@pytest.mark.parametrize("body,reported", [
    ("def run(queue):\n    order = Order.objects.get(pk=1)\n    queue.enqueue(notify, order)\n", False),
    ("def run(queues):\n    order = Order.objects.get(pk=1)\n    for q in queues:\n"
     "        q.enqueue(notify, order)\n", False),
    ("def run(queue: Queue):\n    order = Order.objects.get(pk=1)\n    queue.enqueue(notify, order)\n", True),
    ("class Sender:\n    queue = Queue('mail', connection=Redis())\n\n    def run(self):\n"
     "        order = Order.objects.get(pk=1)\n        self.queue.enqueue(notify, order)\n", True),
    ("def run():\n    queue = Queue('mail', connection=Redis())\n    order = Order.objects.get(pk=1)\n"
     "    queue.enqueue(notify, order)\n", True),
], ids=["parameter", "loop-variable", "annotated-parameter", "class-attribute", "local-queue"])
def test_enqueue_receivers(tmp_path, body, reported):
    source = RECEIVER_HEAD.lstrip("\n") + "\n" + body
    row = source.splitlines().index(next(line for line in source.splitlines() if ".enqueue(" in line)) + 1
    got = _found(tmp_path, {"shop/__init__.py": "", "shop/models.py": MODELS, "shop/send.py": source}, "QLT603")
    assert [r for _, r, _ in got] == ([row] if reported else [])


# -- QLT502: what is not a broker or worker setting ---------------------------------------------------

def test_arq_protocol_is_not_worker_settings_but_a_class_deriving_from_it_is(tmp_path):
    got = _found(tmp_path, {
        "app/__init__.py": "",
        "app/worker.py": """
import typing

from arq import cron

async def nightly(ctx):
    pass

class HasJobs(typing.Protocol):
    cron_jobs: list = [cron(nightly, hour=3)]

class Settings(HasJobs):
    cron_jobs = [cron(nightly, hour=3)]
""",
    }, "QLT502")
    assert [row for _, row, _ in got] == [11]


def test_queue_handed_on_or_enqueued_through_is_still_reported(tmp_path):
    got = _found(tmp_path, {"tasks.py": """
from redis import Redis
from rq import Queue

def make(connection: Redis):
    queue = Queue("default", connection=connection)
    queue.ping = None
    return queue

def depth_then_use(connection: Redis, register):
    queue = Queue("low", connection=connection)
    register(queue.count, queue)
"""}, "QLT502")
    assert [row for _, row, _ in got] == [5, 10]


def test_huey_task_messages_say_pickle_unless_the_instance_serializes_otherwise(tmp_path):
    files = {
        "shop/__init__.py": "",
        "shop/models.py": MODELS,
        "shop/tasks.py": """
from huey import RedisHuey
from huey.serializer import Serializer
from shop.models import Order

huey = RedisHuey("shop")
signed = RedisHuey("signed", serializer=Serializer(compression=True))
local = RedisHuey("local", immediate=True)

@huey.task()
def receipt(order: Order):
    order.save()

@signed.task()
def invoice(order: Order):
    pass

@local.task()
def refund(order: Order):
    pass

@huey.task()
def export(order: Order):
    render(order)
""",
    }
    got = {row: msg for _, row, msg in _found(tmp_path, files, "QLT603")}
    assert "pickle ships a copy of the row" in got[10]
    assert "a JSON serializer cannot encode it" in got[14]  # a serializer qlint does not know
    assert "pickle ships" not in got[18]  # immediate mode calls the task in place: no copy is made
    assert 22 not in got  # pickle, and the task only reads its copy


def test_an_enqueued_function_is_listed_on_the_queue_it_is_enqueued_on(tmp_path):
    write_project(tmp_path, {"tasks.py": """
from django_rq import get_queue
from redis import Redis
from rq import Queue

def report(n):
    pass

def either(n):
    pass

reports = Queue("reports", connection=Redis())

def schedule(name):
    reports.enqueue(report, 1)
    get_queue("low").enqueue(report, 2, job_timeout=10)
    reports.enqueue(either, 1)
    get_queue(name).enqueue(either, 2)
"""})
    project = make_linter(tmp_path, []).model()
    queues = {t.name: t.options["queue"] for t in project.tasks}
    assert queues["tasks.report"].value is UNKNOWN  # "reports" and "low"
    assert queues["tasks.either"].value is UNKNOWN
    write_project(tmp_path, {"tasks.py": """
from redis import Redis
from rq import Queue

def report(n):
    pass

reports = Queue("reports", connection=Redis())

def schedule():
    reports.enqueue(report, 1)
    Queue(name="reports", connection=Redis()).enqueue(report, 2)
"""})
    project = make_linter(tmp_path, []).model()
    assert [(t.name, t.options["queue"].value) for t in project.tasks] == [("tasks.report", "reports")]


def test_django_rq_settings_split_across_modules(tmp_path):
    """``prod.py`` star-imports ``base.py`` and overrides ``RQ_QUEUES``: prod's counts. Two sibling
    modules that both set it (dev and prod): which one runs is a deployment choice, unknown here."""
    files = {
        "proj/__init__.py": "",
        "proj/settings/__init__.py": "",
        "proj/settings/base.py": "RQ_QUEUES = {'default': {'HOST': 'redis', 'DEFAULT_TIMEOUT': 60}}\n",
        "proj/settings/prod.py": "from .base import *\n\nRQ_QUEUES = {'default': {'DEFAULT_TIMEOUT': 900}}\n",
        "proj/jobs.py": SWALLOWING_JOB,
    }
    value, source = _limits(tmp_path, files)["proj.jobs.sync"]
    assert value == 900 and "`proj.settings.prod`" in source
    files["proj/settings/dev.py"] = "from .base import *\n\nRQ_QUEUES = {'default': {'DEFAULT_TIMEOUT': 30}}\n"
    value, source = _limits(tmp_path, files)["proj.jobs.sync"]
    assert value is UNKNOWN and "several settings modules" in source
