from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class CloudTasksUnboundedRetries(Rule):
    """## What it does
    Checks for a push queue in `queue.yaml` (Google Cloud Tasks, App Engine task queues) whose
    `retry_parameters` set neither `task_retry_limit` nor `task_age_limit`, or that has no
    `retry_parameters` at all.

    ## Why is this bad?
    Without either limit a task whose handler keeps failing is retried until it succeeds:
    forever, at most once an hour once the backoff reaches `max_backoff_seconds` (3,600 s by
    default). A task that can never succeed (a deleted record, a payload the handler rejects)
    stays in the queue indefinitely, keeps calling the handler, and counts toward the queue's
    rate, while nothing reports that it failed.

    ## Example
    ```yaml
    queue:
    - name: emails
      rate: 5/s
    ```

    Use instead:
    ```yaml
    queue:
    - name: emails
      rate: 5/s
      retry_parameters:
        task_retry_limit: 7
        task_age_limit: 2d
    ```

    ## Known problems
    Queues created or changed through the Cloud Tasks API (`gcloud tasks queues`, Terraform's
    `google_cloud_tasks_queue`) are not read; a `queue.yaml` deployed next to them sets the
    same queues.

    ## Fix safety
    There is no fix: how many attempts, or how long, a task deserves is the queue's owner's call.

    ## References
    - [App Engine: Retrying failed push tasks](https://cloud.google.com/appengine/docs/standard/services/taskqueue/push/retrying-tasks)
    - [queue.yaml reference: retry_parameters](https://cloud.google.com/appengine/docs/standard/reference/queueref)
    """

    code = "QLT805"
    name = "cloud-tasks-unbounded-retries"
    summary = "A Cloud Tasks queue retries a failing task forever: no retry limit and no age limit"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("cloud-tasks",)

    VALID = [
        Valid({"queue.yaml": """
queue:
- name: emails
  rate: 5/s
  retry_parameters:
    task_retry_limit: 7
"""}, note="a retry limit"),
        Valid({"queue.yaml": """
queue:
- name: reports
  rate: 1/s
  retry_parameters:
    task_age_limit: 30m
    min_backoff_seconds: 10
"""}, note="an age limit"),
        Valid({"queue.yaml": """
queue:
- name: pdf-queue
  mode: pull
"""}, note="a pull queue: its workers lease tasks, the service retries nothing"),
        Valid({"config/queue-dev.yaml": """
queue:
- name: emails
"""}, note="not a queue.yaml: App Engine reads that name only"),
    ]
    INVALID = [
        Invalid({"queue.yaml": """
queue:
- name: emails
  rate: 5/s
"""}, expect=[("queue.yaml", 2)], message="retried until it succeeds"),
        Invalid({"queue.yaml": """
queue:
- name: default
  rate: 1/s
  retry_parameters:
    task_age_limit: 30m
- name: webhooks
  mode: push
  rate: 20/s
  retry_parameters:
    min_backoff_seconds: 10
    max_backoff_seconds: 600
"""}, expect=[("queue.yaml", 6)], message="600 s", note="one queue of two; its own max backoff"),
        Invalid({"app/queue.yml": """
queue:
  - name: imports
    bucket_size: 10
    rate: 1/m
    retry_parameters: {min_backoff_seconds: 30}
"""}, expect=[("app/queue.yml", 2)], note="queue.yml, a flow mapping"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for queue in ctx.project.task_queues:
            if queue.parameter("task_retry_limit") is not None or queue.parameter("task_age_limit") is not None:
                continue
            ceiling = queue.parameter("max_backoff_seconds")
            seconds = ceiling.number() if ceiling is not None and ceiling.is_scalar else None
            every = f"every {seconds:g} s (its `max_backoff_seconds`)" if seconds is not None else \
                "once an hour (the default `max_backoff_seconds` of 3600 s)"
            ctx.report(queue.file, queue.anchor,
                       f"Cloud Tasks queue `{queue.name}` sets neither `task_retry_limit` nor `task_age_limit`: a task "
                       f"whose handler keeps failing is retried until it succeeds, forever, {every} once its "
                       "backoff has grown; set `retry_parameters` with a limit")
