from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import tasks_of

RATE_LIMIT = "rate_limit"  # Celery's task option; a per-worker token bucket (celery/worker/strategy.py)


@register
class RateLimitPerWorker(Rule):
    """## What it does
    Checks for Celery tasks with a `rate_limit` that more than one worker runs: a worker
    Deployment (or StatefulSet, compose service) with more than one replica, or one scaled
    by a HorizontalPodAutoscaler or a KEDA ScaledObject, that runs the task's app. The
    finding points at the `rate_limit` keyword.

    ## Why is this bad?
    Celery's rate limit is enforced by each worker on its own ("The rate limits can be
    specified ... per worker instance, not globally"): `rate_limit="10/m"` with 4 replicas
    lets 40 calls a minute through, and an autoscaler multiplies it further at the moment
    the load is highest. A third-party API quota sized to the limit is exceeded exactly when
    it matters.

    ## Example
    ```python
    @app.task(rate_limit="60/m")
    def call_partner_api(order_id):
        ...
    ```
    with the worker running at `replicas: 3`.

    Use instead: a global limit (a token bucket in Redis, the partner client's own
    throttling), or a dedicated queue consumed by a single worker with `-c 1`, and the
    task routed there.

    ## Per framework
    - **Celery** only: `@app.task(rate_limit=...)` run by a worker whose workload has more than
      one replica or is autoscaled. The other frameworks have no per-task rate limit option
      (RQ's `rate_limit=` on enqueue is enforced in Redis, across workers).

    ## Fix safety
    There is no fix: the remedy is an architectural choice.

    ## References
    - [Celery: Task.rate_limit](https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.rate_limit)
    - [Kubernetes: HorizontalPodAutoscaler](https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/)
    """

    code = "QLT507"
    name = "rate-limit-per-worker"
    summary = "A per-worker rate limit on a task that several workers run"
    severity = Severity.INFO
    opt_in = True
    frameworks = ("celery",)

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(rate_limit="60/m")
def call_partner_api(order_id):
    pass
""",
            "k8s/worker.yaml": """
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
          args: ["celery", "-A", "proj", "worker", "-c", "4"]
""",
        }, note="one replica: the limit holds"),
        Valid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task
def call_partner_api(order_id):
    pass
""",
            "k8s/worker.yaml": """
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
          args: ["celery", "-A", "proj", "worker"]
""",
        }, note="no rate limit"),
        Valid({"proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(rate_limit="60/m")
def call_partner_api(order_id):
    pass
"""}, note="no worker in sight: nothing to compare"),
    ]
    INVALID = [
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(rate_limit="60/m", acks_late=True)
def call_partner_api(order_id):
    pass
""",
            "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker
          args: ["celery", "-A", "proj", "worker", "-c", "4"]
""",
        }, expect=[("proj/tasks.py", 5)], message="3 replicas"),
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(rate_limit="10/s")
def sync(account_id):
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
          command: ["sh", "-c", "exec celery -A proj worker -c 2"]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker
spec:
  scaleTargetRef:
    name: worker
  maxReplicaCount: 10
""",
        }, expect=[("proj/tasks.py", 5)], message="ScaledObject", note="a KEDA ScaledObject scales the worker"),
        Invalid({
            "proj/__init__.py": "",
            "proj/tasks.py": """
from celery import Celery

app = Celery("proj")

@app.task(rate_limit="100/h")
def report(day):
    pass
""",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker
    deploy:
      replicas: 2
""",
        }, expect=[("proj/tasks.py", 5)], note="compose replicas"),
    ]

    def check(self, ctx: RuleContext) -> None:
        reported: set[int] = set()
        for worker in ctx.project.workers:
            workload = worker.workload
            if "worker" not in worker.command.roles:
                continue
            if workload.replicas is not None and workload.replicas > 1:
                why = f"{workload.replicas} replicas"
            elif workload.autoscaled_by:
                why = f"scaling by {', '.join(workload.autoscaled_by)}"
            else:
                continue
            for task in tasks_of(ctx.project, worker):
                limit = task.options.get(RATE_LIMIT)
                if limit is None or limit.keyword is None or limit.file is None or id(limit.keyword) in reported:
                    continue
                if limit.keyword.value.kind != "const" or not limit.value:
                    continue
                reported.add(id(limit.keyword))
                ctx.report(limit.file, limit.keyword.span,
                           f"`rate_limit={limit.value!r}` on `{task.name}` is enforced by each worker, and "
                           f"{workload.kind} `{workload.name}` runs it with {why}: the real rate is that many "
                           "times higher", statement=task.header if limit.file is task.file else None)
