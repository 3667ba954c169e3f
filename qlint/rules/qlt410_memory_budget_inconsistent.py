from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import app_setting, apps_of, runs_processes


@register
class MemoryBudgetInconsistent(Rule):
    """## What it does
    Checks for Celery prefork workers whose processes may together use more memory than their
    container's memory limit before any of them is recycled: the number of processes
    (`-c`/`--concurrency`, the maximum of `--autoscale`, else `worker_concurrency`) times
    `--max-memory-per-child` (else `worker_max_memory_per_child`, in KiB) is above
    `resources.limits.memory` (compose: `deploy.resources.limits.memory` or `mem_limit`).

    ## Why is this bad?
    `max_memory_per_child` is checked by each child after a task ends: a child may grow to the
    bound (and past it, during the task that crosses it) before it is replaced. When all
    children can reach the bound together and that sum is above the container's limit, the
    kernel's OOM killer ends the container first: every running task dies at once instead of
    one child being replaced between tasks, and the recycling setting never does its job.
    The parent process needs memory of its own on top of that.

    ## Example
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "-c", "4", "--max-memory-per-child=512000"]
        resources:
          limits:
            memory: 1Gi
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "-c", "4", "--max-memory-per-child=200000"]
        resources:
          limits:
            memory: 1Gi
    ```

    ## Per framework
    - **Celery**: the process count from `-c N`, `--autoscale MAX,MIN` (MAX) or `worker_concurrency`;
      the bound from `--max-memory-per-child` or `worker_max_memory_per_child` (KiB: `512000` is
      500 MiB), each read from the command first and the app's configuration next (not at all when
      that configuration cannot be fully read); only with the prefork pool (`-P`, else
      `worker_pool`), the only pool that recycles. A worker with no process
      count at all is QLT402's case (the node's CPU count decides).
      `celery -A proj worker -c 8 --max-memory-per-child=300000` with `memory: 2Gi`: 8 x 293 MiB =
      2.3 GiB, reported.
    Compose services that mount the project's source from the host (`./:/app`) are a developer's
    stack, not a deployment: not judged.

    ## Fix safety
    There is no fix: lower `--max-memory-per-child` (to about 80 % of the limit divided by the
    process count), lower the concurrency, or raise the limit; which one depends on the tasks.

    ## References
    - [Celery: Max memory per child setting](https://docs.celeryq.dev/en/stable/userguide/workers.html#max-memory-per-child-setting)
    - [Celery: worker_max_memory_per_child](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-max-memory-per-child)
    - [Kubernetes: Resource management for pods and containers](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/)
    """

    code = "QLT410"
    name = "memory-budget-inconsistent"
    summary = "Worker processes may outgrow the container's memory limit before they are recycled"
    severity = Severity.WARNING
    frameworks = ("celery",)

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
          args: ["celery", "-A", "proj", "worker", "-c", "4", "--max-memory-per-child=200000"]
          resources:
            limits:
              cpu: "2"
              memory: 1Gi
"""}, note="4 x 195 MiB fits in 1 GiB"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -P threads -c 32 --max-memory-per-child=512000
    mem_limit: 1g
  beat:
    image: proj
    command: celery -A proj beat --max-memory-per-child=512000
    mem_limit: 256m
"""}, note="the threads pool never recycles (QLT405's case); beat has no pool"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_max_memory_per_child = 400_000
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
          args: ["celery", "-A", "proj", "worker"]
          resources:
            requests:
              memory: 512Mi
""",
        }, note="no process count (QLT402) and only a memory request, no limit"),
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
          args: ["celery", "-A", "proj", "worker", "--autoscale=6,1", "--max-memory-per-child=300000"]
          resources:
            limits:
              memory: 2Gi
"""}, note="autoscale: 6 x 293 MiB = 1.7 GiB, within 2 GiB"),
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
          args:
            - celery
            - -A
            - proj
            - worker
            - --concurrency=4
            - --max-memory-per-child=512000  # 500 MiB
          resources:
            requests:
              cpu: "2"
            limits:
              memory: 1Gi
"""}, expect=[("k8s/worker.yaml", 17)], message="1.95 GiB",
                note="block list: reported on the --max-memory-per-child item"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.update(worker_max_memory_per_child=300_000)
""",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: sh -c "python manage.py migrate && celery -A proj worker --concurrency 8"
    deploy:
      resources:
        limits:
          memory: 2G
""",
        }, expect=[("docker-compose.yml", 4)], message="`worker_max_memory_per_child = 300000`",
            note="compose deploy limits, sh -c, the bound from the app's configuration"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_concurrency = 6
app.conf.worker_max_memory_per_child = 250_000
""",
            "k8s/worker.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: proj
data:
  LOG_LEVEL: info
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command: ["python", "-m", "celery"]
          args: ["-A", "proj", "worker", "-Q", "reports"]
          resources:
            limits:
              memory: 1Gi
""",
        }, expect=[("k8s/worker.yaml", 18)],
            note="both numbers from the app's configuration: reported on the command line"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: ["celery", "-A", "proj", "worker", "--autoscale", "12,2", "--max-memory-per-child", "150000"]
    mem_limit: 1g
"""}, expect=[("docker-compose.yml", 4)], message="12 processes",
                note="--autoscale counts its maximum"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for worker in ctx.project.workers:
            command = worker.command
            cli = command.cli
            if cli is None or not (cli.memory_flag or cli.memory_setting) or "worker" not in command.roles or \
                    worker.workload.development:
                continue
            limit = worker.container.memory_limit
            if not limit:
                continue
            apps = apps_of(ctx.project, worker)
            if not runs_processes(worker, apps):
                continue
            per_child, memory_flag, per_shown = _value(worker, apps, (cli.memory_flag,), cli.memory_setting)
            count, count_flag, count_shown = _value(worker, apps, cli.process_flags, cli.pool_setting)
            if not per_child or not count or per_child <= 0 or count <= 0:
                continue
            per_bytes = per_child * cli.memory_unit
            total = count * per_bytes
            if total <= limit:
                continue
            ctx.report(worker.workload.file, worker.anchor(memory_flag or count_flag),
                       f"{count:g} processes ({count_shown}) x {_size(per_bytes)} per child ({per_shown}) may reach "
                       f"{_size(total)}, above the {_size(limit)} memory limit of container "
                       f"`{worker.container.name}`: a child is replaced only after the task that crossed the bound "
                       "ends, so the kernel OOM-kills the whole container, and every running task, first")





def _value(worker, apps: list, flag_names: tuple[str, ...], setting: str) -> tuple[float | None, str | None, str]:
    """A number from the last of ``flag_names`` the command gives (``MAX,MIN``: MAX), else from
    the app's ``setting``; the flag it came from, and how it is written."""
    flags = worker.command.flags
    chosen = None
    for name in flag_names:
        if name and name in flags and flags[name].value is not None:
            chosen = name
    if chosen is not None:
        flag = flags[chosen]
        text = flag.token.text
        attached = "=" in text or not text.startswith("--") and len(text) > 2
        return _number(flag.value.partition(",")[0]), chosen, f"`{text}`" if attached else f"`{text} {flag.value}`"
    written = app_setting(apps, setting)
    if written is None or written is UNKNOWN:
        return None, None, ""
    value = written.value
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else \
        _number(value if isinstance(value, str) else None)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return number, None, f"`{setting} = {shown}`"


def _number(text: str | None) -> float | None:
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def _size(size: float) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:g} bytes"
