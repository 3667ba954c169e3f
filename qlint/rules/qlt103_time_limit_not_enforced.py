from __future__ import annotations

import math

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN, Resolved, Task, seconds
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import written_on_task


@register
class TimeLimitNotEnforced(Rule):
    """## What it does
    Checks for time limits that are written but that the runtime never enforces: a limit
    on a task (decorator, wrapper defaults, task or base class) or an app-wide limit
    setting, when the task runs where nothing stops it at that limit.

    ## Why is this bad?
    The limit reads like a guarantee that a hung task is stopped, and nothing in the logs
    says it is not: the task keeps its worker slot for as long as it hangs. Celery's thread,
    solo and eventlet pools contain no time-limit handling at all ("pool support:
    prefork/gevent" in Celery's worker guide). Taskiq wraps a synchronous task in a worker
    thread that cannot be interrupted: when `timeout` expires the receiver only stops
    waiting for it and logs "Timeouts for sync tasks don't work in python well", while the
    function runs on.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.worker_pool = "threads"

    @app.task(time_limit=300)
    def sync_inventory(store_id):
        ...
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.worker_pool = "prefork"

    @app.task(time_limit=300)
    def sync_inventory(store_id):
        ...
    ```
    or bound the work inside the task (timeouts on every network call).

    ## Per framework
    - Celery: `time_limit` or `soft_time_limit` written on a task, or `task_time_limit` /
      `task_soft_time_limit` in the app's configuration, when the app's `worker_pool`
      setting, or the `-P`/`--pool` of a worker in the manifests that runs the app, is
      `threads`, `solo` or `eventlet` (`gevent`: the soft limit only).
      `app.conf.worker_pool = "solo"` + `@app.task(soft_time_limit=60)`;
      `celery -A proj worker -P threads` in a Deployment.
    - Taskiq: a `timeout` label on a task defined on a plain `def` (async tasks are
      cancelled at the limit; sync ones are not).
      `@broker.task(timeout=30)` + `def resize(image_id): ...`.

    - Huey: `timeout` on a task run by a consumer (in the manifests) with the default thread
      worker type: only `-k process` and `-k greenlet` enforce it. Without a consumer in
      sight Huey tasks are not reported.
      `huey_consumer.py proj.tasks.huey -w 8` + `@huey.task(timeout=60)`.

    ## Fix safety
    There is no fix: the pool, or the task's shape (`async def` for Taskiq), is an
    architectural choice.

    ## References
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [Celery: worker_pool](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-pool)
    - [Taskiq: Timeouts](https://taskiq-python.github.io/guide/getting-started.html#timeouts)
    - [Huey: task() timeout](https://huey.readthedocs.io/en/latest/api.html#Huey.task)
    """

    code = "QLT103"
    name = "time-limit-not-enforced"
    summary = "Time limit that the runtime never enforces"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery", "huey", "taskiq")

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(timeout=60)
def export(report_id):
    pass
""",
            "docker-compose.yml": """
services:
  consumer:
    image: proj
    command: huey_consumer.py proj.tasks.huey -w 4 -k process
""",
        }, note="Huey: the process worker type enforces timeout"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "prefork"

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
""", note="Celery: the prefork pool enforces both limits"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "threads"

@app.task(time_limit=None)
def sync_inventory(store_id):
    pass
""", note="Celery: a thread pool, but `time_limit=None` sets no limit to ignore"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "solo"

@app.task
def sync_inventory(store_id):
    pass
""", note="Celery: a solo pool and no limit anywhere (QLT101's concern, not this one)"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
async def resize(image_id):
    pass
""", note="Taskiq: an async task is cancelled at its timeout"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(retry_on_error=True)
def resize(image_id):
    pass
""", note="Taskiq: a sync task without a timeout label"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(timeout=30)
def resize(image_id):
    pass
""", note="Huey: enforcement depends on the consumer's -k flag, not in Python code"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"

@app.task(time_limit=300)
def sync_inventory(store_id):
    pass
""", note="Celery: gevent enforces the hard limit"),
    ]
    INVALID = [
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(timeout=60)
def export(report_id):
    pass
""",
            "docker-compose.yml": """
services:
  consumer:
    image: proj
    command: huey_consumer.py proj.tasks.huey -w 8
""",
        }, expect=[("proj/tasks.py", 5)], message="thread", note="Huey: the default thread worker type ignores timeout"),
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=120)
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
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "worker", "-P", "threads", "-c", "8"]
""",
        }, expect=[("proj/tasks.py", 5)], message="-P threads", note="Celery: the pool comes from the worker's command"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "threads"

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
""", expect=[6, 6], message="the `threads` pool",
            note="Celery: both limits reported, each at its own keyword (one row, two anchors)"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(
    worker_pool="solo",
    task_time_limit=600,
)
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def sync_inventory(store_id):
    pass

@app.task
def resize(image_id):
    pass
""",
        }, expect=[("proj/celery.py", 6)], message="`task_time_limit=600`",
            note="Celery: an app-wide limit with a solo pool, reported once at the setting"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")
app.conf.worker_pool = "eventlet"

class Export(Task):
    soft_time_limit = 120

    def run(self):
        pass
""", expect=7, note="Celery: a class attribute of a class-based task"),
        Invalid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(
    "resize",
    timeout=30,
)
def resize(image_id):
    pass
""", expect=7, message="Taskiq runs a sync task in a thread it cannot stop",
            note="Taskiq: a timeout label on a sync task, reported on the keyword's line"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
""", expect=6, message="soft", note="Celery: gevent ignores the soft limit, the hard one holds"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if task.profile is None:
                continue
            if task.limits_enforced is False:
                units = (task.profile.time_limit, task.profile.soft_time_limit)
            elif not task.soft_limit_enforced:
                units = (task.profile.soft_time_limit,)
            else:
                continue
            for unit in units:
                if unit is None:
                    continue
                limit = task.option(unit.option)
                if limit is None or limit.keyword is None or limit.file is None or not _is_limit(limit.value):
                    continue
                if written_on_task(limit):
                    self._report(ctx, limit, task, f"Task `{task.name}` sets ", " but the limit is never enforced")
                elif limit.source.startswith("setting "):
                    self._report(ctx, limit, task, "", " in the app's configuration is never enforced")

    def _report(self, ctx: RuleContext, limit: Resolved, task: Task, before: str, after: str) -> None:
        keyword = limit.keyword
        text = ctx.source(limit.file).utf8[keyword.value.span.start:keyword.value.span.end].decode("utf-8")
        written = f"`{keyword.name}={text}`" if "=" not in text else f"`{keyword.name}`"
        ctx.report(limit.file, keyword.span,
                   f"{before}{written}{after}: {task.limits_note}; a hung task keeps its worker slot")


def _is_limit(value) -> bool:
    """A written value that asks for a limit: a positive finite duration, or one qlint cannot compute."""
    if value is UNKNOWN:
        return True
    s = seconds(value)
    return s is not None and s > 0 and not math.isinf(s)
