from __future__ import annotations

import math

from qlint.fixers.calls import replace_value
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import Value
from qlint.lint.model import Resolved, seconds
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import number_text, soft_limit_below, where


def _is_number_literal(value: Value) -> bool:
    """A number written in place: ``600``, ``10 * 60``, ``-1`` (no names, calls or timedeltas)."""
    if value.kind == "const":
        return isinstance(value.value, (int, float)) and not isinstance(value.value, bool)
    if value.kind in ("binop", "unary"):
        return all(_is_number_literal(v) for v in (value.left, value.right) if v is not None)
    return False


@register
class SoftLimitNotBelowHard(Rule):
    """## What it does
    Checks for a Celery `soft_time_limit` that is not below the `time_limit` set at the
    same level: both in one task decorator, both as attributes of one task (or base)
    class, or `task_soft_time_limit` and `task_time_limit` both in the app's
    configuration.

    ## Why is this bad?
    The soft limit exists to raise `SoftTimeLimitExceeded` inside the task so that it can
    clean up "before the hard time limit kills it". Celery does not check that the soft
    limit comes first: when it is equal to or above the hard limit, the hard limit fires
    first, the worker child is killed without any cleanup, the task fails with
    `WorkerLostError` and the child process is replaced.

    ## Known problems
    Values set at different levels (a soft limit in the decorator and a hard limit in the
    app's configuration) and limits passed on the worker command line are not compared.
    Values qlint cannot compute (an environment variable without a default, a name
    defined outside the project) are not reported; for an environment variable with a
    default, the default is compared.

    ## Example
    ```python
    @app.task(time_limit=300, soft_time_limit=300)
    def sync_inventory(store_id):
        ...
    ```

    Use instead:
    ```python
    @app.task(time_limit=300, soft_time_limit=270)
    def sync_inventory(store_id):
        ...
    ```

    ## Per framework
    - **Celery** only: `@app.task(time_limit=60, soft_time_limit=60)`, the same pair on a task
      class, or `task_time_limit`/`task_soft_time_limit` in the configuration.
    The other frameworks have one limit per task (RQ `timeout`, Dramatiq `time_limit`, Huey
    `timeout`, Taskiq `timeout`, arq `timeout`): there is no soft limit to compare.

    ## Fix safety
    The fix rewrites the soft limit to 10% below the hard limit (at least 30 s below), when
    the soft limit is written as a number in place. It is unsafe: the task now gets
    `SoftTimeLimitExceeded` earlier than before, which its code may not expect.

    ## References
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [Celery: task_soft_time_limit](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-soft-time-limit)
    """

    code = "QLT102"
    name = "soft-limit-not-below-hard"
    summary = "Soft time limit is not below the hard time limit"
    severity = Severity.WARNING
    fix_availability = "Sometimes"

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
""", note="soft below hard"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 300
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(soft_time_limit=600)
def sync_inventory(store_id):
    pass
""",
        }, note="soft limit in the decorator, hard limit in the configuration: different levels"),
        Valid("""
import os
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 900
app.conf.task_soft_time_limit = int(os.environ.get("SOFT_LIMIT", "840"))

@app.task
def sync_inventory(store_id):
    pass
""", note="an environment variable whose default is below the hard limit"),
        Valid("""
from celery import Celery
from settings_outside import HARD

app = Celery("proj")

@app.task(time_limit=HARD, soft_time_limit=600)
def sync_inventory(store_id):
    pass
""", note="unknown hard limit"),
        Valid("""
from datetime import timedelta
from celery import Celery, Task

app = Celery("proj")

class Bounded(Task):
    time_limit = timedelta(minutes=10)
    soft_time_limit = timedelta(minutes=9)

    def run(self):
        pass
""", note="timedeltas compared as seconds"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=300)
def sync_inventory(store_id):
    pass
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300, soft_time_limit=270)
def sync_inventory(store_id):
    pass
""", message="`soft_time_limit=300` is not below `time_limit=300`"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(
    task_time_limit=60 * 10,
    task_soft_time_limit=60 * 15,
)
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def sync_inventory(store_id):
    pass
""",
        }, expect=[("proj/celery.py", 6)], fixed={"proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(
    task_time_limit=60 * 10,
    task_soft_time_limit=540,
)
"""}, note="the app's configuration, reported where the soft setting is written"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class LimitedTask(Task):
    time_limit = 120
    soft_time_limit = 180
""",
            "proj/tasks.py": """
from proj.celery import app, LimitedTask

@app.task(base=LimitedTask)
def resize(image_id):
    pass

@app.task(base=LimitedTask)
def crop(image_id):
    pass
""",
        }, expect=[("proj/celery.py", 7)], fixed={"proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class LimitedTask(Task):
    time_limit = 120
    soft_time_limit = 90
"""}, note="a base class used by two tasks is reported once"),
        Invalid("""
from datetime import timedelta
from celery import Celery

app = Celery("proj")

@app.task(
    time_limit=timedelta(minutes=5),
    soft_time_limit=timedelta(minutes=6),
)
def export():
    pass
""", expect=8, note="a timedelta is not a number in place: no fix"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_TASK_TIME_LIMIT = 1800
CELERY_TASK_SOFT_TIME_LIMIT = 3600
""",
        }, expect=[("proj/settings.py", 2)], fixed={"proj/settings.py": """
CELERY_TASK_TIME_LIMIT = 1800
CELERY_TASK_SOFT_TIME_LIMIT = 1620
"""}, note="Django CELERY_* settings loaded by the app"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if task.profile is None or task.profile.soft_time_limit is None:
                continue  # only frameworks with a soft limit beside the hard one
            for level_name, level in task.levels.items():
                soft, hard = level.get("soft_time_limit"), level.get("time_limit")
                if soft is None or hard is None:
                    continue
                if level_name == "decorator":
                    if soft.source != hard.source:  # a wrapper's default and the decorator's own keyword
                        continue
                    where_text = "in the same decorator" if soft.source == "decorator" else \
                        f"in the defaults of `{task.wrapper}`"
                else:
                    where_text = f"on class `{level_name.removeprefix('class ').rpartition('.')[2]}`"
                self._compare(ctx, soft, hard, "soft_time_limit", "time_limit", where_text)
        for app in ctx.project.apps:
            soft, hard = app.settings.get("task_soft_time_limit"), app.settings.get("task_time_limit")
            if soft is None or hard is None:
                continue
            self._compare(ctx, soft, hard, "task_soft_time_limit", "task_time_limit",
                          f"in the configuration of `{app.qualified}`")

    def _compare(self, ctx: RuleContext, soft: Resolved, hard: Resolved, soft_name: str, hard_name: str,
                 where_text: str) -> None:
        if soft.keyword is None or soft.file is None or not soft.known or not hard.known:
            return
        soft_s, hard_s = seconds(soft.value), seconds(hard.value)
        if soft_s is None or hard_s is None or hard_s <= 0 or math.isinf(hard_s) or soft_s < hard_s:
            return
        fix = None
        if _is_number_literal(soft.keyword.value) and soft.env is None:
            new = number_text(soft_limit_below(hard_s))
            fix = ctx.fix(soft.file, f"Set `{soft_name}` to {new}", [replace_value(soft.keyword, new)])
        env_note = ""
        if soft.env or hard.env:
            env_note = f" (`{soft_name}` from {where(soft)}, `{hard_name}` from {where(hard)})"
        ctx.report(soft.file, soft.keyword.span,
                   f"`{soft_name}={number_text(soft_s)}` is not below `{hard_name}={number_text(hard_s)}` "
                   f"{where_text}{env_note}: the hard limit kills the worker child before "
                   f"`SoftTimeLimitExceeded` lets the task clean up", fix=fix)
