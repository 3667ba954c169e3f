from __future__ import annotations

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import capitalized, number_text


def _explicit_window(app, brk):
    """RabbitMQ's window, for brokers the configuration names (not kombu's fallback)."""
    return cb.consumer_timeout(app, brk) if brk.explicit else None


@register
class ConsumerTimeoutExceeded(Rule):
    """## What it does
    Checks, for Celery apps on a RabbitMQ broker (`amqp://`, `amqps://`, `pyamqp://`), for
    messages that stay unacknowledged for RabbitMQ's `consumer_timeout` (30 minutes) or
    longer: a `countdown=` or `eta=now() + timedelta(...)` in `apply_async`/`send_task`/
    `signature`, a retry delay (`self.retry(countdown=...)`, `default_retry_delay`,
    `retry_kwargs={"countdown": ...}`, a `retry_backoff_max` that retries can reach), or the
    time limit of a task acknowledged late (`acks_late`, `task_acks_late`).

    ## Why is this bad?
    Since RabbitMQ 3.8.15 a delivery that stays unacknowledged longer than
    `consumer_timeout` (30 minutes by default since 3.8.17) makes the broker close the
    consumer's channel with `PRECONDITION_FAILED` (the most recent servers can cancel the
    consumer instead). Celery's worker holds countdown/ETA messages unacknowledged until
    they are due, and late-acknowledged tasks until they finish: every message the worker
    had reserved goes back to the queue and is delivered again, and the worker reconnects —
    over and over while the message exists (`celery/celery#6760`, `Kitware/dive#995`).

    ## Known problems
    `consumer_timeout` is a server setting (`rabbitmq.conf`, a policy, or the
    `x-consumer-timeout` queue argument); qlint assumes the default of 30 minutes. The
    broker is taken from `broker_url` in the configuration: an app with no broker URL in
    its configuration (it may come from `CELERY_BROKER_URL` in the environment) is not
    judged, though kombu falls back to RabbitMQ. RabbitMQ quorum queues behind a topic
    exchange delay messages in the broker (Celery >= 5.5 native delayed delivery), so
    delays are not judged when `task_default_queue_type` is `"quorum"` with a topic or
    fanout `task_default_exchange_type`.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="amqp://rabbitmq//")

    @app.task(acks_late=True, time_limit=3 * 3600)
    def rebuild_index():
        ...
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj", broker="amqp://rabbitmq//")

    @app.task(acks_late=True, time_limit=1500)
    def rebuild_index():
        ...
    ```
    or raise `consumer_timeout` on the RabbitMQ server (or per queue with the
    `x-consumer-timeout` argument) above the longest delay and run time.

    ## Per framework
    - **Celery** only, with a RabbitMQ broker: `apply_async(countdown=3600)`,
      `eta=timezone.now() + timedelta(hours=2)`, `self.retry(countdown=...)`,
      `@app.task(default_retry_delay=3600)`, `@app.task(acks_late=True, time_limit=7200)`.

    ## Fix safety
    There is no fix: the remedy is a server setting or a different design (beat schedules
    for far-future work, shorter runs).

    ## References
    - [Celery: ETA and countdown](https://docs.celeryq.dev/en/stable/userguide/calling.html#eta-and-countdown)
    - [RabbitMQ: Delivery acknowledgement timeout](https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout)
    - [celery/celery#6760](https://github.com/celery/celery/issues/6760)
    """

    code = "QLT409"
    name = "consumer-timeout-exceeded"
    summary = "Unacknowledged delay or late-acked run time at or above RabbitMQ's `consumer_timeout`"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task(acks_late=True, time_limit=1500)
def rebuild():
    pass
""", note="a late-acked task bounded under 30 minutes"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0",
             broker_transport_options={"visibility_timeout": 86400})

@app.task(acks_late=True, time_limit=7200)
def rebuild():
    pass
""", note="Redis: QLT408 judges it against the visibility timeout"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")
app.conf.task_default_queue_type = "quorum"
app.conf.task_default_exchange_type = "topic"

@app.task
def remind(user_id):
    pass

def schedule(user_id):
    remind.apply_async((user_id,), countdown=7200)
""", note="quorum queues on a topic exchange: RabbitMQ delays the message itself"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task(time_limit=7200)
def rebuild():
    pass
""", note="acknowledged early: the message is acknowledged before the task runs"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(acks_late=True, time_limit=7200)
def rebuild():
    pass
""", note="no broker in the configuration (it may come from the environment)"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="amqp://rabbitmq//")

@app.task(acks_late=True, time_limit=3 * 3600)
def rebuild():
    pass
""", expect=5, message="PRECONDITION_FAILED"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "pyamqp://guest@rabbitmq//"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 3600
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def export(report_id):
    pass

@shared_task
def cleanup():
    pass
""",
        }, expect=[("proj/settings.py", 3)], message="1800 s",
            note="late acks and a limit from Django settings: reported once, on the setting"),
        Invalid("""
from datetime import datetime, timedelta
from celery import Celery

app = Celery("proj", broker="amqps://user@mq.example.com//")

@app.task(bind=True)
def poll(self, job_id):
    raise self.retry(countdown=3600)

def later(job_id):
    poll.apply_async((job_id,), eta=datetime.now() + timedelta(hours=1))
    app.send_task("tasks.poll", (job_id,), countdown=1800)
""", expect=[8, 11, 12], note="a retry countdown, an ETA, send_task at exactly 30 minutes"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for judged in cb.exceeding(ctx.project, _explicit_window, ctx.text):
            hold, window = judged.hold, judged.window
            limit = f"RabbitMQ's {window.option} of {number_text(window.seconds)} s ({window.source})"
            if hold.kind == "running":
                message = (f"Task `{hold.task.name}` is acknowledged late and {hold.what}, at or above {limit}: "
                           "once the timeout passes RabbitMQ closes the worker's channel with PRECONDITION_FAILED "
                           "(recent servers cancel its consumer instead) and delivers the message again")
            else:
                message = (f"{capitalized(hold.what)}, at or above {limit}: the worker holds the message "
                           "unacknowledged until it is due, so RabbitMQ closes its channel with PRECONDITION_FAILED "
                           "(recent servers cancel its consumer instead) and requeues every message it had reserved")
            ctx.report(hold.file, hold.span, message, statement=hold.statement)
