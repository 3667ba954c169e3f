from __future__ import annotations

import math
import re

from qlint.fixers.calls import add_keywords, replace_value
from qlint.fixers.yaml import replace_argument
from qlint.frameworks import celery_brokers as cb
from qlint.frameworks.celery_failures import task_queues
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.model import App, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import may_run, tasks_of, workers_of
from qlint.rules._common import number_text, written_on_task

DISABLE_PREFETCH_FLAG = "disable_prefetch"  # ``celery worker --disable-prefetch`` (Celery >= 5.6)


@register
class PrefetchWithLongTasks(Rule):
    """## What it does
    Checks for Celery workers that prefetch more than one message per process while the tasks
    they run may take 300 s or more (an effective time limit of at least 300 s, written on the
    task or the app's `task_time_limit`; a task with a soft limit is expected to end at it, so
    `time_limit=300, soft_time_limit=270` is not a long task): `worker_prefetch_multiplier` left at its default of 4
    or set above 1, and a worker command line's `--prefetch-multiplier N` with `N` above 1,
    without prefetch disabled on a Redis broker. A multiplier of `0` in the configuration is
    reported whatever the tasks.

    ## Why is this bad?
    Each worker process reserves `worker_prefetch_multiplier` messages ahead of the one it
    runs. Behind a task that runs for ten minutes, three more wait in that worker, invisible
    to the idle workers next to it: latency grows with the length of the longest task, and
    priorities are served out of order. Celery's optimisation guide: "If you have many tasks
    with a long duration you want the multiplier value to be *one*". A multiplier of `0`
    removes the limit: one worker takes every message in the queue.

    ## Known problems
    Which tasks a worker runs is read from its `-A` and its `-Q` queues against the tasks'
    routes (`queue=`, `task_routes`, `task_default_queue`); a task on the default queue counts
    for every worker. A worker whose command line holds words qlint cannot read
    (`$WORKER_ARGS`) may set the multiplier there: the tasks it runs are not judged on the
    configuration's behalf. An app-wide `task_time_limit` counts as every task's limit
    (RULES.md's "effective"): an app that lets its tasks run 30 minutes is judged as one whose
    tasks may, though most of them may finish in seconds.

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
    - **Celery** only. The configuration: `worker_prefetch_multiplier` (Django:
      `CELERY_WORKER_PREFETCH_MULTIPLIER`, old name `CELERYD_PREFETCH_MULTIPLIER`), reported where
      it is written, or once on the `Celery(...)` call when nothing sets it. It is judged for the
      long tasks that some worker runs without a `--prefetch-multiplier` of its own, and for those
      that no worker qlint finds surely runs (whatever runs them reads the setting): all of them
      when the project's manifests, Procfiles and scripts start no worker of the app.
    - The command line, wherever it is written (Kubernetes `command`/`args`, compose, Procfiles,
      the shell scripts a container runs): `celery -A proj worker --prefetch-multiplier=4` on a
      worker that runs a long task is reported on the flag. Celery's command line (5.0 and
      later) replaces `--prefetch-multiplier=0` with the app's `worker_prefetch_multiplier`, so a
      `0` there is judged as that value. `--prefetch-multiplier=1` on a worker makes the
      configuration irrelevant for the tasks it runs.
    - `worker_disable_prefetch = True` or `--disable-prefetch` (Celery >= 5.6) count only with a
      Redis broker: Celery ignores them elsewhere. Workers in a development stack (a compose
      service running the mounted source, a reloader) are not judged.

    ## Fix safety
    The fix sets the multiplier to `1`: the flag's value on the command line, the setting where
    it is written as a literal, or, when nothing sets it, `worker_prefetch_multiplier = 1`
    beside the app's other settings in the app's own module (an `app.conf.<key> = ...`
    assignment, `app.conf.update(...)`, `Celery(...)`). It is unsafe: short tasks lose the
    throughput prefetching gave them, and with early acknowledgement each process still
    reserves one message (add `task_acks_late = True` to reserve none).

    ## References
    - [Celery: Prefetch limits](https://docs.celeryq.dev/en/stable/userguide/optimizing.html#prefetch-limits)
    - [Celery: worker_prefetch_multiplier](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-prefetch-multiplier)
    - [Celery: worker_disable_prefetch](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-disable-prefetch)
    - [Celery: `celery worker` options](https://docs.celeryq.dev/en/stable/reference/cli.html#celery-worker)
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
app.conf.task_time_limit = 300
app.conf.task_soft_time_limit = 270

@app.task
def rebuild_index():
    pass
""", note="the soft limit ends the task at 270 s: not a long task (what QLT101's fix writes makes no QLT404)"),
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
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task(queue="reports", time_limit=1800)
def export_report(report_id):
    pass

@app.task(time_limit=60)
def send_email(user_id):
    pass
""",
            "deploy/worker.yaml": """
# Source: proj/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-worker-reports
  labels:
    app.kubernetes.io/name: proj
    app.kubernetes.io/component: worker-reports
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: "registry.example.com/proj:1.4.2"
          args:
            - celery
            - -A
            - proj
            - worker
            - -Q
            - reports
            - --prefetch-multiplier=1
---
# Source: proj/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-worker-default
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker
          image: "registry.example.com/proj:1.4.2"
          args: ["celery", "-A", "proj", "worker", "-Q", "celery", "--prefetch-multiplier", "8"]
""",
        }, note="the long task's queue is consumed with --prefetch-multiplier=1, which silences the configuration "
                "for it; the worker that prefetches 8 runs only short tasks"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task(time_limit=1800)
def rebuild_index():
    pass
""",
            "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker --disable-prefetch --prefetch-multiplier=4
  worker-env:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker --prefetch-multiplier=${PREFETCH:-1}
  worker-dev:
    build: .
    command: celery -A proj worker --prefetch-multiplier=8
    volumes:
      - ./:/app
""",
        }, note="--disable-prefetch on Redis; a value from the environment; a developer's stack"),
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
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")
app.conf.worker_prefetch_multiplier = 1

@app.task(time_limit=1800)
def rebuild_index():
    pass
""",
            "deploy/worker.yaml": """
# Source: proj/templates/worker.yaml
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
          args:
            - celery
            - -A
            - proj
            - worker
            - "--prefetch-multiplier=4"  # throughput
""",
        }, expect=[("deploy/worker.yaml", 17)], fixed={"deploy/worker.yaml": """
# Source: proj/templates/worker.yaml
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
          args:
            - celery
            - -A
            - proj
            - worker
            - "--prefetch-multiplier=1"  # throughput
"""}, message="`--prefetch-multiplier=4` on `celery worker` in container `worker`: task "
                "`proj.celery.rebuild_index` may run 1800 s", note="the flag overrides the configuration's 1"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task(soft_time_limit=900)
def export_report(report_id):
    pass
""",
            "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: sh -c "python manage.py check && exec celery -A proj worker --prefetch-multiplier 8 -l info"
""",
        }, expect=[("docker-compose.yml", 4)], fixed={
            "docker-compose.yml": """
services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: sh -c "python manage.py check && exec celery -A proj worker --prefetch-multiplier 1 -l info"
""",
        }, note="inside a string command"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for app in project.apps:
            multiplier = cb.prefetch(app)
            brk = cb.broker(app, ctx.text)
            long_tasks = self._long_tasks(project, app)
            running = [w for w in workers_of(project, app) if not w.development]
            runs = {id(w): {id(t) for t in tasks_of(project, w) if app in t.apps} for w in running}
            uses_config: dict[int, bool | None] = {}
            for worker in running:
                uses_config[id(worker)] = self._uses_config(worker, brk)
                if uses_config[id(worker)] is False:
                    mine = [found for found in long_tasks if self._runs(project, worker, found[0], runs)]
                    self._judge_flag(ctx, app, worker, multiplier, brk, mine)
            self._judge_config(ctx, app, multiplier, brk, long_tasks, running, runs, uses_config)

    @staticmethod
    def _may_run(project, worker, task: Task, runs: dict[int, set[int]]) -> bool:
        return id(task) in runs[id(worker)] and may_run(project, worker, task)

    @classmethod
    def _runs(cls, project, worker, task: Task, runs: dict[int, set[int]]) -> bool:
        """The worker surely runs the task: it may, and when it names its queues (``-Q``), one of
        them is a queue the task is routed to (the default queue only by its written name)."""
        if not cls._may_run(project, worker, task, runs):
            return False
        flag = worker.command.flags.get("queues")
        if flag is None or not flag.value:
            return True
        routed = task_queues(project, task)
        consumed = {name.strip() for name in flag.value.split(",") if name.strip()}
        return routed is not None and bool(routed & consumed)

    @staticmethod
    def _uses_config(worker, brk) -> bool | None:
        """Whether the worker's multiplier is the app's setting and nothing on its command line
        speaks for it: True without ``--prefetch-multiplier``; False with the flag (a ``0`` too, which
        Celery's CLI replaces with the setting: the flag is where the finding goes) or with
        ``--disable-prefetch`` on Redis; None when its command line may hold a value qlint cannot read."""
        flags = worker.command.flags
        if worker.command.opaque:
            return None
        if DISABLE_PREFETCH_FLAG in flags and brk.kind == "redis":
            return False
        flag = flags.get(cb.PREFETCH_FLAG)
        if flag is None:
            return True
        return None if _int(flag.value) is None else False  # ``$(PREFETCH)``: the environment's

    def _judge_flag(self, ctx: RuleContext, app: App, worker, multiplier, brk, long_tasks) -> None:
        """``--prefetch-multiplier N`` on a worker that runs long tasks, judged like the setting."""
        flag = worker.command.flags.get(cb.PREFETCH_FLAG)
        value = _int(flag.value) if flag is not None else None
        if value is None or value == 1:
            return
        written = _written(flag)
        replaced = ""
        if value == 0:  # bin/worker.py (5.0+): ``value or app.conf.worker_prefetch_multiplier``
            value = multiplier.value
            if not isinstance(value, int) or isinstance(value, bool) or value == 1 or value < 0:
                return
            source = "Celery's default" if multiplier.source == "default" else multiplier.source
            replaced = (f" (Celery's command line replaces 0 with the app's `{cb.PREFETCH_SETTING}`, {value}, "
                        f"{source})")
        elif value < 0:
            return
        disabled = cb.prefetch_disabled(app, brk)
        if disabled is not False:
            return
        ignored = ""
        if DISABLE_PREFETCH_FLAG in worker.command.flags:
            if not brk.kind or brk.kind == "redis":
                return  # prefetch disabled (a broker qlint cannot name may be Redis)
            ignored = f"; Celery ignores `--disable-prefetch` on a {brk.title} broker"
        where = f"{written} on `{worker.command.program}` in {worker.place}{replaced}"
        if value == 0:
            message = (f"{where}: no limit on prefetching, one worker reserves every message in the queue while "
                       f"the others sit idle{ignored}")
        elif long_tasks:
            task, seconds, option = long_tasks[0]
            more = f", as may {len(long_tasks) - 1} more task{'s' if len(long_tasks) > 2 else ''} it runs" \
                if len(long_tasks) > 1 else ""
            message = (f"{where}: task `{task.name}` may run {number_text(seconds)} s ({option}){more}, yet each of "
                       f"this worker's processes reserves {value} messages that wait behind a long task while other "
                       f"workers sit idle{ignored}")
        else:
            return
        facts, span = worker.flag_site(cb.PREFETCH_FLAG)
        edits = _flag_value_edits(ctx, worker, cb.PREFETCH_FLAG, "1")
        fix = ctx.fix(facts, "Set `--prefetch-multiplier=1`", edits) if edits else None
        ctx.report(facts, span, message, fix=fix)

    def _judge_config(self, ctx: RuleContext, app: App, multiplier, brk, long_tasks, running, runs,
                      uses_config) -> None:
        project = ctx.project
        value = multiplier.value
        if not isinstance(value, int) or isinstance(value, bool) or value == 1 or value < 0:
            return
        written = multiplier.keyword is not None and multiplier.file is not None
        if not written and not app.config_complete:
            return
        if running and not any(uses_config[id(w)] is True for w in running):
            return  # every worker sets its own multiplier (or may, in words qlint cannot read)
        disabled = cb.prefetch_disabled(app, brk)
        if disabled is not False:
            return
        ignored = ""
        setting = app.settings.get(cb.DISABLE_PREFETCH_SETTING)
        if setting is not None and setting.value:
            ignored = f"; Celery ignores `{cb.DISABLE_PREFETCH_SETTING}` on a {brk.title} broker"
        if value == 0:
            what = (f"`{cb.PREFETCH_SETTING}` of 0 ({multiplier.source}) puts no limit on prefetching: one "
                    "worker reserves every message in the queue while the others sit idle")
        else:
            # The tasks the setting decides for: those some worker surely runs without a multiplier of
            # its own, and those no worker qlint sees surely runs (whoever runs them reads the setting).
            judged = [found for found in long_tasks
                      if not running
                      or any(uses_config[id(w)] is True and self._runs(project, w, found[0], runs) for w in running)
                      or not any(self._runs(project, w, found[0], runs) for w in running)]
            if not judged:
                return
            task, seconds, option = judged[0]
            more = f", as may {len(judged) - 1} more task{'s' if len(judged) > 2 else ''}" \
                if len(judged) > 1 else ""
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
            soft = task.norm.get("soft_time_limit")
            if soft is not None and isinstance(soft.value, (int, float)) and not isinstance(soft.value, bool) \
                    and 0 < soft.value < cb.LONG_TASK_SECONDS:
                continue  # the soft limit ends it first: `SoftTimeLimitExceeded` (swallowing it is QLT105's)
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
                edits = add_keywords(src, spot.call, [(key, value)], ctx.line_length)
            else:
                placed = spot.insertion(src.utf8, src.newline, key, value)
                if placed is None:
                    continue
                edits = [Edit(placed[0], placed[0], placed[1])]
            return ctx.fix(spot.file, f"Set `{key}` to 1", edits)
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _written(flag) -> str:
    text = flag.token.text
    return f"`{text}`" if "=" in text else f"`{text} {flag.value}`"


# A command word's edges: the start or end of a string, a space, a quote, a list's punctuation,
# a shell line continuation.
_EDGE_BEFORE = rb"(?<![^\s\"'\[,])"
_EDGE_AFTER = rb"(?![^\s\"'\],\\;&|])"


def _flag_value_edits(ctx: RuleContext, worker, key: str, new: str) -> list[Edit]:
    """Edits that set a flag's value to ``new`` where the flag is written: a list item (the flag's
    own, or the value's item after it), or inside the string that holds the command (a compose
    ``command:`` string, an ``sh -c`` script, a line of a shell script), when the flag is written
    there exactly once. Nothing when the text is not the flag's as written (escapes, a folded
    line)."""
    flag = worker.command.flags[key]
    token = flag.token
    value = flag.value or ""
    attached = "=" in token.text or not token.text.startswith("--") and len(token.text) > 2
    path = token.path or worker.workload.path
    src = ctx.sources.get(path)
    if src is None or not value:
        return []
    if token.own_item and token.path is None:
        if attached:
            return replace_argument(src, token, value, new)
        words = worker.command.tokens
        at = next((i for i, t in enumerate(words) if t is token), None)
        if at is None or at + 1 >= len(words) or words[at + 1].text != value or not words[at + 1].own_item:
            return []
        return replace_argument(src, words[at + 1], value, new)
    start, end = _region(src, token)
    data = src.utf8[start:end]
    name = token.text.partition("=")[0] if attached and "=" in token.text else token.text
    if attached and "=" in token.text:
        pattern = re.escape(name.encode()) + rb"=(" + re.escape(value.encode()) + rb")"
    elif attached:
        pattern = re.escape(token.text[:2].encode()) + rb"(" + re.escape(value.encode()) + rb")"
    else:
        pattern = re.escape(name.encode()) + rb"[ \t]+(" + re.escape(value.encode()) + rb")"
    found = list(re.finditer(_EDGE_BEFORE + pattern + _EDGE_AFTER, data))
    if len(found) != 1:
        return []
    at = start + found[0].start(1)
    return [Edit(at, at + len(value.encode()), new)]


def _region(src, token) -> tuple[int, int]:
    """The bytes that hold a word that is no list item of its own: the YAML string (its span), or,
    for a line of a shell script, the command from that line to its last continued line."""
    span = token.span
    if span.end > span.start:
        return span.start, span.end
    data = src.utf8
    end = span.start
    while True:
        line_end = data.find(b"\n", end)
        if line_end == -1:
            return span.start, len(data)
        if not data[end:line_end].rstrip().endswith(b"\\"):
            return span.start, line_end
        end = line_end + 1
