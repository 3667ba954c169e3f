from __future__ import annotations

from qlint.fixers.calls import replace_span
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Resolved, Task, seconds
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import number_text, retry_delay_seconds, written_on_task


def _retries_note(task: Task) -> str:
    """How often an automatic retry comes back, for the message."""
    autoretry = task.option("autoretry_for")
    if autoretry is None or autoretry.value in ((), [], None):
        return ""
    kwargs = task.option("retry_kwargs")
    countdown = kwargs.value.get("countdown") if kwargs is not None and isinstance(kwargs.value, dict) else None
    backoff = task.option("retry_backoff")
    if countdown is not None:
        delay_s = seconds(countdown)
    elif backoff is not None and backoff.value:
        cap = task.option("retry_backoff_max")
        cap_s = seconds(cap.value) if cap is not None else 600.0
        if cap_s is None:
            return "; with `autoretry_for` a deterministic bug is retried forever"
        return f"; with `autoretry_for` a deterministic bug is retried forever, every {number_text(cap_s)} s " \
               f"once the backoff reaches its cap"
    else:
        delay_s = retry_delay_seconds(task)
    if delay_s is None:
        return "; with `autoretry_for` a deterministic bug is retried forever"
    return f"; with `autoretry_for` a deterministic bug is retried every {number_text(delay_s)} s, forever"


@register
class TaskUnboundedRetries(Rule):
    """## What it does
    Checks for Celery tasks that retry forever: `max_retries=None` in a task decorator, in
    the defaults of a project's task decorator wrapper, or as an attribute of a task (or
    base) class.

    ## Why is this bad?
    Celery's `Task.max_retries` defaults to 3; "a value of None means task will retry
    forever". A task that fails for a reason retrying cannot cure (a bug, a deleted row, a
    malformed message) is then retried until someone purges the queue, every
    `default_retry_delay` (180 s) or backoff interval, occupying workers and hiding the
    failure from error tracking. Combined with `autoretry_for=(Exception,)` every bug
    becomes an endless retry loop.

    `self.retry(max_retries=None)` is not reported: in that call `None` means "use the
    task's `max_retries`", not "retry forever". The same holds for
    `retry_kwargs={"max_retries": None}`: `autoretry_for` passes `retry_kwargs` to
    `self.retry()`, so that entry also falls back to the task's `max_retries` (Celery's
    `Task.retry` docstring: "if you want infinite retries you'd have to set the
    `max_retries` attribute of the task to `None`").

    ## Known problems
    Some tasks poll an external system on purpose and are meant to retry forever;
    suppress the finding with a `# noqa: QLT201` comment on those.

    ## Example
    ```python
    @app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=None)
    def notify(self, user_id):
        ...
    ```

    Use instead:
    ```python
    @app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=3)
    def notify(self, user_id):
        ...
    ```

    ## Per framework
    - **Celery**: `max_retries=None` on the task (default 3): `@app.task(max_retries=None)`.
    - **Dramatiq**: `max_retries=None` on an actor, in a `GenericActor`'s `Meta`, or in the
      broker's `Retries(max_retries=None)` middleware (default 20; the guide's retry table:
      `None` retries forever): `@dramatiq.actor(max_retries=None)` → `max_retries=3`.
    Other frameworks have no unbounded form (RQ `Retry(max=...)` and Huey `retries=` take a
    number; arq's `max_tries` counts tries).

    ## Fix safety
    The fix replaces `None` with `max-retries` (3 unless configured). It is unsafe: a task
    that relied on retrying forever now fails after that many attempts.

    ## Options
    - `max-retries`

    ## References
    - [Celery: Task.max_retries](https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.max_retries)
    - [Celery: Automatic retry for known exceptions](https://docs.celeryq.dev/en/stable/userguide/tasks.html#automatic-retry-for-known-exceptions)
    """

    code = "QLT201"
    name = "task-unbounded-retries"
    summary = "Task retries forever: `max_retries=None`"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "dramatiq")

    VALID = [
        Valid("""
import dramatiq

@dramatiq.actor(max_retries=20)
def send(message_id):
    pass

class Report(dramatiq.GenericActor):
    class Meta:
        max_retries = 5

    def perform(self, report_id):
        pass
""", note="Dramatiq: explicit bounds on an actor and a GenericActor"),
        Valid("""
from rq import Retry
from proj.queues import queue
from proj.jobs import export

queue.enqueue(export, retry=Retry(max=20, interval=[10, 60, 300]))
""", note="RQ takes a number; nothing unbounded to find"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=5)
def notify(self, user_id):
    pass
""", note="a bounded number of retries"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True)
def notify(self, user_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc, max_retries=None)
""", note="in self.retry(), None means the task's max_retries"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class PollingTask(Task):
    max_retries = None
""",
            "proj/tasks.py": """
from proj.celery import app, PollingTask

@app.task(base=PollingTask, max_retries=10)
def poll(job_id):
    pass
""",
        }, note="the only task using the unbounded base class overrides it"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": None, "countdown": 10})
def notify(user_id):
    pass
""", note="retry_kwargs go to self.retry(), where None means the task's max_retries (3)"),
        Valid("""
from dramatiq import actor

@actor(max_retries=5)
def notify(user_id):
    pass
""", note="not a Celery task"),
    ]
    INVALID = [
        Invalid("""
import dramatiq

@dramatiq.actor(queue_name="mail", max_retries=None)
def send(message_id):
    pass
""", expect=3, fixed="""
import dramatiq

@dramatiq.actor(queue_name="mail", max_retries=3)
def send(message_id):
    pass
""", note="Dramatiq actor"),
        Invalid("""
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Retries, TimeLimit

broker = RabbitmqBroker(middleware=[TimeLimit(), Retries(max_retries=None, min_backoff=30_000)])
""", expect=5, fixed="""
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Retries, TimeLimit

broker = RabbitmqBroker(middleware=[TimeLimit(), Retries(max_retries=3, min_backoff=30_000)])
""", note="Dramatiq: the broker's Retries middleware"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=None)
def notify(self, user_id):
    pass
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=3)
def notify(self, user_id):
    pass
""", message="retried every 180 s, forever"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(
    autoretry_for=(ConnectionError,),
    retry_kwargs={"countdown": 10},
    max_retries=None,
)
def sync(account_id):
    pass
""",
        }, expect=[("proj/tasks.py", 6)], fixed={"proj/tasks.py": """
from proj.celery import app

@app.task(
    autoretry_for=(ConnectionError,),
    retry_kwargs={"countdown": 10},
    max_retries=3,
)
def sync(account_id):
    pass
"""}, message="retried every 10 s", note="a multi-line decorator of another module's app; the countdown comes from retry_kwargs"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class PollingTask(Task):
    max_retries = None
    default_retry_delay = 30
""",
            "proj/tasks.py": """
from proj.celery import app, PollingTask

@app.task(base=PollingTask)
def poll(job_id):
    pass

@app.task(base=PollingTask)
def poll_again(job_id):
    pass
""",
        }, expect=[("proj/celery.py", 6)], fixed={"proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class PollingTask(Task):
    max_retries = 3
    default_retry_delay = 30
"""}, note="a base class used by two tasks is reported once, in its own file"),
        Invalid("""
from functools import partial
from celery import Celery, shared_task

app = Celery("proj")
task = partial(shared_task, max_retries=None)

@task
def one():
    pass

@task(bind=True)
def two(self):
    pass
""", expect=5, fixed="""
from functools import partial
from celery import Celery, shared_task

app = Celery("proj")
task = partial(shared_task, max_retries=3)

@task
def one():
    pass

@task(bind=True)
def two(self):
    pass
""", note="a wrapper's defaults"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")

class Poll(Task):
    autoretry_for = (TimeoutError,)
    retry_backoff = True
    max_retries = None

    def run(self):
        pass
""", expect=8, fixed="""
from celery import Celery, Task

app = Celery("proj")

class Poll(Task):
    autoretry_for = (TimeoutError,)
    retry_backoff = True
    max_retries = 3

    def run(self):
        pass
""", message="every 600 s once the backoff reaches its cap", note="a class-based task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        replacement = str(ctx.settings.max_retries)
        for task in ctx.project.tasks:
            option = task.profile.max_retries if task.profile is not None else None
            if option is None:
                continue
            for level in task.levels.values():
                res = level.get(option)
                if res is not None and self._effective(task, "max_retries", res) and res.value is None \
                        and res.env is None and res.keyword is not None and res.file is not None:
                    self._report(ctx, task, res, replacement)
        for site in ctx.project.sites:  # ``Retries(max_retries=None)`` for every actor of a broker
            res = site.norm.get("max_retries")
            if res is not None and res.keyword is not None and res.file is not None and res.env is None and \
                    res.keyword.value.kind == "const" and res.keyword.value.value is None:
                fix = ctx.fix(res.file, f"Replace `None` with `{replacement}`",
                              [replace_span(res.keyword.value, replacement)])
                ctx.report(res.file, res.keyword.span, f"`{res.keyword.name}=None` ({res.source}) lets every "
                           f"{site.profile.title} task without its own bound retry forever", fix=fix)

    @staticmethod
    def _effective(task: Task, name: str, res: Resolved) -> bool:
        """Written where the task is defined, and not overridden for this task."""
        return written_on_task(res) and task.options.get(name) is res

    def _report(self, ctx: RuleContext, task: Task, res: Resolved, replacement: str) -> None:
        facts, keyword = res.file, res.keyword
        assert facts is not None and keyword is not None
        value = keyword.value
        fix = None
        if value.kind == "const" and value.value is None:
            fix = ctx.fix(facts, f"Replace `None` with `{replacement}`", [replace_span(value, replacement)])
        ctx.report(facts, keyword.span, f"`max_retries=None` ({res.source}) lets task `{task.name}` retry forever"
                   f"{_retries_note(task)}", fix=fix)
