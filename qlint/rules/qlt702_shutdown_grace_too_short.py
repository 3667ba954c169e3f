from __future__ import annotations

import math

from qlint.fixers.yaml import grace_edits
from qlint.frameworks.celery_failures import task_queues
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import setting, settings_of, tasks_of
from qlint.rules.qlt704_sigterm_interrupts_tasks import signal_name, stop_signal

MARGIN = 30  # seconds a fix adds on top of the longest wait


@register
class ShutdownGraceTooShort(Rule):
    """## What it does
    Checks for worker workloads whose shutdown grace period (`terminationGracePeriodSeconds`,
    30 s by default; compose `stop_grace_period`, 10 s by default) is shorter than what the
    worker waits for on shutdown: the longest effective time limit of the tasks it runs
    (read from the code: decorators, base classes, configuration, and the worker's own
    `--time-limit`), capped by the framework's own shutdown wait where it has one (Dramatiq waits
    600 s, `--worker-shutdown-timeout`; arq waits `job_completion_wait`, 0 s by default).

    ## Why is this bad?
    On every deploy, scale-down or node drain, the worker receives SIGTERM and starts a warm
    shutdown: it stops taking work and waits for running tasks. When the grace period ends
    first, SIGKILL takes the worker down mid-task: the work is lost, late-acked messages are
    redelivered (and run twice), early-acked ones are gone. A 30 s grace period against a
    10-minute task kills that task on every deploy.

    ## Example
    ```yaml
    kind: Deployment
    spec:
      template:
        spec:
          containers:
            - name: worker
              args: ["celery", "-A", "proj", "worker", "--time-limit=600"]
    ```

    Use instead:
    ```yaml
    kind: Deployment
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 630
          containers:
            - name: worker
              args: ["celery", "-A", "proj", "worker", "--time-limit=600"]
    ```

    ## Per framework
    - **Celery**: the longest finite `time_limit` of the tasks the worker runs (the app named
      by `-A`; with `-Q`, not the tasks routed only to other queues by their `queue` or
      `task_routes`), or the worker's `--time-limit`.
    - **RQ**, **Taskiq**: the longest finite task time limit (RQ's default 180 s counts).
    - **Dramatiq**: the longest actor `time_limit`, at most the worker's own shutdown wait
      (`--worker-shutdown-timeout`, 600 s by default), after which it stops waiting.
    - **arq**: the worker's `job_completion_wait` (0 s by default: it cancels running jobs at once,
      which QLT704 reports), at most the longest `job_timeout`.
    - **Huey**: only when the container is stopped with the consumer's graceful signal (SIGINT,
      or SIGTERM with `-g TERM`); on the other signal Huey interrupts its tasks at once, whatever the
      grace period (QLT704).
    Tasks without a limit are QLT101's subject and are not compared. Schedulers (`celery beat`),
    monitors and one-off commands wait for no task and are not judged; neither are compose
    services that mount the project's source from the host (`./:/app`), a developer's stack.

    ## Fix safety
    The fix sets `terminationGracePeriodSeconds` (compose: `stop_grace_period`) to the
    longest wait + 30 s, in the pod spec. It is unsafe: deploys and node drains take longer.

    ## References
    - [Kubernetes: Termination of pods](https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)
    - [Celery: Stopping the worker](https://docs.celeryq.dev/en/stable/userguide/workers.html#stopping-the-worker)
    - [Dramatiq: worker shutdown timeout](https://dramatiq.io/cookbook.html)
    - [arq: job_completion_wait](https://arq-docs.helpmanual.io/#arq.worker.Worker)
    - [Compose: stop_grace_period](https://docs.docker.com/reference/compose-file/services/#stop_grace_period)
    """

    code = "QLT702"
    name = "shutdown-grace-too-short"
    summary = "Grace period shorter than the tasks the worker waits for on shutdown"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=600)
def export():
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
      terminationGracePeriodSeconds: 660
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "worker", "-c", "2"]
""",
        }, note="a grace period longer than the longest task"),
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 20

@app.task
def ping():
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
          args: ["celery", "-A", "proj", "worker"]
""",
        }, note="20 s tasks fit in the default 30 s"),
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task
def export():
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
          args: ["celery", "-A", "proj", "worker"]
""",
        }, note="no limit anywhere: QLT101 reports the task, nothing to compare here"),
        Valid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from arq.connections import RedisSettings

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [export]
    redis_settings = RedisSettings(host="redis")
""",
            "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: arq
spec:
  template:
    spec:
      containers:
        - name: arq
          args: ["arq", "proj.worker.WorkerSettings"]
        - name: beat
          args: ["celery", "-A", "proj", "beat"]
""",
        }, note="arq cancels running jobs at once (job_completion_wait 0, QLT704's subject): no grace period "
                "would save them; a scheduler waits for no task"),
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_routes = {"proj.tasks.export": {"queue": "reports"}}

@app.task(time_limit=1800)
def export():
    pass

@app.task(time_limit=20)
def ping():
    pass
""",
            "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fast
spec:
  template:
    spec:
      containers:
        - name: fast
          args: ["celery", "-A", "proj", "worker", "-Q", "celery"]
""",
        }, note="the 30-minute task is routed to `reports`, a queue this worker does not consume"),
        Valid({
            "proj/__init__.py": "",
            "proj/actors.py": """
import dramatiq

@dramatiq.actor(time_limit=20_000)
def resize(image_id):
    pass
""",
            "k8s/actors.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: actors
spec:
  template:
    spec:
      containers:
        - name: actors
          args: ["dramatiq", "proj.actors", "-p", "2"]
""",
        }, note="Dramatiq waits up to 600 s, but every actor ends within 20 s"),
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(timeout=300)
def rebuild_index():
    pass
""",
            "k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      containers:
        - name: huey
          args: ["huey_consumer", "proj.tasks.huey", "-k", "process"]
""",
        }, note="SIGTERM makes Huey interrupt its tasks at once (QLT704): the grace period changes nothing"),
    ]
    INVALID = [
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(time_limit=600, soft_time_limit=570)
def export():
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
          args: ["celery", "-A", "proj", "worker"]
""",
        }, expect=[("k8s/worker.yaml", 2)], fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 630
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "worker"]
"""}, message="600 s", note="the default 30 s against a 10-minute task"),
        Invalid({"k8s/actors.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: actors
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60  # a minute is plenty
      containers:
        - name: actors
          args: ["dramatiq", "proj.actors", "-p", "2"]
"""}, expect=[("k8s/actors.yaml", 2)], fixed={"k8s/actors.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: actors
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 630  # a minute is plenty
      containers:
        - name: actors
          args: ["dramatiq", "proj.actors", "-p", "2"]
"""}, message="worker_shutdown_timeout", note="Dramatiq waits 600 s for running actors"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker --time-limit=120 -c 2
"""}, expect=[("docker-compose.yml", 2)], fixed={"docker-compose.yml": """
services:
  worker:
    stop_grace_period: 150s
    image: proj
    command: celery -A proj worker --time-limit=120 -c 2
"""}, note="compose: 10 s by default against the worker's --time-limit"),
        Invalid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from arq.connections import RedisSettings

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [export]
    redis_settings = RedisSettings(host="redis")
    job_completion_wait = 120
""",
            "k8s/worker.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: drain-exports
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: arq
          args: ["arq", "proj.worker.WorkerSettings", "--burst"]
""",
        }, expect=[("k8s/worker.yaml", 2)], message="the worker waits 120 s for running jobs (`job_completion_wait`)"
                                                  ": a node drain or an eviction kills",
            fixed={"k8s/worker.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: drain-exports
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 150
      restartPolicy: Never
      containers:
        - name: arq
          args: ["arq", "proj.worker.WorkerSettings", "--burst"]
"""}, note="arq waits job_completion_wait (below its 300 s job timeout); a Job is stopped by drains, not deploys"),
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from huey import RedisHuey

huey = RedisHuey("proj")

@huey.task(timeout=300)
def rebuild_index():
    pass
""",
            "k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      containers:
        - name: huey
          args: ["huey_consumer", "proj.tasks.huey", "-k", "process", "-g", "TERM"]
""",
        }, expect=[("k8s/huey.yaml", 2)], message="rebuild_index` may run 300 s",
            fixed={"k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 330
      containers:
        - name: huey
          args: ["huey_consumer", "proj.tasks.huey", "-k", "process", "-g", "TERM"]
"""}, note="with -g TERM, Huey waits for its running tasks on SIGTERM"),
    ]

    def check(self, ctx: RuleContext) -> None:
        by_workload: dict[int, list] = {}
        for worker in ctx.project.workers:
            workload = worker.workload
            if "worker" in worker.command.roles and workload.kind not in ("Procfile", "Pod") and \
                    not workload.development:
                by_workload.setdefault(id(workload), []).append(worker)
        for workers in by_workload.values():
            waits = [(wait, why, worker) for worker in workers for wait, why in [self._wait(ctx, worker)]
                     if wait is not None]
            if not waits:
                continue
            longest, why, worker = max(waits, key=lambda w: w[0])
            workload = worker.workload
            grace, default = workload.grace
            if grace >= longest:
                continue
            target = int(math.ceil(longest)) + MARGIN
            fix = self._fix(ctx, workload, target)
            where = "the default " if default else ""
            ctx.report(workload.file, workload.anchor,
                       f"{workload.kind} `{workload.name}` gives `{worker.command.program}` {where}{grace:g} s to stop, "
                       f"but {why}: {_consequence(workload.kind)}", fix=fix)

    @classmethod
    def _wait(cls, ctx: RuleContext, worker) -> tuple[float | None, str]:
        """How long the worker may wait for its running tasks once it is told to stop, and why; None
        when it does not wait (SIGTERM interrupts its tasks: QLT704) or qlint cannot tell."""
        cli = worker.command.cli
        if cli is None or not _graceful_on_stop(worker):
            return None, ""
        tasks, unbounded = cls._longest_task(ctx, worker)
        if cli.shutdown_flag or cli.shutdown_setting:  # the worker's own bound on the wait
            bound = cls._own_bound(ctx, worker)
            if bound is None:
                return None, ""
            if tasks is not None and not unbounded and tasks[0] < bound[0]:
                return tasks  # every task ends before the worker would stop waiting
            return bound
        return tasks if tasks is not None else (None, "")

    @staticmethod
    def _longest_task(ctx: RuleContext, worker) -> tuple[tuple[float, str] | None, bool]:
        """The longest finite limit of the tasks the worker runs (with why), and whether some of its
        tasks have no limit at all."""
        cli = worker.command.cli
        flags = worker.command.flags
        if cli.time_limit_flag and cli.time_limit_flag in flags:
            value = _number(flags[cli.time_limit_flag].value)
            if value:
                return (value, f"its tasks may run {value:g} s (`--time-limit`)"), False
            return None, False
        candidates: list[tuple[float, str]] = []
        unbounded = False
        for task in tasks_of(ctx.project, worker):
            if not _may_run(ctx, worker, task):
                continue
            limit = task.norm.get("time_limit")
            value = limit.value if limit is not None else None
            if isinstance(value, (int, float)) and value is not UNKNOWN and math.isinf(value):
                unbounded = True
            elif isinstance(value, (int, float)) and value is not UNKNOWN and value > 0:
                candidates.append((float(value), f"task `{task.name}` may run {value:g} s ({limit.source})"))
        return (max(candidates, key=lambda c: c[0]) if candidates else None), unbounded

    @staticmethod
    def _own_bound(ctx: RuleContext, worker) -> tuple[float, str] | None:
        """The worker's own wait for running tasks when told to stop (Dramatiq's
        ``--worker-shutdown-timeout``, arq's ``job_completion_wait``), after which it stops them."""
        cli = worker.command.cli
        if cli.shutdown_flag:
            flag = worker.command.flags.get(cli.shutdown_flag)
            written = _number(flag.value) if flag is not None else None
            if flag is not None and written is None:
                return None  # ``${TIMEOUT}``: not a value qlint can read
            value = written / cli.shutdown_scale if written is not None else cli.shutdown_default
            return value, f"the worker itself waits {value:g} s for running tasks (`{cli.shutdown_flag}`)"
        site = settings_of(ctx.project, worker)
        value = setting(site, cli.shutdown_setting, cli.shutdown_default) if site is not None else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None  # the settings class is not in the project, or the value cannot be read
        return float(value), f"the worker waits {value:g} s for running jobs (`{cli.shutdown_setting}`)"

    @staticmethod
    def _fix(ctx: RuleContext, workload, target: int):
        edits, key = grace_edits(ctx.sources[workload.path], workload, target)
        return ctx.fix(workload.file, f"Set `{key}` to {target} s", edits) if edits else None

def _may_run(ctx: RuleContext, worker, task) -> bool:
    """Whether the worker may run the task. A Celery worker that names its queues (``-Q a,b``) does
    not run a task routed only to other queues (its ``queue``, ``task_routes``, ``queue=`` on its
    calls). A task that goes to the default queue counts whatever the worker names: the default
    may come from where qlint does not look (the container's environment, a router). Queues declared
    in ``task_queues`` may bind other routing keys than their names: every task counts then too."""
    flag = worker.command.flags.get("queues")
    if worker.framework != "celery" or flag is None or not flag.value or "$" in flag.value:
        return True
    if any(app.settings.get("task_queues") is not None for app in task.apps):
        return True
    routed = task_queues(ctx.project, task)
    default = _default_queue_name(task)
    if routed is None or default is None or default in routed:
        return True
    consumed = {name.strip() for name in flag.value.split(",") if name.strip()}
    return bool(routed & consumed)


def _default_queue_name(task) -> str | None:
    names = set()
    for app in task.apps:
        written = app.settings.get("task_default_queue")
        names.add(written.value if written is not None else "celery")
    name = names.pop() if len(names) == 1 else None
    return name if isinstance(name, str) else None


def _graceful_on_stop(worker) -> bool:
    """Whether the signal the container is stopped with lets the worker finish its running tasks: the
    worker's graceful signal (Huey's SIGINT unless ``-g TERM``); SIGTERM for the other frameworks."""
    stop = worker.command.cli.stop_signals
    if stop is None:
        return True
    flag = worker.command.flags.get(stop.flag) if stop.flag else None
    graceful = signal_name(flag.value) if flag is not None else signal_name(stop.graceful)
    sent, _, _ = stop_signal(worker)
    return graceful is not None and sent == graceful


def _consequence(kind: str) -> str:
    if kind == "compose":
        return "each `docker compose stop`, restart or redeploy kills the tasks still running"
    if kind in ("Job", "CronJob"):
        return "a node drain or an eviction kills the tasks still running"
    return "each deploy, scale-down or node drain kills the tasks still running"


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
