from __future__ import annotations

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import where


@register
class RecyclingIgnoredByPool(Rule):
    """## What it does
    Checks for `worker_max_tasks_per_child` or `worker_max_memory_per_child` in the
    configuration of a Celery app whose `worker_pool` is `threads`, `gevent`, `eventlet` or
    `solo`.

    ## Why is this bad?
    Only the prefork pool has child processes to replace. The other pools run every task
    in the worker's own process (in threads or greenlets) and silently ignore both settings:
    the memory bound the configuration promises never applies, and a leaking worker grows
    until it is OOM-killed, taking every task it runs with it.

    ## Known problems
    The pool is read from the Python configuration (`worker_pool`); when every worker
    command in the project's manifests that runs the app picks a prefork pool (`-P prefork`),
    nothing is reported. Recycling flags next to `-P gevent` on a command line come with
    the manifest side (issue 5).

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.worker_pool = "gevent"
    app.conf.worker_max_memory_per_child = 300_000
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.worker_pool = "prefork"
    app.conf.worker_max_memory_per_child = 300_000
    ```
    or keep the pool and bound the worker's memory from outside (a container memory limit
    with a restart policy).

    ## Per framework
    - **Celery** only: `worker_pool` (Django: `CELERY_WORKER_POOL`) of `threads`, `gevent`,
      `eventlet` or `solo` with `worker_max_tasks_per_child`/`worker_max_memory_per_child`
      (Django: `CELERY_WORKER_MAX_TASKS_PER_CHILD`; without a namespace the old
      `CELERYD_MAX_TASKS_PER_CHILD`).

    ## Fix safety
    There is no fix: switching pools changes how tasks run (I/O-bound code written for
    gevent may need it), and dropping the setting hides the intent.

    ## References
    - [Celery: Max tasks per child setting](https://docs.celeryq.dev/en/stable/userguide/workers.html#max-tasks-per-child-setting)
    - [Celery: Max memory per child setting](https://docs.celeryq.dev/en/stable/userguide/workers.html#max-memory-per-child-setting)
    - [Celery: worker_pool](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-pool)
    """

    code = "QLT405"
    name = "recycling-ignored-by-pool"
    summary = "Child recycling settings with a pool that has no child processes"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = 1000
""", note="the default prefork pool recycles"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "processes"
app.conf.worker_max_memory_per_child = 300_000
""", note="`processes` is an alias of prefork"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"
app.conf.worker_max_tasks_per_child = None
""", note="None sets no recycling"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = POOL
app.conf.worker_max_tasks_per_child = 100
""", note="a pool qlint cannot compute"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"
app.conf.worker_max_memory_per_child = 300_000
""", expect=5, message="`gevent` pool"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_MAX_TASKS_PER_CHILD = 100
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 200_000
""",
        }, expect=[("proj/settings.py", 2), ("proj/settings.py", 3)], note="Django settings"),
        Invalid("""
from celery import Celery

app = Celery(
    "proj",
    worker_pool="solo",
    worker_max_tasks_per_child=50,
)
""", expect=6),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_WORKER_POOL = "gevent"
CELERYD_MAX_TASKS_PER_CHILD = 100
""",
        }, expect=[("proj/settings.py", 2)], note="an old name read through the CELERY namespace"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for app in ctx.project.apps:
            pool = cb.pool(app)
            if cb.recycles(pool.value) is not False:
                continue
            workers = cb.workers_running(ctx.project, app)
            if workers and all(cb.recycles(cb.worker_flag(w, cb.POOL_FLAG)) for w in workers):
                continue  # every worker picks a prefork pool on its command line
            for key, setting in cb.recycling_settings(app):
                if setting.keyword is None or setting.file is None:
                    continue
                ctx.report(setting.file, setting.keyword.span,
                           f"`{key}` ({where(setting)}) is ignored: the `{pool.value}` pool ({where(pool)}) runs "
                           "tasks inside the worker's own process and has no child processes to replace; only "
                           "the prefork pool recycles")
