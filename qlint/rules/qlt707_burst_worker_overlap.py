from __future__ import annotations

from qlint.fixers.yaml import set_scalar
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.manifests.joins import setting, settings_of

FORBID = "Forbid"


@register
class BurstWorkerOverlap(Rule):
    """## What it does
    Checks for Kubernetes CronJobs that start a task worker (a burst worker such as
    `rq worker --burst` or `arq --burst`, or a worker with no burst mode at all, such as
    `celery worker`) with neither `concurrencyPolicy: Forbid` nor an `activeDeadlineSeconds`
    (on the job or its pod).

    ## Why is this bad?
    A CronJob starts a new Job on every schedule, whether the last one has finished or not
    (`concurrencyPolicy: Allow` is the default). A burst worker exits only once its queues
    are empty: on the day the backlog or one slow task outlasts the interval, the next run
    starts beside it, then the next, and the workers pile up against the broker and the
    database exactly when they are already overloaded. A worker without a burst mode never
    exits, so every schedule adds one more that runs forever. `concurrencyPolicy: Replace`
    avoids the pile-up by killing the running worker mid-task on each schedule.

    ## Example
    ```yaml
    apiVersion: batch/v1
    kind: CronJob
    metadata:
      name: drain-reports
    spec:
      schedule: "*/10 * * * *"
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: rq
                  args: ["rq", "worker", "--burst", "reports"]
    ```

    Use instead:
    ```yaml
    apiVersion: batch/v1
    kind: CronJob
    metadata:
      name: drain-reports
    spec:
      schedule: "*/10 * * * *"
      concurrencyPolicy: Forbid
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              containers:
                - name: rq
                  args: ["rq", "worker", "--burst", "reports"]
    ```

    ## Per framework
    - **RQ**: `rq worker --burst` (`-b`); without it the worker never exits.
      ```yaml
      args: ["rq", "worker", "--burst", "default"]
      ```
    - **arq**: `arq --burst module.WorkerSettings`, or `burst = True` in the settings class
      (unless `--no-burst`); without either it never exits.
      ```yaml
      args: ["arq", "--burst", "proj.worker.WorkerSettings"]
      ```
    - **Celery**: `celery worker` has no burst mode and runs until it is stopped.
      ```yaml
      args: ["celery", "-A", "proj", "worker", "-Q", "reports"]
      ```
    - **Dramatiq**: `dramatiq module` has no burst mode either.
      ```yaml
      args: ["dramatiq", "proj.actors", "-p", "1"]
      ```
    - **Huey**: `huey_consumer` (and `manage.py run_huey`) runs until it is stopped.
      ```yaml
      args: ["huey_consumer", "proj.tasks.huey", "-n"]
      ```
    - **Taskiq**: `taskiq worker` runs until it is stopped.
      ```yaml
      args: ["taskiq", "worker", "proj.broker:broker"]
      ```

    ## Fix safety
    The fix sets `concurrencyPolicy: Forbid` on the CronJob (after `schedule`). It is unsafe:
    schedules that fire while a run is still going are skipped, and a worker without a
    burst mode keeps the CronJob's only run going until something stops it (run it as a
    Deployment instead).

    ## References
    - [Kubernetes: CronJob concurrency policy](https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#concurrency-policy)
    - [Kubernetes: Job termination and cleanup (`activeDeadlineSeconds`)](https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup)
    - [RQ: Burst mode](https://python-rq.org/docs/workers/#burst-mode)
    - [arq: Worker (`burst`)](https://arq-docs.helpmanual.io/#arq.worker.Worker)
    """

    code = "QLT707"
    name = "burst-worker-overlap"
    summary = "Worker in a CronJob whose runs can overlap"
    severity = Severity.INFO
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain-reports
spec:
  schedule: "*/10 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: rq
              image: registry.example.com/proj:1.8.0
              args: ["rq", "worker", "--burst", "reports"]
"""}, note="Forbid: a run still going skips the next schedule"),
        Valid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-drain
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      activeDeadlineSeconds: 3000  # well before the next run
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: arq
              image: proj
              command: ["sh", "-c", "exec arq --burst proj.worker.WorkerSettings"]
"""}, note="a deadline ends every run"),
        Valid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: purge
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: purge
              image: proj
              command: ["celery", "-A", "proj", "purge", "-f"]
            - name: report
              image: proj
              command: ["python", "manage.py", "send_reports"]
"""}, note="celery purge and a management command are not workers"),
        Valid({"k8s/job.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: drain-once
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: rq
          image: proj
          args: ["rq", "worker", "--burst", "default"]
"""}, note="a one-off Job runs once"),
        Valid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          activeDeadlineSeconds: 240
          restartPolicy: Never
          containers:
            - name: dramatiq
              image: proj
              args: ["dramatiq", "proj.actors", "-p", "1"]
"""}, note="a pod-level deadline bounds each run too"),
    ]
    INVALID = [
        Invalid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain-reports
spec:
  schedule: "*/10 * * * *"  # every ten minutes
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: rq
              image: registry.example.com/proj:1.8.0
              args: ["rq", "worker", "--burst", "--url", "redis://redis:6379/0", "reports"]
"""}, expect=[("k8s/cron.yaml", 2)], fixed={"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: drain-reports
spec:
  schedule: "*/10 * * * *"  # every ten minutes
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: rq
              image: registry.example.com/proj:1.8.0
              args: ["rq", "worker", "--burst", "--url", "redis://redis:6379/0", "reports"]
"""}, message="burst", note="RQ burst worker, default Allow policy"),
        Invalid({
            "proj/__init__.py": "",
            "proj/worker.py": """
from arq.connections import RedisSettings

async def export(ctx, report_id):
    pass

class WorkerSettings:
    functions = [export]
    redis_settings = RedisSettings(host="redis")
    burst = True
""",
            "k8s/cron.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  REDIS_URL: redis://redis:6379/0
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: arq-drain
spec:
  concurrencyPolicy: Allow
  schedule: "@hourly"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: arq
              image: proj
              args:
                - arq
                - proj.worker.WorkerSettings
""",
        }, expect=[("k8s/cron.yaml", 9)], fixed={"k8s/cron.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  REDIS_URL: redis://redis:6379/0
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: arq-drain
spec:
  concurrencyPolicy: Forbid
  schedule: "@hourly"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: arq
              image: proj
              args:
                - arq
                - proj.worker.WorkerSettings
"""}, message="`burst = True`", note="arq: burst mode from the settings class; an explicit Allow"),
        Invalid({"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: celery-catchup
spec:
  schedule: "0 */2 * * *"
  concurrencyPolicy: Replace
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: worker
              image: proj
              command: ["sh", "-c"]
              args: ["python -m celery -A proj worker -Q catchup -c 2"]
"""}, expect=[("k8s/cron.yaml", 2)], fixed={"k8s/cron.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: celery-catchup
spec:
  schedule: "0 */2 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: worker
              image: proj
              command: ["sh", "-c"]
              args: ["python -m celery -A proj worker -Q catchup -c 2"]
"""}, message="kills the running worker", note="Celery has no burst mode; Replace kills it mid-task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        seen: set[int] = set()
        for worker in ctx.project.workers:
            workload = worker.workload
            if workload.kind != "CronJob" or "worker" not in worker.command.roles or id(workload) in seen:
                continue
            if workload.concurrency_policy == FORBID or workload.active_deadline is not None or (
                    workload.pod is not None and workload.pod.get("activeDeadlineSeconds") is not None):
                continue
            seen.add(id(workload))
            burst = self._burst(ctx, worker)
            replace = workload.concurrency_policy == "Replace"
            policy = f"`concurrencyPolicy: {workload.concurrency_policy}`" if workload.concurrency_policy else \
                "the default `concurrencyPolicy: Allow`"
            if burst:
                what = f"a burst worker ({worker.framework}, {burst}) that exits only once its queues are empty"
                harm = "kills the running worker mid-task when a run outlasts the schedule" if replace else \
                    "starts the next run beside one that has not emptied the queue yet, so a backlog piles up workers"
            else:
                cli = worker.command.cli
                how = "no `--burst`" if cli is not None and cli.burst_flag else "no burst mode"
                what = f"a worker ({worker.framework}, {how}) that never exits on its own"
                harm = "kills the running worker mid-task on every schedule" if replace else \
                    "adds one more worker that runs forever on every schedule"
            fix = self._fix(ctx, workload)
            ctx.report(workload.file, workload.anchor,
                       f"CronJob `{workload.name}` runs {what}, with no `activeDeadlineSeconds` and {policy}: "
                       f"Kubernetes {harm}", fix=fix)

    @staticmethod
    def _burst(ctx: RuleContext, worker) -> str:
        """How the worker is put in burst mode ("" when it is not)."""
        cli = worker.command.cli
        if cli is None or not cli.burst_flag:
            return ""
        flag = worker.command.flags.get(cli.burst_flag)
        if flag is not None:
            return f"`{flag.token.text}`"
        if f"no_{cli.burst_flag}" in worker.command.flags:  # ``--burst/--no-burst`` (click)
            return ""
        site = settings_of(ctx.project, worker)
        if site is not None and setting(site, cli.burst_flag, False) is True:
            return f"`{cli.burst_flag} = True` in `{site.cls.name}`"
        return ""

    @staticmethod
    def _fix(ctx: RuleContext, workload):
        if workload.spec is None or not workload.spec.is_map:
            return None
        edits = set_scalar(ctx.sources[workload.path], workload.spec, "concurrencyPolicy", FORBID, after="schedule")
        return ctx.fix(workload.file, f"Set `concurrencyPolicy: {FORBID}`", edits) if edits else None
