from __future__ import annotations

from qlint.frameworks.celery_calls import (
    broker_kind,
    dramatiq_max_priorities,
    invalid_dramatiq_max_priority,
    priority_declarations,
    priority_uses,
)
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import where


@register
class PriorityIgnored(Rule):
    """## What it does
    Checks for message priorities that the broker ignores: Celery priorities (`priority=`
    on a task or an `apply_async` call, `task_default_priority`) with a RabbitMQ broker and
    no queue declared with `x-max-priority`; a priority above the maximum the queues
    declare; a Dramatiq `RabbitmqBroker(max_priority=...)` outside 1-255.

    ## Why is this bad?
    RabbitMQ orders messages by priority only in queues declared with the `x-max-priority`
    argument; in any other queue the priority is stored and ignored, so the "urgent" task
    waits behind everything already queued. In a priority queue, a message above the
    declared maximum is treated as if it had the maximum, so it does not overtake the
    messages at that level. Celery declares `x-max-priority` only when
    `task_queue_max_priority` is set or a `kombu.Queue` in `task_queues` carries it
    (RabbitMQ cannot add it to an existing queue: the queue has to be deleted and declared
    again). Dramatiq's `RabbitmqBroker` rejects a `max_priority` outside 1-255 with
    `ValueError` when the broker is created.

    ## Example
    ```python
    app = Celery("proj", broker="amqp://rabbitmq//")

    @app.task(priority=9)
    def charge(order_id):
        ...
    ```

    Use instead:
    ```python
    app = Celery("proj", broker="amqp://rabbitmq//")
    app.conf.task_queue_max_priority = 10
    app.conf.task_default_priority = 5

    @app.task(priority=9)
    def charge(order_id):
        ...
    ```

    ## Per framework
    - **Celery**: `@app.task(priority=9)`, `task.apply_async(priority=9)`,
      `task_default_priority` when `broker_url` is `amqp://` / `amqps://` / `pyamqp://` and
      neither `task_queue_max_priority` nor any `kombu.Queue(..., queue_arguments={"x-max-priority":
      10})` / `Queue(..., max_priority=10)` declares priorities; a literal priority above the
      largest declared maximum. Redis brokers emulate priorities differently (0 is the
      highest) and are not judged.
    - **Dramatiq**: `RabbitmqBroker(max_priority=0)` or `max_priority=300` (also
      `DRAMATIQ_BROKER["OPTIONS"]["max_priority"]` in Django settings).

    ## Fix safety
    There is no fix: declaring `x-max-priority` means deleting and re-declaring the queues
    on the broker.

    ## References
    - [Celery: RabbitMQ message priorities](https://docs.celeryq.dev/en/stable/userguide/routing.html#rabbitmq-message-priorities)
    - [Celery: task_queue_max_priority](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-queue-max-priority)
    - [RabbitMQ: Priority queues](https://www.rabbitmq.com/docs/priority)
    - [Dramatiq: RabbitmqBroker](https://dramatiq.io/reference.html#dramatiq.brokers.rabbitmq.RabbitmqBroker)
    """

    code = "QLT608"
    name = "priority-ignored"
    summary = "Message priority that the broker ignores or rejects"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery", "dramatiq")

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj", broker="amqp://guest@rabbitmq//")
app.conf.task_queue_max_priority = 10

@app.task(priority=9)
def charge(order_id):
    pass

def checkout(order_id):
    charge.apply_async((order_id,), priority=10)
""", note="task_queue_max_priority declares priority queues"),
        Valid("""
from celery import Celery
from kombu import Exchange, Queue

app = Celery("proj", broker="pyamqp://rabbitmq//")
app.conf.task_queues = [
    Queue("default", Exchange("default"), routing_key="default", queue_arguments={"x-max-priority": 5}),
    Queue("bulk", max_priority=3),
]

@app.task(priority=4)
def charge(order_id):
    pass
""", note="kombu queues with x-max-priority / max_priority"),
        Valid("""
import os
from celery import Celery

app = Celery("proj", broker="redis://localhost:6379/0")
other = Celery("other", broker=os.environ["BROKER_URL"])

@app.task(priority=9)
def charge(order_id):
    pass

@other.task(priority=9)
def refund(order_id):
    pass
""", note="Redis broker; a broker URL qlint cannot read"),
        Valid("""
from dramatiq.brokers.rabbitmq import RabbitmqBroker

broker = RabbitmqBroker(url="amqp://rabbitmq", max_priority=255)
""", note="Dramatiq: in range"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="amqp://guest@rabbitmq//")

@app.task(priority=9)
def charge(order_id):
    pass

def checkout(order_id):
    charge.apply_async((order_id,), priority=3)
""", expect=[5, 10], message="x-max-priority"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("proj.celeryconfig")
""",
            "proj/celeryconfig.py": """
from kombu import Queue

broker_url = "amqps://user:secret@mq.example.com//"
task_default_priority = 5
task_queues = (Queue("default", queue_arguments={"x-max-priority": 3}),)
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task(priority=3)
def charge(order_id):
    pass

def checkout(order_id):
    charge.apply_async((order_id,), priority=8)
""",
        }, expect=[("proj/celeryconfig.py", 4), ("proj/tasks.py", 8)], message="above",
            note="priorities above the declared maximum"),
        Invalid("""
from dramatiq.brokers.rabbitmq import RabbitmqBroker
import dramatiq

broker = RabbitmqBroker(url="amqp://rabbitmq", max_priority=300)
dramatiq.set_broker(RabbitmqBroker(max_priority=0))
""", expect=[4, 5], message="ValueError", note="Dramatiq: outside 1-255"),
        Invalid({
            "proj/__init__.py": "",
            "proj/settings.py": """
DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
    "OPTIONS": {"url": "amqp://rabbitmq", "max_priority": 1000},
}
""",
        }, expect=[("proj/settings.py", 3)], note="Dramatiq: django_dramatiq settings"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for use in priority_uses(project):
            if use.value == 0 and not isinstance(use.value, bool):
                continue  # the priority every message has anyway
            kinds = [broker_kind(app) for app in use.apps]
            known = [k for k in kinds if k is not None]
            if not known or len(known) != len(kinds) or any(kind != "RabbitMQ" for kind, _ in known):
                continue
            url = known[0][1]
            declared = priority_declarations(project, use.apps)
            if not declared.maxima:
                if declared.unreadable:
                    continue
                ctx.report(use.file, use.keyword.span,
                           f"Priority `{use.keyword.name}={use.value!r}` ({use.where}) is ignored: the broker is "
                           f"RabbitMQ (`broker_url` from {where(url)}) and no queue is declared with "
                           "`x-max-priority`, so RabbitMQ delivers in arrival order; set `task_queue_max_priority` "
                           "(and re-declare the queues) or give the queues `x-max-priority`")
                continue
            if not isinstance(use.value, int) or isinstance(use.value, bool):
                continue
            highest, origin = max(declared.maxima)
            if use.value > highest:
                ctx.report(use.file, use.keyword.span,
                           f"Priority {use.value} ({use.where}) is above the highest `x-max-priority` the queues "
                           f"declare ({highest}, {origin}): RabbitMQ treats it as {highest}, so it does not "
                           f"overtake messages at priority {highest}")
        for facts, keyword, value in dramatiq_max_priorities(project):
            reason = invalid_dramatiq_max_priority(value)
            if reason is not None:
                ctx.report(facts, keyword.span, f"`max_priority={value!r}`: {reason}")
