from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import Value
from qlint.lint.model import Project, Resolved
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import autoretry, written_on_task

BROAD = {"builtins.Exception": "Exception", "builtins.BaseException": "BaseException"}


def broad_exception(project: Project, value: Value, depth: int = 0) -> str | None:
    """``Exception``/``BaseException`` in an ``autoretry_for`` value (a name, or a tuple/list of names)."""
    if depth > 4:
        return None
    if value.kind == "seq":
        for element in value.elements:
            found = broad_exception(project, element, depth + 1)
            if found:
                return found
        return None
    if value.kind != "name":
        return None
    for qualified in (value.qualified, project.canonical(value.qualified)):
        if qualified in BROAD:
            return BROAD[qualified]
    assigned = project.assignment(value.qualified)  # ``RETRY_ON = (Exception,)`` defined once, used here
    if assigned is not None and assigned[1].value.kind in ("seq", "name"):
        return broad_exception(project, assigned[1].value, depth + 1)
    return None


@register
class RetryOnAnyException(Rule):
    """## What it does
    Checks for Celery tasks whose `autoretry_for` includes `Exception` or `BaseException`
    and that set no `dont_autoretry_for`.

    ## Why is this bad?
    `autoretry_for` retries every exception it names. With `Exception`, programming
    errors (`TypeError`, `KeyError`, a validation error, a missing row) are retried exactly
    like transient network failures: each bad message costs `max_retries` x
    `default_retry_delay` (3 x 180 s by default) of worker time before it finally fails,
    and the bug shows up late, as a retry storm instead of one clear error.

    The message says how often and how far apart the task is really retried, as Celery's
    `autoretry_for` does it: `max_retries` from `retry_kwargs` (else the task's, wherever it
    is set), a `countdown` in `retry_kwargs` or `default_retry_delay`, or with `retry_backoff`
    the doubling waits (`retry_backoff * 2 ** retries`, capped by `retry_backoff_max`, each
    drawn at random up to that with `retry_jitter`). A task with `max_retries=0` retries
    nothing and is not reported.

    ## Known problems
    A catch-all is sometimes deliberate (a task that calls a flaky third-party SDK whose
    exceptions have no common base). `dont_autoretry_for` (Celery >= 5.3) exempts the
    errors that retrying cannot cure; any non-empty `dont_autoretry_for` silences the rule.

    ## Example
    ```python
    @app.task(autoretry_for=(Exception,), retry_backoff=True)
    def sync_account(account_id):
        ...
    ```

    Use instead:
    ```python
    @app.task(autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True)
    def sync_account(account_id):
        ...
    ```
    or keep the catch-all and exempt deterministic failures with
    `dont_autoretry_for=(TypeError, ValueError, KeyError)`.

    ## Per framework
    - **Celery** only: `@app.task(autoretry_for=(Exception,))` without `dont_autoretry_for`.
    Dramatiq retries every exception by default (QLT206 reports that, opt-in); RQ, Huey, Taskiq
    and arq have no per-exception retry list.

    ## Fix safety
    No fix is offered: which exceptions are transient is a decision about the task's
    dependencies that only its authors can make.

    ## References
    - [Celery: Automatic retry for known exceptions](https://docs.celeryq.dev/en/stable/userguide/tasks.html#automatic-retry-for-known-exceptions)
    """

    code = "QLT203"
    name = "retry-on-any-exception"
    summary = "`autoretry_for` retries every exception, bugs included"
    severity = Severity.WARNING
    fix_availability = "None"

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(ConnectionError,), retry_backoff=True)
def sync_account(account_id):
    pass
""", note="a transient error only"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(Exception,), dont_autoretry_for=(ValueError,), retry_backoff=True)
def sync_account(account_id):
    pass
""", note="deterministic failures are exempted"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery, Task

app = Celery("proj")

class ResilientTask(Task):
    autoretry_for = (Exception,)
    dont_autoretry_for = (TypeError, KeyError)
""",
            "proj/tasks.py": """
from proj.celery import app, ResilientTask

@app.task(base=ResilientTask)
def sync_account(account_id):
    pass
""",
        }, note="dont_autoretry_for on the same base class"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(Exception,), retry_kwargs={"max_retries": 0})
def sync_account(account_id):
    pass
""", note="max_retries=0 in retry_kwargs: nothing is retried"),
        Valid("""
from celery import Celery
from myapp.errors import Exception

app = Celery("proj")

@app.task(autoretry_for=(Exception,))
def sync_account(account_id):
    pass
""", note="a project exception that shadows the builtin name"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(ConnectionError, Exception), retry_backoff=True)
def sync_account(account_id):
    pass
""", expect=5, message="`autoretry_for` includes `Exception`"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(
    bind=True,
    autoretry_for=[BaseException],
    dont_autoretry_for=(),
)
def sync_account(self, account_id):
    pass
""",
        }, expect=[("proj/tasks.py", 5)], message="3 times, 180 s apart",
            note="a list, and an empty dont_autoretry_for exempts nothing"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import builtins
from celery import Celery, Task

app = Celery("proj")

class ResilientTask(Task):
    autoretry_for = (builtins.Exception,)
    max_retries = 10
""",
            "proj/tasks.py": """
from proj.celery import app, ResilientTask

@app.task(base=ResilientTask)
def sync_account(account_id):
    pass

@app.task(base=ResilientTask)
def sync_orders(account_id):
    pass

@app.task(base=ResilientTask, dont_autoretry_for=(ValueError,))
def sync_invoices(account_id):
    pass
""",
        }, expect=[("proj/celery.py", 7)], message="10 times",
            note="a base class reported once, in its own file; one task exempts errors, two do not"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(Exception,), max_retries=3, retry_kwargs={"max_retries": 5, "countdown": 10})
def sync_account(account_id):
    pass
""", expect=5, message="5 times, 10 s apart", note="retry_kwargs: its max_retries and countdown are what Celery uses"),
        Invalid("""
from celery import shared_task

with_retry = shared_task(autoretry_for=(Exception,), retry_backoff=2, retry_kwargs={"max_retries": 3})

@with_retry
def classify(item_id):
    pass
""", expect=3, message="3 times, after random waits of up to 2, 4 and 8 s",
            note="retry_backoff=2: waits double from 2 s, with jitter"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(autoretry_for=(Exception,), retry_backoff=5, retry_backoff_max=60, retry_jitter=False, max_retries=482)
def poll(job_id):
    pass
""", expect=5, message="482 times, after waits of 5, 10, 20 and 40 s, then 60 s each",
            note="capped by retry_backoff_max, no jitter"),
        Invalid("""
from celery import Celery, Task

RETRY_ON = (Exception,)

app = Celery("proj")

class SyncAccount(Task):
    autoretry_for = RETRY_ON

    def run(self, account_id):
        pass
""", expect=8, note="a class-based task, through a module constant"),
        Invalid("""
from functools import partial
from celery import shared_task, Celery

app = Celery("proj")
resilient_task = partial(shared_task, autoretry_for=(Exception,))

@resilient_task
def sync_account(account_id):
    pass
""", expect=5, note="a wrapper's defaults"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            caught = task.option("autoretry_for")
            if caught is None or caught.keyword is None or caught.file is None or \
                    not written_on_task(caught):
                continue
            if _exempts(task.option("dont_autoretry_for")):
                continue
            broad = broad_exception(ctx.project, caught.keyword.value)
            if broad is None:
                continue
            plan = autoretry(ctx.project, task)
            if plan is None or plan.count == 0:
                continue  # ``max_retries=0``: nothing is retried
            ctx.report(caught.file, caught.keyword.span,
                       f"`autoretry_for` includes `{broad}` ({caught.source}) with no `dont_autoretry_for`: "
                       f"a bug in task `{task.name}` (`TypeError`, `KeyError`, bad input) is retried like a "
                       f"transient failure, {plan.schedule()}")


def _exempts(resolved: Resolved | None) -> bool:
    """Any ``dont_autoretry_for`` other than an explicitly empty one (unknown values count)."""
    if resolved is None:
        return False
    return resolved.value not in ((), [], None)
