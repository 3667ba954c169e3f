from __future__ import annotations

from qlint.fixers.calls import replace_value
from qlint.frameworks.celery_failures import Rejection, acks_late, rejections
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import Span
from qlint.lint.model import UNKNOWN, Resolved, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import add_task_options, task_functions, where


def raise_span(data: bytes, rejection: Rejection) -> Span:
    """From the ``raise`` keyword to the end of the raised expression."""
    value = rejection.value.span
    line_start = data.rfind(b"\n", 0, value.start) + 1
    at = data.rfind(b"raise", line_start, value.start)
    if at < 0 or data[at + 5:value.start].strip():
        return Span(value.start, value.end)
    return Span(at, value.end)


@register
class RejectWithoutAcksLate(Rule):
    """## What it does
    Checks for `raise Reject(...)` (`celery.exceptions.Reject`) in a Celery task whose
    effective `acks_late` is false: not set on the task, its base classes,
    `task_annotations` or `task_acks_late`, which all default to false.

    ## Why is this bad?
    Raising `Reject` asks the worker to reject the task's message: back onto the queue with
    `requeue=True`, or to the queue's dead-letter exchange with `requeue=False`. But a task
    that is not late-acknowledged had its message acked *before* it started, and a message
    can only be acked or rejected once: the reject is silently dropped. Celery's
    documentation says it outright: "this won't have any effect unless `Task.acks_late` is
    enabled". A `Reject(requeue=True)` meant to hand the work back loses it, and a
    `Reject(requeue=False)` meant to dead-letter a poison message sends nothing to the
    dead-letter queue.

    ## Example
    ```python
    from celery import shared_task
    from celery.exceptions import Reject

    @shared_task
    def render(doc_id):
        try:
            convert(doc_id)
        except MemoryError as exc:
            raise Reject(exc, requeue=False)
    ```

    Use instead:
    ```python
    from celery import shared_task
    from celery.exceptions import Reject

    @shared_task(acks_late=True)
    def render(doc_id):
        try:
            convert(doc_id)
        except MemoryError as exc:
            raise Reject(exc, requeue=False)
    ```

    ## Per framework
    - **Celery** only: `raise Reject(...)` in the task function (or the methods of a
      class-based task) while `acks_late` is off. The other frameworks have no `Reject`.

    Not reported when `acks_late` could be set where qlint cannot read it (configuration
    outside the project, `**options` on the decorator, a base class from another package).

    ## Fix safety
    The fix adds `acks_late=True` to the task's decorator (or class), or turns an explicit
    `acks_late=False` into `True`. It is unsafe: the message is then acknowledged only after
    the task returns, so a task interrupted by a worker crash or a deploy runs again, and
    on Redis or SQS a task that runs longer than the transport's visibility timeout is
    delivered to a second worker while the first one still runs it. The task must be
    idempotent. No fix is offered when `task_annotations` sets `acks_late`, since
    annotations override the decorator.

    ## References
    - [Celery: Reject](https://docs.celeryq.dev/en/stable/userguide/tasks.html#reject)
    - [Celery: `Task.acks_late`](https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.acks_late)
    - [Celery: Should I use retry or acks_late?](https://docs.celeryq.dev/en/stable/faq.html#faq-acks-late-vs-retry)
    """

    code = "QLT302"
    name = "reject-without-acks-late"
    summary = "`raise Reject(...)` in a Celery task that is not `acks_late` does nothing"
    severity = Severity.ERROR
    fix_availability = "Sometimes"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import shared_task
from celery.exceptions import Reject

@shared_task(acks_late=True)
def render(doc_id):
    try:
        convert(doc_id)
    except MemoryError as exc:
        raise Reject(exc, requeue=False)
""", note="late-acked task"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_acks_late = True
""",
            "proj/tasks.py": """
from celery.exceptions import Reject

from proj.celery import app

@app.task
def render(doc_id):
    raise Reject("bad input", requeue=False)
""",
        }, note="acks_late for every task through the app's configuration"),
        Valid("""
from celery import Celery, Task
from celery.exceptions import Reject

app = Celery("proj")

class LateTask(Task):
    acks_late = True

class Render(LateTask):
    def run(self, doc_id):
        raise Reject(doc_id)
""", note="acks_late from the base class"),
        Valid("""
from celery import Celery
from celery.exceptions import Reject

app = Celery("proj")
app.config_from_object("ops.celeryconfig")

@app.task
def render(doc_id):
    raise Reject(doc_id)
""", note="configuration outside the project may set task_acks_late"),
        Valid("""
from celery import Celery
from celery.exceptions import Reject, Retry

app = Celery("proj")

def helper(doc_id):
    raise Reject(doc_id)

@app.task
def render(doc_id):
    raise Retry("later")
""", note="not in a task's body; another Celery exception"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery, shared_task
from celery.exceptions import Reject

app = Celery("proj")

@shared_task
def render(doc_id):
    try:
        convert(doc_id)
    except MemoryError as exc:
        raise Reject(exc, requeue=False)
""", expect=11, fixed="""
from celery import Celery, shared_task
from celery.exceptions import Reject

app = Celery("proj")

@shared_task(acks_late=True)
def render(doc_id):
    try:
        convert(doc_id)
    except MemoryError as exc:
        raise Reject(exc, requeue=False)
""", message="dead-letter"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from celery import exceptions

from proj.celery import app

@app.task(bind=True, acks_late=False)
def render(self, doc_id):
    if doc_id is None:
        raise exceptions.Reject("no id", True)
""",
        }, expect=[("proj/tasks.py", 8)], fixed={"proj/tasks.py": """
from celery import exceptions

from proj.celery import app

@app.task(bind=True, acks_late=True)
def render(self, doc_id):
    if doc_id is None:
        raise exceptions.Reject("no id", True)
"""}, message="requeue", note="explicit acks_late=False; requeue given by position"),
        Invalid("""
from celery import Celery, Task
from celery.exceptions import Reject

app = Celery("proj")

class Render(Task):
    name = "render"

    def run(self, doc_id):
        self.check(doc_id)

    def check(self, doc_id):
        raise Reject
""", expect=13, fixed="""
from celery import Celery, Task
from celery.exceptions import Reject

app = Celery("proj")

class Render(Task):
    acks_late = True
    name = "render"

    def run(self, doc_id):
        self.check(doc_id)

    def check(self, doc_id):
        raise Reject
""", note="a method of a class-based task; the bare class raised"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_annotations = {"proj.tasks.render": {"acks_late": False}}
""",
            "proj/tasks.py": """
from celery.exceptions import Reject

from proj.celery import app

@app.task(acks_late=True)
def render(doc_id):
    raise Reject(doc_id)
""",
        }, expect=[("proj/tasks.py", 7)], message="task_annotations",
            note="task_annotations override the decorator: no fix"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for task in project.tasks:
            found = rejections(project, task, task_functions(project, task))
            if not found:
                continue
            acks = acks_late(task)
            if acks.value is not False:
                continue
            data = ctx.source(task.file).utf8
            fix = self._fix(ctx, task, acks)
            for rejection in found:
                span = raise_span(data, rejection)
                ctx.report(task.file, span, self._message(task, acks, rejection), fix=fix,
                           statement=Span(span.start, span.end))

    @staticmethod
    def _message(task: Task, acks: Resolved, rejection: Rejection) -> str:
        source = "Celery's default" if acks.source == "default" else where(acks)
        head = (f"`Reject` in task `{task.name}` has no effect: `acks_late` is off ({source}), so the worker acked "
                "the message before the task ran and there is nothing left to reject")
        if rejection.requeue is True:
            return f"{head}; the message is not requeued and the task never runs again"
        if rejection.requeue is UNKNOWN:
            return f"{head}; the message is neither requeued nor dead-lettered"
        return f"{head}; the message never reaches the queue's dead-letter exchange"

    @staticmethod
    def _fix(ctx: RuleContext, task: Task, acks: Resolved):
        if acks.source == "task_annotations":
            return None
        written = acks.keyword is not None and acks.file is task.file and (
            acks.source == "decorator" or task.cls is not None and acks.source == f"class {task.cls.name}")
        if written:
            edits = [replace_value(acks.keyword, "True")]
        else:
            edits = add_task_options(ctx, task, [("acks_late", "True")])
        if not edits:
            return None
        return ctx.fix(task.file, f"Set `acks_late=True` on `{task.name}`", edits)
