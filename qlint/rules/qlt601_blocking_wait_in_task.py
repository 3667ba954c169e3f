from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class BlockingWaitInTask(Rule):
    """## What it does
    Checks for code inside a task that blocks until another task finishes: `.get()`,
    `.wait()`, `.join()` on the result of `.delay()`/`.apply_async()` (chained, or through a
    name bound from them) in Celery; `blocking=True` on a Huey result; Taskiq's
    `wait_result()`; arq's `job.result()`.

    ## Why is this bad?
    The waiting task holds its worker slot for as long as the other task takes, and the
    other task needs a free slot of its own. When every slot is taken by a task that waits,
    nothing runs the tasks they wait for and the pool deadlocks; short of that, the pool
    does half the work it could. Celery refuses by default: `.get()` inside a task raises
    `RuntimeError: Never call result.get() within a task!`, unless the call passes
    `disable_sync_subtasks=False` and brings the deadlock back. Celery's guide: "Having a task
    wait for the result of another task is really inefficient, and may even cause a
    deadlock if the worker pool is exhausted." Chain the work instead: the next task
    receives the result as its argument.

    ## Example
    ```python
    from celery import shared_task

    @shared_task
    def import_feed(url):
        page = fetch.delay(url).get()
        return parse(page)
    ```

    Use instead:
    ```python
    from celery import chain, shared_task

    @shared_task
    def import_feed(url):
        chain(fetch.s(url), parse.s(), store.s()).delay()
    ```

    ## Per framework
    - Celery: `.get()`, `.wait()`, `.join()`, `.join_native()`, `.collect()` on what
      `.delay()`, `.apply_async()`, `send_task()` or `AsyncResult(...)` return, called on
      the same expression (`fetch.delay(url).get()`) or through a name bound to it
      (`r = fetch.apply_async(...)` then `r.get(timeout=10)`). Remedy: `chain`, `link=`,
      `chord`.
    - Huey: a result read with `blocking=True` inside a task
      (`fetch(url).get(blocking=True)`). Remedy: `fetch.s(url).then(parse)` pipelines.
    - Taskiq: `await handle.wait_result()` on a task kicked from inside a task
      (`handle = await fetch.kiq(url)`). Remedy: a pipeline (`taskiq-pipelines`), or call
      the function directly.
    - arq: `await job.result()` on a job enqueued from inside a job
      (`job = await ctx["redis"].enqueue_job("fetch", url)`). Remedy: enqueue the next job
      from the first one.

    ## Fix safety
    There is no fix: turning a wait into a chain or a callback changes how the task is
    written.

    ## References
    - [Celery: Avoid launching synchronous subtasks](https://docs.celeryq.dev/en/stable/userguide/tasks.html#avoid-launching-synchronous-subtasks)
    - [Celery: Canvas, designing workflows](https://docs.celeryq.dev/en/stable/userguide/canvas.html)
    - [Huey: Task pipelines](https://huey.readthedocs.io/en/latest/guide.html#task-pipelines)
    - [Taskiq: Getting results](https://taskiq-python.github.io/guide/getting-started.html)
    - [arq: Jobs](https://arq-docs.helpmanual.io/#jobs)
    """

    code = "QLT601"
    name = "blocking-wait-in-task"
    summary = "Task waits for another task's result and holds its worker meanwhile"
    severity = Severity.ERROR
    fix_availability = "None"
    frameworks = ("celery", "huey", "taskiq", "arq")

    VALID = [
        Valid("""
from celery import shared_task

@shared_task
def import_feed(url, options):
    fetch.delay(url)
    timeout = options.get("timeout")
    return timeout
""", note="`.delay()` without waiting; `.get()` on a dict"),
        Valid("""
import requests
from celery import shared_task

@shared_task
def import_feed(url):
    page = requests.get(url, timeout=10)
    return page.text
""", note="`requests.get` is no task result"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task
def fetch(url):
    pass

def view(url):
    return fetch.delay(url).get(timeout=30)
""", note="waiting outside any task"),
        Valid("""
from celery import chain, shared_task

@shared_task
def import_feed(url):
    chain(fetch.s(url), parse.s()).delay()
""", note="the remedy: a chain"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
def fetch(url):
    pass

@huey.task()
def import_feed(url):
    fetch.s(url).then(parse)

def view(url):
    return fetch(url).get(blocking=True)
""", note="a pipeline; waiting outside a task"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def fetch(url):
    pass

@broker.task
async def import_feed(url):
    await fetch.kiq(url)

async def handler(url):
    handle = await fetch.kiq(url)
    return await handle.wait_result()
""", note="kicked without waiting; waiting outside a task"),
        Valid("""
from arq.connections import RedisSettings

async def fetch(ctx, url):
    pass

async def import_feed(ctx, url):
    job = await ctx["redis"].enqueue_job("fetch", url)
    return job.job_id

async def view(redis, url):
    job = await redis.enqueue_job("fetch", url)
    return await job.result(timeout=30)

class WorkerSettings:
    functions = [fetch, import_feed]
    redis_settings = RedisSettings()
""", note="enqueued without waiting; waiting outside a job"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery, group
from celery.result import allow_join_result

app = Celery("proj")

@app.task
def add(x):
    return x

@app.task
def total(xs):
    with allow_join_result():
        return sum(group(add.s(x) for x in xs)().get())
""", expect=[12, 13], note="Celery: a group's result, waited on under allow_join_result()"),
        Invalid("""
from celery import shared_task

@shared_task
def import_feed(url):
    page = fetch.delay(url).get()
    return page
""", expect=5, message="deadlock"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(bind=True)
def report(self, ids):
    pending = fetch.apply_async(args=(ids,), countdown=5)
    rows = pending.get(timeout=60, disable_sync_subtasks=False)
    other = app.AsyncResult(ids[0]).wait()
    return rows, other
""",
        }, expect=[("proj/tasks.py", 6), ("proj/tasks.py", 7)], note="a bound name; AsyncResult"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")

class Export(Task):
    def run(self, ids):
        job = fetch.delay(ids)
        return job.join()
""", expect=8, note="class-based task"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
def fetch(url):
    pass

@huey.task()
def import_feed(url):
    page = fetch(url).get(blocking=True)
    return page
""", expect=11),
        Invalid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def fetch(url):
    pass

@broker.task
async def import_feed(url):
    handle = await fetch.kiq(url)
    result = await handle.wait_result(timeout=30)
    return result.return_value
""", expect=12),
        Invalid("""
from arq import func
from arq.connections import RedisSettings

async def fetch(ctx, url):
    pass

async def import_feed(ctx, url):
    job = await ctx["redis"].enqueue_job("fetch", url)
    return await job.result(timeout=30)

class WorkerSettings:
    functions = [fetch, func(import_feed, timeout=60)]
    redis_settings = RedisSettings()
""", expect=9),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            for call, how in task.result_waits:
                ctx.report(task.file, call.span,
                           f"Task `{task.name}` blocks here until another task finishes ({how}): it holds its "
                           "worker slot while it waits and the other task needs a slot too, so when every slot waits "
                           "the pool deadlocks; chain the tasks or pass a callback instead", statement=call.statement)
