from __future__ import annotations

import re
import signal
from pathlib import Path

from qlint.fixers.yaml import append_argument, set_scalar
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import setting, settings_of
from qlint.manifests.yamldoc import Node

DOCKERFILE_LIMIT = 1 << 20  # bytes: a larger "Dockerfile" is not one
# A preStop hook that sends SIGINT to the container's main process before the kubelet's SIGTERM.
_KILL_INT = re.compile(r"\b(kill|pkill|killall)\b[^;&|]*?\s-(s\s+)?(SIG)?(INT|2)\b", re.IGNORECASE)


@register
class SigtermInterruptsTasks(Rule):
    """## What it does
    Checks for workers whose stop signal cuts running tasks off instead of letting them
    finish: a Huey consumer stopped with SIGTERM (what Kubernetes, `docker stop` and most
    platforms send) while its graceful signal is SIGINT; an arq worker whose settings class
    sets `handle_signals = False` (no handler at all); and workers told to wait 0 s for
    running tasks on shutdown (arq's `job_completion_wait`, 0 by default; Dramatiq's
    `--worker-shutdown-timeout 0`) in a workload whose grace period would let them finish.
    Developer stacks (a compose service running the mounted source, a compose file named for
    development, a reloader such as `watchmedo auto-restart` or `--watch`) are not judged.

    ## Why is this bad?
    Every deploy, scale-down and node drain stops the worker. Celery, RQ and Taskiq treat
    SIGTERM as a warm shutdown: they stop taking work and finish what runs. Huey does the
    opposite: SIGINT is its graceful stop, SIGTERM "Immediate shutdown. Running tasks are
    interrupted" (Huey's deployment guide), and since Huey does not acknowledge tasks, the
    interrupted ones are simply gone. arq with `job_completion_wait = 0` cancels every running
    job the moment the signal arrives, although Kubernetes would give it 30 s: the jobs start
    over from the beginning on another worker, and a job longer than the interval between
    deploys never completes.

    ## Example
    ```yaml
    containers:
      - name: huey
        image: proj
        command: ["huey_consumer", "proj.tasks.huey", "-w", "4", "-n"]
    ```

    Use instead:
    ```yaml
    containers:
      - name: huey
        image: proj
        command: ["huey_consumer", "proj.tasks.huey", "-w", "4", "-n", "-g", "TERM"]
    ```

    ## Per framework
    - **Huey**: `huey_consumer` (or Django's `manage.py run_huey`) is reported unless SIGTERM
      is made graceful with `-g TERM`/`--graceful-signal TERM` (Huey 3.4 and later), or the
      container is stopped with SIGINT: compose `stop_signal: SIGINT`, Kubernetes
      `lifecycle.stopSignal: SIGINT` (alpha in Kubernetes 1.33) or a `lifecycle.preStop` hook
      that runs `kill -INT 1`. With `-g TERM`, SIGINT becomes the interrupting signal, so
      `-g TERM` together with `stop_signal: SIGINT` is reported too. A compose service built
      from a Dockerfile in the repository (`build: .`, or `context`/`dockerfile`/`target`)
      is stopped with that Dockerfile's `STOPSIGNAL` (Huey's deployment guide sets
      `STOPSIGNAL SIGINT`); an image pulled from a registry is not visible, so for Kubernetes
      suppress the finding with `# noqa: QLT704` on the command line when the image sets it.
      Django's `HUEY = {"consumer": {"graceful_signal": "TERM"}}` is not read.
      ```yaml
      command: ["huey_consumer", "proj.tasks.huey"]  # SIGTERM interrupts running tasks
      ```
    - **arq**: the `WorkerSettings` class the command names sets `handle_signals = False`
      (worker.py then adds no signal handler: SIGTERM keeps Python's default action and ends the
      process, `job_completion_wait` never applies, running jobs are neither finished nor
      cancelled and are taken up again only when their in-progress key expires, after the longest
      job timeout + 10 s); or it sets `job_completion_wait = 0` or leaves it out (0 by default:
      running jobs are cancelled at once on SIGTERM and SIGINT alike), while the workload's grace
      period is longer. Without the settings class in the project nothing is reported.
      `arq --check` is a health probe, not a worker.
      ```python
      class WorkerSettings:
          functions = [export]  # job_completion_wait: 0, running jobs are cancelled on SIGTERM
      ```
    - **Dramatiq**: `--worker-shutdown-timeout 0` (the default, 600000 ms, waits).
      ```yaml
      args: ["dramatiq", "proj.actors", "--worker-shutdown-timeout", "0"]
      ```

    ## Fix safety
    For Huey the fix sets `stop_signal: SIGINT` on a compose service (every Huey version) and
    adds `-g TERM` to a Kubernetes or Procfile command. It is unsafe: Huey releases before
    3.4 have no `-g` and exit at start-up with "no such option", and a graceful stop waits
    for running tasks, so shutdowns take longer (up to the grace period; QLT702 compares it
    with the tasks). No fix is offered for arq or Dramatiq: the wait belongs below the grace
    period and only you know how long your tasks take.

    ## References
    - [Huey: Consumer shutdown](https://huey.readthedocs.io/en/latest/consumer.html#consumer-shutdown)
    - [Huey: Deployment (signals)](https://huey.readthedocs.io/en/latest/deployment.html)
    - [arq: Worker (`job_completion_wait`)](https://arq-docs.helpmanual.io/#arq.worker.Worker)
    - [Dramatiq: Command line](https://dramatiq.io/guide.html)
    - [Kubernetes: Container stop signals](https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/)
    - [Compose: stop_signal](https://docs.docker.com/reference/compose-file/services/#stop_signal)
    """

    code = "QLT704"
    name = "sigterm-interrupts-tasks"
    summary = "The worker's stop signal cuts running tasks off instead of letting them finish"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("dramatiq", "huey", "arq")

    VALID = [
        Valid({"k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  replicas: 1
  template:
    spec:
      terminationGracePeriodSeconds: 120
      containers:
        - name: huey
          image: registry.example.com/proj:2.1.0
          command: ["huey_consumer", "proj.tasks.huey", "-w", "4", "-k", "process", "--graceful-signal=TERM"]
"""}, note="Huey 3.4+: SIGTERM made the graceful signal"),
        Valid({"docker-compose.yml": """
services:
  huey:
    image: proj
    command: python manage.py run_huey -w 2
    stop_signal: SIGINT
    stop_grace_period: 2m
"""}, note="compose stops the consumer with SIGINT, Huey's graceful signal"),
        Valid({"k8s/huey.yaml": """
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
          args:
            - sh
            - -c
            - exec huey_consumer proj.tasks.huey -w 2
          lifecycle:
            preStop:
              exec:
                command: ["sh", "-c", "kill -INT 1 && sleep 25"]
"""}, note="a preStop hook sends SIGINT before the kubelet's SIGTERM"),
        Valid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from arq import func

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [func(export, timeout=600)]
    job_completion_wait = 25
""",
            "k8s/arq.yaml": """
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
""",
        }, note="arq waits 25 s for running jobs, inside the default 30 s"),
        Valid({"k8s/jobs.yaml": """
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
          args: ["rq", "worker", "default"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dramatiq
spec:
  template:
    spec:
      containers:
        - name: dramatiq
          image: proj
          args: ["dramatiq", "proj.actors", "-p", "2"]
"""}, note="RQ and Dramatiq (600 s by default) finish running work on SIGTERM"),
        Valid({"docker-compose.yml": """
services:
  huey:
    image: proj
    command: huey_consumer proj.tasks.huey -g TERM
    stop_signal: SIGTERM
"""}, note="-g TERM with compose's explicit SIGTERM"),
        Valid({
            "deploy/compose.yaml": """
services:
  worker:
    build:
      context: ..
      dockerfile: deploy/Dockerfile
      target: runtime
    command: ["huey_consumer", "proj.tasks.huey", "-w", "4"]
    stop_grace_period: 60s
""",
            "deploy/Dockerfile": """
FROM python:3.13-slim AS build
RUN pip wheel --wheel-dir /wheels -r requirements.txt

FROM python:3.13-slim AS runtime
COPY --from=build /wheels /wheels
# huey's graceful shutdown signal
STOPSIGNAL SIGINT
CMD ["huey_consumer", "proj.tasks.huey"]
""",
        }, note="compose builds the image from a Dockerfile whose stage sets STOPSIGNAL SIGINT"),
        Valid({
            "app/__init__.py": "",
            "app/worker.py": """
from arq.connections import RedisSettings

async def send_report(ctx, report_id):
    pass

class WorkerSettings:
    functions = [send_report]
    redis_settings = RedisSettings(host="redis")
    handle_signals = False
""",
            "docker-compose.yml": """
services:
  worker:
    build: .
    command: arq app.worker.WorkerSettings
    volumes:
      - ./app:/code/app
  huey:
    build: .
    command: watchmedo auto-restart --pattern=*.py --recursive -- huey_consumer app.huey
  health:
    image: registry.example.com/proj:1.4.2
    command: arq --check app.worker.WorkerSettings
""",
        }, note="developer stacks (the mounted source, a reloader) are not judged; `arq --check` is a probe"),
    ]
    INVALID = [
        Invalid({
            "app/__init__.py": "",
            "app/worker.py": """
from arq import func
from arq.connections import RedisSettings

async def send_report(ctx, report_id):
    pass

class WorkerSettings:
    functions = [func(send_report, timeout=600)]
    redis_settings = RedisSettings(host="redis")
    job_completion_wait = 60
    handle_signals = False
""",
            "deploy/worker.yaml": """
# Source: proj/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-arq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 90
      containers:
        - name: arq
          image: "registry.example.com/proj:1.4.2"
          args: ["arq", "app.worker.WorkerSettings"]
""",
        }, expect=[("deploy/worker.yaml", 13)], message="sets `handle_signals = False`: the worker installs no handler "
                                                       "for SIGTERM",
            note="no handler at all: job_completion_wait never applies"),
        Invalid({"k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 300
      containers:
        - name: huey
          image: registry.example.com/proj:2.1.0
          command:
            - huey_consumer
            - proj.tasks.huey
            - -w
            - "4"  # one per core
"""}, expect=[("k8s/huey.yaml", 12)], fixed={"k8s/huey.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: huey
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 300
      containers:
        - name: huey
          image: registry.example.com/proj:2.1.0
          command:
            - huey_consumer
            - proj.tasks.huey
            - -w
            - "4"  # one per core
            - "-g"
            - "TERM"
"""}, message="SIGINT", note="Kubernetes sends SIGTERM: the fix adds -g TERM in the list's style"),
        Invalid({"docker-compose.yml": """
services:
  huey:
    image: proj
    # the consumer runs the periodic tasks too
    command: python manage.py run_huey --workers 4
    stop_grace_period: 1m30s
"""}, expect=[("docker-compose.yml", 5)], fixed={"docker-compose.yml": """
services:
  huey:
    image: proj
    # the consumer runs the periodic tasks too
    command: python manage.py run_huey --workers 4
    stop_signal: SIGINT
    stop_grace_period: 1m30s
"""}, message="docker stop", note="compose: the fix sets stop_signal, which every Huey version honours"),
        Invalid({"docker-compose.yml": """
services:
  huey:
    image: proj
    command: ["huey_consumer", "proj.tasks.huey", "-g", "TERM"]
    stop_signal: SIGINT
"""}, expect=[("docker-compose.yml", 4)], fixed={"docker-compose.yml": """
services:
  huey:
    image: proj
    command: ["huey_consumer", "proj.tasks.huey", "-g", "TERM"]
    stop_signal: SIGTERM
"""}, message="`stop_signal: SIGINT`", note="-g TERM makes SIGINT the interrupting signal"),
        Invalid({"Procfile": "web: gunicorn proj.wsgi\nworker: huey_consumer proj.tasks.huey -k process -w 2\n"},
                expect=[("Procfile", 2)],
                fixed={"Procfile": "web: gunicorn proj.wsgi\n"
                                   "worker: huey_consumer proj.tasks.huey -k process -w 2 -g TERM\n"},
                note="a Procfile: the platform sends SIGTERM and offers no other signal"),
        Invalid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from arq import cron, func

async def export(ctx, report_id):
    pass

async def nightly(ctx):
    pass

class WorkerSettings:
    functions = [func(export, timeout=600)]
    cron_jobs = [cron(nightly, hour=3)]
""",
            "k8s/arq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: arq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 660
      containers:
        - name: arq
          image: proj
          command: ["sh", "-c", "exec arq proj.worker.WorkerSettings"]
""",
        }, expect=[("k8s/arq.yaml", 12)], message="`job_completion_wait`",
            note="arq cancels running jobs at once although the pod has 660 s"),
        Invalid({"k8s/dramatiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dramatiq
spec:
  template:
    spec:
      containers:
        - name: dramatiq
          image: proj
          args:
            - dramatiq
            - proj.actors
            - --worker-shutdown-timeout=0
"""}, expect=[("k8s/dramatiq.yaml", 14)], message="`--worker-shutdown-timeout=0`",
            note="Dramatiq told not to wait at all"),
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[tuple[str, int]] = set()
        for worker in ctx.project.workers:
            cli = worker.command.cli
            if cli is None or "worker" not in worker.command.roles or worker.development:
                continue
            found = self._signal_mismatch(ctx, worker) or self._no_handler(ctx, worker) or self._no_wait(ctx, worker)
            if found is None:
                continue
            anchor, message, fix = found
            key = (worker.workload.path, anchor.start)
            if key in seen:
                continue
            seen.add(key)
            ctx.report(worker.workload.file, anchor, message, fix=fix)

    def _signal_mismatch(self, ctx: RuleContext, worker):
        stop = worker.command.cli.stop_signals
        if stop is None:
            return None
        flag = worker.command.flags.get(stop.flag) if stop.flag else None
        graceful = signal_name(flag.value) if flag is not None else signal_name(stop.graceful)
        sent, where, explicit = stop_signal(worker)
        if graceful is None or sent is None or sent == graceful:
            return None  # a value qlint cannot read (``${STOP_SIGNAL}``), or the graceful one
        workload = worker.workload
        hint = "" if explicit or workload.kind == "Procfile" else f", unless the image sets `STOPSIGNAL {graceful}`"
        message = (f"The {worker.framework} worker in `{worker.container.name}` is stopped with {sent} ({where}"
                   f"{hint}), but its graceful signal is {graceful}: {stop.interrupts}")
        fix = None
        src = ctx.sources[workload.path]
        if workload.kind == "compose" and workload.pod is not None and workload.pod.is_map:
            edits = set_scalar(src, workload.pod, "stop_signal", graceful, after=_after(workload.pod))
            fix = ctx.fix(workload.file, f"Set `stop_signal: {graceful}`", edits) if edits else None
        elif flag is None and not explicit and stop.fix and worker.command.tokens:
            last = worker.command.tokens[-1]
            edits = append_argument(src, last, list(stop.fix), script_end=last.text)
            words = " ".join(stop.fix)
            fix = ctx.fix(workload.file, f"Add `{words}` ({stop.since} or later)", edits) if edits else None
        anchor = worker.anchor(stop.flag) if flag is not None else worker.anchor()
        return anchor, message, fix

    def _no_handler(self, ctx: RuleContext, worker):
        """A settings class that tells the worker to install no signal handlers (arq
        ``handle_signals = False``): SIGTERM keeps Python's default action and ends the process."""
        cli = worker.command.cli
        if not cli.signals_setting:
            return None
        site = settings_of(ctx.project, worker)
        if site is None or setting(site, cli.signals_setting, True) is not False:
            return None
        wait = f" (whatever `{cli.shutdown_setting}` says)" if cli.shutdown_setting else ""
        message = (f"The {worker.framework} worker in `{worker.container.name}` runs `{site.cls.name}`, which sets "
                   f"`{cli.signals_setting} = False`: the worker installs no handler for SIGTERM, so stopping the "
                   f"container ends it with its jobs in flight: they are neither waited for{wait} nor cancelled, "
                   "`on_shutdown` does not run, and they run again only once their in-progress marker expires (the "
                   "longest job timeout + 10 s); remove the setting, which is meant for a worker run inside another "
                   "event loop")
        return worker.anchor(), message, None

    def _no_wait(self, ctx: RuleContext, worker):
        cli = worker.command.cli
        workload = worker.workload
        if not (cli.shutdown_flag or cli.shutdown_setting) or workload.kind == "Procfile":
            return None
        flag = worker.command.flags.get(cli.shutdown_flag) if cli.shutdown_flag else None
        anchor = worker.anchor()
        if flag is not None:
            wait = _number(flag.value)
            wait = wait / cli.shutdown_scale if wait is not None else None
            where = f"`{flag.token.text}`" if "=" in flag.token.text else f"`{flag.token.text} {flag.value}`"
            anchor = worker.anchor(cli.shutdown_flag)
        elif cli.shutdown_setting:
            site = settings_of(ctx.project, worker)
            if site is None:
                return None  # the settings class is not in the project: its value is unknown
            value = setting(site, cli.shutdown_setting, None)
            if value is None:
                wait = cli.shutdown_default
                where = (f"`{cli.shutdown_setting}` is not set in `{site.cls.name}`: "
                         f"{cli.shutdown_default:g} s by default")
            else:
                wait, where = _number(value), f"`{cli.shutdown_setting} = {value!r}` in `{site.cls.name}`"
        else:
            wait, where = cli.shutdown_default, "the default"
        if wait is None or wait > 0:
            return None
        grace, default = workload.grace
        if grace <= 0:
            return None
        message = (f"The {worker.framework} worker in `{worker.container.name}` waits 0 s for running tasks when "
                   f"it is stopped ({where}), although {workload.kind} `{workload.name}` gives it "
                   f"{'the default ' if default else ''}{grace:g} s: every deploy or scale-down cancels the tasks "
                   "in flight mid-run")
        return anchor, message, None


def signal_name(text: str | None) -> str | None:
    """``SIGINT`` from ``INT``, ``sigint``, ``SIGINT`` or ``2``; None for anything else."""
    word = (text or "").strip().strip("\"'").upper()
    if word.isdigit():
        try:
            return signal.Signals(int(word)).name
        except ValueError:
            return None
    name = word if word.startswith("SIG") else f"SIG{word}"
    return name if name in signal.Signals.__members__ else None


def stop_signal(worker) -> tuple[str | None, str, bool]:
    """The signal the container is stopped with, where that comes from, and whether the manifest
    states it (an unstated one may still come from the image's ``STOPSIGNAL``)."""
    workload = worker.workload
    if workload.kind == "compose":
        if workload.stop_signal is not None:
            return signal_name(workload.stop_signal), f"`stop_signal: {workload.stop_signal}`", True
        built = dockerfile_stop_signal(workload)
        if built is not None:
            return built
        return "SIGTERM", "the default of `docker stop`", False
    if workload.kind == "Procfile":
        return "SIGTERM", "what the platform sends to stop a process", False
    node = worker.container.node
    lifecycle = node.get("lifecycle") if node is not None and node.is_map else None
    if lifecycle is not None and lifecycle.is_map:
        stop = lifecycle.get("stopSignal")
        if stop is not None and stop.text is not None:
            return signal_name(stop.text), f"`lifecycle.stopSignal: {stop.text}`", True
        command = lifecycle.path("preStop", "exec", "command")
        if command is not None:
            words = [item.text or "" for item in command.items()] if command.is_seq else [command.text or ""]
            if _KILL_INT.search(" ".join(words)):
                return "SIGINT", "a `preStop` hook", True
    return "SIGTERM", "what the kubelet sends", False


def dockerfile_stop_signal(workload) -> tuple[str | None, str, bool] | None:
    """A compose service built from a Dockerfile next to it (``build: .``, ``build: {context,
    dockerfile, target}``): the ``STOPSIGNAL`` of the stage it builds, or SIGTERM when that stage
    sets none (a base image from a registry may still set one: not seen). None when there is no
    readable Dockerfile."""
    build = workload.pod.lookup("build") if workload.pod is not None else None  # also from a merged anchor
    if build is None:
        return None
    context, dockerfile, target = build.text, "Dockerfile", None
    if build.is_map:
        context = _text(build.lookup("context")) or "."
        dockerfile = _text(build.lookup("dockerfile")) or dockerfile
        target = _text(build.lookup("target"))
    if not context or "://" in context or "$" in context + dockerfile:
        return None  # a git URL or an interpolated path
    path = Path(workload.path).parent / context / dockerfile
    try:
        if not path.is_file() or path.stat().st_size > DOCKERFILE_LIMIT:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    stages: list[tuple[str, str, list[str]]] = []  # (name, base, STOPSIGNAL values)
    for line in _instructions(text):
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2].lower() if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append((name, parts[0].lower() if parts else "", []))
        elif word == "STOPSIGNAL" and stages:
            stages[-1][2].append(rest.strip())
    by_name = {name: (base, signals) for name, base, signals in stages if name}
    stage = by_name.get(target.lower()) if target else (stages[-1][1:] if stages else None)
    where = f"`{Path(context) / dockerfile}`"
    for _ in range(len(stages)):
        if stage is None:
            return None  # the target stage is not in the file
        base, signals = stage
        if signals:
            value = signals[-1]
            return signal_name(value), f"`STOPSIGNAL {value}` in {where}", True
        stage = by_name.get(base)  # ``FROM builder``: inherits that stage's STOPSIGNAL
        if stage is None:
            break
    return "SIGTERM", f"the default of `docker stop`: {where} sets no `STOPSIGNAL`", True


def _instructions(text: str):
    """Dockerfile instructions, one per item, with continuation lines joined and comments dropped."""
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # inside a continuation too: Docker drops such lines
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield (current + line).strip()
        current = ""
    if current.strip():
        yield current.strip()


def _text(node: Node | None) -> str | None:
    return node.text if node is not None else None



def _after(service: Node) -> str | None:
    """Put ``stop_signal`` under the command when the command is a one-line value."""
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if value is None or not (value.is_scalar or value.is_seq):
            continue
        one_line = value.node.start_mark.line == value.node.end_mark.line
        if one_line and getattr(value.node, "style", None) not in ("|", ">"):
            return key
    return None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
