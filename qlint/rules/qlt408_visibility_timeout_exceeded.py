from __future__ import annotations

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import capitalized, number_text


@register
class VisibilityTimeoutExceeded(Rule):
    """## What it does
    Checks, for Celery apps on a Redis or SQS broker, for delays and run times that reach
    the broker's visibility timeout: a `countdown=` or `eta=now() + timedelta(...)` in
    `apply_async`/`send_task`/`signature`, a retry delay (`self.retry(countdown=...)`,
    `default_retry_delay`, `retry_kwargs={"countdown": ...}`, a `retry_backoff_max` that
    retries can reach), or the time limit of a task acknowledged late (`acks_late`,
    `task_acks_late`). The visibility timeout is `broker_transport_options["visibility_timeout"]`,
    by default 3600 s on Redis and 1800 s on SQS.

    ## Why is this bad?
    Redis and SQS have no real acknowledgements: a message a worker has taken but not yet
    acknowledged is given to another worker once the visibility timeout passes. A worker
    holds a countdown/ETA message unacknowledged until it is due, and a late-acknowledged
    task until it finishes. Past the timeout the same task is delivered again: Celery's
    Redis guide warns that delayed tasks "will be executed again, and again in a loop",
    and a long late-acked task runs twice in parallel.

    ## Known problems
    The broker is taken from `broker_url` (or `broker_transport`) in the configuration;
    a broker given only by the `CELERY_BROKER_URL` environment variable or the worker's
    `-b` flag is not known, and its app is not judged. Delays computed at run time
    (`countdown=2 ** retries`) are not evaluated.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="redis://redis:6379/0")

    @app.task(bind=True, max_retries=5)
    def sync_account(self, account_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc, countdown=6 * 3600)
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery(
        "proj",
        broker="redis://redis:6379/0",
        broker_transport_options={"visibility_timeout": 8 * 3600},
    )

    @app.task(bind=True, max_retries=5)
    def sync_account(self, account_id):
        try:
            ...
        except ConnectionError as exc:
            raise self.retry(exc=exc, countdown=6 * 3600)
    ```
    or keep delays well under the timeout (schedule far-future work with beat or a
    database table instead of an ETA).

    ## Per framework
    - **Celery** only, with a `redis://`, `rediss://`, `sentinel://` or `sqs://` broker.
      `apply_async(countdown=7200)`, `eta=timezone.now() + timedelta(hours=2)`,
      `self.retry(countdown=...)`, `@app.task(default_retry_delay=7200)`,
      `@app.task(autoretry_for=(...), retry_backoff=True, retry_backoff_max=7200, max_retries=20)`,
      `@app.task(acks_late=True, time_limit=7200)`.

    ## Fix safety
    There is no fix: raising the visibility timeout (in `broker_transport_options`, and
    for Redis also in `result_backend_transport_options`) delays recovery of messages
    whose worker died, and shortening the delay changes behaviour.

    ## References
    - [Celery: Redis visibility timeout](https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout)
    - [Celery: SQS visibility timeout](https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/sqs.html#visibility-timeout)
    - [Celery: ETA and countdown](https://docs.celeryq.dev/en/stable/userguide/calling.html#eta-and-countdown)
    """

    code = "QLT408"
    name = "visibility-timeout-exceeded"
    summary = "Delay or late-acked run time at or above the Redis/SQS visibility timeout"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=1800)
""", note="below Redis's 3600 s"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0",
             broker_transport_options={"visibility_timeout": 43200})

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=7200)
""", note="the visibility timeout was raised"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=7200)
""", note="RabbitMQ has no visibility timeout (QLT409 judges it)"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task(time_limit=7200)
def rebuild():
    pass
""", note="acknowledged early: a long run is not redelivered"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task(autoretry_for=(ConnectionError,), retry_backoff=True, retry_backoff_max=7200)
def sync(account_id):
    pass
""", note="3 retries with backoff reach 4 s, never the 7200 s cap"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=7200)
""", note="the broker is not known"),
    ]
    INVALID = [
        Invalid("""
from datetime import timedelta
from django.utils import timezone
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=7200)
    remind.apply_async(
        (user_id,),
        eta=timezone.now() + timedelta(days=1),
    )
""", expect=[12, 15], message="3600 s"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
import os

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "sqs://")
CELERY_TASK_ACKS_LATE = True
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task(time_limit=2700, soft_time_limit=2600)
def export(report_id):
    pass

@shared_task(bind=True, default_retry_delay=3600)
def sync(self, account_id):
    try:
        pass
    except ConnectionError as exc:
        raise self.retry(exc=exc)
""",
        }, expect=[("proj/tasks.py", 3), ("proj/tasks.py", 7)], message="1800 s",
            note="SQS from an environment default; a late-acked limit; default_retry_delay used by self.retry"),
        Invalid("""
from celery import Celery

app = Celery("proj", broker=f"rediss://{REDIS_HOST}:6380/0")

@app.task(
    autoretry_for=(ConnectionError,),
    retry_backoff=60,
    retry_backoff_max=21600,
    max_retries=10,
)
def sync(account_id):
    pass

@app.task(bind=True)
def poll(self, job_id):
    self.retry(countdown=4 * 3600)
""", expect=[8, 16], note="a backoff cap retries reach; a retry countdown; the scheme of an f-string"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for judged in cb.exceeding(ctx.project, cb.visibility_timeout, ctx.text):
            hold, window, brk = judged.hold, judged.window, judged.broker
            limit = f"the {brk.title} visibility timeout of {number_text(window.seconds)} s ({window.source})"
            if hold.kind == "running":
                message = (f"Task `{hold.task.name}` is acknowledged late and {hold.what}, at or above {limit}: "
                           "while it still runs the broker hands the message to another worker, and the task "
                           "runs twice")
            else:
                message = (f"{capitalized(hold.what)}, at or above {limit}: the worker holds the message "
                           "unacknowledged until it is due, so the broker delivers it again and the task runs more "
                           "than once")
            ctx.report(hold.file, hold.span, message, statement=hold.statement)
