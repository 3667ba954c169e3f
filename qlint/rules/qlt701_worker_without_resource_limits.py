from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class WorkerWithoutResourceLimits(Rule):
    """## What it does
    Checks for containers that run a task worker (or scheduler) of any framework without a
    memory limit or without a CPU request (Kubernetes), and compose services that run one
    without `deploy.resources.limits.memory` or `mem_limit`. One finding per container.

    ## Why is this bad?
    Task workers grow: a prefork pool holds a copy of every library per child, a leaking
    task keeps its memory until the child is recycled, and a batch of large payloads lands
    at once. Without a memory limit the node's OOM killer picks a victim, often another
    tenant; with one, the worker is restarted alone. Without a CPU request the scheduler
    packs workers onto busy nodes and every task slows down; and frameworks that size their
    pool from the CPU count (Celery, Dramatiq) see the node's cores, not the share the pod
    gets (QLT402).

    ## Example
    ```yaml
    containers:
      - name: worker
        image: proj
        args: ["celery", "-A", "proj", "worker", "-c", "2"]
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        image: proj
        args: ["celery", "-A", "proj", "worker", "-c", "2"]
        resources:
          requests:
            cpu: "1"
            memory: 1Gi
          limits:
            memory: 1Gi
    ```

    ## Per framework
    Every framework's worker and scheduler commands (Celery `worker`/`beat`, `rq worker`,
    `dramatiq`, `huey_consumer.py`, `taskiq worker`/`scheduler`, `arq`), found in
    `command`/`args` directly or through `sh -c`, `python -m`, `exec`, `dumb-init --`,
    `poetry run` and Django management commands (`rqworker`, `rundramatiq`, `run_huey`).

    ## Fix safety
    There is no fix: the right numbers depend on the workload.

    ## References
    - [Kubernetes: Resource management for pods and containers](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/)
    - [Compose: deploy.resources](https://docs.docker.com/reference/compose-file/deploy/#resources)
    """

    code = "QLT701"
    name = "worker-without-resource-limits"
    summary = "Worker container without a memory limit or a CPU request"
    severity = Severity.WARNING
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
          image: proj
          args: ["celery", "-A", "proj", "worker", "-c", "2"]
          resources:
            requests:
              cpu: 500m
              memory: 512Mi
            limits:
              memory: 1Gi
        - name: web
          image: proj
          args: ["gunicorn", "proj.wsgi"]
"""}, note="a worker with both; a web container is not a worker"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: rq worker --with-scheduler default
    mem_limit: 512m
"""}, note="compose: mem_limit"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: ["dramatiq", "proj.actors", "-p", "2"]
    deploy:
      resources:
        limits:
          memory: 1G
"""}, note="compose: deploy.resources.limits"),
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
          command: ["sh", "-c", "exec celery -A proj worker -c 2"]
"""}, expect=[("k8s/worker.yaml", 9)], message="no memory limit and no CPU request"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: consumer
spec:
  template:
    spec:
      containers:
        - name: consumer
          image: proj
          args:
            - python
            - manage.py
            - run_huey
            - -n
          resources:
            limits:
              memory: 1Gi
"""}, expect=[("k8s/worker.yaml", 9)], message="no CPU request"),
        Invalid({"docker-compose.yml": """
services:
  arq:
    image: proj
    command: arq proj.worker.WorkerSettings
    cpus: "1"
"""}, expect=[("docker-compose.yml", 2)], message="no memory limit", note="compose"),
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[int] = set()
        for worker in ctx.project.workers:
            container, workload = worker.container, worker.workload
            if id(container) in seen or workload.kind == "Procfile":
                continue
            seen.add(id(container))
            missing = []
            if container.memory_limit is None:
                missing.append("no memory limit")
            if container.cpu_request is None and workload.kind != "compose":
                missing.append("no CPU request")
            if missing:
                ctx.report(workload.file, container.anchor,
                           f"Container `{container.name}` runs a {worker.framework} worker with "
                           f"{' and '.join(missing)}: a growing worker is OOM-killed with whatever shares its "
                           "node, and the pool is sized from the node's cores, not the pod's share")
