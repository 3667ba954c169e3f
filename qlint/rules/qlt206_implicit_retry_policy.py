from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import add_task_options


def _relies_on_default(task: Task) -> bool:
    """The framework's own retry policy applies: nothing on the task, its wrapper or the
    broker's retry middleware says how often it is retried, and that default retries."""
    profile = task.profile
    retries = task.norm.get("max_retries")
    if profile is None or not profile.implicit_retries or retries is None:
        return False
    if retries.source != "default" or task.opaque or task.options_hidden:
        return False
    return retries.value != 0  # e.g. arq cron jobs: one try unless told otherwise


@register
class ImplicitRetryPolicy(Rule):
    """## What it does
    Checks for tasks that say nothing about retries in a framework that retries failed tasks
    on its own: a Dramatiq actor with none of `max_retries`, `retry_when` or `throws` (and no
    `Retries(max_retries=...)` middleware on the broker), an arq function whose `func(...)`
    and `WorkerSettings` set no `max_tries`.

    ## Why is this bad?
    Coming from Celery or RQ, where a task that raises simply fails, the default is a
    surprise. Dramatiq's `Retries` middleware, installed on every broker by default, retries
    every exception 20 times with an exponential backoff from 15 seconds up to 7 days: a task
    that fails for a reason retrying cannot cure (a deleted row, a bug, a malformed message)
    keeps coming back for days, sends its e-mail or charges its card again on each attempt,
    and only then reaches the dead-letter queue. arq re-runs a job up to 5 times in all when
    it raises `Retry` or is cancelled by a shutdown, so a job that is not safe to run twice
    is run again. Writing the policy down on the task makes it a decision instead of an
    accident.

    ## Known problems
    This rule is opt-in (`--select QLT206` or `extend-select`): many projects accept the
    defaults knowingly. A retry policy set where qlint cannot see it (a broker built from a
    middleware list it cannot read, options passed as `**kwargs`) keeps the rule silent.

    ## Example
    ```python
    import dramatiq

    @dramatiq.actor
    def send_receipt(order_id):
        ...
    ```

    Use instead:
    ```python
    import dramatiq

    @dramatiq.actor(max_retries=3, throws=(OrderGone,))
    def send_receipt(order_id):
        ...
    ```

    ## Per framework
    - Dramatiq: an actor (`@dramatiq.actor`, `@actor(...)`, or a `GenericActor` whose
      `class Meta` is silent) with none of `max_retries`, `retry_when` or `throws`, while
      the broker keeps the `Retries` middleware (the default) and no `Retries(max_retries=...)`
      is configured. `@dramatiq.actor(queue_name="mail")` on `def send(...)` is reported;
      `@dramatiq.actor(max_retries=0)` is not.
    - arq: a function in `WorkerSettings.functions` with no `func(f, max_tries=...)` and no
      `WorkerSettings.max_tries`. `functions = [download]` is reported;
      `functions = [func(download, max_tries=1)]` is not, nor are `cron_jobs` (one try by
      default).

    Celery, RQ, Huey and Taskiq do not retry a task unless it asks to, and are not reported.

    ## Fix safety
    For a Dramatiq actor decorator the fix inserts `max_retries=<max-retries>` (3 unless
    configured). It is unsafe: the actor now gives up after that many retries where it
    used to keep trying for days, and a failure that used to heal on its own lands in the
    dead-letter queue. There is no fix for a `GenericActor` (its options live in
    `class Meta`) or for arq, whose limit is written in `func(...)` or `WorkerSettings`.

    ## Options
    - `max-retries`

    ## References
    - [Dramatiq: Message retries](https://dramatiq.io/guide.html#message-retries)
    - [Dramatiq: Retries middleware](https://dramatiq.io/reference.html#dramatiq.middleware.Retries)
    - [arq: Retrying jobs and cancellation](https://arq-docs.helpmanual.io/#retrying-jobs-and-cancellation)
    """

    code = "QLT206"
    name = "implicit-retry-policy"
    summary = "Task relies on the framework's implicit retry policy"
    severity = Severity.INFO
    fix_availability = "Sometimes"
    opt_in = True
    frameworks = ("dramatiq", "arq")

    VALID = [
        Valid("""
import dramatiq

@dramatiq.actor(max_retries=3)
def send_receipt(order_id):
    pass
""", note="the actor writes its retry limit down"),
        Valid("""
import dramatiq

def should_retry(retries, exc):
    return retries < 5 and isinstance(exc, ConnectionError)

@dramatiq.actor(retry_when=should_retry)
def send_receipt(order_id):
    pass
""", note="retry_when decides instead of max_retries"),
        Valid("""
from dramatiq import actor

class OrderGone(Exception):
    pass

@actor(throws=(OrderGone,))
def send_receipt(order_id):
    pass
""", note="throws: the actor has thought about which failures are final"),
        Valid({
            "proj/__init__.py": "",
            "proj/broker.py": """
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries

broker = RedisBroker(url="redis://redis:6379/0")
broker.add_middleware(Retries(max_retries=3))
dramatiq.set_broker(broker)
""",
            "proj/tasks.py": """
import dramatiq

@dramatiq.actor
def send_receipt(order_id):
    pass
""",
        }, note="the broker's Retries middleware sets the limit for every actor"),
        Valid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, ShutdownNotifications, TimeLimit

broker = RedisBroker(middleware=[AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines()])
dramatiq.set_broker(broker)

@dramatiq.actor
def send_receipt(order_id):
    pass
""", note="a middleware list without Retries: nothing is retried"),
        Valid("""
import dramatiq

class SendReceipt(dramatiq.GenericActor):
    class Meta:
        max_retries = 0

    def perform(self, order_id):
        pass
""", note="a GenericActor's options live in class Meta"),
        Valid("""
from arq import cron, func

async def download(ctx, url):
    pass

async def cleanup(ctx):
    pass

class WorkerSettings:
    functions = [func(download, max_tries=1)]
    cron_jobs = [cron(cleanup, hour=3)]
""", note="arq: max_tries on the function; cron jobs are tried once by default"),
        Valid("""
from arq import func

async def download(ctx, url):
    pass

class WorkerSettings:
    functions = [download]
    max_tries = 3
""", note="arq: max_tries for every function of the worker"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
def send_receipt(order_id):
    pass
""", note="Huey retries only when a task sets retries="),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(order_id):
    pass
""", note="Celery retries only when the task calls self.retry or sets autoretry_for"),
        Valid("""
from arq import func

async def download(ctx, url):
    pass

class WorkerSettings:
    functions = [download]
    retry_jobs = False
""", note="arq: retry_jobs=False turns retries off for every function of the worker"),
        Valid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

def should_retry(retries, exc):
    return retries < 3 and isinstance(exc, ConnectionError)

broker = RedisBroker(middleware=[
    AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(), Retries(retry_when=should_retry),
])
dramatiq.set_broker(broker)

@dramatiq.actor
def send_receipt(order_id):
    pass
""", note="the broker's Retries(retry_when=...) decides for every actor"),
    ]
    INVALID = [
        Invalid("""
import dramatiq

@dramatiq.actor
def send_receipt(order_id):
    pass
""", expect=3, fixed="""
import dramatiq

@dramatiq.actor(max_retries=3)
def send_receipt(order_id):
    pass
""", message="retries every exception up to 20 times"),
        Invalid({
            "proj/__init__.py": "",
            "proj/broker.py": """
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Retries

broker = RabbitmqBroker(url="amqp://rabbit")
broker.add_middleware(Retries(min_backoff=1000))
dramatiq.set_broker(broker)
""",
            "proj/tasks.py": """
from dramatiq import actor

@actor(
    queue_name="mail",
    time_limit=60_000,
)
def send_receipt(order_id):
    pass

@actor(max_retries=5)
def refund(order_id):
    pass
""",
        }, expect=[("proj/tasks.py", 3)], fixed={"proj/tasks.py": """
from dramatiq import actor

@actor(
    queue_name="mail",
    time_limit=60_000,
    max_retries=3,
)
def send_receipt(order_id):
    pass

@actor(max_retries=5)
def refund(order_id):
    pass
"""}, note="a Retries middleware that only changes the backoff keeps the default limit"),
        Invalid("""
import dramatiq

class SendReceipt(dramatiq.GenericActor):
    class Meta:
        queue_name = "mail"

    def perform(self, order_id):
        pass
""", expect=3, note="GenericActor: reported at the class line, no fix (the options live in Meta)"),
        Invalid("""
from arq import cron, func

async def download(ctx, url):
    pass

async def resize(ctx, image_id):
    pass

async def cleanup(ctx):
    pass

class WorkerSettings:
    functions = [download, func(resize, timeout=60)]
    cron_jobs = [cron(cleanup, hour=3)]
""", expect=[3, 6], message="re-runs a job up to 5 times",
            note="arq: both functions take the default max_tries; the cron job does not retry"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            if not _relies_on_default(task):
                continue
            profile = task.profile
            fix = None
            if profile.max_retries and task.accepts_options:
                edits = add_task_options(ctx, task, [(profile.max_retries, str(ctx.settings.max_retries))])
                if edits:
                    fix = ctx.fix(task.file, f"Add `{profile.max_retries}={ctx.settings.max_retries}`", edits)
            setting = f"no `{profile.max_retries}`" if profile.max_retries else "no retry limit"
            ctx.report(task.file, task.anchor, f"`{task.name}` sets {setting}, so the default applies: "
                       f"{profile.title} {profile.implicit_retries}", fix=fix, statement=task.header)
