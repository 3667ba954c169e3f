from __future__ import annotations

import math
import re

from qlint.frameworks.celery_failures import (
    acks_late,
    app_tasks,
    effective,
    project_version,
    rename_worker_lost,
    supports,
)
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.facts import FileFacts, Keyword
from qlint.lint.model import App, Resolved, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import where

SINCE = (5, 7)
FEATURE = "`retry_on_worker_lost`"


def _bounded_retry(task: Task, version) -> bool:
    """``retry_on_worker_lost`` is on and ``max_retries`` bounds it: no endless redelivery."""
    retry = effective(task, "retry_on_worker_lost", version)
    limit = task.norm.get("max_retries")
    return retry.value is True and limit is not None and isinstance(limit.value, (int, float)) and \
        math.isfinite(limit.value)


@register
class RedeliveryLoopOnWorkerLost(Rule):
    """## What it does
    Checks for `reject_on_worker_lost=True` on a Celery task (decorator, task class or base
    class) and `task_reject_on_worker_lost = True` in an app's configuration.

    ## Why is this bad?
    With `acks_late`, the option puts a task's message back on the queue whenever the
    worker process running it dies: killed by the kernel's OOM killer, a segfault in a C
    extension, a `SIGKILL` from the orchestrator. Nothing counts those redeliveries. A
    task whose input makes it run out of memory kills a worker process, is redelivered,
    kills the next one, and so on forever; Celery's own documentation warns that
    "enabling this can cause message loops". Without `acks_late` the option does nothing
    at all: the message was acked before the task started.

    Celery 5.7 adds `retry_on_worker_lost` (`task_retry_on_worker_lost`): the task is sent
    again through the retry path, so `max_retries` and `default_retry_delay` apply and the
    task fails once its retries are spent.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(acks_late=True, reject_on_worker_lost=True)
    def render_report(report_id):
        ...
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(acks_late=True, retry_on_worker_lost=True, max_retries=3)
    def render_report(report_id):
        ...
    ```

    ## Per framework
    - **Celery** only: `@app.task(reject_on_worker_lost=True)`,
      `class Base(Task): reject_on_worker_lost = True`, `task_reject_on_worker_lost = True`
      (also as `CELERY_TASK_REJECT_ON_WORKER_LOST` in Django settings the app loads). Not
      reported for a task that also has `retry_on_worker_lost=True` and a finite
      `max_retries` on Celery 5.7+, where the retry takes precedence and the reject only
      runs when the retry cannot be sent.

    ## Fix safety
    The fix renames the option to `retry_on_worker_lost` (`task_retry_on_worker_lost`,
    `CELERY_TASK_RETRY_ON_WORKER_LOST`), keeping its value. It is offered only when the
    project's Celery has the option: the version locked or pinned in `uv.lock`,
    `poetry.lock`, `Pipfile.lock`, `requirements*.txt`, `pyproject.toml` or `setup.cfg` (the
    nearest one above the file), and when none of them pins a version, the latest Celery
    qlint knows (5.7); the message says which version it assumed. It is not offered for a
    task with `max_retries=None`, which a retry would not bound either. The fix is unsafe:
    a task whose worker dies is now retried at most `max_retries` times (3 by default),
    after `default_retry_delay`, and then fails instead of being redelivered.

    ## References
    - [Celery: `task_reject_on_worker_lost`](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost)
    - [Celery: `Task.reject_on_worker_lost`](https://docs.celeryq.dev/en/stable/reference/celery.app.task.html#celery.app.task.Task.reject_on_worker_lost)
    - [Celery: What's new in 5.7](https://docs.celeryq.dev/en/main/history/whatsnew-5.7.html)
    """

    code = "QLT304"
    name = "redelivery-loop-on-worker-lost"
    summary = "`reject_on_worker_lost=True` redelivers a task that kills its worker forever"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(acks_late=True, reject_on_worker_lost=False)
def render_report(report_id):
    pass
""", note="explicitly off"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(acks_late=True, reject_on_worker_lost=True, retry_on_worker_lost=True, max_retries=2)
def render_report(report_id):
    pass
""", note="Celery 5.7 retries first, bounded by max_retries; the reject is only a fallback"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.task_acks_late = True
app.conf.task_retry_on_worker_lost = True

@app.task
def render_report(report_id):
    pass
""", note="the 5.7 option instead"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings.py": """
CELERY_TASK_REJECT_ON_WORKER_LOST = True
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def render_report(report_id):
    pass
""",
        }, note="Django settings no app loads are not Celery configuration"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.task_reject_on_worker_lost = True

@app.task(reject_on_worker_lost=False)
def render_report(report_id):
    pass
""", note="the only task turns the app's setting off"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(acks_late=True, reject_on_worker_lost=True)
def render_report(report_id):
    pass
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(acks_late=True, retry_on_worker_lost=True)
def render_report(report_id):
    pass
""", message="assuming Celery 5.7.0"),
        Invalid({
            "uv.lock": """
version = 1

[[package]]
name = "celery"
version = "5.6.3"
source = { registry = "https://pypi.org/simple" }
""",
            "proj/__init__.py": "",
            "proj/celery.py": """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def render_report(report_id):
    pass
""",
        }, expect=[("proj/settings.py", 2)], message="5.6.3",
            note="uv.lock pins Celery 5.6: no retry_on_worker_lost, so no fix"),
        Invalid({
            "requirements.txt": "celery>=5.7,<6\n",
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(task_reject_on_worker_lost=True)
""",
            "proj/tasks.py": """
from celery import Task

from proj.celery import app

class ReportTask(Task):
    reject_on_worker_lost = True

@app.task(base=ReportTask)
def render_report(report_id):
    pass

@app.task
def archive(report_id):
    pass
""",
        }, expect=[("proj/celery.py", 4), ("proj/tasks.py", 6)], fixed={"proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(task_retry_on_worker_lost=True)
""", "proj/tasks.py": """
from celery import Task

from proj.celery import app

class ReportTask(Task):
    retry_on_worker_lost = True

@app.task(base=ReportTask)
def render_report(report_id):
    pass

@app.task
def archive(report_id):
    pass
"""}, message="no effect", note="a setting and a base class; without acks_late both do nothing"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def render_report(report_id):
    pass
""", expect=7, message="max_retries=None", note="unbounded retries: no fix"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        # keyword -> (where it is written, the resolved value, the tasks it applies to, the app)
        found: dict[tuple[str, int], tuple[FileFacts, Resolved, list[Task], App | None]] = {}
        for app in project.apps:
            setting = app.settings.get("task_reject_on_worker_lost")
            if setting is not None and setting.value is True and setting.keyword is not None and setting.file:
                found.setdefault((setting.file.path, setting.keyword.span.start), (setting.file, setting, [], app))
        for task in project.tasks:
            resolved = task.options.get("reject_on_worker_lost")
            if resolved is None or resolved.value is not True or resolved.keyword is None or resolved.file is None \
                    or resolved.source == "task_annotations":
                continue
            key = (resolved.file.path, resolved.keyword.span.start)
            entry = found.setdefault(key, (resolved.file, resolved, [], None))
            entry[2].append(task)
        for facts, resolved, tasks, app in found.values():
            self._judge(ctx, facts, resolved, tasks, app)

    def _judge(self, ctx: RuleContext, facts: FileFacts, resolved: Resolved, tasks: list[Task], app: App | None):
        version = project_version(facts)
        if tasks and all(_bounded_retry(t, version) for t in tasks):
            return
        if not tasks:
            if app is not None and app_tasks(ctx.project, app):
                return  # every task of the app overrides the setting
            if app is not None and app.settings.get("task_retry_on_worker_lost") is not None and \
                    app.settings["task_retry_on_worker_lost"].value is True and (version is None or version >= SINCE):
                return
        keyword = resolved.keyword
        text = ctx.source(facts).utf8[keyword.span.start:keyword.span.end].decode("utf-8", "replace")
        written = text if "\n" not in text and len(text) <= 80 else f"{keyword.name}=True"
        subject = f"`{tasks[0].name}`" if len(tasks) == 1 else (
            f"{len(tasks)} tasks (`{tasks[0].name}`, ...)" if tasks else "the app's tasks")
        acks = [acks_late(t) for t in tasks]
        unbounded = [t for t in tasks if t.norm.get("max_retries") is not None and t.norm["max_retries"].value
                     == math.inf]
        check = supports(facts, SINCE, FEATURE)
        if acks and all(a.value is False for a in acks):
            source = "Celery's default" if acks[0].source == "default" else where(acks[0])
            message = (f"`{written}` has no effect on {subject}: without `acks_late` ({source}) the message "
                       "is acked before the task runs, so a lost worker leaves nothing to re-queue; with "
                       "`acks_late` it would redeliver a task that kills its worker forever")
        else:
            message = (f"`{written}` re-queues {subject} every time the worker process running it dies "
                       "(OOM kill, segfault), with no limit: a task that kills its worker is redelivered forever")
        fix = None
        if unbounded:
            message += (f"; `retry_on_worker_lost` would not help while `{unbounded[0].name}` has "
                        "`max_retries=None`")
        elif check.ok:
            message += (f"; `retry_on_worker_lost=True` retries it at most `max_retries` times instead ({check.note})")
            fix = self._fix(ctx, facts, keyword)
        else:
            message += f"; no fix: {check.note}"
        ctx.report(facts, keyword.span, message, fix=fix, statement=keyword.span)

    @staticmethod
    def _fix(ctx: RuleContext, facts: FileFacts, keyword: Keyword):
        src = ctx.source(facts)
        where_ = rename_worker_lost(src.utf8, keyword)
        if where_ is None:
            return None
        start, end, text = where_
        renamed = re.sub("reject", lambda m: "RETRY" if m.group(0).isupper() else "retry", keyword.name,
                         flags=re.IGNORECASE)
        return ctx.fix(facts, f"Rename `{keyword.name}` to `{renamed}`", [Edit(start, end, text)])
