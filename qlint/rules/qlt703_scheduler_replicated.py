from __future__ import annotations

from qlint.fixers.yaml import set_nested, set_scalar
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register

# Kinds that can run more than one pod of the same template at a time.
REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "compose"})


@register
class SchedulerReplicated(Rule):
    """## What it does
    Checks for a periodic-task scheduler that can run twice: `celery beat` (or a worker
    started with `-B`/`--beat`), a Huey consumer without `-n` (it runs the periodic
    scheduler by default), or `taskiq scheduler`, in a workload that has more than one
    replica, is scaled by a HorizontalPodAutoscaler or a KEDA ScaledObject, is a DaemonSet
    (one pod per node), or is a Deployment updated with the default `RollingUpdate` strategy
    (the new pod starts before the old one stops).

    ## Why is this bad?
    Each scheduler process sends every periodic task on its own: two beats send every
    entry twice. Nightly billing runs twice, reports are mailed twice, and cleanup jobs race
    each other. Celery's documentation: "You have to ensure only a single scheduler is
    running for a schedule at a time, otherwise you'd end up with duplicate tasks." A rolling
    update overlaps the old and the new pod for as long as the new one takes to become ready,
    which is enough for a minute-level schedule to fire twice on every deploy.

    ## Example
    ```yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: beat
    spec:
      replicas: 2
      template:
        spec:
          containers:
            - name: beat
              command: ["celery", "-A", "proj", "beat"]
    ```

    Use instead:
    ```yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: beat
    spec:
      replicas: 1
      strategy:
        type: Recreate
      template:
        spec:
          containers:
            - name: beat
              command: ["celery", "-A", "proj", "beat"]
    ```

    ## Per framework
    - **Celery**: `celery beat`, `celery worker -B`/`--beat`.
    - **Huey**: `huey_consumer.py app.huey` (or `manage.py run_huey`) without `-n`/`--no-periodic`:
      run one consumer with the scheduler and the others with `-n`.
    - **Taskiq**: `taskiq scheduler module:scheduler`.
    RQ's scheduler takes a lock in Redis, and arq cron jobs are deduplicated by job id
    (`unique=True`): neither is reported. A developer's stack (a compose service running the
    mounted source, a compose file named for development, a scheduler under a reloader such as
    `watchmedo auto-restart`) is not judged: duplicate runs there cost a developer nothing.

    ## Fix safety
    For a Deployment that no autoscaler targets, the fix sets `replicas: 1` and
    `strategy: type: Recreate` (keeping comments and layout); for a StatefulSet, `replicas: 1`.
    It is unsafe: a Recreate rollout has a gap with no scheduler (and, for a worker started
    with `-B`, no worker), and fewer replicas process less. A better layout runs the scheduler
    in a Deployment of its own. No fix for DaemonSets, autoscaled workloads or a
    `rollingUpdate` block (Kubernetes rejects it beside `Recreate`).

    ## References
    - [Celery: Periodic tasks](https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html)
    - [Huey: consumer options](https://huey.readthedocs.io/en/latest/consumer.html#options-for-the-consumer)
    - [Kubernetes: Deployment strategy](https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#strategy)
    """

    code = "QLT703"
    name = "scheduler-replicated"
    summary = "A periodic-task scheduler can run more than once"
    severity = Severity.ERROR
    fix_availability = "Sometimes"
    frameworks = ("celery", "huey", "taskiq")

    VALID = [
        Valid({"k8s/beat.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beat
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: beat
          image: registry.example.com/proj:1.4.2
          command: ["celery", "-A", "proj", "beat", "-l", "info"]
"""}, note="one replica, and the old pod stops before the new one starts"),
        Valid({"k8s/workers.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 4
  template:
    spec:
      containers:
        - name: worker
          image: registry.example.com/proj:1.4.2
          args: ["celery", "-A", "proj", "worker", "-c", "2"]
"""}, note="workers without -B may be replicated"),
        Valid({"docker-compose.yml": """
services:
  huey:
    image: proj
    command: python manage.py run_huey -w 4 -n
    deploy:
      replicas: 3
"""}, note="Huey consumers with -n run no scheduler"),
        Valid({"k8s/job.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      containers:
        - name: migrate
          image: proj
          command: ["sh", "-c", "python manage.py migrate && celery -A proj beat --help"]
"""}, note="a Job runs its pod once"),
        Valid({
            "docker-compose.dev.yml": """
services:
  beat:
    image: proj
    command: celery -A proj beat -l debug
    deploy:
      replicas: 2
""",
            "k8s/dev/beat.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: celery-beat
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: celery-beat
          image: proj
          command:
            - watchmedo
            - auto-restart
            - --recursive
            - --
            - celery
            - -A
            - proj
            - beat
""",
        }, note="developer stacks: a compose file named for development, a beat under a reloader"),
    ]
    INVALID = [
        Invalid({"k8s/beat.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beat
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: beat
          image: proj
          command: ["celery", "-A", "proj", "beat"]
"""}, expect=[("k8s/beat.yaml", 2)], message="2 replicas", fixed={"k8s/beat.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beat
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: beat
          image: proj
          command: ["celery", "-A", "proj", "beat"]
"""}),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command:
            - sh
            - -c
            - exec python -m celery -A proj worker -B --concurrency=2
"""}, expect=[("k8s/worker.yaml", 2)], message="RollingUpdate", fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: worker
          image: proj
          command:
            - sh
            - -c
            - exec python -m celery -A proj worker -B --concurrency=2
"""},
            note="one replica, but a rolling update starts the new pod before the old one stops"),
        Invalid({"k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: huey
          image: proj
          args: ["huey_consumer.py", "proj.tasks.huey", "-w", "4", "-k", "process"]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: huey
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: huey
  minReplicas: 1
  maxReplicas: 5
"""}, expect=[("k8s/huey.yaml", 2)], message="HorizontalPodAutoscaler",
            note="Huey runs the scheduler unless -n; an HPA in the next document scales it"),
        Invalid({"docker-compose.yml": """
services:
  scheduler:
    image: proj
    command: taskiq scheduler proj.scheduler:scheduler
    deploy:
      replicas: 2
"""}, expect=[("docker-compose.yml", 2)], note="compose: Taskiq scheduler with two replicas"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for worker in ctx.project.workers:
            workload = worker.workload
            if "scheduler" not in worker.command.roles or workload.kind not in REPLICATED_KINDS or worker.development:
                continue
            why = _why_replicated(workload)
            if why:
                what = "runs a periodic-task scheduler" if "worker" not in worker.command.roles else \
                    "runs a worker with the periodic-task scheduler inside"
                ctx.report(workload.file, workload.anchor,
                           f"{workload.kind} `{workload.name}` {what} ({worker.framework}) and {why}: each "
                           "scheduler sends every periodic task, so they run more than once",
                           fix=self._fix(ctx, workload))

    @staticmethod
    def _fix(ctx: RuleContext, workload):
        spec = workload.spec
        if spec is None or not spec.is_map or workload.autoscaled_by or workload.kind not in (
                "Deployment", "StatefulSet"):
            return None
        src = ctx.sources[workload.path]
        # No ``replicas`` written means 1: only a written count above 1 is changed.
        edits = set_scalar(src, spec, "replicas", "1") if workload.replicas is not None and workload.replicas > 1 \
            else []
        if workload.kind == "Deployment":
            strategy = spec.get("strategy")
            if strategy is not None and strategy.get("rollingUpdate") is not None:
                return None
            after = "replicas" if spec.get("replicas") is not None else None
            nested = set_nested(src, spec, "strategy", "type", "Recreate", after=after)
            if not nested:
                return None
            edits += nested
        return ctx.fix(workload.file, "Run one scheduler: `replicas: 1`, `strategy: Recreate`", edits) if edits else None


def _why_replicated(workload) -> str:
    if workload.replicas is not None and workload.replicas > 1:
        return f"has {workload.replicas} replicas"
    if workload.autoscaled_by:
        return f"is scaled by {', '.join(workload.autoscaled_by)}"
    if workload.kind == "DaemonSet":
        return "is a DaemonSet (one pod per node)"
    if workload.kind == "Deployment" and (workload.strategy or "RollingUpdate") == "RollingUpdate":
        return "is updated with `RollingUpdate` (the default): the new pod starts before the old one stops"
    return ""
