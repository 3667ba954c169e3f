from __future__ import annotations

import math

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN, seconds
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import add_task_options, is_celery, soft_limit_below, where
from qlint.fixers.calls import replace_value
from qlint.lint.diagnostics import Edit


@register
class TaskUnboundedRuntime(Rule):
    """## What it does
    Checks for tasks that can run forever: a Celery task with no hard time limit from its
    decorator, its base class, `task_annotations`, or the app's `task_time_limit` setting
    (in `app.conf`, `Celery(...)`, a `config_from_object` module or Django's `CELERY_*`
    settings), or with a limit explicitly set to `None`.

    ## Why is this bad?
    Celery's `task_time_limit` defaults to `None`: no limit. A task that hangs on a network
    call, a lock or an infinite loop keeps its worker process forever; with a few of them the
    whole pool stops consuming and the queue backs up. Celery's own guide: "A single task can
    potentially run forever ... The best way to defend against this scenario happening is
    enabling time limits." A soft limit alone is not a bound: `SoftTimeLimitExceeded` can be
    caught and ignored.

    ## Known problems
    Limits passed on the worker command line (`--time-limit`) are read from deployment
    manifests, not from Python code. When the app's configuration comes from somewhere qlint
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

    ## Fix safety
    The fix inserts `time_limit=<default-time-limit>` (300 s unless configured) and a
    `soft_time_limit` below it into the task decorator (or as class attributes of a
    class-based task). It is unsafe: a task that legitimately runs longer will now be killed.

    ## Options
    - `default-time-limit`

    ## References
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [Celery: task_time_limit](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit)
    """

    code = "QLT101"
    name = "task-unbounded-runtime"
    summary = "Task can run forever: no effective time limit"
    severity = Severity.WARNING
    fix_availability = "Sometimes"

    VALID = [
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
""", note="not a Celery task"),
    ]
    INVALID = [
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
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if is_celery(task):
                self._check_task(ctx, task)

    def _check_task(self, ctx: RuleContext, task) -> None:
        hard = task.option("time_limit")
        if hard is not None and not _unbounded(hard.value):
            return  # a limit, or a value qlint cannot compute
        if not task.options_complete:
            return  # the limit may come from somewhere qlint cannot read
        limit = ctx.settings.default_time_limit
        soft = task.option("soft_time_limit")
        soft_s = seconds(soft.value) if soft is not None and soft.known else None
        items = [("time_limit", str(limit))]
        if soft is None or _unbounded(soft.value):
            items.append(("soft_time_limit", str(soft_limit_below(limit))))
        elif soft_s is not None and soft_s >= limit:
            items = [("time_limit", str(int(soft_s) + 60))]
        if hard is not None and hard.source == "decorator" and hard.keyword is not None:
            # An explicit ``time_limit=None`` (or 0) written on this task: point at it.
            edits = [replace_value(hard.keyword, items[0][1])]
            if len(items) > 1:
                if soft is not None and soft.source == "decorator" and soft.keyword is not None:
                    edits.append(replace_value(soft.keyword, items[1][1]))
                else:
                    edits.append(Edit(hard.keyword.span.end, hard.keyword.span.end, f", soft_time_limit={items[1][1]}"))
            fix = ctx.fix(task.file, "Set " + ", ".join(f"`{k}={v}`" for k, v in items), edits)
            ctx.report(task.file, hard.keyword.span, f"Task `{task.name}` sets `time_limit` explicitly to no limit "
                       f"({where(hard)}) and the app sets none: it can run forever", fix=fix,
                       statement=task.header)
            return
        if hard is not None:
            ctx.report(task.file, task.anchor, f"Task `{task.name}` has no time limit: `time_limit` is "
                       f"unbounded ({where(hard)}) and it can run forever", statement=task.header)
            return
        edits = add_task_options(ctx, task, items)
        fix = ctx.fix(task.file, "Add " + ", ".join(f"`{k}={v}`" for k, v in items), edits) if edits else None
        soft_note = " (a soft limit alone can be caught and ignored)" if soft_s else ""
        ctx.report(task.file, task.anchor, f"Task `{task.name}` has no time limit and can run forever: set "
                   f"`time_limit` on the task or `task_time_limit` in the app's configuration{soft_note}",
                   fix=fix, statement=task.header)


def _unbounded(value) -> bool:
    """Celery runs a task without a hard limit for None, 0 (falsy at run time) and infinity."""
    if value is None:
        return True
    if value is UNKNOWN:
        return False
    s = seconds(value)
    return s is not None and (s == 0 or math.isinf(s))
