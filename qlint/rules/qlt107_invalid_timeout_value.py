from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FileFacts, Keyword
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class InvalidTimeoutValue(Rule):
    """## What it does
    Checks for time limits written as a literal the framework cannot use: a zero where it
    raises, a negative number where only a positive one (or a documented "no limit"
    marker) makes sense, a string that is not a number.

    ## Why is this bad?
    Nothing checks these values where they are written. The mistake shows up at run time,
    on every call: RQ raises `ValueError('0 timeout is not allowed. Use -1 for infinite
    timeout')` from `enqueue`, so the job is never queued; Taskiq passes the label to
    `anyio.fail_after(float(timeout))`, which fails every run of the task at once (a
    negative deadline is already past, `float("abc")` raises); arq hands a negative
    timeout to `asyncio.wait_for`, which cancels the job as soon as it starts. A limit
    that is silently not applied is no better: the task is unbounded while its author
    believes otherwise.

    ## Example
    ```python
    from redis import Redis
    from rq import Queue

    queue = Queue(connection=Redis())
    queue.enqueue(send_report, job_timeout=0)
    ```

    Use instead:
    ```python
    from redis import Redis
    from rq import Queue

    queue = Queue(connection=Redis())
    queue.enqueue(send_report, job_timeout=600)
    ```

    ## Per framework
    - Celery: a negative or non-numeric `time_limit`/`soft_time_limit` on a task, a task
      class or in `task_time_limit`/`task_soft_time_limit` (the deadline is already past:
      the pool stops the task as it starts; `None`, not `-1`, means no limit).
      `@app.task(time_limit=-1)`.
    - Dramatiq: a negative, zero or non-numeric `time_limit` on an actor (interrupted at
      once; a string makes the TimeLimit middleware fail and the actor run unbounded), and a
      negative or non-numeric one in `send_with_options` (0 there falls back to the actor's).
      `@dramatiq.actor(time_limit=0)`.
    - RQ: `job_timeout=0` (`enqueue`, `enqueue_in`, `enqueue_at`), `timeout=0`
      (`enqueue_call`, `@job(...)`), a negative number other than `-1`, or a string that
      is neither a number nor a duration such as `"10m"`.
      `queue.enqueue_call(func=send_report, timeout=0)`.
    - Taskiq: a negative or non-numeric `timeout` label, on `@broker.task(...)` or
      `.kicker().with_labels(...)`.
      `@broker.task(timeout=-1)`.
    - Huey: a negative or non-numeric `timeout` on a task.
      `@huey.task(timeout="5m")`.
    - arq: a negative, zero or non-numeric `timeout` in `func(...)` or `cron(...)`.
      `functions = [func(send_report, timeout=-1)]`.

    Not reported: RQ's `-1` (no limit: QLT101's concern), RQ duration strings (`"10m"`,
    `"2h"`), and `Queue(default_timeout=0)`, which RQ replaces with its 180 s default.

    ## Fix safety
    There is no fix: the intended limit is unknown.

    ## References
    - [RQ: Job timeouts](https://python-rq.org/docs/jobs/#timeouts)
    - [Taskiq: Timeouts](https://taskiq-python.github.io/guide/getting-started.html#timeouts)
    - [Huey: task() timeout](https://huey.readthedocs.io/en/latest/api.html#Huey.task)
    - [arq: func](https://arq-docs.helpmanual.io/#arq.worker.func)
    """

    code = "QLT107"
    name = "invalid-timeout-value"
    summary = "Time limit the framework rejects at run time"
    severity = Severity.ERROR
    fix_availability = "None"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid("""
from redis import Redis
from rq import Queue

def send_report(day):
    pass

queue = Queue(connection=Redis(), default_timeout=0)
queue.enqueue(send_report, "today", job_timeout="10m")
queue.enqueue_call(func=send_report, args=("today",), timeout=600)
""", note="RQ: a duration string is valid; Queue(default_timeout=0) falls back to 180 s"),
        Valid("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis(), timeout=-1)
def send_report(day):
    pass
""", note="RQ: -1 means no limit (QLT101 reports that, not this rule)"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30.5)
async def send_report(day):
    pass

async def later():
    await send_report.kicker().with_labels(timeout=120).kiq("today")
""", note="Taskiq: positive numbers on the task and on the message"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(timeout=None, retries=-1)
def send_report(day):
    pass
""", note="Huey: no timeout is not an invalid one; retries are not a time limit"),
        Valid("""
import os

from arq import func

async def send_report(ctx, day):
    pass

class WorkerSettings:
    functions = [func(send_report, timeout=int(os.environ.get("REPORT_TIMEOUT", "-1")))]
""", note="arq: a value from the environment is not judged where it is written"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = None

@app.task(time_limit=0, soft_time_limit=None)
def send_report(day):
    pass
""", note="Celery: None and 0 both mean no limit (QLT101's concern)"),
        Valid("""
import dramatiq

@dramatiq.actor(time_limit=float("inf"))
def send_report(day):
    pass
""", note="Dramatiq: inf is the documented way to turn the limit off (QLT101's concern)"),
        # Zero where the framework uses it as a deadline (taskiq/arq modules: ``zero=False``):
        # Taskiq runs ``anyio.fail_after(0.0)`` and arq ``asyncio.wait_for(task, 0)``, both
        # failing the task at once; Huey treats ``timeout <= 0`` as no timeout (not an error).
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = -1
""", expect=4, note="a configuration value is judged though the project holds no task yet"),
        Invalid("""
from redis import Redis
from rq import Queue
from rq.decorators import job

queue = Queue(connection=Redis())

@job(queue, timeout=0)
def send_report(day):
    pass

def schedule():
    queue.enqueue(send_report, "today", job_timeout="ten minutes")
    queue.enqueue_call(func=send_report, args=("today",), timeout=0)
""", expect=[7, 12, 13], message="RQ", note="RQ: @job(timeout=0), a string RQ cannot parse, enqueue_call(timeout=0)"),
        Invalid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=-5)
async def send_report(day):
    pass

async def later():
    await send_report.kicker().with_labels(timeout="soon").kiq("today")
""", expect=[5, 10], message="Taskiq", note="Taskiq: a negative label on the task, a word on the message"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(timeout="5m")
def send_report(day):
    pass
""", expect=5, message="Huey", note="Huey: no duration strings (that is RQ's syntax)"),
        Invalid("""
from arq import cron, func

async def send_report(ctx):
    pass

async def cleanup(ctx):
    pass

class WorkerSettings:
    functions = [func(send_report, timeout=-1)]
    cron_jobs = [cron(cleanup, hour=3, timeout=-60)]
""", expect=[10, 11], message="arq", note="arq: -1 is not a 'no limit' marker there"),
        Invalid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=-300, soft_time_limit="270")
def send_report(day):
    pass
""", expect=[5, 5], message="Celery", note="Celery: a negative hard limit and a string soft limit"),
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = -1

@app.task
def send_report(day):
    pass
""", expect=4, message="Celery", note="Celery: -1 is not 'no limit' (None is); reported at the setting"),
        Invalid("""
import dramatiq

@dramatiq.actor(time_limit=-1)
def send_report(day):
    pass

def later():
    send_report.send_with_options(args=("today",), time_limit="60000")
""", expect=[3, 8], message="Dramatiq", note="Dramatiq: a negative limit; a string on the message"),
        Invalid("""
import dramatiq

@dramatiq.actor(time_limit=0)
def send_report(day):
    pass
""", expect=3, message="Dramatiq",
            note="Dramatiq: 0 is a deadline at the start (the middleware only treats a missing value as default)"),
        Invalid("""
from arq import func
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=0)
async def send_report(day):
    pass

async def build(ctx):
    pass

class WorkerSettings:
    functions = [func(build, timeout=0)]
""", expect=[6, 14], note="Taskiq and arq: a zero timeout fails every run at once"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            for keyword, reason in task.invalid_values:
                self._report(ctx, _file_of(keyword, task.options, task.levels, task.file), keyword, reason,
                             task.profile)
        for site in ctx.project.sites:
            for keyword, reason in site.invalid_values:
                self._report(ctx, _file_of(keyword, site.options, {}, site.file), keyword, reason, site.profile)

    def _report(self, ctx: RuleContext, facts: FileFacts, keyword: Keyword, reason: str, profile) -> None:
        text = ctx.source(facts).utf8[keyword.value.span.start:keyword.value.span.end].decode("utf-8")
        title = f" for {profile.title}" if profile is not None else ""
        ctx.report(facts, keyword.span, f"Invalid `{keyword.name}={text}`{title}: {reason}")


def _file_of(keyword: Keyword, options, levels, default: FileFacts) -> FileFacts:
    """The file a keyword is written in: a wrapper's defaults may live in another module."""
    for values in (options, *levels.values()):
        for resolved in values.values():
            if resolved.keyword is keyword and resolved.file is not None:
                return resolved.file
    return default
