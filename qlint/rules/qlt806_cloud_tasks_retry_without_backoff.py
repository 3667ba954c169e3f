from __future__ import annotations

from qlint.fixers.yaml import set_scalar
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register

MIN_BACKOFF = 1  # below one second, the first retries come in a burst
FIX_BACKOFF = "10"


@register
class CloudTasksRetryWithoutBackoff(Rule):
    """## What it does
    Checks for `retry_parameters` in `queue.yaml` (Google Cloud Tasks, App Engine task queues)
    whose `min_backoff_seconds` is written below 1 second (0 included).

    ## Why is this bad?
    `min_backoff_seconds` is the wait before the first retry, doubled for the next ones (up to
    `max_doublings`). From a tenth of a second, a failing task is attempted again five or six
    times within the first few seconds: when the handler fails because a dependency is down or
    overloaded, every task of the queue does the same, and the retries arrive in a burst that
    keeps it down. With 0 the retries are not spaced at all at first.

    ## Example
    ```yaml
    queue:
    - name: webhooks
      rate: 20/s
      retry_parameters:
        task_retry_limit: 10
        min_backoff_seconds: 0.1
    ```

    Use instead:
    ```yaml
    queue:
    - name: webhooks
      rate: 20/s
      retry_parameters:
        task_retry_limit: 10
        min_backoff_seconds: 10
    ```

    ## Known problems
    Only a value written in `queue.yaml` is judged: the default (0.1 s) is not reported where
    `min_backoff_seconds` is left out.

    ## Fix safety
    The fix sets `min_backoff_seconds: 10`. It is unsafe: a task that fails once for a passing
    reason now completes at least ten seconds later, and with `task_retry_limit` the last
    attempt comes later too.

    ## References
    - [queue.yaml reference: retry_parameters](https://cloud.google.com/appengine/docs/standard/reference/queueref)
    - [App Engine: Retrying failed push tasks](https://cloud.google.com/appengine/docs/standard/services/taskqueue/push/retrying-tasks)
    """

    code = "QLT806"
    name = "cloud-tasks-retry-without-backoff"
    summary = "A Cloud Tasks queue retries a failing task within a second: no real backoff"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("cloud-tasks",)

    VALID = [
        Valid({"queue.yaml": """
queue:
- name: webhooks
  retry_parameters:
    task_retry_limit: 10
    min_backoff_seconds: 10
"""}, note="ten seconds"),
        Valid({"queue.yaml": """
queue:
- name: webhooks
  retry_parameters:
    task_retry_limit: 10
"""}, note="the default is not judged: only a written value"),
        Valid({"queue.yaml": """
queue:
- name: webhooks
  retry_parameters:
    task_retry_limit: 10
    min_backoff_seconds: 1
"""}, note="one second is the threshold"),
    ]
    INVALID = [
        Invalid({"queue.yaml": """
queue:
- name: webhooks
  rate: 20/s
  retry_parameters:
    task_retry_limit: 10
    min_backoff_seconds: 0.1  # the default, made explicit
"""}, expect=[("queue.yaml", 6)], message="0.1 s", fixed={"queue.yaml": """
queue:
- name: webhooks
  rate: 20/s
  retry_parameters:
    task_retry_limit: 10
    min_backoff_seconds: 10  # the default, made explicit
"""}),
        Invalid({"queue.yaml": """
queue:
- name: imports
  retry_parameters:
    task_age_limit: 1h
    min_backoff_seconds: 0
"""}, expect=[("queue.yaml", 5)], message="not spaced at all", fixed={"queue.yaml": """
queue:
- name: imports
  retry_parameters:
    task_age_limit: 1h
    min_backoff_seconds: 10
"""}),
        Invalid({"queue.yaml": """
queue:
- name: imports
  retry_parameters: {task_age_limit: 1h, min_backoff_seconds: 0.5}
"""}, expect=[("queue.yaml", 3)], fixed={"queue.yaml": """
queue:
- name: imports
  retry_parameters: {task_age_limit: 1h, min_backoff_seconds: 10}
"""}, note="a flow mapping: the value replaced in place"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for queue in ctx.project.task_queues:
            node = queue.parameter("min_backoff_seconds")
            value = node.number() if node is not None and node.is_scalar else None
            if value is None or value >= MIN_BACKOFF:
                continue
            spacing = "the first retries are not spaced at all" if value <= 0 else \
                f"the first retries come {value:g} s, {2 * value:g} s, {4 * value:g} s after the failure"
            edits = set_scalar(ctx.sources[queue.path], queue.retry, "min_backoff_seconds", FIX_BACKOFF)
            fix = ctx.fix(queue.file, f"Set `min_backoff_seconds: {FIX_BACKOFF}`",
                          edits) if edits else None
            ctx.report(queue.file, node.span,
                       f"Cloud Tasks queue `{queue.name}` waits {value:g} s before the first retry: {spacing}, so "
                       "when a dependency fails every task of the queue retries at once; start the backoff at "
                       "several seconds", fix=fix)
