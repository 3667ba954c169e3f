from __future__ import annotations

import math

from qlint.fixers.yaml import grace_edits
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register

PUSH_BACK = 5  # seconds Sidekiq needs after its timeout to push unfinished jobs back to Redis
MARGIN = 10


@register
class SidekiqShutdownGraceTooShort(Rule):
    """## What it does
    Checks for a container running Sidekiq whose shutdown grace period
    (`terminationGracePeriodSeconds`, 30 s by default; compose `stop_grace_period`, 10 s by
    default) is not above Sidekiq's shutdown `timeout` plus 5 seconds. The timeout is read from
    `-t`/`--timeout`, else from the `timeout` of the config file (`-C`, else
    `config/sidekiq.yml`), else Sidekiq's default of 25 s.

    ## Why is this bad?
    On SIGTERM Sidekiq stops fetching jobs and waits up to its `timeout` for the running ones;
    then it pushes the unfinished jobs back to Redis so that another process restarts them.
    When the grace period ends first, the container is killed (SIGKILL) during that wait or
    during the push back: the jobs it was running are neither finished nor returned, and only
    Sidekiq Pro's reliable fetch would recover them. With the defaults, a 25 s timeout in a pod
    given 30 s leaves no room for the push back; in docker-compose (10 s) the jobs are killed
    outright.

    ## Example
    ```yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: sidekiq
    spec:
      template:
        spec:
          containers:
            - name: sidekiq
              command: ["bundle", "exec", "sidekiq", "-t", "60"]
    ```

    Use instead:
    ```yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: sidekiq
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 75
          containers:
            - name: sidekiq
              command: ["bundle", "exec", "sidekiq", "-t", "60"]
    ```

    ## Fix safety
    The fix sets the grace period (writing it where it is left to the default) to the timeout
    plus 15 s. It is unsafe:
    a rollout waits that much longer for each old pod to stop.

    ## References
    - [Sidekiq: Signals (TERM and the shutdown timeout)](https://github.com/sidekiq/sidekiq/wiki/Signals)
    - [Kubernetes: Termination of Pods](https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)
    """

    code = "QLT807"
    name = "sidekiq-shutdown-grace-too-short"
    summary = "The container is killed before Sidekiq has waited for its jobs and pushed the rest back to Redis"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("sidekiq",)

    VALID = [
        Valid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 45
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq"]
"""}, note="45 s against the default 25 s timeout"),
        Valid({"docker-compose.yml": """
services:
  sidekiq:
    image: app
    command: bundle exec sidekiq -t 8
    stop_grace_period: 20s
"""}, note="compose: a short timeout and a grace period above it"),
        Valid({"k8s/web.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          command: ["bundle", "exec", "puma"]
"""}, note="no Sidekiq"),
        Valid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq", "-C", "config/sidekiq.yml"]
""", "config/sidekiq.yml": """
:timeout: 20
:concurrency: 5
"""}, note="the config file's 20 s timeout fits the default 30 s"),
    ]
    INVALID = [
        Invalid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq"]
"""}, expect=[("k8s/sidekiq.yaml", 2)], message="Sidekiq's default", fixed={"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 40
      containers:
        - name: sidekiq
          command: ["bundle", "exec", "sidekiq"]
"""}, note="both defaults: 30 s against 25 s and the push back; the grace period is written"),
        Invalid({"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: sidekiq
          args: ["sh", "-c", "bundle exec sidekiq -C config/sidekiq.yml -e production"]
""", "config/sidekiq.yml": """
:concurrency: 10
production:
  :timeout: 90
"""}, expect=[("k8s/sidekiq.yaml", 2)], message="`timeout` in config/sidekiq.yml", fixed={"k8s/sidekiq.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sidekiq
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 105
      containers:
        - name: sidekiq
          args: ["sh", "-c", "bundle exec sidekiq -C config/sidekiq.yml -e production"]
"""}, note="the environment's section of the config file; sh -c"),
        Invalid({"docker-compose.yml": """
services:
  sidekiq:
    image: app
    command: bundle exec sidekiq
"""}, expect=[("docker-compose.yml", 2)], message="10 s", fixed={"docker-compose.yml": """
services:
  sidekiq:
    stop_grace_period: 40s
    image: app
    command: bundle exec sidekiq
"""}, note="compose: 10 s by default"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for process in ctx.project.sidekiq:
            workload = process.workload
            if workload.kind in ("Procfile", "script", "Pod") or workload.development:
                continue
            timeout = process.timeout.value
            if timeout is None:
                continue  # written where qlint cannot read it (ERB, a variable)
            grace, default = workload.grace
            if grace > timeout + PUSH_BACK:
                continue
            source = "Sidekiq's default" if process.timeout.source == "default" else process.timeout.source
            where = "the default " if default else ""
            target = int(math.ceil(timeout)) + PUSH_BACK + MARGIN
            ctx.report(workload.file, workload.anchor,
                       f"{workload.kind} `{workload.name}` gives Sidekiq {where}{grace:g} s to stop, but Sidekiq waits "
                       f"up to {timeout:g} s for its running jobs ({source}) and then needs a few seconds to push the "
                       "unfinished ones back to Redis: the container is killed first, and those jobs are neither "
                       f"finished nor returned; give it more than {timeout + PUSH_BACK:g} s",
                       fix=self._fix(ctx, workload, target))

    @staticmethod
    def _fix(ctx: RuleContext, workload, target: int):
        edits, key = grace_edits(ctx.sources[workload.path], workload, target)
        return ctx.fix(workload.file, f"Set `{key}` to {target} s", edits) if edits else None
