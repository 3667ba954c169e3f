from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class WorkerWithoutResourceLimits(Rule):
    """## What it does
    Checks for containers that run a task worker of any framework without a memory limit or
    without a CPU request (Kubernetes; a CPU limit counts as the request, as Kubernetes copies it),
    and compose services that run one without `deploy.resources.limits.memory` or `mem_limit`.
    One finding per container.

    ## Why is this bad?
    Task workers grow: a prefork pool holds a copy of every library per child, a leaking
    task keeps its memory until the child is recycled, and a batch of large payloads lands
    at once. Without a memory limit the worker takes that memory from whatever shares its node
    until the kubelet or the kernel's OOM killer stops something, not necessarily the worker;
    with one, the worker is restarted alone. Without a CPU request the scheduler places the pod as
    if it needed no CPU, so on a busy node it gets the smallest share and every task slows down.

    A scheduler (`celery beat`, `taskiq scheduler`) is one small process and is not judged as a
    worker; it is reported only when its pod states no CPU or memory at all: such a pod is
    BestEffort, among the first evicted when the node runs short of memory, and while it is gone
    nothing it schedules is sent. Monitors (`celery flower`), migrations and other one-off commands are
    not workers.

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
    Every framework's worker commands (Celery `worker`, `rq worker`, `dramatiq`,
    `huey_consumer.py`, `taskiq worker`, `arq`), found in `command`/`args` directly or through
    `sh -c`, `python -m`, `exec`, `dumb-init --`, `poetry run` and Django management commands
    (`rqworker`, `rundramatiq`, `run_huey`, django-celery's `celery worker`).

    Not reported: resources a `LimitRange` in the project fills in for the workload's namespace,
    and compose services that mount the project's source from the host (`./:/app`): those run a
    developer's working copy, not a deployment.

    ## Fix safety
    There is no fix: the right numbers depend on the workload.

    ## References
    - [Kubernetes: Resource management for pods and containers](https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/)
    - [Kubernetes: Pod quality of service classes](https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/)
    - [Kubernetes: LimitRange](https://kubernetes.io/docs/concepts/policy/limit-range/)
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
            limits:
              cpu: "1"
              memory: 1Gi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beat
spec:
  template:
    spec:
      containers:
        - name: beat
          image: proj
          args: ["celery", "-A", "proj", "beat"]
          resources:
            requests:
              cpu: 50m
        - name: flower
          image: proj
          args: ["celery", "-A", "proj", "flower"]
"""}, note="a CPU limit is also the request; a scheduler whose pod requests some CPU is not BestEffort; "
           "flower is a monitor, not a worker"),
        Valid({"k8s/worker.yaml": """
apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: jobs
spec:
  limits:
    - type: Container
      default:
        memory: 1Gi
      defaultRequest:
        cpu: 250m
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: jobs
spec:
  template:
    spec:
      containers:
        - name: worker
          image: proj
          args: ["rq", "worker", "default"]
"""}, note="a LimitRange of the namespace fills in the limit and the request"),
        Valid({
            "proj/__init__.py": "",
            "docker-compose.yml": """
services:
  worker:
    build: .
    command: celery -A proj worker -l info
    volumes:
      - .:/srv/app
""",
        }, note="a compose service that runs the working copy mounted from the host is a development stack"),
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
        Invalid({"k8s/beat.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beat
spec:
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: beat
          image: proj
          args: ["celery", "-A", "proj", "beat", "-l", "info"]
"""}, expect=[("k8s/beat.yaml", 11)], message="`celery beat`, a scheduler",
                note="a scheduler is judged only as a scheduler: its pod states no CPU or memory at all"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rq
spec:
  template:
    spec:
      containers:
        - name: rq
          image: proj
          command: ["sh", "-c", "python manage.py migrate && exec python manage.py rqworker default"]
          resources:
            limits:
              cpu: 500m
"""}, expect=[("k8s/worker.yaml", 9)], message="runs `manage.py rqworker` with no memory limit:",
                note="the CPU limit is the request; the migration before the worker does not change what the "
                     "container runs"),
    ]

    def check(self, ctx: RuleContext) -> None:
        by_container: dict[int, list] = {}
        for worker in ctx.project.workers:
            if worker.workload.kind != "Procfile" and not worker.workload.development:
                by_container.setdefault(id(worker.container), []).append(worker)
        for workers in by_container.values():
            running = [w for w in workers if "worker" in w.command.roles]
            if running:
                self._worker(ctx, running[0])
            else:
                self._scheduler(ctx, workers[0])

    @staticmethod
    def _worker(ctx: RuleContext, worker) -> None:
        container, workload = worker.container, worker.workload
        compose = workload.kind == "compose"
        missing = []
        if container.memory_limit is None and "memory limit" not in workload.defaulted:
            missing.append("no memory limit")
        if not compose and container.cpu_requested is None and "cpu request" not in workload.defaulted:
            missing.append("no CPU request")
        if not missing:
            return
        why = []
        if container.memory_limit is None and missing[0] == "no memory limit":
            where = "host" if compose else "node"
            stopper = "the kernel's OOM killer" if compose else "the kubelet or the kernel's OOM killer"
            why.append(f"a worker that grows (a leak, a batch of large payloads) takes memory from whatever shares "
                       f"its {where} until {stopper} stops something, not necessarily the worker")
        if "no CPU request" in missing:
            why.append("the scheduler places the pod as if it needed no CPU, so on a busy node it gets the smallest "
                       "share and every task slows down")
        ctx.report(workload.file, container.anchor,
                   f"Container `{container.name}` runs `{worker.command.program}` with {' and '.join(missing)}: "
                   f"{'; '.join(why)}")

    @staticmethod
    def _scheduler(ctx: RuleContext, worker) -> None:
        """A scheduler alone in its container: reported only when its pod is BestEffort."""
        container, workload = worker.container, worker.workload
        if workload.kind == "compose" or workload.defaulted or "scheduler" not in worker.command.roles:
            return
        if any(c.cpu_limit is not None or c.cpu_request is not None or c.memory_limit is not None
               or c.memory_request is not None for c in workload.containers):
            return
        ctx.report(workload.file, container.anchor,
                   f"Container `{container.name}` runs `{worker.command.program}`, a scheduler, and no container of "
                   f"its pod requests or limits CPU or memory: the pod is BestEffort, among the first evicted when "
                   "the node runs short of memory, and nothing it schedules is sent until it runs again")
