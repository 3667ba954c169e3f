from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class RetryNeverScheduled(Rule):
    """## What it does
    Checks for tasks that ask for retries that nothing in the project will ever run: a Taskiq
    task labelled `retry_on_error=True` while no broker of the project gets a retry
    middleware (`SimpleRetryMiddleware` or `SmartRetryMiddleware`).

    ## Why is this bad?
    Taskiq's task labels are plain metadata carried with each message. `retry_on_error` and
    `max_retries` are read only by the retry middlewares; a broker without one ignores them,
    so a task that fails fails once, for good, while its decorator says it is retried. The
    code reads as resilient and is not: the transient error the retries were meant to absorb
    becomes a lost task, and nobody notices until it happens in production.

    ## Known problems
    RQ is reported only when qlint sees the project's RQ workers (Kubernetes, compose or
    Procfile commands) and none runs `--with-scheduler`: a worker started elsewhere may run it. A retry middleware attached
    where qlint cannot see it (`with_middlewares(*MIDDLEWARES)`, a list built at run time)
    keeps the rule silent.

    ## Example
    ```python
    from taskiq_redis import ListQueueBroker

    broker = ListQueueBroker("redis://redis:6379")

    @broker.task(retry_on_error=True, max_retries=5)
    async def sync_account(account_id):
        ...
    ```

    Use instead:
    ```python
    from taskiq import SmartRetryMiddleware
    from taskiq_redis import ListQueueBroker

    broker = ListQueueBroker("redis://redis:6379").with_middlewares(
        SmartRetryMiddleware(default_retry_count=5, use_jitter=True, use_delay_exponent=True),
    )

    @broker.task(retry_on_error=True, max_retries=5)
    async def sync_account(account_id):
        ...
    ```

    ## Per framework
    - Taskiq: `@broker.task(..., retry_on_error=True)` while no broker of the project gets
      `SimpleRetryMiddleware(...)` or `SmartRetryMiddleware(...)`, neither in its
      construction chain (`Broker(...).with_middlewares(...)`) nor through
      `broker.add_middlewares(...)` anywhere. `@broker.task(retry_on_error=True)` with
      `broker = InMemoryBroker()` and nothing else is reported;
      `broker = InMemoryBroker().with_middlewares(SimpleRetryMiddleware())` is not.
    - RQ: `Retry(max=3, interval=60)` (any non-zero interval) while every RQ worker in the
      project's manifests runs without `--with-scheduler` (`rq worker default` in a Deployment,
      a compose service or a Procfile); `rq worker --with-scheduler` or `rq worker-pool`
      clears it. Without any RQ worker in sight nothing is reported.

    ## Fix safety
    There is no fix: where the middleware belongs and how it should back off (a
    `SmartRetryMiddleware` with jitter and exponential delays, or the immediate
    `SimpleRetryMiddleware`) is a decision about the broker, which may be built elsewhere.

    ## References
    - [Taskiq: Available middlewares (retries)](https://taskiq-python.github.io/available-components/middlewares.html)
    - [Taskiq: Messages and labels](https://taskiq-python.github.io/guide/architecture-overview.html#messages)
    - [RQ: Retrying failed jobs](https://python-rq.org/docs/exceptions/#retrying-failed-jobs)
    """

    code = "QLT207"
    name = "retry-never-scheduled"
    summary = "Task asks for retries that nothing in the project runs"
    severity = Severity.ERROR
    fix_availability = "None"
    frameworks = ("taskiq", "rq")

    VALID = [
        Valid({
            "proj/__init__.py": "",
            "proj/jobs.py": """
from redis import Redis
from rq import Queue, Retry

def export(report_id):
    pass

queue = Queue("default", connection=Redis())
queue.enqueue(export, 1, retry=Retry(max=3, interval=60))
""",
            "docker-compose.yml": """
services:
  worker:
    image: proj
    command: rq worker --with-scheduler default
""",
        }, note="RQ: a worker runs the scheduler"),
        Valid("""
from taskiq import InMemoryBroker, SimpleRetryMiddleware

broker = InMemoryBroker().with_middlewares(SimpleRetryMiddleware(default_retry_count=3))

@broker.task(retry_on_error=True, max_retries=5)
async def sync_account(account_id):
    pass
""", note="the retry middleware is in the broker's construction chain"),
        Valid({
            "proj/__init__.py": "",
            "proj/broker.py": """
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://redis:6379")
""",
            "proj/startup.py": """
from taskiq.middlewares import SmartRetryMiddleware

from proj.broker import broker

def configure():
    broker.add_middlewares(SmartRetryMiddleware(use_jitter=True))
""",
            "proj/tasks.py": """
from proj.broker import broker

@broker.task("sync", retry_on_error=True)
async def sync_account(account_id):
    pass
""",
        }, note="add_middlewares in another module, inside a function"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(retry_on_error=False)
async def sync_account(account_id):
    pass

@broker.task(timeout=30)
async def refresh(account_id):
    pass
""", note="no task asks for retries"),
        Valid({
            "proj/__init__.py": "",
            "proj/middlewares.py": """
from taskiq import SmartRetryMiddleware

MIDDLEWARES = [SmartRetryMiddleware()]
""",
            "proj/broker.py": """
from taskiq import InMemoryBroker

from proj.middlewares import MIDDLEWARES

broker = InMemoryBroker().with_middlewares(*MIDDLEWARES)

@broker.task(retry_on_error=True)
async def sync_account(account_id):
    pass
""",
        }, note="middlewares qlint cannot enumerate: no guess"),
        Valid("""
from celery import shared_task

@shared_task(bind=True, max_retries=5)
def sync_account(self, account_id):
    pass
""", note="Celery's retries need no extra component"),
    ]
    INVALID = [
        Invalid({
            "proj/__init__.py": "",
            "proj/jobs.py": """
from redis import Redis
from rq import Queue, Retry

def export(report_id):
    pass

queue = Queue("default", connection=Redis())

def schedule(report_id):
    queue.enqueue(export, report_id, retry=Retry(max=3, interval=[10, 60]))
""",
            "Procfile": "web: gunicorn proj.wsgi\nworker: rq worker default\n",
        }, expect=[("proj/jobs.py", 10)], message="--with-scheduler", note="RQ: the Procfile's worker runs no scheduler"),
        Invalid("""
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://redis:6379")

@broker.task(retry_on_error=True, max_retries=5)
async def sync_account(account_id):
    pass
""", expect=5, message="asks for retries that never happen: no broker in the project gets a retry middleware"),
        Invalid({
            "proj/__init__.py": "",
            "proj/broker.py": """
from taskiq import InMemoryBroker
from taskiq.middlewares import PrometheusMiddleware

broker = InMemoryBroker().with_middlewares(PrometheusMiddleware())
""",
            "proj/tasks.py": """
from proj.broker import broker

@broker.task(
    "sync",
    timeout=30,
    retry_on_error=True,
)
async def sync_account(account_id):
    pass

@broker.task(retry_on_error=False)
async def refresh(account_id):
    pass
""",
        }, expect=[("proj/tasks.py", 6)], note="a broker with another middleware; the label on its own line"),
        Invalid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(retry_on_error=True)
def resize(image_id):
    pass

@broker.task(max_retries=2, retry_on_error=True)
async def sync_account(account_id):
    pass
""", expect=[5, 9], note="a sync task and a label after max_retries"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if not task.retry_blocker:
                continue
            asking = task.norm.get("max_retries")
            if asking is not None and asking.keyword is not None:
                where = asking.file or task.file
                span = asking.keyword.span
                text = ctx.source(where).utf8[span.start:span.end].decode("utf-8", "replace")
                what = f"`{' '.join(text.split())}`"
            else:  # the model names no asking option: the task itself
                where, span, what = task.file, task.anchor, "The task's retry options"
            ctx.report(where, span, f"{what} asks for retries that never happen: {task.retry_blocker}, so "
                       f"`{task.name}` fails at its first error",
                       statement=task.header if where is task.file else None)
        for site in ctx.project.sites:
            if site.retry_blocker and site.call is not None:
                interval = site.options.get("interval")
                anchor = interval.keyword.span if interval is not None and interval.keyword is not None else site.anchor
                ctx.report(site.file, anchor, f"`{site.call.dotted}(...)` schedules retries that never run: "
                           f"{site.retry_blocker}", statement=site.call.statement)
