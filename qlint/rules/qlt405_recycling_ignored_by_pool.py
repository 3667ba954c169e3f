from __future__ import annotations

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import pool_choice, workers_of
from qlint.rules._common import where


@register
class RecyclingIgnoredByPool(Rule):
    """## What it does
    Checks for child recycling that the worker's pool ignores: `worker_max_tasks_per_child` or
    `worker_max_memory_per_child` in a Celery app's configuration, or `--max-tasks-per-child` /
    `--max-memory-per-child` on a worker's command line, with a `threads`, `gevent`, `eventlet`
    or `solo` pool, chosen by `worker_pool` or by the worker's `-P`/`--pool`.

    ## Why is this bad?
    Only the prefork pool has child processes to replace. The other pools run every task
    in the worker's own process (in threads or greenlets) and silently ignore both settings:
    the memory bound the configuration promises never applies, and a leaking worker grows
    until it is OOM-killed, taking every task it runs with it.

    ## Known problems
    The pool of a worker whose command line holds words qlint cannot read (`$WORKER_ARGS`,
    `-P $(POOL)`) is unknown: that worker is not judged.

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
    - **Celery** only (celery/worker/components.py hands both values to the pool; only
      billiard's prefork pool reads them). The pool is the worker's `-P`/`--pool`, else
      `worker_pool` (Django: `CELERY_WORKER_POOL`), else prefork; since Celery 5.1 an explicit
      `-P prefork` is the command line's own default and still lets `worker_pool` choose, while
      `-P processes` does not. The recycling settings are `worker_max_tasks_per_child` /
      `worker_max_memory_per_child` (Django: `CELERY_WORKER_MAX_TASKS_PER_CHILD`; without a
      namespace the old `CELERYD_MAX_TASKS_PER_CHILD`) and the flags of the same names.
    - A flag is reported on the flag, wherever the command is written (Kubernetes, compose,
      Procfiles, the shell scripts a container runs): `-P threads --max-tasks-per-child=100`.
    - A setting is reported on the setting when every worker that reads it (the workers that run
      the app, less those that pass the same flag) runs a pool without children, or when no
      worker is found and the configured pool has none; when only some of them do, on each of
      those workers (its `-P` flag, else its command): the others still recycle.
    Workers in a development stack (a compose service running the mounted source, a reloader)
    are not judged.

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
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"
app.conf.worker_max_tasks_per_child = 100
""",
            "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker -P processes --max-memory-per-child=300000
  crawler:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker -P $${CRAWLER_POOL} --max-tasks-per-child=50
  dev:
    build: .
    command: celery -A proj worker -P threads --max-tasks-per-child=10
    volumes:
      - ./:/app
""",
        }, note="-P processes is prefork; a pool from the environment; a developer's stack"),
        Valid({"k8s/worker.yaml": """
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
          args: ["celery", "-A", "proj", "worker", "-P", "threads", "--max-tasks-per-child=0"]
"""}, note="0 asks for no recycling"),
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
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "deploy/crawler.yaml": """
# Source: proj/templates/crawler.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-crawler
spec:
  template:
    spec:
      containers:
        - name: crawler
          image: "registry.example.com/proj:1.4.2"
          args:
            - celery
            - -A
            - proj
            - worker
            - -P
            - threads
            - --max-tasks-per-child=100
""",
            "docker-compose.yml": """
services:
  fetcher:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker --pool=gevent --max-memory-per-child 300000 -c 200
""",
        }, expect=[("deploy/crawler.yaml", 19), ("docker-compose.yml", 4)],
            message="runs tasks inside the worker's own process",
            note="recycling flags next to a pool without children on the command line"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "amqp://rabbitmq//"
CELERY_WORKER_POOL = "threads"
""",
            "Procfile": "web: gunicorn proj.wsgi\nworker: celery -A proj worker --max-memory-per-child=200000\n",
        }, expect=[("Procfile", 2)], message="the `threads` pool (Django settings",
            note="the pool from the configuration, recycling from the command line"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_max_tasks_per_child = 500
""",
            "deploy/workers.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: "registry.example.com/proj:1.4.2"
          args: ["celery", "-A", "proj", "worker", "-Q", "celery"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-crawler
spec:
  template:
    spec:
      containers:
        - name: crawler
          image: "registry.example.com/proj:1.4.2"
          args: ["celery", "-A", "proj", "worker", "-Q", "crawl", "-P", "gevent", "-c", "100"]
""",
        }, expect=[("deploy/workers.yaml", 23)], message="ignores the app's `worker_max_tasks_per_child`",
            note="recycling from the configuration, the pool from one worker's command line: reported on that "
                 "worker, the prefork one still recycles"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "gevent"
app.conf.worker_max_tasks_per_child = 100
""",
            "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker -P prefork
""",
        }, expect=[("proj/celery.py", 5)], message="the `gevent` pool (app.conf; `-P prefork` defers to it",
            note="Celery >= 5.1: -P prefork is the CLI's default and lets worker_pool choose"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for app in project.apps:
            workers = [w for w in workers_of(project, app) if not w.development]
            choices = {id(w): pool_choice(w, [app]) for w in workers}
            for worker in workers:
                self._flags(ctx, worker, choices[id(worker)])
            self._settings(ctx, app, workers, choices)

    @staticmethod
    def _flags(ctx: RuleContext, worker, choice) -> None:
        """``--max-tasks-per-child``/``--max-memory-per-child`` on a worker whose pool has no children."""
        if choice is None or cb.recycles(choice.kind) is not False:
            return
        for key in worker.command.cli.recycling_flags:
            flag = worker.command.flags.get(key)
            if flag is None or not _sets(flag.value):
                continue
            facts, span = worker.flag_site(key)
            ctx.report(facts, span,
                       f"{_written(flag)} on `{worker.command.program}` in {worker.place} is ignored: the "
                       f"`{choice.kind}` pool ({_pool_where(worker, choice)}) runs tasks inside the worker's own "
                       "process and has no child processes to replace; only the prefork pool recycles")

    @staticmethod
    def _settings(ctx: RuleContext, app, workers, choices) -> None:
        """``worker_max_tasks_per_child``/``worker_max_memory_per_child`` where the workers that read them
        run a pool without children: on the setting when every one of them does (or no worker is seen
        and the configured pool has none), else on each worker that ignores it."""
        settings = [(key, setting) for key, setting in cb.recycling_settings(app)
                    if setting.keyword is not None and setting.file is not None]
        if not settings:
            return
        if not workers:
            pool = cb.pool(app)
            if cb.recycles(pool.value) is False:
                for key, setting in settings:
                    ctx.report(setting.file, setting.keyword.span,
                               f"`{key}` ({where(setting)}) is ignored: the `{pool.value}` pool ({where(pool)}) runs "
                               "tasks inside the worker's own process and has no child processes to replace; only "
                               "the prefork pool recycles")
            return
        ignored_by: dict[int, list[str]] = {}
        for key, setting in settings:
            flag_key = key.removeprefix("worker_")
            readers = [w for w in workers if flag_key not in w.command.flags]  # a flag of its own wins
            ignoring = [w for w in readers if choices[id(w)] is not None and cb.recycles(choices[id(w)].kind) is False]
            if not ignoring:
                continue
            if len(ignoring) == len(readers):
                pools = sorted({f"the `{choices[id(w)].kind}` pool ({_pool_where(w, choices[id(w)], here=False)})"
                                for w in ignoring})
                subject = "the worker that runs the app uses" if len(ignoring) == 1 else \
                    "the workers that run the app use"
                what = f"{subject} {' and '.join(pools)}"
                ctx.report(setting.file, setting.keyword.span,
                           f"`{key}` ({where(setting)}) is ignored: {what}, which run{'s' if len(pools) == 1 else ''} "
                           "tasks inside the worker's own process and ha"
                           f"{'s' if len(pools) == 1 else 've'} no child processes to replace; only the prefork pool "
                           "recycles")
                continue
            for worker in ignoring:
                ignored_by.setdefault(id(worker), []).append(f"`{key}` ({where(setting)})")
        for worker in workers:
            keys = ignored_by.get(id(worker))
            if not keys:
                continue
            choice = choices[id(worker)]
            facts, span = worker.flag_site(worker.command.cli.kind_flag) if choice.flag is not None else \
                (worker.workload.file, worker.anchor())
            ctx.report(facts, span,
                       f"`{worker.command.program}` in {worker.place} ignores the app's {' and '.join(keys)}: its "
                       f"`{choice.kind}` pool ({_pool_where(worker, choice)}) runs tasks inside the worker's own "
                       "process and has no child processes to replace; only the prefork pool recycles")


def _sets(value: str | None) -> bool:
    """A recycling flag's value that asks for recycling (``0`` and an empty value do not)."""
    text = (value or "").strip()
    return bool(text) and text != "0"


def _written(flag) -> str:
    text = flag.token.text
    return f"`{text}`" if "=" in text or not text.startswith("--") and len(text) > 2 else f"`{text} {flag.value}`"


def _pool_where(worker, choice, here: bool = True) -> str:
    """Where the pool is chosen: the flag (with its worker unless the finding is on it), or the setting
    (and the ``-P prefork`` that lets it choose)."""
    if choice.setting is not None:
        deferring = f"; {_written(choice.flag)} defers to it since Celery 5.1" \
            if choice.flag is not None else ""
        return f"{where(choice.setting)}{deferring}"
    if choice.flag is not None:
        return _written(choice.flag) if here else f"{_written(choice.flag)} in {worker.place}"
    return "Celery's default"
