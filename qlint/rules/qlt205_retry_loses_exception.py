from __future__ import annotations

from qlint.fixers.calls import add_keywords, fresh_name
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.facts import CallFact, FunctionFact, HandlerFact
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import retry_calls


def _name_edits(ctx: RuleContext, data: bytes, handler: HandlerFact, name: str) -> list[Edit]:
    """Give an ``except`` clause an ``as`` name; a bare ``except:`` becomes ``except BaseException``."""
    colon = handler.span.end - 1
    if data[colon:colon + 1] != b":":
        return []
    if not handler.types:
        if handler.type_end is not None:
            return []
        return [Edit(handler.span.start, handler.span.end, f"except BaseException as {name}:")]
    # Before the colon, after any closing parenthesis of the caught types (``except (A, B):``).
    pos = colon
    while pos > handler.span.start and data[pos - 1] in b" \t":
        pos -= 1
    return [Edit(pos, pos, f" as {name}")]


@register
class RetryLosesException(Rule):
    """## What it does
    Checks for `self.retry(...)` (or `<task>.retry(...)`) inside an `except` clause of a
    Celery task without `exc=`.

    ## Why is this bad?
    When the task runs out of retries, `retry()` raises the exception given as `exc`. Without
    it, Celery raises `MaxRetriesExceededError` instead: the result backend, the failure
    handlers, the logs and error trackers see "Can't retry ... max retries exceeded" and
    not the `ConnectionError` or `HTTPError` that actually broke the task, and its
    traceback is lost.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(bind=True)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError:
            raise self.retry(countdown=10)
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(bind=True)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc, countdown=10)
    ```

    ## Per framework
    - **Celery** only: `self.retry(countdown=5)` inside `except ... as exc` without `exc=exc`.
      No other framework retries through a method of the task.

    ## Fix safety
    The fix adds `exc=<name>` to the call, naming the exception in the `except` clause
    first when it has no `as` name (a bare `except:` becomes the equivalent
    `except BaseException as exc:`). It is unsafe: once retries are exhausted the task
    fails with the original exception instead of `MaxRetriesExceededError`, and code that
    catches or inspects that error (failure handlers, `link_error` callbacks, alerts)
    sees a different type.

    ## References
    - [Celery: Retrying](https://docs.celeryq.dev/en/stable/userguide/tasks.html#retrying)
    - [Celery: Task.retry](https://docs.celeryq.dev/en/stable/reference/celery.app.task.html#celery.app.task.Task.retry)
    """

    code = "QLT205"
    name = "retry-loses-exception"
    summary = "`self.retry(...)` in an `except` clause without `exc=`"
    severity = Severity.INFO
    fix_availability = "Sometimes"

    VALID = [
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=10)
"""),
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    if order_id is None:
        raise self.retry(countdown=10)
""", note="not in an except clause: there is no exception to keep"),
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as e:
        raise self.retry(exc=e)
    except KeyError:
        raise self.retry(countdown=5, **RETRY)
""", note="exc given; options qlint cannot see"),
        Valid("""
from celery import shared_task

class Client:
    def call(self):
        try:
            pass
        except ConnectionError:
            self.retry()
""", note="not a task"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(bind=True)
def upload(self, path):
    try:
        pass
    except ConnectionError:  # retry: transient
        self.retry(countdown=5)
""", expect=10, fixed="""
from celery import Celery

app = Celery("proj")

@app.task(bind=True)
def upload(self, path):
    try:
        pass
    except ConnectionError as exc:  # retry: transient
        self.retry(countdown=5, exc=exc)
""", note="a colon in the handler's trailing comment"),
        Invalid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError:
        raise self.retry(countdown=10)
""", expect=8, fixed="""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(countdown=10, exc=exc)
""", message="MaxRetriesExceededError"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(bind=True)
def charge(self, order_id, exc=None):
    try:
        pass
    except (ConnectionError, TimeoutError):
        raise self.retry(countdown=10)
    except:
        charge.retry()

@app.task
def refund(order_id):
    try:
        pass
    except OSError as err:
        refund.retry(
            countdown=5,
        )
""",
        }, expect=[("proj/tasks.py", 8), ("proj/tasks.py", 10), ("proj/tasks.py", 17)],
            fixed={"proj/tasks.py": """
from proj.celery import app

@app.task(bind=True)
def charge(self, order_id, exc=None):
    try:
        pass
    except (ConnectionError, TimeoutError) as exc1:
        raise self.retry(countdown=10, exc=exc1)
    except BaseException as exc1:
        charge.retry(exc=exc1)

@app.task
def refund(order_id):
    try:
        pass
    except OSError as err:
        refund.retry(
            countdown=5,
            exc=err,
        )
"""}, note="a tuple of types, a bare except, a fresh name, `<task>.retry` on an unbound task"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
task = functools.partial(shared_task, bind=True)
""",
            "proj/tasks.py": """
from proj.celery import task

@task
def upload(self, path):
    try:
        pass
    except OSError as err:
        self.retry()
""",
        }, expect=[("proj/tasks.py", 8)], fixed={"proj/tasks.py": """
from proj.celery import task

@task
def upload(self, path):
    try:
        pass
    except OSError as err:
        self.retry(exc=err)
"""}, note="bound through a wrapper"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")

class Upload(Task):
    def run(self, path):
        try:
            pass
        except OSError:
            self.retry(countdown=5)
""", expect=10, fixed="""
from celery import Celery, Task

app = Celery("proj")

class Upload(Task):
    def run(self, path):
        try:
            pass
        except OSError as exc:
            self.retry(countdown=5, exc=exc)
""", note="class-based task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if task.profile is None or not task.profile.retry_method or task.options_hidden:
                continue
            for fn, call in retry_calls(ctx.project, task):
                handler = call.handler
                if handler is None or call.has_star or "exc" in call.kwargs or len(call.args) >= 3:
                    continue
                fix = self._fix(ctx, task.file, fn, call, handler)
                ctx.report(task.file, call.span, f"`{call.dotted}(...)` in an `except` clause without `exc=`: when "
                           f"retries run out, `{task.name}` fails with MaxRetriesExceededError and the original "
                           "exception is lost", fix=fix, statement=call.statement)

    def _fix(self, ctx: RuleContext, facts, fn: FunctionFact, call: CallFact, handler: HandlerFact):
        src = ctx.source(facts)
        edits: list[Edit] = []
        name = handler.name
        if name is None:
            name = fresh_name(fn.names)
            edits = _name_edits(ctx, src.utf8, handler, name)
            if not edits:
                return None
        edits += add_keywords(src, call, [("exc", name)], ctx.line_length)
        return ctx.fix(facts, f"Pass `exc={name}`", edits)
