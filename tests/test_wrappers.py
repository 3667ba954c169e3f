"""Reach (RULES.md principle 5): a task is a task however the project declares it — aliases,
partials, called wrappers, decorator factories, plain wrapper functions, across modules and
several levels — with the options each level passes; near misses are not tasks."""

from __future__ import annotations

import pytest

from qlint.lint.model import UNKNOWN
from tests.helpers import findings, make_linter, write_project

POLAR_LIKE = {
    "proj/__init__.py": "",
    "proj/worker.py": """
import functools
import dramatiq
from dramatiq import actor as _actor


def actor(actor_class=dramatiq.Actor, actor_name=None, queue_name=None, priority=0, **options):
    if queue_name is None:
        queue_name = "low" if priority == 0 else "high"

    def decorator(fn):
        @functools.wraps(fn)
        async def _wrapped_fn(*args, **kwargs):
            return await fn(*args, **kwargs)

        _actor(_wrapped_fn, actor_class=actor_class, actor_name=actor_name, queue_name=queue_name,
               priority=priority, **options)
        return _wrapped_fn

    return decorator
""",
    # Spells neither dramatiq nor any framework token: found through the factory's name.
    "proj/billing/tasks.py": """
from proj.worker import actor


@actor(actor_name="billing.charge", priority=5, max_retries=3, time_limit=60_000)
async def charge(order_id):
    pass


@actor(actor_name="billing.refund")
async def refund(order_id):
    pass
""",
}


def _tasks(tmp_path, files, **settings):
    write_project(tmp_path, files)
    return {t.name: t for t in make_linter(tmp_path, **settings).model().tasks}


def test_factory_returning_a_decorator_that_applies_the_framework_to_a_wrapper(tmp_path):
    tasks = _tasks(tmp_path, POLAR_LIKE)
    assert set(tasks) == {"billing.charge", "billing.refund"}
    charge, refund = tasks["billing.charge"], tasks["billing.refund"]
    assert charge.declared_by == ["proj.worker.actor", "dramatiq.actor"]
    assert charge.options["priority"].value == 5 and charge.options["priority"].source == "decorator"
    assert refund.options["priority"].value == 0 and refund.options["priority"].source == "wrapper proj.worker.actor"
    # passed on through **options, from the use
    assert charge.options["max_retries"].value == 3
    assert charge.norm["time_limit"].value == 60
    assert "max_retries" not in refund.options
    # a parameter the factory computes in its body is unknown, not its default
    assert charge.options["queue_name"].value is UNKNOWN
    assert charge.accepts_options  # **options reaches dramatiq.actor: a fix may add options at the use
    assert charge.is_async


def test_prefilter_finds_tasks_through_the_factory_name(tmp_path):
    write_project(tmp_path, POLAR_LIKE)
    on = {t.name for t in make_linter(tmp_path).model().tasks}
    off = {t.name for t in make_linter(tmp_path, use_prefilter=False).model().tasks}
    assert on == off == {"billing.charge", "billing.refund"}


@pytest.mark.parametrize("wrapper,use,expected", [
    # a plain function used as a decorator, currying the framework's decorator
    ("def background(fn):\n    return app.task(bind=True, acks_late=True)(fn)\n", "@background",
     {"bind": True, "acks_late": True}),
    # the same, the function passed as the first argument
    ("def background(fn):\n    return app.task(fn, acks_late=True)\n", "@background", {"acks_late": True}),
    # a factory with defaults of its own and **options passed on
    ("def job(retries=5, **kw):\n    def deco(fn):\n        return app.task(fn, max_retries=retries, **kw)\n"
     "    return deco\n", "@job(time_limit=60)", {"max_retries": 5, "time_limit": 60}),
    # a factory whose parameter the use sets
    ("def job(retries=5, **kw):\n    def deco(fn):\n        return app.task(fn, max_retries=retries, **kw)\n"
     "    return deco\n", "@job(retries=1)", {"max_retries": 1}),
    # a factory returning the decorator's call (the shape qlint followed before)
    ("def job(**kw):\n    return app.task(acks_late=True, **kw)\n", "@job(time_limit=60)",
     {"acks_late": True, "time_limit": 60}),
    # the framework's decorator on a nested wrapper inside the factory
    ("import functools\n\ndef job(**kw):\n    def deco(fn):\n        @app.task(**kw)\n"
     "        @functools.wraps(fn)\n        def run(*a):\n            return fn(*a)\n        return run\n"
     "    return deco\n", "@job(time_limit=60)", {"time_limit": 60}),
])
def test_wrapper_shapes(tmp_path, wrapper, use, expected):
    tasks = _tasks(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/wrappers.py": "from proj.celery import app\n\n" + wrapper,
        "proj/tasks.py": f"from proj.wrappers import *\n\n{use}\ndef work(x):\n    pass\n",
    })
    (task,) = tasks.values()
    assert task.apps and task.apps[0].qualified == "proj.celery.app"
    assert {k: v.value for k, v in task.options.items()} == expected
    assert task.declared_by[-1] == "proj.celery.app.task"


def test_alias_and_several_levels(tmp_path):
    tasks = _tasks(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": 'from celery import Celery, shared_task\n\napp = Celery("proj")\n'
                          "project_task = shared_task\n",
        "proj/base.py": "import functools\nfrom proj.celery import project_task\n\n"
                        "retrying = functools.partial(project_task, max_retries=7)\n\n"
                        "def limited(**kw):\n    return retrying(time_limit=30, **kw)\n",
        "proj/tasks.py": "from proj.celery import project_task\nfrom proj.base import limited\n\n"
                         "@project_task(bind=True)\ndef a(self):\n    pass\n\n"
                         "@limited(acks_late=True)\ndef b():\n    pass\n",
    })
    assert tasks["proj.tasks.a"].options["bind"].value is True
    b = tasks["proj.tasks.b"]
    assert {k: v.value for k, v in b.options.items()} == {"max_retries": 7, "time_limit": 30, "acks_late": True}
    assert b.declared_by == ["proj.base.limited", "proj.base.retrying", "proj.celery.project_task",
                             "celery.shared_task"]


@pytest.mark.parametrize("wrapper", [
    # takes a function, decorates something else
    "def deco(fn):\n    app.task(other)\n    return fn\n\ndef other():\n    pass\n",
    # takes a function, registers it somewhere that is no framework
    "REGISTRY = []\n\ndef deco(fn):\n    REGISTRY.append(fn)\n    return fn\n",
    # a timing wrapper
    "import functools\n\ndef deco(fn):\n    @functools.wraps(fn)\n    def run(*a):\n        return fn(*a)\n"
    "    return run\n",
    # a factory whose decorator only logs
    "def deco(**kw):\n    def inner(fn):\n        print(fn, kw)\n        return fn\n    return inner\n",
])
def test_near_misses_are_not_tasks(tmp_path, wrapper):
    use = "@deco(x=1)" if "**kw" in wrapper else "@deco"
    tasks = _tasks(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/wrappers.py": "from proj.celery import app\n\n" + wrapper,
        "proj/tasks.py": f"from proj.wrappers import deco\n\n{use}\ndef work(x):\n    pass\n",
    })
    assert "proj.tasks.work" not in tasks


def test_options_the_use_cannot_see_are_unknown(tmp_path):
    """``@job(**settings)`` at the use, or ``**`` of something else than the factory's own
    options inside it: the task's options are hidden, and absence rules stay silent."""
    files = {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/wrappers.py": "from proj.celery import app\nfrom proj.conf import DEFAULTS\n\n"
                            "def job(**kw):\n    def deco(fn):\n        return app.task(fn, **DEFAULTS)\n"
                            "    return deco\n",
        "proj/tasks.py": "from proj.wrappers import job\n\n@job()\ndef a():\n    pass\n\n@job()\ndef b():\n    pass\n",
    }
    tasks = _tasks(tmp_path, files)
    assert all(t.options_hidden for t in tasks.values())
    assert findings(tmp_path, ["QLT101"]) == []


def test_qlt101_through_a_factory(tmp_path):
    """Reach shows in the rules: the two factory tasks without a limit are reported once on the app."""
    write_project(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/wrappers.py": "from proj.celery import app\n\n"
                            "def job(**kw):\n    def deco(fn):\n        return app.task(fn, **kw)\n    return deco\n",
        "proj/tasks.py": "from proj.wrappers import job\n\n@job()\ndef a():\n    pass\n\n@job(acks_late=True)\n"
                         "def b():\n    pass\n",
    })
    ((path, row, _, msg),) = findings(tmp_path, ["QLT101"])
    assert (path, row) == ("proj/celery.py", 3) and "all 2 of its tasks" in msg


def test_a_class_used_as_a_decorator_factory(tmp_path):
    """``@retryable_task(name=..., max_retries=10)``: the class keeps the options and its
    ``__call__`` applies ``shared_task(**self.kwargs)`` to a wrapper of the function."""
    tasks = _tasks(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/retry.py": """
from functools import wraps
from celery import shared_task


class retryable_task:
    def __init__(self, *args, **kwargs):
        self.task_args = args
        self.task_kwargs = kwargs

    def __call__(self, f):
        @wraps(f)
        def inner(*args, **kwargs):
            return f(*args, **kwargs)

        task_func = shared_task(*self.task_args, **self.task_kwargs)(inner)
        return task_func
""",
        "proj/tasks.py": "from proj.retry import retryable_task\n\n"
                         "@retryable_task(name='store-pulse', max_retries=10)\ndef store(x):\n    pass\n",
    })
    (task,) = tasks.values()
    assert task.name == "store-pulse"
    assert task.options["max_retries"].value == 10
    assert task.declared_by == ["proj.retry.retryable_task", "celery.shared_task"]
    assert task.accepts_options


# -- apps reached only by name --------------------------------------------------------------

@pytest.mark.parametrize("construction", [
    "from django.utils.module_loading import import_string\nfrom proj.conf import CELERY_CLASS\n\n"
    "celery_class = import_string(CELERY_CLASS)\napp = celery_class('proj')\n",
    "from platformlib.celery import make_celery\n\napp = make_celery('proj')\n",
])
def test_an_app_whose_class_cannot_be_read_is_known_by_its_use(tmp_path, construction):
    tasks = _tasks(tmp_path, {
        "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
        "proj/__init__.py": "", "proj/conf.py": "CELERY_CLASS = 'celery.Celery'\n",
        "proj/celery.py": construction + "app.config_from_object('django.conf:settings', namespace='CELERY')\n"
                                         "app.autodiscover_tasks()\n",
        "proj/settings.py": "CELERY_TASK_TIME_LIMIT = 90\n",
        "proj/tasks.py": "from proj.celery import app\n\n@app.task\ndef one():\n    pass\n",
    })
    (task,) = tasks.values()
    assert [a.qualified for a in task.apps] == ["proj.celery.app"]
    assert task.norm["time_limit"].value == 90  # its configuration is read as usual


def test_an_object_with_a_task_method_alone_is_no_celery_app(tmp_path):
    """``.task`` is also Huey's and Taskiq's: only Celery's own methods (config_from_object,
    autodiscover_tasks, ``.conf``) make an unresolvable object an app."""
    tasks = _tasks(tmp_path, {
        "proj/__init__.py": "",
        "proj/queue.py": "from platformlib import build_queue\n\nq = build_queue('proj')\n",
        "proj/tasks.py": "from proj.queue import q\n\n@q.task()\ndef one():\n    pass\n",
    })
    assert tasks == {}


# -- call sites in modules that never name the framework -------------------------------------

def test_sends_are_found_where_the_actor_is_imported_from_the_project(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/billing.py": "import dramatiq\n\n@dramatiq.actor\ndef charge(order_id):\n    pass\n",
        # no framework token anywhere: reached because it calls `charge.send_with_options(`
        "proj/views.py": "from proj.billing import charge\n\n\ndef pay(order):\n"
                         "    charge.send_with_options(args=(order.id,), time_limit=-5)\n",
        # spells the name but calls no enqueue method: not parsed for it
        "proj/admin.py": "from proj.billing import charge\n\nLABEL = charge.__name__\n",
    }
    write_project(tmp_path, files)
    linter = make_linter(tmp_path)
    project = linter.model()
    assert [(s.file.module, s.call.method) for s in project.sites if s.kind == "enqueue"] == [
        ("proj.views", "send_with_options")]
    assert not any(k.endswith("admin.py") for k in linter.facts)
    off = make_linter(tmp_path, use_prefilter=False).model()
    assert [s.file.module for s in off.sites if s.kind == "enqueue"] == ["proj.views"]
    assert [(p, c) for p, _, c, _ in findings(tmp_path, ["QLT107"])] == [("proj/views.py", "QLT107")]


def test_celery_delay_of_a_task_without_task_in_its_name(tmp_path):
    write_project(tmp_path, {
        "proj/__init__.py": "", "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
        "proj/jobs.py": "from proj.celery import app\n\n@app.task\ndef charge(order_id):\n    pass\n",
        "proj/views.py": "from django.db import transaction\nfrom proj.jobs import charge\n\n\n"
                         "@transaction.atomic\ndef pay(order):\n    charge.delay(order.id)\n",
    })
    assert [(p, c) for p, _, c, _ in findings(tmp_path, ["QLT602"])] == [("proj/views.py", "QLT602")]


def test_qlint_tasks_shows_the_declaring_chain_and_hidden_values(tmp_path, capsys):
    from qlint.cli import main

    files = dict(POLAR_LIKE)
    files["proj/other.py"] = ("import dramatiq\nfrom proj.conf import OPTS\n\n"
                              "@dramatiq.actor(**OPTS)\ndef hidden(x):\n    pass\n")
    files["proj/conf.py"] = "OPTS = load()\n"
    write_project(tmp_path, files)
    assert main(["tasks", str(tmp_path), "--no-cache", "--output-format", "json"]) == 0
    rows = {r["name"]: r for r in __import__("json").loads(capsys.readouterr().out)}
    assert rows["billing.charge"]["declared_by"] == ["proj.worker.actor", "dramatiq.actor"]
    assert rows["billing.refund"]["time_limit"]["value"] == 600.0  # nothing may override the default
    assert rows["hidden"]["time_limit"] == {"value": None, "known": False, "source": "decorator **kwargs",
                                            "file": None, "line": None}
    assert main(["tasks", str(tmp_path), "--no-cache"]) == 0
    table = capsys.readouterr().out
    assert "via @actor -> dramatiq.actor" in table


def test_rq_job_delay_is_a_call_site(tmp_path):
    """``export.delay(...)`` on an ``@job`` function enqueues it (rq/decorators.py): a call site
    like any other, on the decorator's queue."""
    write_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/jobs.py": "from redis import Redis\nfrom rq.decorators import job\n\n"
                        "@job('reports', connection=Redis())\ndef export(report):\n    build(report['id'])\n",
        "proj/views.py": "from django.db import transaction\nfrom proj.jobs import export\n\n\n"
                         "@transaction.atomic\ndef request_export(request):\n    export.delay(request.json())\n",
    })
    project = make_linter(tmp_path).model()
    (site,) = [s for s in project.sites if s.kind == "enqueue"]
    assert site.file.module == "proj.views" and site.task is not None and site.task.name == "proj.jobs.export"
    found = {(p, c) for p, _, c, _ in findings(tmp_path, ["QLT505", "QLT602"])}
    assert found == {("proj/jobs.py", "QLT505"), ("proj/views.py", "QLT602")}
