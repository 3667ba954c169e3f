from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register

SCALABLE_KINDS = frozenset({"Deployment"})


@register
class WorkerWithoutAutoscaling(Rule):
    """## What it does
    Checks for Kubernetes Deployments that run a task worker while no
    HorizontalPodAutoscaler and no KEDA ScaledObject in the linted manifests targets them
    (`spec.scaleTargetRef`). Deployments that also run a periodic-task scheduler (`celery
    beat`, `worker -B`, a Huey consumer without `-n`, `taskiq scheduler`) are left out: they
    must not be scaled (QLT703). Opt-in.

    ## Why is this bad?
    A queue's load comes in bursts: a nightly import, a marketing e-mail, a backlog after an
    outage. A fixed number of workers is either idle most of the day or far too few during
    the burst, and the backlog then grows until the tasks' results are useless (expired
    tokens, stale reports, e-mails sent hours late). Scaling on the queue's length (a KEDA
    `redis`, `rabbitmq` or `aws-sqs-queue` trigger) or at least on CPU keeps the latency of
    a task bounded.

    ## Example
    ```yaml
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
              args: ["celery", "-A", "proj", "worker", "-c", "4"]
    ```

    Use instead:
    ```yaml
    apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata:
      name: worker
    spec:
      scaleTargetRef:
        name: worker
      minReplicaCount: 1
      maxReplicaCount: 10
      triggers:
        - type: redis
          metadata:
            address: redis:6379
            listName: celery
            listLength: "20"
    ```

    ## Per framework
    Every framework's worker command (the same commands QLT701 finds):
    - **Celery**: `celery -A proj worker` without `-B` (KEDA `redis` trigger `listName: celery`,
      the default queue, or `rabbitmq` with `queueName: celery`).
      ```yaml
      args: ["celery", "-A", "proj", "worker", "-Q", "default"]
      ```
    - **RQ**: `rq worker` (`listName: rq:queue:default`).
      ```yaml
      args: ["rq", "worker", "default"]
      ```
    - **Dramatiq**: `dramatiq proj.actors`.
      ```yaml
      args: ["dramatiq", "proj.actors", "-p", "2"]
      ```
    - **Huey**: `huey_consumer path.to.huey -n` (a consumer without `-n` runs the scheduler and is
      not reported).
      ```yaml
      args: ["huey_consumer", "proj.tasks.huey", "-n"]
      ```
    - **Taskiq**: `taskiq worker proj.broker:broker`.
      ```yaml
      args: ["taskiq", "worker", "proj.broker:broker"]
      ```
    - **arq**: `arq proj.worker.WorkerSettings`.
      ```yaml
      args: ["arq", "proj.worker.WorkerSettings"]
      ```
    A scaler rendered by a Helm template, or kept in files qlint is not given, is not seen:
    lint the rendered chart (`helm template ... | qlint check -`).

    ## Fix safety
    There is no fix: the trigger, the thresholds and the replica bounds depend on the broker
    and the workload.

    ## References
    - [Kubernetes: Horizontal Pod Autoscaling](https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/)
    - [KEDA: Scaling Deployments](https://keda.sh/docs/latest/concepts/scaling-deployments/)
    - [KEDA: Redis Lists scaler](https://keda.sh/docs/latest/scalers/redis-lists/)
    - [KEDA: RabbitMQ Queue scaler](https://keda.sh/docs/latest/scalers/rabbitmq-queue/)
    """

    code = "QLT706"
    name = "worker-without-autoscaling"
    summary = "Worker Deployment that no autoscaler targets"
    severity = Severity.INFO
    opt_in = True
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

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
          image: registry.example.com/proj:3.2.0
          args: ["celery", "-A", "proj", "worker", "-c", "4", "-Q", "default"]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker-scaler
spec:
  scaleTargetRef:
    name: worker
  minReplicaCount: 1
  maxReplicaCount: 20
  triggers:
    - type: redis
      metadata:
        address: redis-master:6379
        listName: default
        listLength: "50"
"""}, note="a KEDA ScaledObject in the next document"),
        Valid({
            "k8s/rq-worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rq-worker
spec:
  template:
    spec:
      containers:
        - name: rq
          image: proj
          command: ["sh", "-c", "exec rq worker --url $REDIS_URL default"]
""",
            "k8s/hpa.yaml": """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: rq-worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: rq-worker
  minReplicas: 2
  maxReplicas: 8
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
""",
        }, note="an HPA in another file"),
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
          image: proj
          args: ["celery", "-A", "proj", "beat"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      containers:
        - name: huey
          image: proj
          args: ["huey_consumer", "proj.tasks.huey", "-w", "4"]
"""}, note="schedulers (beat; a Huey consumer without -n) must not be scaled"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: dramatiq proj.actors -p 2
    deploy:
      replicas: 2
"""}, note="compose has no autoscaler"),
        Valid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: worker
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker
          image: proj
          args: ["taskiq", "worker", "proj.broker:broker"]
"""}, note="only Deployments are reported"),
    ]
    INVALID = [
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  labels:
    app: proj
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: worker
          image: registry.example.com/proj:3.2.0
          args:
            - celery
            - -A
            - proj
            - worker
            - --concurrency=4
"""}, expect=[("k8s/worker.yaml", 2)], message="2 replicas", note="a fixed number of workers"),
        Invalid({"k8s/app.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: proj
          args: ["gunicorn", "proj.wsgi"]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 2
  maxReplicas: 10
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: arq
spec:
  template:
    spec:
      containers:
        - name: arq
          image: proj
          command: ["arq", "proj.worker.WorkerSettings"]
"""}, expect=[("k8s/app.yaml", 26)], message="1 replica", note="the HPA scales the web Deployment, not the worker"),
        Invalid({"k8s/consumers.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey-workers
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: huey
          image: proj
          command: ["python", "manage.py", "run_huey", "-n", "-w", "8"]
        - name: metrics
          image: prom/statsd-exporter
"""}, expect=[("k8s/consumers.yaml", 2)], message="huey", note="Huey consumers with -n"),
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[int] = set()
        schedulers = {id(w.workload) for w in ctx.project.workers if "scheduler" in w.command.roles}
        for worker in ctx.project.workers:
            workload = worker.workload
            if workload.kind not in SCALABLE_KINDS or "worker" not in worker.command.roles or \
                    workload.autoscaled_by or id(workload) in schedulers or id(workload) in seen:
                continue
            seen.add(id(workload))
            replicas = workload.replicas if workload.replicas is not None else 1
            fixed = f"{replicas} replica{'s' if replicas != 1 else ''}"
            if workload.replicas is None:
                fixed += " (`replicas` is not set)"
            ctx.report(workload.file, workload.anchor,
                       f"{workload.kind} `{workload.name}` runs `{worker.command.program}` at a fixed {fixed} "
                       "and no HorizontalPodAutoscaler or KEDA ScaledObject targets it: a burst of tasks waits in "
                       "the queue until the backlog drains at that fixed rate")
