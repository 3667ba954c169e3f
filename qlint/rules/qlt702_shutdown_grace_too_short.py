from __future__ import annotations

import math

from qlint.fixers.yaml import set_scalar
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import setting, settings_of, tasks_of

DEFAULT_GRACE = {"compose": 10.0}  # seconds; Kubernetes: 30
KUBERNETES_GRACE = 30.0
MARGIN = 30  # seconds a fix adds on top of the longest wait


@register
class ShutdownGraceTooShort(Rule):
    """## What it does
    Checks for worker workloads whose shutdown grace period (`terminationGracePeriodSeconds`,
    30 s by default; compose `stop_grace_period`, 10 s by default) is shorter than what the
    worker waits for on shutdown: the longest effective time limit of the tasks it runs
    (read from the code: decorators, base classes, configuration, and the worker's own
    `--time-limit`), or the framework's own shutdown wait (Dramatiq waits 600 s,
    `--worker-shutdown-timeout`).

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
      by `-A`), or the worker's `--time-limit`.
    - **RQ**, **Huey**, **Taskiq**, **arq**: the longest finite task time limit (RQ's default
      180 s counts; arq's `job_timeout` 300 s counts).
    - **Dramatiq**: the longest actor `time_limit`, and the worker's own shutdown wait
      (`--worker-shutdown-timeout`, 600 s by default).
    Tasks without a limit are QLT101's subject and are not compared.

    ## Fix safety
    The fix sets `terminationGracePeriodSeconds` (compose: `stop_grace_period`) to the
    longest wait + 30 s, in the pod spec. It is unsafe: deploys and node drains take longer.

    ## References
    - [Kubernetes: Termination of pods](https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)
    - [Celery: Stopping the worker](https://docs.celeryq.dev/en/stable/userguide/workers.html#stopping-the-worker)
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
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[int] = set()
        for worker in ctx.project.workers:
            workload = worker.workload
            if "worker" not in worker.command.roles or id(workload) in seen or workload.kind in ("Procfile", "Pod"):
                continue
            longest, why = self._longest_wait(ctx, worker)
            grace = workload.grace_seconds
            default = grace is None
            if default:
                grace = DEFAULT_GRACE.get(workload.kind, KUBERNETES_GRACE)
            if longest is None or grace >= longest:
                continue
            seen.add(id(workload))
            target = int(math.ceil(longest)) + MARGIN
            fix = self._fix(ctx, workload, target)
            where = "the default " if default else ""
            ctx.report(workload.file, workload.anchor,
                       f"{workload.kind} `{workload.name}` gives its {worker.framework} worker {where}{grace:g} s "
                       f"to stop, but {why}: each deploy or drain kills tasks mid-run", fix=fix)

    @staticmethod
    def _longest_wait(ctx: RuleContext, worker) -> tuple[float | None, str]:
        cli = worker.command.cli
        flags = worker.command.flags
        candidates: list[tuple[float, str]] = []
        if cli is not None and cli.time_limit_flag and cli.time_limit_flag in flags:
            value = _number(flags[cli.time_limit_flag].value)
            if value:
                candidates.append((value, f"its tasks may run {value:g} s (`--time-limit`)"))
        else:
            for task in tasks_of(ctx.project, worker):
                limit = task.norm.get("time_limit")
                value = limit.value if limit is not None else None
                if isinstance(value, (int, float)) and value is not UNKNOWN and not math.isinf(value) and value > 0:
                    candidates.append((float(value), f"task `{task.name}` may run {value:g} s ({limit.source})"))
        if cli is not None and cli.shutdown_flag:
            flag = flags.get(cli.shutdown_flag)
            written = _number(flag.value) if flag is not None else None
            value = written / cli.shutdown_scale if written is not None else cli.shutdown_default
            if value > 0:
                candidates.append((value, f"the worker itself waits {value:g} s for running tasks "
                                          f"(`{cli.shutdown_flag}`)"))
        if cli is not None and cli.shutdown_setting:  # arq ``WorkerSettings.job_completion_wait``
            site = settings_of(ctx.project, worker)
            value = setting(site, cli.shutdown_setting, cli.shutdown_default) if site is not None else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                candidates.append((float(value), f"the worker waits {value:g} s for running jobs "
                                                 f"(`{cli.shutdown_setting}`)"))
        if not candidates:
            return None, ""
        return max(candidates, key=lambda c: c[0])

    @staticmethod
    def _fix(ctx: RuleContext, workload, target: int):
        src = ctx.sources[workload.path]
        if workload.kind == "compose":
            edits = set_scalar(src, workload.pod, "stop_grace_period", f"{target}s") if workload.pod else []
        else:
            edits = set_scalar(src, workload.pod, "terminationGracePeriodSeconds", str(target)) \
                if workload.pod is not None and workload.pod.is_map else []
        key = "stop_grace_period" if workload.kind == "compose" else "terminationGracePeriodSeconds"
        return ctx.fix(workload.file, f"Set `{key}` to {target} s", edits) if edits else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
