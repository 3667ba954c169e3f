from __future__ import annotations

import math

from qlint.fixers.calls import add_keywords, replace_value
from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.model import App, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import number_text, written_on_task


@register
class PrefetchWithLongTasks(Rule):
    """## What it does
    Checks for Celery apps with tasks that may run 300 s or more (an effective time limit of
    at least 300 s, written on the task or the app's `task_time_limit`) whose workers prefetch
    more than one message per
    process: `worker_prefetch_multiplier` left at its default of 4 or set above 1, without
    `worker_disable_prefetch` on a Redis broker. A multiplier of `0` is reported whatever
    the tasks.

    ## Why is this bad?
    Each worker process reserves `worker_prefetch_multiplier` messages ahead of the one it
    runs. Behind a task that runs for ten minutes, three more wait in that worker, invisible
    to the idle workers next to it: latency grows with the length of the longest task, and
    priorities are served out of order. Celery's optimisation guide: "If you have many tasks
    with a long duration you want the multiplier value to be *one*". A multiplier of `0`
    removes the limit: one worker takes every message in the queue.

    ## Known problems
    This is the configuration side of the rule: when every worker command in the project's
    manifests that runs the app passes `--prefetch-multiplier`, the configuration is not
    judged; judging the flags themselves comes with the manifest side (issue 5). A long
    task routed to a queue of its own whose worker alone passes `--prefetch-multiplier=1`
    is still reported on the configuration. An app-wide `task_time_limit` counts as every
    task's limit (RULES.md's "effective"): an app that lets its tasks run 30 minutes is judged
    as one whose tasks may, though most of them may finish in seconds.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="redis://redis:6379/0")

    @app.task(time_limit=1800, soft_time_limit=1700)
    def rebuild_search_index():
        ...
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj", broker="redis://redis:6379/0")
    app.conf.worker_prefetch_multiplier = 1
    app.conf.task_acks_late = True

    @app.task(time_limit=1800, soft_time_limit=1700)
    def rebuild_search_index():
        ...
    ```

    ## Per framework
    - **Celery** only: `worker_prefetch_multiplier` (Django: `CELERY_WORKER_PREFETCH_MULTIPLIER`,
      old name `CELERYD_PREFETCH_MULTIPLIER`), reported where it is written, or once on the
      `Celery(...)` call when nothing sets it. `worker_disable_prefetch = True` (Celery >= 5.6)
      counts only with a Redis broker: Celery ignores it elsewhere.

    ## Fix safety
    The fix sets the multiplier to `1` where it is written as a literal, or, when nothing sets
    it, writes `worker_prefetch_multiplier = 1` beside the app's other settings in the app's
    own module (an `app.conf.<key> = ...` assignment, `app.conf.update(...)`, `Celery(...)`).
    It is unsafe: short tasks lose the throughput prefetching gave them, and with early
    acknowledgement each process still reserves one message (add `task_acks_late = True`
    to reserve none).

    ## References
    - [Celery: Prefetch limits](https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits)
    - [Celery: worker_prefetch_multiplier](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-prefetch-multiplier)
    - [Celery: worker_disable_prefetch](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-disable-prefetch)
    """

    code = "QLT404"
    name = "prefetch-with-long-tasks"
    summary = "Workers prefetch several messages per process while tasks run for minutes"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_prefetch_multiplier = 1

@app.task(time_limit=1800)
def rebuild_index():
    pass
""", note="a multiplier of 1"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=120)
def send_email(user_id):
    pass
""", note="short tasks: prefetching is what they want"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
app.conf.worker_disable_prefetch = True

@app.task(time_limit=1800)
def rebuild_index():
    pass
""", note="prefetch disabled on a Redis broker"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=1800)
def rebuild_index():
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
          image: proj
          args: ["celery", "-A", "proj", "worker", "--prefetch-multiplier=1"]
""",
        }, note="every worker sets the multiplier on its command line"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_prefetch_multiplier = PREFETCH

@app.task(time_limit=1800)
def rebuild_index():
    pass
""", note="a multiplier qlint cannot compute"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_time_limit = 1800

@app.task
def export(report_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj", broker="amqp://rabbit//")
app.conf.task_time_limit = 1800
app.conf.worker_prefetch_multiplier = 1

@app.task
def export(report_id):
    pass
""", message="`task_time_limit` of the app", note="the app-wide limit is the tasks' effective limit (RULES.md: "
                                                 "\"effective\" merges every place a value comes from)"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_prefetch_multiplier = 8

@app.task(time_limit=1800)
def rebuild_index():
    pass
""", expect=4, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.worker_prefetch_multiplier = 1

@app.task(time_limit=1800)
def rebuild_index():
    pass
""", message="rebuild_index` may run 1800 s"),
        Invalid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
app.conf.task_acks_late = True

@app.task(soft_time_limit=600)
def export_report(report_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1

@app.task(soft_time_limit=600)
def export_report(report_id):
    pass
""", message="Celery's default"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "amqp://rabbitmq//"
CELERY_WORKER_PREFETCH_MULTIPLIER = 0
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def send_email(user_id):
    pass
""",
        }, expect=[("proj/settings.py", 2)], fixed={"proj/settings.py": """
CELERY_BROKER_URL = "amqp://rabbitmq//"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
"""}, message="no limit", note="0 is reported whatever the tasks"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj", broker="amqp://rabbitmq//")
app.conf.worker_disable_prefetch = True

class Rebuild(Task):
    time_limit = 900

    def run(self):
        pass

app.register_task(Rebuild())
""", expect=3, fixed="""
from celery import Celery, Task

app = Celery("proj", broker="amqp://rabbitmq//")
app.conf.worker_disable_prefetch = True
app.conf.worker_prefetch_multiplier = 1

class Rebuild(Task):
    time_limit = 900

    def run(self):
        pass

app.register_task(Rebuild())
""", message="ignores `worker_disable_prefetch`", note="disable-prefetch is Redis-only"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for app in project.apps:
            multiplier = cb.prefetch(app)
            value = multiplier.value
            if not isinstance(value, int) or isinstance(value, bool) or value == 1 or value < 0:
                continue
            written = multiplier.keyword is not None and multiplier.file is not None
            if not written and not app.config_complete:
                continue
            workers = cb.workers_running(project, app)
            if workers and all(cb.worker_flag(w, cb.PREFETCH_FLAG) is not None for w in workers):
                continue  # every worker sets its multiplier on the command line
            brk = cb.broker(app, ctx.text)
            disabled = cb.prefetch_disabled(app, brk)
            if disabled is not False:
                continue
            ignored = ""
            setting = app.settings.get(cb.DISABLE_PREFETCH_SETTING)
            if setting is not None and setting.value:
                ignored = f"; Celery ignores `{cb.DISABLE_PREFETCH_SETTING}` on a {brk.title} broker"
            if value == 0:
                what = (f"`{cb.PREFETCH_SETTING}` of 0 ({multiplier.source}) puts no limit on prefetching: one "
                        "worker reserves every message in the queue while the others sit idle")
            else:
                long_tasks = self._long_tasks(project, app)
                if not long_tasks:
                    continue
                task, seconds, option = long_tasks[0]
                more = f", as may {len(long_tasks) - 1} more task{'s' if len(long_tasks) > 2 else ''}" \
                    if len(long_tasks) > 1 else ""
                default = " (Celery's default)" if multiplier.source == "default" else f" ({multiplier.source})"
                what = (f"task `{task.name}` may run {number_text(seconds)} s ({option}){more}, yet with "
                        f"`{cb.PREFETCH_SETTING}` of {value}{default} each worker process reserves {value} messages "
                        "that wait behind a long task while other workers sit idle")
            message = what + ignored
            if written:
                fix = None
                if multiplier.keyword.value.kind == "const" and not multiplier.env:
                    fix = ctx.fix(multiplier.file, "Set the multiplier to 1", [replace_value(multiplier.keyword, "1")])
                ctx.report(multiplier.file, multiplier.keyword.span, message, fix=fix)
            else:
                ctx.report(app.file, app.call.span, f"Celery app `{app.qualified}`: {message}",
                           fix=self._add_setting(ctx, app))

    @staticmethod
    def _long_tasks(project, app: App) -> list[tuple[Task, float, str]]:
        found = []
        for task in project.tasks:
            if app not in task.apps:
                continue
            hard = task.norm.get("time_limit")
            if hard is not None and isinstance(hard.value, (int, float)) and hard.value < cb.LONG_TASK_SECONDS:
                continue  # stopped before it gets long, whatever its soft limit says
            for option in cb.TIME_LIMIT_OPTIONS:
                limit = task.option(option)
                norm = task.norm.get(option)
                if limit is None or norm is None or limit.keyword is None:
                    continue
                app_wide = limit.source.startswith("setting ")  # the app's limit counts for its tasks
                if not written_on_task(limit) and not app_wide:
                    continue
                if isinstance(norm.value, (int, float)) and not math.isinf(norm.value):
                    if norm.value >= cb.LONG_TASK_SECONDS:
                        label = f"`{limit.source.removeprefix('setting ')}` of the app" if app_wide else \
                            f"`{option}={number_text(norm.value)}`"
                        found.append((task, float(norm.value), label))
                    break  # the hard limit decides when there is one
        return sorted(found, key=lambda f: -f[1])

    @staticmethod
    def _add_setting(ctx: RuleContext, app: App):
        key, value = cb.PREFETCH_SETTING, "1"
        for spot in cb.config_spots(ctx.project, app):
            if spot.file is not app.file:
                continue  # a fix edits the file its finding is in
            src = ctx.source(spot.file)
            if spot.style == "call" and spot.call is not None:
                if spot.call.has_star:
                    continue
                edits = add_keywords(src, spot.call, [(key, value)])
            else:
                placed = spot.insertion(src.utf8, src.newline, key, value)
                if placed is None:
                    continue
                edits = [Edit(placed[0], placed[0], placed[1])]
            return ctx.fix(spot.file, f"Set `{key}` to 1", edits)
        return None
