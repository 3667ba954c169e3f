from __future__ import annotations

import os
import re
import shlex

from qlint.fixers.yaml import add_block
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.commands import SEPARATORS, SHELLS
from qlint.manifests.joins import apps_of, runs_processes

# Probe timing: a worker that imports a large app needs seconds to answer; three misses a minute
# apart restart it (and leave a starting worker three minutes to come up).
K8S_TIMING = ("periodSeconds: 60", "timeoutSeconds: 20", "failureThreshold: 3")
COMPOSE_TIMING = ("interval: 60s", "timeout: 20s", "retries: 3")
_SAFE = re.compile(r"^[A-Za-z0-9_.:@%/=+\-]+$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
# Workloads whose containers run to completion: a liveness probe is not how they end.
FINITE = frozenset({"Procfile", "Job", "CronJob"})


@register
class WorkerWithoutLivenessProbe(Rule):
    """## What it does
    Checks for containers that run a task worker without a `livenessProbe` (compose services
    without a `healthcheck`). Workers in Jobs, CronJobs and Procfiles are not checked, nor are
    schedulers (`celery beat`), monitors (`celery flower`) and one-off commands, nor compose
    services that mount the project's source from the host (`./:/app`, a developer's stack).

    ## Why is this bad?
    A worker can stop working without exiting: a prefork pool whose children are deadlocked,
    a consumer that lost its broker connection and never reconnects, a main loop blocked on a
    stuck socket. The process stays up, Kubernetes reports the pod Running and Ready, and the
    worker runs nothing while the queue grows (a Celery or Dramatiq worker also keeps the
    messages it prefetched from the other workers). Without a liveness
    probe nothing restarts it; with one, the kubelet does after a few failed checks. Compose
    only marks a service with a failing `healthcheck` unhealthy: Swarm replaces it, and plain
    Compose needs a watchdog (or `depends_on: condition: service_healthy`) to act on it.

    ## Example
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "-c", "2"]
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "-c", "2"]
        livenessProbe:
          exec:
            command: ["sh", "-c", "celery -A proj inspect ping --timeout 10 -d celery@$HOSTNAME"]
          periodSeconds: 60
          timeoutSeconds: 20
          failureThreshold: 3
    ```

    ## Per framework
    - **Celery**: `celery -A proj inspect ping -d celery@$HOSTNAME` asks this pod's worker (its
      node name, `celery@%h` unless `-n` says otherwise) to answer over the broker; it needs
      remote control (RabbitMQ or Redis, `worker_enable_remote_control` on). The fix writes it.
    - **arq**: `arq --check proj.worker.WorkerSettings` exits 1 when the queue's health-check key
      has expired, but every worker of the queue refreshes the same key (every
      `health_check_interval`, 3600 s by default): it says the queue has a live worker, not this
      one. No fix.
    - **RQ**, **Dramatiq**, **Huey**, **Taskiq**: no command asks one worker whether it is alive;
      a heartbeat file the worker touches (checked with `find /tmp/heartbeat -mmin -2`) or a
      metrics endpoint (Dramatiq's Prometheus middleware) is the usual probe. No fix.

    ## Fix safety
    The fix adds a Celery probe at the end of the container (compose: a `healthcheck` at the end
    of the service), indented like the file, only when the container runs one Celery prefork
    worker, runs it as `celery` (or through `python -m`, `poetry run`, ...) as the only command
    of its shell script (`cd /app && ...` or `source .venv/bin/activate && ...` set up what a
    probe run on its own would lack), and names its app, broker and node name with plain values. It is not offered when the app's configuration or the
    container's env shows a broker without remote control (SQS, ...) or
    `worker_enable_remote_control` off (values qlint cannot see are assumed to allow it), or when
    the container's entry is not a block mapping that ends on a plain value. It is unsafe: the
    probe needs `sh` in the image and runs without the image's entrypoint, imports the app
    every minute (CPU and memory in the container), and a worker whose main process is busy for longer than the probe allows
    (the `solo` pool, long blocking startup) is restarted.

    ## References
    - [Kubernetes: Configure liveness probes](https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/)
    - [Compose: healthcheck](https://docs.docker.com/reference/compose-file/services/#healthcheck)
    - [Celery: inspect ping](https://docs.celeryq.dev/en/stable/userguide/monitoring.html#commands)
    - [arq: health checks](https://arq-docs.helpmanual.io/#health-checks)
    """

    code = "QLT705"
    name = "worker-without-liveness-probe"
    summary = "Worker container without a liveness probe"
    severity = Severity.INFO
    fix_availability = "Sometimes"
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
          image: proj
          args: ["celery", "-A", "proj", "worker"]
          livenessProbe:
            exec:
              command: ["sh", "-c", "celery -A proj inspect ping -d celery@$HOSTNAME"]
            periodSeconds: 60
        - name: web
          image: proj
          args: ["gunicorn", "proj.wsgi"]
"""}, note="a probe on the worker; the web container is not a worker"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: arq proj.worker.WorkerSettings
    healthcheck:
      test: ["CMD", "arq", "--check", "proj.worker.WorkerSettings"]
      interval: 60s
  beat:
    image: proj
    command: celery -A proj beat
"""}, note="compose healthcheck; a scheduler is not a worker"),
        Valid({"k8s/job.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain
spec:
  schedule: "*/10 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: drain
              image: proj
              args: ["rq", "worker", "--burst", "default"]
"""}, note="a burst worker in a CronJob runs to completion"),
        Valid({
            "proj/__init__.py": "",
            "docker-compose.yml": """
services:
  worker:
    build: .
    command: python manage.py rqworker default
    volumes:
      - ./:/app
  scheduler:
    image: proj
    command: python manage.py celery beat
""",
        }, note="a service that runs the working copy mounted from the host is a developer's stack; "
                "django-celery's `manage.py celery beat` is a scheduler"),
    ]
    INVALID = [
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker  # the default queue
          image: proj
          command: ["python", "-m", "celery"]
          args: ["-A", "proj.celery:app", "worker", "-c", "4", "-n", "default@%h"]
          env:
            - name: CELERY_BROKER_URL
              valueFrom:
                secretKeyRef: {name: proj-broker, key: url}
          resources:
            limits:
              cpu: "2"
              memory: 2Gi
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
  maxReplicas: 6
"""}, expect=[("k8s/worker.yaml", 10)], fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: worker  # the default queue
          image: proj
          command: ["python", "-m", "celery"]
          args: ["-A", "proj.celery:app", "worker", "-c", "4", "-n", "default@%h"]
          env:
            - name: CELERY_BROKER_URL
              valueFrom:
                secretKeyRef: {name: proj-broker, key: url}
          resources:
            limits:
              cpu: "2"
              memory: 2Gi
          livenessProbe:
            exec:
              command: ["sh", "-c", "python -m celery -A proj.celery:app inspect ping --timeout 10 -d default@$HOSTNAME"]
            periodSeconds: 60
            timeoutSeconds: 20
            failureThreshold: 3
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
  maxReplicas: 6
"""}, message="livenessProbe",
                note="python -m celery, args split from command, a node name with %h; the probe goes at the "
                     "container's end, before the next document"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -l info
    environment:
      CELERY_BROKER_URL: redis://redis:6379/0
    deploy:
      resources:
        limits:
          memory: 1G
  redis:
    image: redis:7
  reports:
    image: proj
    command: sh -c "cd /srv/app && celery -A proj worker -Q reports"
"""}, expect=[("docker-compose.yml", 2), ("docker-compose.yml", 13)], fixed={"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -l info
    environment:
      CELERY_BROKER_URL: redis://redis:6379/0
    deploy:
      resources:
        limits:
          memory: 1G
    healthcheck:
      test: ["CMD-SHELL", "celery -A proj inspect ping --timeout 10 -d celery@$$HOSTNAME"]
      interval: 60s
      timeout: 20s
      retries: 3
  redis:
    image: redis:7
  reports:
    image: proj
    command: sh -c "cd /srv/app && celery -A proj worker -Q reports"
"""}, message="healthcheck", note="compose: $$ keeps $HOSTNAME from compose's own interpolation; a worker "
                                  "started after `cd` gets no probe (run alone, it would not find the app)"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker
    environment:
      CELERY_BROKER_URL: sqs://
  actors:
    image: proj
    command: ["dramatiq", "proj.actors", "-p", "2"]
  huey:
    image: proj
    command: huey_consumer.py proj.tasks.huey -w 4
"""}, expect=[("docker-compose.yml", 2), ("docker-compose.yml", 7), ("docker-compose.yml", 10)],
                note="SQS has no remote control, so no Celery probe; Dramatiq and Huey have no probe command"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_enable_remote_control = False
""",
            "k8s/worker.yaml": """
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
          args:
            - celery
            - -A
            - proj
            - worker
""",
        }, expect=[("k8s/worker.yaml", 9)], note="remote control off in the app: ping would never answer, no fix"),
    ]

    def check(self, ctx: RuleContext) -> None:
        by_container: dict[int, list] = {}
        for worker in ctx.project.workers:
            if "worker" in worker.command.roles and worker.workload.kind not in FINITE and \
                    not worker.workload.development:
                by_container.setdefault(id(worker.container), []).append(worker)
        for workers in by_container.values():
            worker = workers[0]
            container, workload = worker.container, worker.workload
            if container.liveness:
                continue
            compose = workload.kind == "compose"
            fix = self._fix(ctx, worker) if len(workers) == 1 else None
            if compose:
                consequence = ("and Docker cannot tell: a `healthcheck` marks it unhealthy, which Swarm and "
                               "watchdogs act on")
            else:
                consequence = "and nothing restarts it"
            ctx.report(workload.file, container.anchor,
                       f"Container `{container.name}` runs `{worker.command.program}` with no "
                       f"`{'healthcheck' if compose else 'livenessProbe'}`: a worker that hangs (deadlocked, or "
                       f"waiting on a broker connection it never recovers) stays up and runs nothing, {consequence}",
                       fix=fix)

    def _fix(self, ctx: RuleContext, worker):
        command = _probe_command(ctx, worker)
        if command is None:
            return None
        workload = worker.workload
        src = ctx.sources[workload.path]
        if workload.kind == "compose":
            node, key = workload.spec, "healthcheck"
            lines = [(0, f'test: ["CMD-SHELL", "{command.replace("$", "$$")}"]')] + [(0, t) for t in COMPOSE_TIMING]
        else:
            node, key = worker.container.node, "livenessProbe"
            lines = [(0, "exec:"), (1, f'command: ["sh", "-c", "{command}"]')] + [(0, t) for t in K8S_TIMING]
        edits = add_block(src, node, key, lines) if node is not None else []
        return ctx.fix(workload.file, f"Add a `{key}` running `{command}`", edits) if edits else None



def _probe_command(ctx: RuleContext, worker) -> str | None:
    """The framework's probe for this worker, as a shell command, or None when it cannot be trusted."""
    command = worker.command
    cli = command.cli
    probe = cli.probe if cli is not None else None
    if probe is None:
        return None
    program = command.tokens[0].text if command.tokens else ""
    if os.path.basename(program).removesuffix(".py") not in cli.programs:
        return None  # a Django management command: no program to ask
    if not _alone(worker):
        return None
    apps = apps_of(ctx.project, worker)
    if not runs_processes(worker, apps) or not _answers(worker, apps, probe):
        return None
    values = dict(probe.defaults)
    shapes = dict(probe.shapes)
    for name in set(_PLACEHOLDER.findall(probe.words)):
        flag = command.flags.get(name)
        if flag is not None and flag.value is not None:
            if name in shapes and not re.fullmatch(shapes[name], flag.value):
                return None
            values[name] = flag.value
    for name, value in values.items():
        if not _SAFE.match(value):
            return None
        for spelling in probe.host:
            value = value.replace(spelling, "$HOSTNAME")
        if "%" in value:
            return None  # another placeholder of the framework's (a domain name, a process index)
        values[name] = value

    def optional(match: re.Match) -> str:
        inner = match.group(1)
        return inner if all(n in values for n in _PLACEHOLDER.findall(inner)) else ""

    text = _OPTIONAL.sub(optional, probe.words)
    if any(name not in values for name in _PLACEHOLDER.findall(text)):
        return None
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    words = [*command.runner, program, *text.split()]
    if not all(_SAFE.match(w.replace("$HOSTNAME", "")) or w.replace("$HOSTNAME", "") == "" for w in words):
        return None
    return " ".join(words)


def _alone(worker) -> bool:
    """The worker is the only command of its shell script: earlier ones (``source venv/bin/activate``,
    ``cd /app``, ``export ...``) may set up what the probe, run on its own, would lack."""
    argv = worker.container.argv
    if len(argv) < 3 or os.path.basename(argv[0].text) not in SHELLS or not argv[1].text.startswith("-") or \
            "c" not in argv[1].text:
        return True
    try:
        words = shlex.split(argv[2].text, comments=True)
    except ValueError:
        return False
    return not any(w in SEPARATORS or w.endswith((";", "&")) or w == "&" for w in words)


def _answers(worker, apps: list, probe) -> bool:
    """Whether nothing known keeps the probe from answering (a broker without remote control, ...)."""
    env = worker.container.env
    for name, prefixes in probe.requires:
        found = []
        flag = worker.command.flags.get(name)
        if flag is not None:
            found.append(flag.value)
        if name in env:
            found.append(env[name][0])
        for app in apps:
            resolved = app.settings.get(name)
            if resolved is None:
                continue
            if resolved.known:
                found.append(str(resolved.value))
            elif resolved.env and resolved.env in env:  # ``os.environ["CELERY_BROKER_URL"]``
                found.append(env[resolved.env][0])
        for value in found:
            if value is None or value.startswith("$") or not value.strip():
                continue  # from a Secret or interpolated: unknown, assumed to work
            if not value.strip().startswith(prefixes):
                return False
    return True


