from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class AsyncTaskUnsupported(Rule):
    """## What it does
    Checks for tasks defined on an `async def` where the framework cannot run coroutines:
    Celery and Huey tasks, and Dramatiq actors in a project that installs no `AsyncIO`
    middleware.

    ## Why is this bad?
    Celery and Huey call the task function and take what it returns as the task's result.
    For an `async def` that is a coroutine object nobody awaits: the body never runs, Python
    warns `coroutine ... was never awaited`, and storing the coroutine as the result fails
    (Celery: `EncodeError: Object of type coroutine is not JSON serializable`; Huey:
    `TypeError: cannot pickle 'coroutine' object`); with results ignored the task simply
    "succeeds" without doing anything. Dramatiq wraps async actors so that they run on an event loop thread that only
    its `AsyncIO` middleware starts; without it every message fails with
    `RuntimeError: Global event loop thread not set`.

    ## Example
    ```python
    from celery import shared_task

    @shared_task
    async def send_welcome(user_id):
        await mailer.send(user_id)
    ```

    Use instead:
    ```python
    from asgiref.sync import async_to_sync
    from celery import shared_task

    @shared_task
    def send_welcome(user_id):
        async_to_sync(mailer.send)(user_id)
    ```

    ## Per framework
    - Celery: any task on an `async def` (`@app.task`, `@shared_task`).
      `@app.task` + `async def f(): ...`.
    - Huey: any task on an `async def` (`@huey.task()`, `@huey.periodic_task(...)`,
      `@db_task()`); Huey's own asyncio helpers only await results from async code.
      `@huey.task()` + `async def f(): ...`.
    - Dramatiq: an `async def` actor when no broker of the project gets the
      `dramatiq.middleware.AsyncIO` middleware (in `middleware=[...]` or through
      `broker.add_middleware(AsyncIO())`).
      `@dramatiq.actor` + `async def f(): ...` and no `AsyncIO()` anywhere.

    Taskiq, arq and RQ (since 1.8) run coroutine functions themselves and are not
    reported.

    ## Fix safety
    There is no fix: the function has to become synchronous (running its coroutine with
    `asyncio.run` or `asgiref.sync.async_to_sync`), or, with Dramatiq, the broker has to get
    the `AsyncIO` middleware.

    ## References
    - [Celery: Tasks](https://docs.celeryq.dev/en/stable/userguide/tasks.html)
    - [Huey: AsyncIO](https://huey.readthedocs.io/en/latest/contrib.html#asyncio)
    - [Dramatiq: Asyncio actors](https://dramatiq.io/cookbook.html#asyncio-actors)
    - [Dramatiq: AsyncIO middleware](https://dramatiq.io/reference.html#dramatiq.middleware.AsyncIO)
    """

    code = "QLT606"
    name = "async-task-unsupported"
    summary = "Task on an `async def` that the framework cannot run"
    severity = Severity.ERROR
    fix_availability = "None"
    frameworks = ("celery", "huey", "dramatiq")

    VALID = [
        Valid("""
import asyncio

from celery import shared_task

@shared_task
def send_welcome(user_id):
    asyncio.run(deliver(user_id))

async def deliver(user_id):
    pass
""", note="a sync task that runs a coroutine; the async helper is not a task"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task
def outer():
    async def inner():
        pass
    return None
""", note="an async function nested in a sync task is not the task"),
        Valid("""
from celery import Celery

app = Celery("proj")

async def notify(user_id):
    pass

class Mailer:
    @app.on_after_configure.connect
    async def setup(self, sender, **kwargs):
        pass
""", note="async functions that are not tasks"),
        Valid("""
from huey import RedisHuey
from huey.contrib.asyncio import aget_result

huey = RedisHuey("app")

@huey.task()
def resize(image_id):
    pass

async def view(image_id):
    return await aget_result(resize(image_id))
""", note="awaiting a Huey result from async code is supported"),
        Valid({
            "proj/__init__.py": "",
            "proj/broker.py": """
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

broker = RedisBroker()
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)
""",
            "proj/actors.py": """
import dramatiq

@dramatiq.actor
async def fetch(url):
    pass
""",
        }, note="the AsyncIO middleware is installed in another module"),
        Valid("""
import dramatiq

@dramatiq.actor
def fetch(url):
    pass
""", note="a sync actor needs no middleware"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task
async def send_welcome(user_id):
    pass
""", expect=3, message="body never runs"),
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
    max_retries=3,
)
async def charge(self, order_id):
    pass

@app.task
def refund(order_id):
    pass
""",
        }, expect=[("proj/tasks.py", 3)], message="Celery", note="anchored on the first decorator line"),
        Invalid("""
import functools

from celery import Celery

app = Celery("proj")
task = functools.partial(app.task, acks_late=True)

@functools.wraps(print)
@task
async def export():
    pass
""", expect=8, note="through a project wrapper, under another decorator"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
async def resize(image_id):
    pass

@huey.periodic_task(crontab(minute="0"))
async def nightly():
    pass
""", expect=[5, 9], message="Huey"),
        Invalid("""
from huey.contrib.djhuey import db_task

@db_task()
async def resize(image_id):
    pass
""", expect=3, note="Django integration"),
        Invalid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker())

@dramatiq.actor(max_retries=3)
async def fetch(url):
    pass
""", expect=6, message="middleware"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if not task.is_async or task.profile is None:
                continue
            message = _message(task)
            if message is not None:
                ctx.report(task.file, task.anchor, message, statement=task.header)


def _message(task: Task) -> str | None:
    profile = task.profile
    if profile.async_tasks == "unsupported":
        return (f"Task `{task.name}` is an `async def`, which {profile.title} cannot run: the worker calls it, gets a "
                "coroutine it never awaits, and the body never runs (storing that coroutine as the result then fails "
                "to serialize); make the task a plain `def` that runs the coroutine")
    if profile.async_tasks == "middleware" and not task.async_ready:
        return (f"Task `{task.name}` is an `async def`, which {profile.title} runs only through its asyncio "
                "middleware, and no broker in the project installs it: every run of it fails in the worker")
    return None
