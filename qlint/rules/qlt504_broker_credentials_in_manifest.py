from __future__ import annotations

import re

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register

# ``scheme://user:password@host``: the password is what follows the first ``:`` of the userinfo.
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<user>[^\s/@:]*):(?P<password>[^\s/@]+)@")
# Compose ``${VAR}`` / ``$VAR`` and Kubernetes ``$(VAR)``: the value comes from elsewhere.
_INTERPOLATED = re.compile(r"\$[{(A-Za-z_]")
# A whole compose expression, default included (``${URL:-redis://u:pw@redis}``): the default is
# what the variable replaces, not a value of the manifest's own.
_EXPRESSION = re.compile(r"\$\{[^}]*\}")
PASSWORD_SUFFIX = "_PASSWORD"


@register
class BrokerCredentialsInManifest(Rule):
    """## What it does
    Checks the environment of containers (Kubernetes `env[].value`, compose `environment` as a
    map or a list) that run a task worker or scheduler for a URL with a password
    (`amqp://user:secret@rabbitmq//`, `redis://:secret@redis:6379/0`) or a non-empty literal
    `*_PASSWORD`. Values taken from a Secret (`valueFrom.secretKeyRef`, `envFrom`) and
    interpolated values (compose `${VAR}`, also with a `${VAR:-default}`, Kubernetes `$(VAR)`)
    are not literals.

    ## Why is this bad?
    A manifest is read by far more people and systems than the broker: everyone with access to
    the repository, `kubectl get deployment -o yaml` (plain text, no Secret RBAC), CI logs,
    Helm release history. Whoever holds the broker's password can read every task's arguments
    and enqueue tasks the workers will run, which with a pickle serializer is code execution.
    The password also cannot be rotated without a commit and a deploy.

    Only containers that run a worker or scheduler are read: qlint knows those hold the
    broker's credentials. Other containers (a database's own `POSTGRES_PASSWORD`) are the
    business of a generic secret scanner. A developer's stack (a compose service running the
    mounted source, a compose file named for development such as `docker-compose.dev.yml`, a
    worker under a reloader) is not read either: its credentials open the throwaway broker on a
    developer's machine. Values merged in from an anchor (`<<: *common-env`) are read where the
    anchor writes them.

    ## Example
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker"]
        env:
          - name: CELERY_BROKER_URL
            value: amqp://proj:s3cr3t@rabbitmq:5672//
    ```

    Use instead:
    ```yaml
    containers:
      - name: worker
        args: ["celery", "-A", "proj", "worker"]
        env:
          - name: CELERY_BROKER_URL
            valueFrom:
              secretKeyRef:
                name: proj-broker
                key: url
    ```

    ## Per framework
    Every framework's worker containers, whatever the variable is called:
    - **Celery**: `CELERY_BROKER_URL`, `CELERY_RESULT_BACKEND` (`redis://:pw@redis/1`), Django's
      `BROKER_URL`.
    - **RQ**: `RQ_REDIS_URL` (read by `rq worker`), `REDIS_URL`.
    - **Dramatiq**: the URL the broker module reads, e.g. `DRAMATIQ_BROKER_URL: amqp://u:pw@rabbitmq`.
    - **Huey**: `REDIS_URL` passed to `RedisHuey(url=...)`, `REDIS_PASSWORD: pw`.
    - **Taskiq**: `TASKIQ_BROKER_URL: amqp://u:pw@rabbitmq` for `AioPikaBroker(url)`.
    - **arq**: `REDIS_DSN: redis://:pw@redis:6379` for `RedisSettings.from_dsn`.

    ## Fix safety
    There is no fix: the value has to move into a Secret (or an untracked env file for compose)
    that qlint must not write, and the password, once committed, should be rotated.

    ## References
    - [Kubernetes: Using Secrets as environment variables](https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-environment-variables)
    - [Compose: Interpolation](https://docs.docker.com/reference/compose-file/interpolation/)
    - [Compose: Secrets](https://docs.docker.com/compose/how-tos/use-secrets/)
    - [Celery: broker_url](https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-url)
    - [RQ: workers, --url](https://python-rq.org/docs/workers/)
    """

    code = "QLT504"
    name = "broker-credentials-in-manifest"
    summary = "Broker password written in a worker container's environment"
    severity = Severity.ERROR
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
          env:
            - name: CELERY_BROKER_URL
              valueFrom:
                secretKeyRef:
                  name: proj-broker
                  key: url
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: proj-redis
                  key: password
            - name: CELERY_RESULT_BACKEND
              value: redis://:$(REDIS_PASSWORD)@redis:6379/1
            - name: SENTRY_DSN
              value: https://abc123@o1.ingest.sentry.io/42
"""}, note="secretKeyRef, a $(VAR) reference, a user without a password"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: rq worker --with-scheduler default
    environment:
      RQ_REDIS_URL: redis://:${REDIS_PASSWORD}@redis:6379/0
      SMTP_PASSWORD: ""
      DATABASE_URL: postgres://proj@db/proj
      CELERY_RESULT_BACKEND: ${RESULT_URL:-redis://:devonly@redis:6379/1}
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: postgres
"""}, note="${VAR} interpolation (a default inside it too), an empty password, a user without a password; the "
            "db is not a worker"),
        Valid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: ["dramatiq", "proj.actors", "-p", "2"]
    env_file: .env
    environment:
      - DRAMATIQ_BROKER_URL
      - REDIS_URL=redis://redis:6379/0
      - BROKER_PASSWORD=$BROKER_PASSWORD
"""}, note="list form: passed through from the host, no userinfo, $VAR"),
        Valid({"proj/__init__.py": "", "docker-compose.yml": """
services:
  worker:
    build: .
    command: celery -A proj worker -l debug
    environment:
      CELERY_BROKER_URL: amqp://guest:guest@rabbitmq:5672//
    volumes:
      - .:/app
"""}, note="a developer's stack: the working copy mounted into a local broker's worker"),
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
          env:
            - name: CELERY_BROKER_URL
              value: "amqp://proj:s3cr3t@rabbitmq:5672//"  # TODO move to a secret
            - name: LOG_LEVEL
              value: info
"""}, expect=[("k8s/worker.yaml", 13)], message="amqp://proj:***@",
                note="the finding names the variable, never the password"),
        Invalid({"k8s/worker.yaml": """
apiVersion: v1
kind: Service
metadata:
  name: redis
spec:
  ports:
    - port: 6379
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: huey
spec:
  template:
    spec:
      containers:
        - name: huey
          image: proj
          command: ["python", "manage.py", "run_huey", "-n"]
          env:
            - {name: REDIS_HOST, value: redis}
            - {name: REDIS_PASSWORD, value: hunter2}
"""}, expect=[("k8s/worker.yaml", 22)], message="`REDIS_PASSWORD`",
                note="a multi-document file; a literal *_PASSWORD in a flow mapping item"),
        Invalid({"docker-compose.yml": """
services:
  worker:
    image: proj
    command: celery -A proj worker -l info
    environment:
      CELERY_BROKER_URL: amqp://guest:guest@rabbitmq:5672//
      CELERY_RESULT_BACKEND: redis://:backendpw@redis:6379/1
  beat:
    image: proj
    command: celery -A proj beat
    environment:
      - CELERY_BROKER_URL=amqp://guest:guest@rabbitmq:5672//
  rabbitmq:
    image: rabbitmq:3
    environment:
      RABBITMQ_DEFAULT_PASS: guest
"""}, expect=[("docker-compose.yml", 6), ("docker-compose.yml", 7), ("docker-compose.yml", 12)],
                note="compose map and list forms, a worker and a scheduler; the broker's own service is not read"),
        Invalid({"docker-compose.yml": """
services:
  arq:
    image: proj
    command: arq proj.worker.WorkerSettings
    environment:
      REDIS_DSN: "redis://default:pw@redis:6379?ssl=false"
  taskiq:
    image: proj
    command: ["taskiq", "worker", "proj.broker:broker"]
    environment:
      TASKIQ_BROKER_URL: amqp://${RABBIT_USER}:p4ss@rabbitmq//
"""}, expect=[("docker-compose.yml", 6), ("docker-compose.yml", 11)], message="in plain text",
                note="arq and Taskiq workers; an interpolated user with a literal password is still a password"),
        Invalid({"deploy/docker-compose.yml": """
x-celery-env: &celery-env
  CELERY_BROKER_URL: amqp://proj:Tr0ub4dor@rabbitmq:5672//
  CELERY_RESULT_BACKEND: redis://redis:6379/1

services:
  worker:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj worker -Q default
    environment:
      <<: *celery-env
  beat:
    image: registry.example.com/proj:1.4.2
    command: celery -A proj beat
    environment:
      <<: *celery-env
      TZ: UTC
"""}, expect=[("deploy/docker-compose.yml", 2)], message="`CELERY_BROKER_URL` in container `worker`",
            note="merged from an anchor: reported once, where the anchor writes it"),
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[int] = set()
        for worker in ctx.project.workers:
            container, workload = worker.container, worker.workload
            if id(container) in seen or worker.development:
                continue
            seen.add(id(container))
            remedy = "reference it as `${VAR}` from an untracked env file, or use compose `secrets:`" \
                if workload.kind == "compose" else "take it from a Secret (`valueFrom.secretKeyRef`)"
            for name, (value, span) in container.env.items():
                shown = _password_in(name, value)
                if shown is None:
                    continue
                role = "worker" if "worker" in worker.command.roles else "scheduler"
                ctx.report(workload.file, span,
                           f"`{name}` in container `{container.name}` (running the {worker.framework} {role}) holds "
                           f"{shown} in plain text: whoever can read this manifest has it (for a broker: every "
                           "task's arguments, and tasks of their own that the workers will run), and it cannot be "
                           f"rotated without a commit; {remedy}")

def _password_in(name: str, value: str | None) -> str | None:
    """How to name the password ``value`` holds (never the password itself), or None."""
    if not value:
        return None
    expressions = [m.span() for m in _EXPRESSION.finditer(value)]
    for match in _URL_PASSWORD.finditer(value):
        password = match.group("password")
        if _INTERPOLATED.search(password) or any(a <= match.start() < b for a, b in expressions):
            continue
        return f"a password (`{match.group('scheme')}://{match.group('user')}:***@...`)"
    if name.upper().endswith(PASSWORD_SUFFIX) and value.strip() and not _INTERPOLATED.search(value):
        return "a literal password"
    return None
