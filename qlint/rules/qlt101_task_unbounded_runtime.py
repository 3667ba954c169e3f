from __future__ import annotations

import math

from qlint.fixers.calls import replace_value
from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.model import UNKNOWN
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._app_level import app_tasks, count_text, shared
from qlint.rules._common import add_task_options, soft_limit_below, where
from qlint.rules._timeouts import carried_past_timeout


@register
class TaskUnboundedRuntime(Rule):
    """## What it does
    Checks for tasks that can run forever: a Celery task with no hard time limit from its
    decorator, its base class, `task_annotations`, or the app's `task_time_limit` setting
    (in `app.conf`, `Celery(...)`, a `config_from_object` module or Django's `CELERY_*`
    settings), or with a limit explicitly set to `None`; an RQ job whose timeout is `-1`;
    a Dramatiq actor with `time_limit=float("inf")` or a broker whose explicit middleware
    list leaves out `TimeLimit`; an async Taskiq task with no `timeout` label.

    One finding per fix: when two or more of a Celery app's tasks have no limit because the
    app sets none (they set none themselves either) and they are at least half of its tasks,
    the app is reported once, on its `Celery(...)` call, with how many tasks it affects; its
    fix writes `task_time_limit` (and `task_soft_time_limit` below it) where the app's
    configuration lives. Likewise one setting that leaves several tasks unbounded (a Dramatiq
    broker's middleware list without `TimeLimit`, an app's `task_time_limit = 0`) is reported
    once, where it is written. Otherwise each task is reported on its own: a lone task, or the
    few that set no limit among tasks that set their own.

    ## Why is this bad?
    Celery's `task_time_limit` defaults to `None`: no limit. A task that hangs on a network
    call, a lock or an infinite loop keeps its worker process forever; with a few of them the
    whole pool stops consuming and the queue backs up. Celery's own guide: "A single task can
    potentially run forever ... The best way to defend against this scenario happening is
    enabling time limits." A soft limit alone is not a bound: `SoftTimeLimitExceeded` can be
    caught and ignored.

    ## Known problems
    Limits passed on the worker command line (`--time-limit`) are read from the project's
    manifests (Kubernetes, compose, Procfile); a worker started elsewhere is not seen, so a
    task it bounds is still reported. When the app's configuration comes from somewhere qlint
    cannot read (a module outside the project, `config_from_envvar`, `**kwargs`), the rule
    stays silent rather than guess. A `@shared_task` in a project with no Celery app is not
    reported for the same reason.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj")

    @app.task
    def sync_inventory(store_id):
        ...
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj")

    @app.task(time_limit=300, soft_time_limit=270)
    def sync_inventory(store_id):
        ...
    ```
    or set `task_time_limit` (and `task_soft_time_limit`) for every task in the app's configuration.

    ## Per framework
    - **Celery**: no hard limit anywhere (the default is none), or `None`/`0` written:
      `@app.task` → `@app.task(time_limit=300, soft_time_limit=270)`.
    - **RQ**: `-1` means "no limit" (the default is 180 s, so only `-1` is reported), in
      `@job(timeout=-1)`, `q.enqueue(f, job_timeout=-1)`, `q.enqueue_call(f, timeout=-1)` and
      `Queue(default_timeout=-1)`: `q.enqueue(export, job_timeout=-1)` → `job_timeout=300`.
    - **Dramatiq**: limits are milliseconds and default to 10 minutes; reported are
      `@dramatiq.actor(time_limit=float("inf"))` (→ `time_limit=300000`), the same value in
      `TimeLimit(...)` or `send_with_options(...)`, and every actor of a broker built with
      `middleware=[...]` that leaves out `TimeLimit` (no fix: the actor option is rejected
      without the middleware).
    - **Taskiq**: no timeout unless the `timeout` label is set: `@broker.task` on an `async def`
      → `@broker.task(timeout=300)`. Sync tasks are not reported: Taskiq cannot stop them (QLT103).
    - **Huey** (`timeout=None` by default) is reported when a consumer in the project's
      manifests runs the task with the process or greenlet worker type (`-k process`): the
      default thread worker ignores `timeout` (QLT103). `@huey.task()` → `@huey.task(timeout=300)`.
    - **arq** bounds every job by `job_timeout` (300 s); `job_timeout = None` is reported.

    ## Fix safety
    On the app (one finding for its tasks), the fix writes the setting beside the app's other
    settings: `CELERY_TASK_TIME_LIMIT = 300` in the Django settings module the app reads with
    the `CELERY` namespace, `task_time_limit = 300` in its `config_from_object` module,
    `app.conf.task_time_limit = 300` or a keyword of `app.conf.update(...)`; with a
    `task_soft_time_limit` below it unless the app sets one (a hard limit above every soft
    limit the tasks set). On a task, the fix inserts the framework's limit option with `default-time-limit` (300 s unless
    configured) in the framework's units (Dramatiq: `300000` ms); for Celery also a
    `soft_time_limit` below it, into the task decorator (or as class attributes of a
    class-based task); an explicit unbounded value is replaced. No soft limit is written where
    a catch-all clause of a task would swallow `SoftTimeLimitExceeded` and carry on (QLT105):
    the fix must not create a finding, and the hard limit bounds such a task alone. It is unsafe: a task that
    legitimately runs longer will now be killed.

    ## Options
    - `default-time-limit`

    ## References
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [Celery: task_time_limit](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit)
    - [RQ: Job timeouts](https://python-rq.org/docs/jobs/#timeout)
    - [Dramatiq: Message time limits](https://dramatiq.io/guide.html#message-time-limits)
    - [Taskiq: Timeouts](https://taskiq-python.github.io/guide/getting-started.html#timeouts)
    """

    code = "QLT101"
    name = "task-unbounded-runtime"
    summary = "Task can run forever: no effective time limit"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task
def export(report_id):
    pass
""",
            "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 360
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "worker", "--time-limit=300", "-c", "2"]
""",
        }, note="the worker's --time-limit bounds every task that sets none"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
"""),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 600
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def sync_inventory(store_id):
    pass
""",
        }, note="a global limit in app.conf of another module"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
import os
CELERY_TASK_TIME_LIMIT = int(os.environ.get("TASK_TIME_LIMIT", "900"))
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def nightly_report():
    pass
""",
        }, note="Django settings with the CELERY namespace, overridable from the environment"),
        Valid("""
from celery import Celery, Task

app = Celery("proj")

class BoundedTask(Task):
    time_limit = 120

@app.task(base=BoundedTask)
def resize(image_id):
    pass
""", note="the limit comes from the base class"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.config_from_object("settings_outside_the_project")

@app.task
def resize(image_id):
    pass
""", note="configuration qlint cannot see: no guess"),
        Valid("""
from celery import Celery, Task

app = Celery("proj")
app.conf.task_time_limit = 600

class Tracked(Task):
    time_limit = None

@app.task(base=Tracked, time_limit=None)
def resize(image_id):
    pass
""", note="Celery fills a None attribute from task_time_limit when the task is bound"),
        Valid("""
from celery import Celery
from otherlib.tasks import LimitedTask

app = Celery("proj")

@app.task(base=LimitedTask)
def resize(image_id):
    pass
""", note="a base class from another package may set the limit"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")

@app.task
def resize(image_id):
    pass
""",
            "proj/settings.py": """
from split_settings.tools import include

include("components/*.py")
""",
        }, note="settings assembled at run time (django-split-settings)"),
        Valid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from celery import Celery

def create_app():
    app = Celery("proj")
    app.conf.task_time_limit = 120
    return app

app = create_app()

@app.task
def resize(image_id):
    pass
""",
        }, note="an app built by a factory is configured where qlint does not look"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey()

@huey.task()
def resize(image_id):
    pass
""", note="Huey: whether `timeout` is enforced depends on the consumer's worker type"),
        Valid("""
from redis import Redis
from rq import Queue

def export(report_id):
    pass

q = Queue(connection=Redis())
q.enqueue(export, 1, job_timeout="10m")
q.enqueue(export, 2)
""", note="RQ: a duration string, and the 180 s default"),
        Valid("""
import dramatiq

@dramatiq.actor(time_limit=60_000)
def export(report_id):
    pass

@dramatiq.actor
def cleanup():
    pass
""", note="Dramatiq: milliseconds, and the 10-minute default of the TimeLimit middleware"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
async def fetch(url):
    pass

@broker.task
def render(page):
    pass
""", note="Taskiq: a timeout label; a sync task, which no timeout can stop (QLT103's subject)"),
        Valid("""
from arq import func

async def crawl(ctx, url):
    pass

class WorkerSettings:
    functions = [func(crawl, timeout=600)]
""", note="arq: every job is bounded by job_timeout (300 s) unless set otherwise"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=60)
def resize(image_id):
    pass

@app.task(time_limit=60)
def thumbnail(image_id):
    pass

@app.task
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            log.exception("sync of %s failed", store_id)
""", expect=13, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=60)
def resize(image_id):
    pass

@app.task(time_limit=60)
def thumbnail(image_id):
    pass

@app.task(time_limit=300)
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            log.exception("sync of %s failed", store_id)
""", select=("QLT105",), note="no soft limit where `except Exception` in a loop would swallow it (QLT105)"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task
def export(report_id):
    pass

@app.task(soft_time_limit=600)
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 660
app.conf.task_soft_time_limit = 594

@app.task
def export(report_id):
    pass

@app.task(soft_time_limit=600)
def resize(image_id):
    pass
""", message="all 2 of its tasks", note="one finding on the app for its tasks; the limit stays above a task's own "
                                      "soft limit"),
        Invalid({
            "manage.py": """
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
""",
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
""",
            "proj/settings.py": """
DEBUG = False
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True

LANGUAGE_CODE = "en-us"
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def export(report_id):
    pass

@shared_task
def resize(image_id):
    pass

@shared_task(time_limit=60)
def ping():
    pass
""",
        }, expect=[("proj/celery.py", 3)], fixed={"proj/settings.py": """
DEBUG = False
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 270

LANGUAGE_CODE = "en-us"
"""}, message="2 of its 3 tasks", note="Django: reported on the app, fixed in the settings module it reads"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=60)
def export(report_id):
    pass

@app.task(time_limit=60)
def resize(image_id):
    pass

@app.task
def ping():
    pass
""", expect=13, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=60)
def export(report_id):
    pass

@app.task(time_limit=60)
def resize(image_id):
    pass

@app.task(time_limit=300, soft_time_limit=270)
def ping():
    pass
""", note="one task of three sets no limit: the outlier is reported, not the app"),
        Invalid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Retries

dramatiq.set_broker(RedisBroker(middleware=[AgeLimit(), Retries()]))

@dramatiq.actor
def export(report_id):
    pass

@dramatiq.actor
def resize(image_id):
    pass
""", expect=5, message="2 Dramatiq tasks", note="Dramatiq: the middleware list that leaves out TimeLimit is "
                                                 "reported once, for its actors"),
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(retries=2, retry_delay=30)
def export(report_id):
    pass
""",
            "k8s/consumer.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: consumer
spec:
  template:
    spec:
      containers:
        - name: consumer
          args: ["huey_consumer.py", "proj.tasks.huey", "-k", "process", "-w", "4", "-n"]
""",
        }, expect=[("proj/tasks.py", 5)], fixed={"proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(retries=2, retry_delay=30, timeout=300)
def export(report_id):
    pass
"""}, note="Huey: the consumer runs the process worker type, which enforces `timeout`; the task sets none"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task
def sync_inventory(store_id):
    pass
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
"""),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="redis://localhost")
app.conf.update(task_soft_time_limit=60)
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(
    bind=True,
    max_retries=5,
)
def charge(self, order_id):
    pass
""",
        }, expect=[("proj/tasks.py", 3)], fixed={"proj/tasks.py": """
from proj.celery import app

@app.task(
    bind=True,
    max_retries=5,
    time_limit=300,
)
def charge(self, order_id):
    pass
"""}, note="a soft limit alone does not bound the task; the fix keeps the one-per-line style"),
        Invalid("""
from celery import shared_task, Celery

app = Celery("proj")

@shared_task(time_limit=None)
def export():
    pass
""", expect=5, fixed="""
from celery import shared_task, Celery

app = Celery("proj")

@shared_task(time_limit=300, soft_time_limit=270)
def export():
    pass
""", message="explicitly"),
        Invalid("""
import celery
from celery import Celery

app = Celery("proj")

class Export(celery.Task):
    \"\"\"Export everything.\"\"\"
    name = "export"

    def run(self):
        pass
""", expect=6, fixed="""
import celery
from celery import Celery

app = Celery("proj")

class Export(celery.Task):
    \"\"\"Export everything.\"\"\"
    time_limit = 300
    soft_time_limit = 270
    name = "export"

    def run(self):
        pass
""", note="class-based task"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=0)
def export():
    pass
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def export():
    pass
""", message="no limit", note="Celery treats a limit of 0 as none"),
        Invalid("""
from celery import Celery

app = Celery("proj")
background = app.task(acks_late=True)

@background
def export():
    pass
""", expect=6, note="no fix: the wrapper is the result of a call and takes only the function"),
        Invalid("""
from redis import Redis
from rq import Queue

def export(report_id):
    pass

q = Queue(connection=Redis())
q.enqueue(export, 1, job_timeout=-1)
""", expect=8, fixed="""
from redis import Redis
from rq import Queue

def export(report_id):
    pass

q = Queue(connection=Redis())
q.enqueue(export, 1, job_timeout=300)
""", message="no limit", note="RQ: -1 means no limit"),
        Invalid("""
from rq.decorators import job
from proj.redis import conn

@job("low", connection=conn, timeout=-1)
def export(report_id):
    pass
""", expect=4, fixed="""
from rq.decorators import job
from proj.redis import conn

@job("low", connection=conn, timeout=300)
def export(report_id):
    pass
""", note="RQ @job"),
        Invalid("""
import math
import dramatiq as dq

@dq.actor(queue_name="exports", time_limit=math.inf)
def export(report_id):
    pass
""", expect=4, fixed="""
import math
import dramatiq as dq

@dq.actor(queue_name="exports", time_limit=300000)
def export(report_id):
    pass
""", note="Dramatiq: the fix writes milliseconds"),
        Invalid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Retries

dramatiq.set_broker(RedisBroker(middleware=[AgeLimit(), Retries()]))

@dramatiq.actor
def export(report_id):
    pass
""", expect=7, message="without TimeLimit", note="Dramatiq: an explicit middleware list without TimeLimit; no fix"),
        Invalid("""
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://localhost")

@broker.task
async def fetch(url):
    pass

@broker.task(task_name="render", retry_on_error=True)
async def render(page):
    pass
""", expect=[("tasks.py", 5), ("tasks.py", 9)], fixed="""
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://localhost")

@broker.task(timeout=300)
async def fetch(url):
    pass

@broker.task(task_name="render", retry_on_error=True, timeout=300)
async def render(page):
    pass
""", note="Taskiq: async tasks without a timeout label"),
    ]

    def check(self, ctx: RuleContext) -> None:
        sites = [site for site in ctx.project.sites if _unbounded_written(site.norm.get("time_limit"))]
        reported_elsewhere = {id(site.norm["time_limit"].keyword) for site in sites}
        unbounded = []
        for task in ctx.project.tasks:
            limit = task.norm.get("time_limit")
            if task.profile is None or limit is None or id(limit.keyword) in reported_elsewhere:
                continue  # an unbounded middleware or queue setting is reported once, where it is written
            if not _unbounded(limit.value) or task.limits_enforced is not True:
                continue  # a limit; or one the runtime would not enforce anyway (QLT103's subject)
            if not task.options_complete:
                continue  # the limit may come from somewhere qlint cannot read
            unbounded.append((task, limit))
        once, singles = shared(unbounded, _cause, lambda key, members: _covered(ctx.project, key, members))
        for key, members in once:
            if key[0] == "app":
                self._check_app(ctx, members[0][0].apps[0], members)
            else:
                self._check_setting(ctx, members)
        for task, limit in singles:
            self._check_task(ctx, task, limit)
        for site in sites:
            self._check_site(ctx, site)

    def _check_app(self, ctx: RuleContext, app, members) -> None:
        """Two or more of the app's tasks, at least half of them, have no limit because the app
        sets none: one finding on the app, whose fix writes the setting into its configuration."""
        profile = members[0][0].profile
        total = len(app_tasks(ctx.project, app))
        hard = ctx.settings.default_time_limit
        own_soft = [t.norm["soft_time_limit"].value for t, _ in members if "soft_time_limit" in t.norm]
        own_soft = [v for v in own_soft if isinstance(v, (int, float)) and not _unbounded(v)]
        if own_soft and max(own_soft) >= hard:
            hard = int(max(own_soft)) + 60  # above every soft limit a task sets (else QLT102)
        items = [(LIMIT_SETTINGS[0], profile.time_limit.text(hard))]
        # A soft limit every task gets is raised in each: none where a catch-all clause would
        # swallow it and carry on (the fix would make QLT105 findings; the hard limit still bounds).
        if LIMIT_SETTINGS[1] not in app.settings and not any(
                next(carried_past_timeout(ctx, task), None) for task in app_tasks(ctx.project, app)):
            items.append((LIMIT_SETTINGS[1], profile.time_limit.text(soft_limit_below(hard))))
        fix = None
        placed = cb.setting_edits(ctx.project, app, items, lambda facts: ctx.sources.get(facts.path),
                                  ctx.line_length)
        if placed is not None:
            edits, path, written = placed
            fix = ctx.fix(app.file, f"Write {', '.join(f'`{w}`' for w in written)} in `{ctx.display(path)}`", edits)
        count = count_text(len(members), total, "task")
        ctx.report(app.file, app.call.span,
                   f"{profile.title} app `{app.qualified}` sets no `{LIMIT_SETTINGS[0]}` and {count} set no time "
                   f"limit of their own, so they can run forever ({profile.title} sets none by default): set "
                   f"`{LIMIT_SETTINGS[0]}` in the app's configuration", fix=fix)

    def _check_setting(self, ctx: RuleContext, members) -> None:
        """One setting (an app's `task_time_limit = 0`, a broker's middleware list without
        TimeLimit) leaves two or more tasks unbounded: one finding where it is written."""
        task, limit = members[0]
        profile = task.profile
        names = ", ".join(f"`{t.name}`" for t, _ in members[:3]) + (
            f" and {len(members) - 3} more" if len(members) > 3 else "")
        ctx.report(limit.file, limit.keyword.span,
                   f"{len(members)} {profile.title} tasks ({names}) have no time limit because of this "
                   f"`{limit.keyword.name}` ({where(limit)}): {profile.title} runs them unbounded and they can run "
                   "forever")

    def _check_task(self, ctx: RuleContext, task, limit) -> None:
        profile = task.profile
        unit = profile.time_limit
        items = self._items(ctx, task)
        if limit.keyword is not None and limit.file is task.file and _own(task, limit) and unit is not None:
            # An explicit ``time_limit=None`` (or 0, inf, -1) written on this task: point at it.
            fix = None
            if limit.source == "decorator" or len(items) == 1:
                edits = [replace_value(limit.keyword, items[0][1])]
                soft = task.norm.get("soft_time_limit")
                if len(items) > 1:
                    if soft is not None and soft.source == "decorator" and soft.keyword is not None:
                        edits.append(replace_value(soft.keyword, items[1][1]))
                    else:
                        edits.append(Edit(limit.keyword.span.end, limit.keyword.span.end,
                                          f", {items[1][0]}={items[1][1]}"))
                fix = ctx.fix(task.file, "Set " + ", ".join(f"`{k}={v}`" for k, v in items), edits)
            ctx.report(task.file, limit.keyword.span, f"Task `{task.name}` sets `{limit.keyword.name}` explicitly to "
                       f"no limit ({where(limit)}){self._nothing_else(task)}: it can run forever", fix=fix,
                       statement=task.header)
            return
        if limit.source != "default":
            ctx.report(task.file, task.anchor, f"Task `{task.name}` has no time limit: {profile.title} runs it "
                       f"unbounded ({where(limit)}) and it can run forever", statement=task.header)
            return
        edits = add_task_options(ctx, task, items) if unit is not None and task.limit_fixable else []
        fix = ctx.fix(task.file, "Add " + ", ".join(f"`{k}={v}`" for k, v in items), edits) if edits else None
        soft = task.norm.get("soft_time_limit")
        soft_note = " (a soft limit alone can be caught and ignored)" if soft is not None and not _unbounded(
            soft.value) and soft.value is not UNKNOWN else ""
        option = f"`{unit.option}`" if unit is not None else "a time limit"
        elsewhere = f" or {profile.limit_setting}" if profile.limit_setting else ""
        ctx.report(task.file, task.anchor, f"Task `{task.name}` has no time limit and can run forever: {profile.title} "
                   f"sets none by default; set {option} on the task{elsewhere}{soft_note}", fix=fix,
                   statement=task.header)

    @staticmethod
    def _nothing_else(task) -> str:
        return " and the app sets none" if task.profile.limit_setting else ""

    @staticmethod
    def _items(ctx: RuleContext, task) -> list[tuple[str, str]]:
        """The options a fix writes, in the framework's units: the hard limit, and a soft limit below it."""
        profile = task.profile
        limit = ctx.settings.default_time_limit
        unit = profile.time_limit
        if unit is None:
            return []
        items = [(unit.option, unit.text(limit))]
        if profile.soft_time_limit is not None:
            soft = task.norm.get("soft_time_limit")
            soft_s = soft.value if soft is not None else math.inf
            if soft_s is UNKNOWN:
                return items
            if _unbounded(soft_s):
                if next(carried_past_timeout(ctx, task), None) is not None:
                    # A catch-all clause of the task would swallow the soft limit's exception and
                    # carry on (QLT105): the hard limit alone bounds it.
                    return items
                items.append((profile.soft_time_limit.option, profile.soft_time_limit.text(soft_limit_below(limit))))
            elif soft_s >= limit:
                items = [(unit.option, unit.text(int(soft_s) + 60))]
        return items

    def _check_site(self, ctx: RuleContext, site) -> None:
        limit = site.norm["time_limit"]
        unit = site.profile.time_limit
        fix = None
        if unit is not None:
            text = unit.text(ctx.settings.default_time_limit)
            fix = ctx.fix(site.file, f"Set `{limit.keyword.name}={text}`", [replace_value(limit.keyword, text)])
        what = f"`{site.call.dotted or site.call.method}(...)`" if site.call is not None else site.kind
        ctx.report(site.file, limit.keyword.span, f"{what} sets `{limit.keyword.name}` to no limit "
                   f"({where(limit)}): the {site.profile.title} jobs it covers can run forever", fix=fix)


# The app settings QLT101's app-level fix writes (Celery's names; other frameworks have no
# app-wide limit setting, their shared causes are broker middleware).
LIMIT_SETTINGS = ("task_time_limit", "task_soft_time_limit")


def _cause(item) -> tuple | None:
    """The one place whose setting would bound this task (principle 2), or None."""
    task, limit = item
    if limit.keyword is not None and limit.file is not None and not _own(task, limit):
        return ("setting", id(limit.keyword))  # an app setting, a broker's middleware list, a shared base
    if limit.source == "default" and task.profile.limit_setting and len(task.apps) == 1:
        return ("app", id(task.apps[0]))
    return None


def _covered(project, key, members) -> int:
    """How many tasks the setting behind ``key`` decides, for the "at least half" test."""
    task, limit = members[0]
    if key[0] == "app" or limit.source.startswith("setting "):
        return len(app_tasks(project, task.apps[0])) if len(task.apps) == 1 else len(members)
    if limit.source.startswith("a broker"):  # every actor of the framework's brokers
        return sum(1 for t in project.tasks if t.framework == task.framework)
    return len(members)


def _own(task, limit) -> bool:
    """Written in the task's own decorator or class (not a shared base class or wrapper)."""
    if limit.source == "decorator":
        return True
    return task.cls is not None and limit.source in (f"class {task.cls.name}", f"class {task.cls.name}.Meta")


def _unbounded_written(limit) -> bool:
    return limit is not None and limit.keyword is not None and limit.file is not None and _unbounded(limit.value)


def _unbounded(value) -> bool:
    """Normalised limits: math.inf is "no limit" (Celery None/0, RQ -1, Dramatiq inf)."""
    return isinstance(value, float) and math.isinf(value)
