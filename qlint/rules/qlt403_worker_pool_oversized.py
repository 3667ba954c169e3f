from __future__ import annotations

import math

from qlint.fixers.yaml import replace_argument
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import app_setting, apps_of, runs_processes

PROCESSES_PER_CPU = 2


@register
class WorkerPoolOversized(Rule):
    """## What it does
    Checks for worker commands that start more processes than twice the CPUs their container
    is given (the CPU limit, else the CPU request, rounded up to whole cores): Celery
    `-c`/`--concurrency` (or `worker_concurrency`) and the maximum of `--autoscale` with the
    prefork pool, Dramatiq `-p`/`--processes`, Huey `-w` with `-k process`, Taskiq `--workers`,
    RQ `worker-pool -n`.

    ## Why is this bad?
    Every process holds its own copy of the application and competes for the same CPU quota.
    Past about two processes per core (for I/O-bound tasks; one per core for CPU-bound ones)
    more processes add no throughput: under a CPU limit the container is throttled, each task
    takes longer, time limits fire on tasks that would have finished, and memory grows by one
    child per process until the pod is OOM-killed. The extra processes also reserve messages
    (prefetch) that idle workers elsewhere could have run.

    Threads, greenlets and async slots are not processes and are not counted: Celery `-c` with
    `-P gevent`/`eventlet`/`threads`, Dramatiq `-t`, Huey's default thread workers, Taskiq
    `--max-async-tasks`.

    ## Example
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "--concurrency=16"]
        resources:
          limits:
            cpu: "2"
            memory: 4Gi
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "--concurrency=4"]
        resources:
          limits:
            cpu: "2"
            memory: 4Gi
    ```

    ## Per framework
    - **Celery**: `-c N` / `--concurrency=N`, or `--autoscale MAX,MIN` (MAX; `-c` is then
      ignored), or `worker_concurrency` in the app's configuration when no flag is given; only
      with the prefork pool (`-P prefork`, the default, or the app's `worker_pool`; without `-P`,
      nothing is reported when the app's configuration cannot be fully read).
      `celery -A proj worker -P gevent -c 500` runs 500 greenlets in one process: not reported.
    - **Dramatiq**: `dramatiq proj.actors -p 16` (each process also runs `-t` threads, 8 by
      default; only processes are counted).
    - **Huey**: `huey_consumer proj.huey -k process -w 16`; with the default `-k thread` (or
      `greenlet`) `-w` counts threads: not reported.
    - **Taskiq**: `taskiq worker proj.broker:broker --workers 16` (2 processes by default, never
      above the budget; `--max-async-tasks` are coroutines in each process).
    - **RQ**: `rq worker-pool -n 16` (or `manage.py rqworker-pool --num-workers 16`); `rq worker`
      is one process (its `-n` is the worker's name).
    Compose services that mount the project's source from the host (`./:/app`) are a developer's
    stack, not a deployment: not judged.

    ## Fix safety
    The fix rewrites the value to 2 x the CPU budget rounded up (`--autoscale` keeps its minimum,
    lowered to the new maximum when it is larger). It is offered only when the value is its own
    list item (`"-c", "16"`) or a `--flag=value` item (`"--concurrency=16"`), never inside a
    string command. It is unsafe: the worker's throughput changes, and CPU-bound tasks may want
    even fewer processes. When the count comes from `worker_concurrency` there is no fix.

    ## References
    - [Celery: Concurrency](https://docs.celeryq.dev/en/stable/userguide/workers.html#concurrency)
    - [Celery: worker_concurrency](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-concurrency)
    - [Dramatiq: command line](https://dramatiq.io/guide.html#workers)
    - [Huey: consumer options](https://huey.readthedocs.io/en/latest/consumer.html#options-for-the-consumer)
    - [Taskiq: CLI](https://taskiq-python.github.io/guide/cli.html#worker)
    - [RQ: worker pool](https://python-rq.org/docs/workers/#worker-pool)
    - [Kubernetes: CPU limits](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#meaning-of-cpu)
    """

    code = "QLT403"
    name = "worker-pool-oversized"
    summary = "Worker starts more than two processes per CPU of its container"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq")

    VALID = [
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
          args: ["celery", "-A", "proj", "worker", "--concurrency=3"]
          resources:
            limits:
              cpu: 1500m
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: io-worker
spec:
  template:
    spec:
      containers:
        - name: io-worker
          image: proj
          args: ["celery", "-A", "proj", "worker", "-P", "gevent", "-c", "500"]
          resources:
            limits:
              cpu: "1"
"""}, note="3 processes on 1.5 CPU (2 cores rounded up: up to 4); 500 greenlets are one process"),
        Valid({"docker-compose.yml": """
services:
  dramatiq:
    image: proj
    command: dramatiq proj.actors -p 2 -t 64
    cpus: "1"
  huey:
    image: proj
    command: huey_consumer.py proj.tasks.huey -w 32
    cpus: "1"
  rq:
    image: proj
    command: rq worker -n worker-16 default
    cpus: "0.5"
"""}, note="Dramatiq threads, Huey thread workers and an RQ worker's name are not processes"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "threads"
app.conf.worker_concurrency = 64
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
          command: ["sh", "-c", "exec celery -A proj worker -c 64"]
          resources:
            requests:
              cpu: "1"
""",
        }, note="the app's configuration chooses the threads pool: -c counts threads"),
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
          args: ["taskiq", "worker", "proj.broker:broker", "--max-async-tasks", "500"]
          resources:
            limits:
              cpu: 250m
        - name: pool
          image: proj
          args: ["rq", "worker-pool", "-n", "4", "default"]
          resources:
            limits:
              cpu: "2"
"""}, note="Taskiq's default 2 processes fit any budget; async slots are not processes; 4 RQ workers on 2 CPU"),
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
          args: ["celery", "-A", "proj", "worker", "--concurrency=32"]
"""}, note="no CPU stated: no budget to compare with (QLT701 reports the missing limits)"),
    ]
    INVALID = [
        Invalid({"k8s/worker.yaml": """
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
          args: ["celery", "-A", "proj", "worker", "--concurrency=16"]  # sized for the old VMs
          resources:
            limits:
              cpu: 1500m
              memory: 4Gi
"""}, expect=[("k8s/worker.yaml", 11)], fixed={"k8s/worker.yaml": """
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
          args: ["celery", "-A", "proj", "worker", "--concurrency=4"]  # sized for the old VMs
          resources:
            limits:
              cpu: 1500m
              memory: 4Gi
"""}, message="16 worker processes", note="a flow list item --concurrency=16; 1.5 CPU rounds up to 2 cores"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command:
            - python
            - -m
            - celery
          args:
            - -A
            - proj
            - worker
            - -c
            - "12"
          resources:
            requests:
              cpu: "1"
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: worker
  minReplicas: 2
  maxReplicas: 10
"""}, expect=[("k8s/worker.yaml", 20)], fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command:
            - python
            - -m
            - celery
          args:
            - -A
            - proj
            - worker
            - -c
            - "2"
          resources:
            requests:
              cpu: "1"
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: worker
  minReplicas: 2
  maxReplicas: 10
"""}, message="requests 1 CPU",
                note="python -m celery, args split from command, the value its own quoted item; "
                     "a multi-document file with the HPA"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: ["celery", "-A", "proj", "worker", "--autoscale", "10,3"]
    deploy:
      resources:
        limits:
          cpus: "1"
          memory: 2G
"""}, expect=[("docker-compose.yml", 4)], fixed={"docker-compose.yml": """
services:
  worker:
    image: proj
    command: ["celery", "-A", "proj", "worker", "--autoscale", "2,2"]
    deploy:
      resources:
        limits:
          cpus: "1"
          memory: 2G
"""}, message="--autoscale 10,3", note="compose deploy limits; --autoscale MAX,MIN keeps a minimum <= MAX"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: sh -c "python manage.py migrate && exec dramatiq proj.actors -p 8 -t 4"
    cpus: "2"
  huey:
    image: proj
    command: huey_consumer.py proj.tasks.huey -k process -w 8
    cpus: "1"
  taskiq:
    image: proj
    command: taskiq worker proj.broker:broker --workers 6
    cpus: "2"
"""}, expect=[("docker-compose.yml", 4), ("docker-compose.yml", 8), ("docker-compose.yml", 12)],
                note="string commands (sh -c, Huey with -k process, Taskiq): reported on the command line, no fix"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_concurrency = 24
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
          args: ["celery", "-A", "proj", "worker", "-Q", "reports"]
          resources:
            limits:
              cpu: "4"
""",
        }, expect=[("k8s/worker.yaml", 11)], message="`worker_concurrency = 24`",
            note="the count from the app's configuration: reported on the command, no fix"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rq
spec:
  template:
    spec:
      containers:
        - name: rq
          image: proj
          args:
            - python
            - manage.py
            - rqworker-pool
            - --num-workers=10
            - default
          resources:
            limits:
              cpu: "2"
"""}, expect=[("k8s/worker.yaml", 15)], fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rq
spec:
  template:
    spec:
      containers:
        - name: rq
          image: proj
          args:
            - python
            - manage.py
            - rqworker-pool
            - --num-workers=10
            - default
          resources:
            limits:
              cpu: "2"
""".replace("--num-workers=10", "--num-workers=4")}, note="django-rq's worker pool"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for worker in ctx.project.workers:
            command = worker.command
            cli = command.cli
            if cli is None or not cli.process_flags or "worker" not in command.roles or worker.workload.development:
                continue
            if cli.process_commands and command.subcommand not in cli.process_commands:
                continue
            container = worker.container
            cpus = container.cpu_limit or container.cpu_request
            if not cpus or cpus <= 0:
                continue
            apps = apps_of(ctx.project, worker)
            if not runs_processes(worker, apps):
                continue
            cores = max(1, math.ceil(cpus))
            budget = PROCESSES_PER_CPU * cores
            count, flag_name, shown = _count(worker, apps)
            if count is None or count <= budget:
                continue
            stated = f"is limited to {cpus:g} CPU" if container.cpu_limit else f"requests {cpus:g} CPU"
            rounded = f", {cores} cores rounded up" if cores != cpus else ""
            fix = self._fix(ctx, worker, flag_name, budget) if flag_name else None
            ctx.report(worker.workload.file, worker.anchor(flag_name),
                       f"{shown} starts {count} worker processes in container `{container.name}`, which {stated}: "
                       f"more than {budget} ({PROCESSES_PER_CPU} per core{rounded}) take turns on the same CPU "
                       "quota, so every task runs slower (and may hit its time limit) while each process holds its "
                       "own copy of the app in memory", fix=fix)

    @staticmethod
    def _fix(ctx: RuleContext, worker, flag_name: str, budget: int):
        flag = worker.command.flags[flag_name]
        value = flag.value or ""
        _, comma, tail = value.partition(",")
        new = str(budget)
        if comma:  # ``MAX,MIN``: keep the minimum, never above the new maximum
            try:
                new = f"{budget},{min(int(tail), budget)}"
            except ValueError:
                return None
        if _attached(flag):
            token = flag.token  # ``--concurrency=16``, ``-c16``
        else:  # ``-c 16``: the value is the next word
            tokens = worker.command.tokens
            at = next((i for i, t in enumerate(tokens) if t is flag.token), None)
            if at is None or at + 1 >= len(tokens) or tokens[at + 1].text != value:
                return None
            token = tokens[at + 1]
        edits = replace_argument(ctx.sources[worker.workload.path], token, value, new)
        written = f"{token.text[:len(token.text) - len(value)]}{new}" if token is flag.token else \
            f"{flag.token.text} {new}"
        return ctx.fix(worker.workload.file, f"Start {budget} processes: `{written}`", edits) if edits else None





def _count(worker, apps: list) -> tuple[int | None, str | None, str]:
    """The process count, the flag that sets it (None: the app's configuration), and how it is written."""
    cli = worker.command.cli
    flags = worker.command.flags
    chosen = None
    for name in cli.process_flags:  # a later flag wins (Celery ``--autoscale`` over ``-c``)
        if name in flags and flags[name].value is not None:
            chosen = name
    if chosen is not None:
        flag = flags[chosen]
        number = _int(flag.value.partition(",")[0])
        shown = f"`{flag.token.text}`" if _attached(flag) else f"`{flag.token.text} {flag.value}`"
        return number, chosen, shown
    written = app_setting(apps, cli.pool_setting)
    if written is None or written is UNKNOWN:
        return None, None, ""
    number = written.value if isinstance(written.value, int) and not isinstance(written.value, bool) else \
        _int(written.value if isinstance(written.value, str) else None)
    return number, None, f"`{cli.pool_setting} = {written.value}` in the app's configuration"


def _attached(flag) -> bool:
    """The value is written inside the flag's word: ``--concurrency=16``, ``-c16``."""
    text = flag.token.text
    return "=" in text and text.partition("=")[2] == flag.value or \
        not text.startswith("--") and len(text) > 2 and text[2:] == flag.value


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None
