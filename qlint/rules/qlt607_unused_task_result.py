from __future__ import annotations

import ast

from qlint.frameworks.celery_calls import result_backend, result_reads, tracks_state
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FunctionFact
from qlint.lint.model import Resolved, Task, seconds
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.rules._common import add_task_options, number_text, task_functions, where


def _returns_value(src: SourceFile, fn: FunctionFact, trees: dict[str, ast.Module | None]) -> bool | None:
    """Whether the function's own body has ``return <value>`` (``return None`` is no value) or
    ``yield``; None when the file cannot be read back."""
    key = str(src.path)
    if key not in trees:
        try:
            trees[key] = ast.parse(src.text)
        except SyntaxError:
            trees[key] = None
    tree = trees[key]
    if tree is None:
        return None
    row = src.row_of(fn.def_start)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == row and node.name == fn.name:
            stack = list(node.body)
            while stack:
                child = stack.pop()
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                if isinstance(child, ast.Return) and child.value is not None and not (
                        isinstance(child.value, ast.Constant) and child.value.value is None):
                    return True
                if isinstance(child, (ast.Yield, ast.YieldFrom)):
                    return True
                stack.extend(ast.iter_child_nodes(child))
            return False
    return None


def _stored(task: Task, backend: Resolved) -> str:
    name = backend.value if isinstance(backend.value, str) else f"from ${backend.env}"
    if isinstance(backend.value, str) and backend.value.startswith("rpc"):
        return (f"sends its state to the `{name}` result backend ({where(backend)}), where unread results pile up in "
                "the caller's reply queue")
    expires = next((app.settings["result_expires"] for app in task.apps if "result_expires" in app.settings), None)
    kept = seconds(expires.value) if expires is not None else None
    if expires is None:
        how_long = "`result_expires` (1 day by default)"
    elif kept:
        how_long = f"{number_text(kept)} s (`result_expires`, {where(expires)})"
    else:
        how_long = f"ever (`result_expires` is `{expires.value}`, {where(expires)})" if expires.known else \
            "`result_expires`"
    return f"stores its state in the result backend `{name}` ({where(backend)}) and keeps it for {how_long}"


@register
class UnusedTaskResult(Rule):
    """## What it does
    Checks for Celery tasks whose results are stored and never read: the app has a result
    backend, the task does not set `ignore_result`, it returns nothing, and nothing in the
    project reads its result (no `AsyncResult(...)` anywhere, no enqueue whose value is kept,
    no signature of it in a canvas).

    ## Why is this bad?
    With a result backend configured, Celery stores every task's state and return value
    (`task_ignore_result` is `False` by default): a write to the backend per task, kept for
    `result_expires` (one day by default; with the `rpc://` backend unread results pile up
    in reply queues). For a task that returns nothing and whose result nobody reads, that is
    load on the backend for nothing. Celery's guide: "If you don't care about the results of
    a task, be sure to set the `ignore_result` option, as storing results wastes time and
    resources."

    ## Example
    ```python
    app = Celery("proj", broker="redis://", backend="redis://")

    @app.task
    def send_welcome_email(user_id):
        mail.send(user_id)
    ```

    Use instead:
    ```python
    app = Celery("proj", broker="redis://", backend="redis://")

    @app.task(ignore_result=True)
    def send_welcome_email(user_id):
        mail.send(user_id)
    ```

    ## Per framework
    - **Celery** only: a task of an app with `result_backend` (`Celery(backend=...)`,
      `app.conf`, a config module, Django's `CELERY_RESULT_BACKEND`) and no `ignore_result`
      on the task, its base class, `task_annotations` or `task_ignore_result`. The task is
      not reported when it returns a value, sets `track_started` or calls
      `self.update_state(...)`, when any enqueue of it keeps the returned `AsyncResult`,
      chooses `ignore_result` per call or links a callback, when a signature of it
      (`task.s(...)`) exists, or when the project calls `AsyncResult(...)` anywhere (a result
      read by id may be this task's).

    ## Fix safety
    The fix adds `ignore_result=True` to the task. It is unsafe: a result read from outside
    the project (another service, a dashboard such as Flower reading the backend, an API
    that returns the task id to a client that polls it) no longer finds a state, and
    `AsyncResult(id).state` stays `PENDING` forever.

    ## Options
    The rule is opt-in: results read by id from outside the code base are invisible to it.

    ## References
    - [Celery: Ignore results you don't want](https://docs.celeryq.dev/en/stable/userguide/tasks.html#ignore-results-you-don-t-want)
    - [Celery: task_ignore_result](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-ignore-result)
    - [Celery: result_expires](https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-expires)
    """

    code = "QLT607"
    name = "unused-task-result"
    summary = "Task results are stored in the result backend and never read"
    severity = Severity.INFO
    fix_availability = "Sometimes"
    opt_in = True
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://", backend="redis://")

@app.task(ignore_result=True)
def send_welcome_email(user_id):
    pass

@app.task
def render(user_id):
    return {"user": user_id}

@app.task(bind=True)
def import_file(self, path):
    self.update_state(state="PROGRESS")
""", note="ignore_result set; a return value; progress through update_state"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://")

@app.task
def send_welcome_email(user_id):
    pass
""", note="no result backend"),
        Valid("""
from celery import Celery, chain

app = Celery("proj", broker="redis://", backend="redis://")

@app.task
def send_welcome_email(user_id):
    pass

@app.task
def audit(user_id):
    pass

@app.task
def cleanup(user_id):
    pass

def signup(user_id):
    pending = send_welcome_email.delay(user_id)
    chain(audit.s(user_id), cleanup.si(user_id)).delay()
    return pending.id
""", note="the enqueue's result is kept; signatures in a canvas"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", broker="redis://", backend="redis://")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def send_welcome_email(user_id):
    pass
""",
            "proj/views.py": """
from proj.celery import app

def status(task_id):
    return app.AsyncResult(task_id).state
""",
        }, note="results are read by id somewhere in the project"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="redis://", backend="redis://")

@app.task
def send_welcome_email(user_id):
    if not user_id:
        return
    send(user_id)
    return None

def signup(user_id):
    send_welcome_email.delay(user_id)
""", expect=5, fixed="""
from celery import Celery

app = Celery("proj", broker="redis://", backend="redis://")

@app.task(ignore_result=True)
def send_welcome_email(user_id):
    if not user_id:
        return
    send(user_id)
    return None

def signup(user_id):
    send_welcome_email.delay(user_id)
""", message="result backend"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "redis://localhost:6379/0"
CELERY_RESULT_BACKEND = "django-db"
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task(
    bind=True,
    max_retries=3,
)
def sync_profile(self, user_id):
    def helper():
        return 1
    helper()
""",
        }, expect=[("proj/tasks.py", 3)], fixed={"proj/tasks.py": """
from celery import shared_task

@shared_task(
    bind=True,
    max_retries=3,
    ignore_result=True,
)
def sync_profile(self, user_id):
    def helper():
        return 1
    helper()
"""}, note="Django settings; a nested function's return does not count"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")
app.conf.result_backend = "rpc://"

class Notify(Task):
    name = "notify"

    def run(self, user_id):
        print(user_id)
""", expect=6, fixed="""
from celery import Celery, Task

app = Celery("proj")
app.conf.result_backend = "rpc://"

class Notify(Task):
    ignore_result = True
    name = "notify"

    def run(self, user_id):
        print(user_id)
""", note="class-based task"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        reads = None
        trees: dict[str, ast.Module | None] = {}
        for task in project.tasks:
            if task.profile is None or not task.options_complete or "ignore_result" in task.options:
                continue
            backend = result_backend(task)
            if backend is None or tracks_state(task):
                continue
            if reads is None:
                reads = result_reads(project, ctx.settings.root)
            if reads.by_id is not None:
                return
            if id(task) in reads.tasks:
                continue
            src = ctx.source(task.file)
            functions = [fn for fn in task_functions(project, task) if task.cls is None or fn.name == "run"]
            if not functions or any(_returns_value(src, fn, trees) is not False for fn in functions):
                continue
            edits = add_task_options(ctx, task, [("ignore_result", "True")])
            fix = ctx.fix(task.file, "Add `ignore_result=True`", edits) if edits else None
            ctx.report(task.file, task.anchor,
                       f"Task `{task.name}` returns nothing and nothing reads its result, yet every run "
                       f"{_stored(task, backend)}; set `ignore_result=True`", fix=fix, statement=task.header)
