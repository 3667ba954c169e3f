from __future__ import annotations

from qlint.fixers.calls import add_keywords, replace_value
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.model import Project, Task
from qlint.lint.registry import Invalid, Rule, Valid, register

# ``self.<attr>`` that only make sense when ``self`` is the task.
TASK_ATTRIBUTES = ("retry", "request", "update_state", "max_retries")


def _accepts_options(project: Project, task: Task) -> bool:
    """Whether adding a keyword to the decorator passes it to Celery as a task option."""
    if not task.wrapper:
        return True
    found = project.assignment(task.wrapper)
    if found is None:
        return False
    value = found[1].value
    # ``task = partial(shared_task, ...)``: ``@task(bind=True)`` adds an option. A wrapper
    # that is the result of ``app.task(...)`` or a factory function may not.
    return value.kind == "call" and value.call is not None and \
        project.canonical(value.call.qualified) == "functools.partial"


def _bind_fix(ctx: RuleContext, task: Task) -> list[Edit]:
    fn = task.function
    if fn is None or task.decorator is None or not fn.params or fn.params[0].name != "self" or \
            fn.params[0].kind != "positional":
        return []
    bind = task.levels.get("decorator", {}).get(task.profile.bind_option)
    if bind is not None and bind.source == "decorator" and bind.keyword is not None:
        return [replace_value(bind.keyword, "True")] if bind.keyword.value.kind == "const" else []
    if not _accepts_options(ctx.project, task):
        return []
    return add_keywords(ctx.source(task.file), task.decorator, [(task.profile.bind_option, "True")],
                        ctx.line_length)


@register
class RetryWithoutBind(Rule):
    """## What it does
    Checks for Celery function tasks whose body uses `self.retry`, `self.request`,
    `self.update_state` or `self.max_retries` although the task is not bound: neither the
    decorator nor the decorator wrapper it goes through passes `bind=True`, and the function
    is not a method of a `Task` subclass.

    ## Why is this bad?
    Only `bind=True` makes Celery pass the task itself as the first argument. Without it,
    `self` is whatever the caller passed first (an order id, a path), or not defined at
    all, and `self.retry(...)` fails with `AttributeError` or `NameError` at exactly the
    moment the task wanted to recover from an error: the retry never happens and the
    original failure is masked by a new one.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(max_retries=5)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc)
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(max_retries=5, bind=True)
    def charge(self, order_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc)
    ```

    ## Per framework
    - **Celery** only: `self.retry()` / `self.request` in a task without `bind=True`. No other
      framework hands the task object to its function as `self`.

    ## Fix safety
    The fix adds `bind=True` to the decorator (or turns an explicit `bind=False` into
    `True`), and only when the function's first parameter is named `self`. It is unsafe:
    callers that passed a value for `self` (`charge.delay(obj, order_id)`) now pass one
    argument too many, which the fix cannot see. There is no fix when the first
    parameter has another name, or when the decorator is a project wrapper that does not
    forward options to Celery.

    ## References
    - [Celery: Bound tasks](https://docs.celeryq.dev/en/stable/userguide/tasks.html#bound-tasks)
    - [Celery: Retrying](https://docs.celeryq.dev/en/stable/userguide/tasks.html#retrying)
    """

    code = "QLT204"
    name = "retry-without-bind"
    summary = "Task body uses `self.retry`/`self.request` but the task is not bound"
    severity = Severity.ERROR
    fix_availability = "Sometimes"

    VALID = [
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def charge(self, order_id):
    raise self.retry(countdown=5)
"""),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
task = functools.partial(shared_task, bind=True, max_retries=3)
""",
            "proj/tasks.py": """
from proj.celery import task

@task
def charge(self, order_id):
    print(self.request.id)
""",
        }, note="bind=True comes from the project's decorator wrapper"),
        Valid("""
from celery import Celery, Task

app = Celery("proj")

class Charge(Task):
    def run(self, order_id):
        self.update_state(state="PROGRESS")
""", note="a method of a Task subclass: self is the task"),
        Valid("""
def log_request(self):
    print(self.request.id)
""", note="uses self but is not a task"),
        Valid("""
from celery import shared_task

@shared_task
def render(self, template):
    return self.template_dir + template
""", note="self.<attr> that is not a Task attribute"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task(max_retries=5)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc)
""", expect=3, fixed="""
from celery import shared_task

@shared_task(max_retries=5, bind=True)
def charge(self, order_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc)
""", message="not bound"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(
    bind=False,
    acks_late=True,
)
def export(self, report_id):
    self.update_state(state="PROGRESS")

@app.task
def cleanup(report_id):
    print(self.request.id)
""",
        }, expect=[("proj/tasks.py", 3), ("proj/tasks.py", 10)], fixed={"proj/tasks.py": """
from proj.celery import app

@app.task(
    bind=True,
    acks_late=True,
)
def export(self, report_id):
    self.update_state(state="PROGRESS")

@app.task
def cleanup(report_id):
    print(self.request.id)
"""}, note="an explicit bind=False is flipped; no fix when the first parameter is not `self`"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import functools
from celery import Celery, shared_task

app = Celery("proj")
task = functools.partial(shared_task, max_retries=3)
""",
            "proj/tasks.py": """
from proj.celery import task

@task
def charge(self, order_id):
    raise self.retry()
""",
        }, expect=[("proj/tasks.py", 3)], fixed={"proj/tasks.py": """
from proj.celery import task

@task(bind=True)
def charge(self, order_id):
    raise self.retry()
"""}, note="a partial() wrapper that does not bind"),
        Invalid("""
from celery import Celery

app = Celery("proj")
task = app.task(max_retries=3)

@task
def charge(self, order_id):
    raise self.retry()
""", expect=6, note="a wrapper that is already a decorator: `@task(bind=True)` would not work, no fix"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            fn = task.function
            if task.profile is None or not task.profile.bind_option or fn is None or task.cls is not None or task.bound:
                continue
            used = [attr for attr in TASK_ATTRIBUTES if attr in fn.self_attrs]
            if not used:
                continue
            level = task.levels.get("decorator", {})
            bind = level.get(task.profile.bind_option)
            if "**" in level or (bind is not None and not bind.known):
                continue  # the decorator may bind the task through options qlint cannot read
            attr = min(used, key=lambda a: fn.self_attrs[a].start)
            edits = _bind_fix(ctx, task)
            fix = ctx.fix(task.file, "Add `bind=True`", edits) if edits else None
            explicit = " (`bind=False`)" if bind is not None else " (no `bind=True`)"
            ctx.report(task.file, task.anchor, f"Task `{task.name}` uses `self.{attr}` but is not bound{explicit}: "
                       "`self` is not the task but the caller's first argument, so the call fails at run time",
                       fix=fix, statement=task.header)
