from __future__ import annotations

import math

from qlint.fixers.yaml import append_argument
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import apps_of, pool_kind, runs_processes


@register
class ConcurrencyDefaultsToHostCpus(Rule):
    """## What it does
    Checks for containerised workers whose pool is sized by the CPU count: a Celery worker with
    no `-c`/`--concurrency`, no `--autoscale` and no `worker_concurrency` in the app's
    configuration; a Dramatiq worker with no `-p`/`--processes`.

    ## Why is this bad?
    Both frameworks default to the CPU count (`os.cpu_count()`), and inside a container that is
    the node's core count, not the pod's CPU limit. A prefork worker with `cpu: 1` on a 64-core
    node forks 64 children, each with its own copy of the application: the pod is OOM-killed at
    start-up or thrashes its one CPU, and moving to a bigger node makes it worse. Celery's
    `threads`, `gevent` and `eventlet` pools take the same default: one thread or greenlet per
    core of the node, so how many tasks run at once changes from node to node.

    ## Example
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker"]
        resources:
          limits:
            cpu: "2"
            memory: 2Gi
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker", "--concurrency=2"]
        resources:
          limits:
            cpu: "2"
            memory: 2Gi
    ```

    ## Per framework
    - **Celery**: `celery -A proj worker` without `-c`/`--concurrency`/`--autoscale`, unless the
      app's configuration sets `worker_concurrency` (read from the code; when the app's
      configuration cannot be fully read, nothing is reported). The pool (`-P`, else the app's
      `worker_pool`, else prefork) decides what the CPU count sizes: prefork child processes,
      `threads` threads, `gevent`/`eventlet` greenlets. `-P solo` runs one task at a time whatever
      the concurrency: not reported. → `--concurrency=<ceil(cpu limit, else request)>` for prefork.
    - **Dramatiq**: `dramatiq proj.actors` (or `manage.py rundramatiq`) without `-p`/`--processes`
      → `--processes=<ceil(cpu)>`.
    RQ runs one job at a time per worker (`rq worker-pool -n` sets its count), Huey defaults to one
    worker thread, Taskiq to 2 processes and arq to 10 async jobs: none of them sizes itself from
    the CPU count.

    A compose service is reported only when it has a CPU limit (`cpus`,
    `deploy.resources.limits.cpus`): without one, the container may use every core of the host,
    so a pool of one per core is what the host gives it. A compose service that mounts the
    project's source from the host (`./:/app`) is a development stack and is not judged.

    ## Fix safety
    The fix appends the flag with the container's CPU limit (else its request) rounded up,
    to the command's list (as a new item, in the list's style) or to a string command when the
    worker is its last command. It is offered for process pools only (a thread or greenlet pool
    is sized by how much its tasks wait, not by cores). It is unsafe: the worker's throughput
    changes. There is no fix when the container states no CPU.

    ## References
    - [Celery: Concurrency](https://docs.celeryq.dev/en/stable/userguide/workers.html#concurrency)
    - [Celery: worker_concurrency](https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-concurrency)
    - [Dramatiq: command-line processes](https://dramatiq.io/guide.html#workers)
    """

    code = "QLT402"
    name = "concurrency-defaults-to-host-cpus"
    summary = "Worker pool sized from the node's CPU count, not the container's"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "dramatiq")

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
          args: ["celery", "-A", "proj", "worker", "--concurrency=2"]
          resources:
            limits:
              cpu: "2"
"""}, note="a concurrency that matches the CPU limit"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.worker_concurrency = 4
""",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -l info
""",
        }, note="worker_concurrency in the app's configuration"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker --autoscale=8,2
  beat:
    image: proj
    command: celery -A proj beat
  rq:
    image: proj
    command: rq worker default
"""}, note="autoscale; beat has no pool; RQ does not size from the CPU count"),
        Valid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: serial
          image: proj
          args: ["celery", "-A", "proj", "worker", "-P", "solo", "-Q", "serial"]
          resources:
            limits:
              cpu: "1"
        - name: scheduler
          image: proj
          args: ["python", "manage.py", "celery", "beat"]
          resources:
            limits:
              cpu: 250m
"""}, note="the solo pool runs one task at a time whatever its size; django-celery's `manage.py celery beat` "
           "is a scheduler"),
        Valid({
            "proj/__init__.py": "",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -l info
  dev-worker:
    build: .
    command: celery -A proj worker -l info
    cpus: "2"
    volumes:
      - ./:/app
""",
        }, note="compose without a CPU limit: the host's cores are the container's; a service that mounts the "
                "project's source is a development stack"),
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
          args: ["celery", "-A", "proj", "worker", "-l", "info"]  # the default queue
          resources:
            requests:
              cpu: 500m
            limits:
              cpu: 1500m
              memory: 2Gi
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
          args: ["celery", "-A", "proj", "worker", "-l", "info", "--concurrency=2"]  # the default queue
          resources:
            requests:
              cpu: 500m
            limits:
              cpu: 1500m
              memory: 2Gi
"""}, message="1.5 CPU", note="flow list: the flag goes in as an item, in the list's quote style"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: actors
spec:
  template:
    spec:
      containers:
        - name: actors
          image: proj
          command:
            - python
            - manage.py
            - rundramatiq
          resources:
            requests:
              cpu: "2"
"""}, expect=[("k8s/worker.yaml", 11)], fixed={"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: actors
spec:
  template:
    spec:
      containers:
        - name: actors
          image: proj
          command:
            - python
            - manage.py
            - rundramatiq
            - --processes=2
          resources:
            requests:
              cpu: "2"
"""}, note="block list, Dramatiq through django-dramatiq"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: sh -c "python manage.py migrate && celery -A proj worker -Q default"
    cpus: "3"
"""}, expect=[("docker-compose.yml", 4)], fixed={"docker-compose.yml": """
services:
  worker:
    image: proj
    command: sh -c "python manage.py migrate && celery -A proj worker -Q default --concurrency=3"
    cpus: "3"
"""}, note="compose, a string command through sh -c"),
        Invalid({"Procfile": "worker: celery -A proj worker\n"}, expect=[("Procfile", 1)],
                note="a Procfile: no CPU stated, no fix"),
        Invalid({"k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: crawler
spec:
  template:
    spec:
      containers:
        - name: crawler
          image: proj
          args: ["celery", "-A", "proj", "worker", "-P", "gevent", "-Q", "crawl"]
          resources:
            limits:
              cpu: "1"
"""}, expect=[("k8s/worker.yaml", 11)], message="the gevent pool runs one greenlet per CPU",
                note="a greenlet pool sized by the node's cores: reported without a fix (its size is not a CPU "
                     "budget)"),
    ]

    def check(self, ctx: RuleContext) -> None:
        configured = self._configured(ctx)
        for worker in ctx.project.workers:
            command = worker.command
            cli = command.cli
            if cli is None or not cli.pool_flags or "worker" not in command.roles or worker.workload.development:
                continue
            if any(flag in command.flags for flag in cli.pool_flags):
                continue
            if cli.pool_setting and (cli.pool_setting in configured or None in configured):
                continue  # set in the code, or the code's configuration cannot be fully read
            container = worker.container
            if worker.workload.kind == "compose" and not container.cpu_limit:
                continue  # no CPU limit: the host's cores are the container's
            apps = apps_of(ctx.project, worker)
            kind = pool_kind(worker, apps)
            started = _default_pool(worker.framework, cli, kind) if kind is not None else None
            if not started:
                continue  # a pool qlint does not know (``-P custom``), or one that ignores its size (solo)
            budget = ""
            if container.cpu_limit:
                budget = f", while the container is limited to {container.cpu_limit:g} CPU"
            elif container.cpu_request:
                budget = f", while the container requests {container.cpu_request:g} CPU"
            cpus = container.cpu_limit or container.cpu_request
            fix = None
            if cpus and runs_processes(worker, apps) and not command.script:  # a script's words: not here
                count = max(1, math.ceil(cpus))
                edits = append_argument(ctx.sources[worker.workload.path], command.tokens[-1],
                                        [f"{cli.pool_fix}={count}"], script_end=command.tokens[-1].text)
                fix = ctx.fix(worker.workload.file, f"Add `{cli.pool_fix}={count}`", edits) if edits else None
            where = f"Procfile entry `{container.name}`" if worker.workload.kind == "Procfile" else \
                f"container `{container.name}`"
            ctx.report(worker.workload.file, worker.anchor(), f"`{command.program}` in {where} sets no pool size: "
                       f"{started}{budget}", fix=fix)

    @staticmethod
    def _configured(ctx: RuleContext) -> set[str | None]:
        """Settings the project's apps set; None among them when some app's configuration is unreadable."""
        out: set[str | None] = set()
        for app in ctx.project.apps:
            out.update(app.settings)
            if not app.config_complete:
                out.add(None)
        return out


def _default_pool(framework: str, cli, kind: str) -> str | None:
    """What the worker's pool starts when nothing sizes it (the CLI table's ``pool_defaults``): a
    message fragment, "" for a pool that ignores its size, None for a pool qlint does not know."""
    return dict(cli.pool_defaults).get(kind)
