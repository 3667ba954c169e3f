from __future__ import annotations

from qlint.fixers.calls import replace_value
from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class WorkerWithoutChildRecycling(Rule):
    """## What it does
    Checks for Celery apps whose workers run the prefork pool (the default) with neither
    `worker_max_tasks_per_child` nor `worker_max_memory_per_child` in the app's
    configuration (`app.conf`, `Celery(...)`, a `config_from_object` module or Django's
    `CELERY_*` settings). Reported once, on the `Celery(...)` call.

    ## Why is this bad?
    Both settings default to `None`: a prefork child process lives as long as the worker.
    CPython rarely returns freed memory to the operating system, so every leak, cache and
    fragmented heap a task leaves behind stays in the child; over days the worker's
    memory only grows, until the container is OOM-killed mid-task. Celery's optimisation
    guide names these two settings as the remedy: the pool replaces a child after a number
    of tasks or once it exceeds a resident-memory bound, between tasks.

    ## Known problems
    This is the configuration side of the rule. When a worker command in the project's
    manifests that runs the app passes `--max-tasks-per-child`/`--max-memory-per-child`,
    or every such worker runs a pool without child processes (`-P threads`), the app is not
    reported; reporting each worker command that lacks the flags comes with the manifest
    side of the rule (issue 5). Worker commands in shell scripts are not read, so a project
    that recycles only there is reported on its app. An app whose
    configuration qlint cannot read completely (a factory, `config_from_envvar`,
    `**kwargs`, a settings module assembled at run time) and an app with no tasks are not
    reported.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="redis://redis:6379/0")
    app.conf.task_acks_late = True
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj", broker="redis://redis:6379/0")
    app.conf.task_acks_late = True
    app.conf.worker_max_tasks_per_child = 1000
    ```

    ## Per framework
    - **Celery** only: the prefork pool (`worker_pool` unset, `"prefork"` or `"processes"`)
      with no recycling setting. The other pools cannot recycle (QLT405). Django:
      `CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000` in the settings module the app reads.

    ## Fix safety
    The fix writes `worker_max_tasks_per_child = <max-tasks-per-child>` (1000 unless
    configured) where the app's configuration lives, beside the settings it already has:
    `CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000` in the Django settings module the app reads
    with the `CELERY` namespace (after its last top-level `CELERY_` setting, or at its end),
    the same in a `config_from_object` module, after an `app.conf.<key> = ...` assignment,
    as a keyword of `app.conf.update(...)` or `Celery(...)`, else as
    `app.conf.worker_max_tasks_per_child = 1000` right after `app = Celery(...)` (Celery keeps
    settings written on `app.conf` before `config_from_object`). The finding stays on the app;
    its fix may edit another file. A new line is only written at the top level of a module
    (under an `if` it would be conditional). It is unsafe: child processes are now
    replaced periodically, which costs a fork and the app's import time, and per-process
    state (caches, connections) is rebuilt.

    ## Options
    - `max-tasks-per-child`: the value the fix writes.

    ## References
    - [Celery: Memory usage](https://docs.celeryq.dev/en/stable/userguide/optimizing.html#memory-usage)
    - [Celery: worker_max_tasks_per_child](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-max-tasks-per-child)
    - [Celery: Max tasks per child setting](https://docs.celeryq.dev/en/stable/userguide/workers.html#max-tasks-per-child-setting)
    """

    code = "QLT401"
    name = "worker-without-child-recycling"
    summary = "Prefork worker with neither `worker_max_tasks_per_child` nor `worker_max_memory_per_child`"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery",)

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=60)
def ping():
    pass
""",
            "bin/run-worker.sh": """#!/bin/sh
set -e
exec celery -A proj worker --loglevel INFO \\
    --max-tasks-per-child=${MAX_TASKS:-25}
""",
        }, note="a shell script that starts the worker passes the flag"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_memory_per_child = 400_000

@app.task
def resize(image_id):
    pass
""", note="recycling by memory is enough"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "threads"

@app.task
def resize(image_id):
    pass
""", note="the thread pool has no child processes to recycle"),
        Valid("""
from celery import Celery

app = Celery("proj")
""", note="an app with no tasks (a client that only sends tasks elsewhere)"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_WORKER_MAX_TASKS_PER_CHILD = 500
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def resize(image_id):
    pass
""",
        }, note="set in Django settings"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")

@app.task
def resize(image_id):
    pass
""",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker --max-tasks-per-child=200
""",
        }, note="recycling on the worker's command line"),
        Valid("""
from celery import Celery

app = Celery("proj", **CELERY_OPTIONS)

@app.task
def resize(image_id):
    pass
""", note="configuration qlint cannot read"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.config_from_envvar("CELERY_CONFIG_MODULE")

@app.task
def resize(image_id):
    pass
""", note="configuration from a module named by an environment variable"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
app.conf.task_acks_late = True

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")
app.conf.task_acks_late = True
app.conf.worker_max_tasks_per_child = 1000

@app.task
def resize(image_id):
    pass
""", message="never replaced"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
DEBUG = False
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True
if DEBUG:
    CELERY_TASK_ALWAYS_EAGER = False
TIME_ZONE = "UTC"
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def resize(image_id):
    pass
""",
        }, expect=[("proj/celery.py", 3)], fixed={"proj/settings.py": """
DEBUG = False
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000
if DEBUG:
    CELERY_TASK_ALWAYS_EAGER = False
TIME_ZONE = "UTC"
"""}, note="Django settings: reported on the app, fixed in the settings module it reads (not under the `if`)"),
        Invalid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0", task_acks_late=True)

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery(
    "proj",
    broker="redis://redis:6379/0",
    task_acks_late=True,
    worker_max_tasks_per_child=1000,
)

@app.task
def resize(image_id):
    pass
""", note="settings passed to Celery(...): the setting joins them"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.update(
    broker_url="redis://redis:6379/0",
    worker_pool="prefork",
)

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.update(
    broker_url="redis://redis:6379/0",
    worker_pool="prefork",
    worker_max_tasks_per_child=1000,
)

@app.task
def resize(image_id):
    pass
""", note="the prefork pool named explicitly; the setting joins conf.update(...)"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = 1000

@app.task
def resize(image_id):
    pass
""", note="no configuration written anywhere: the setting goes right after the app"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = None

def configure():
    app.conf.task_acks_late = True

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = 1000

def configure():
    app.conf.task_acks_late = True

@app.task
def resize(image_id):
    pass
""", note="None sets nothing: the fix gives it a value"),
        Invalid("""
from celery import Celery

app = Celery("proj")

def configure():
    app.conf.task_acks_late = True

@app.task
def resize(image_id):
    pass
""", expect=3, fixed="""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = 1000

def configure():
    app.conf.task_acks_late = True

@app.task
def resize(image_id):
    pass
""", note="a setting inside a function is no place for the new one: it goes after the app"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for app in project.apps:
            if not app.config_complete or not cb.has_tasks(project, app):
                continue
            pool = cb.pool(app)
            if cb.recycles(pool.value) is not True:
                continue
            workers = cb.workers_running(project, app)
            if any(cb.worker_flag(w, flag) is not None for w in workers for flag in cb.RECYCLING_FLAGS):
                continue  # recycling on the command line: worker commands are judged one by one there
            if workers and all(cb.recycles(cb.worker_flag(w, cb.POOL_FLAG)) is False for w in workers):
                continue  # every worker runs a pool without child processes
            if any(key in app.settings and app.settings[key].value is not None for key in cb.RECYCLING_SETTINGS):
                continue
            pool_text = "the prefork pool (the default)" if pool.source == "default" else \
                f"the `{pool.value}` pool ({pool.source})"
            ctx.report(app.file, app.call.span,
                       f"Celery app `{app.qualified}` runs {pool_text} with neither "
                       f"`{cb.RECYCLING_SETTINGS[0]}` nor `{cb.RECYCLING_SETTINGS[1]}`: its worker processes are "
                       "never replaced, so memory that tasks leak or fragment accumulates until the worker is "
                       "restarted or OOM-killed", fix=self._fix(ctx, app))

    def _fix(self, ctx: RuleContext, app):
        value = str(ctx.settings.max_tasks_per_child)
        key = cb.RECYCLING_FIX_SETTING
        written = app.settings.get(key)
        if written is not None and written.keyword is not None and written.file is app.file and \
                written.keyword.value.kind == "const":
            return ctx.fix(app.file, f"Set `{key}` to {value}", [replace_value(written.keyword, value)])
        placed = cb.setting_edits(ctx.project, app, [(key, value)], lambda facts: ctx.sources.get(facts.path),
                                  ctx.line_length)
        if placed is None:
            return None
        edits, path, written = placed
        return ctx.fix(app.file, f"Write `{written[0]}` in `{ctx.display(path)}`", edits)
