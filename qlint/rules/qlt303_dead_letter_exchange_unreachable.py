from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qlint.frameworks.celery_failures import (
    QueueDecl,
    acks_late,
    acks_on_failure,
    app_tasks,
    project_version,
    queue_declarations,
    rejections,
    supports,
    task_queues,
)
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import UNKNOWN, App, Project, Resolved, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import task_functions, where


@dataclass
class _Route:
    """How one task's failures leave its queue."""

    task: Task
    queues: set[str] | None  # None: any queue
    reaches: Any  # True (a failure is rejected without requeue), False, UNKNOWN
    acks: Resolved  # acks_late
    on_failure: Resolved | None  # acks_on_failure, for late-acked tasks


def _route(project: Project, task: Task, version) -> _Route:
    queues = task_queues(project, task)
    acks = acks_late(task)
    if acks.value is UNKNOWN:
        return _Route(task, queues, UNKNOWN, acks, None)
    if acks.value is not True:
        return _Route(task, queues, False, acks, None)
    rejects = [r.requeue for r in rejections(project, task, task_functions(project, task))]
    if False in rejects:
        return _Route(task, queues, True, acks, None)
    on_failure = acks_on_failure(task, version)
    if on_failure.value is UNKNOWN or UNKNOWN in rejects:
        return _Route(task, queues, UNKNOWN, acks, on_failure)
    return _Route(task, queues, on_failure.value is False, acks, on_failure)


@register
class DeadLetterExchangeUnreachable(Rule):
    """## What it does
    Checks for a queue in `task_queues` declared with an `x-dead-letter-exchange` while
    every Celery task sent to that queue acknowledges its failures: the task is not
    `acks_late`, or it is but acks on failure are left on (`task_acks_on_failure_or_timeout`,
    true by default; `task_acks_on_failure` in Celery 5.7+) and it never raises
    `Reject(requeue=False)`.

    ## Why is this bad?
    RabbitMQ moves a message to the dead-letter exchange when a consumer *rejects* it without
    requeueing (or when it expires or overflows the queue), never when it is acked. Celery acks a task's message before running it
    unless the task is `acks_late`, and even a late-acked task that fails is acked, not
    rejected, while acks on failure are on. Either way the dead-letter exchange never
    receives anything: the queue looks protected, the failed messages are gone, and the
    dead-letter queue stays empty until someone needs it.

    ## Example
    ```python
    from kombu import Exchange, Queue

    task_queues = [
        Queue("default", Exchange("default"), routing_key="default",
              queue_arguments={"x-dead-letter-exchange": "dlx"}),
    ]
    task_acks_late = True
    ```

    Use instead:
    ```python
    from kombu import Exchange, Queue

    task_queues = [
        Queue("default", Exchange("default"), routing_key="default",
              queue_arguments={"x-dead-letter-exchange": "dlx"}),
    ]
    task_acks_late = True
    task_acks_on_failure_or_timeout = False  # Celery 5.7+: task_acks_on_failure = False
    ```

    ## Per framework
    - **Celery** only: a `kombu.Queue(..., queue_arguments={"x-dead-letter-exchange": ...})`
      (or the mapping form of `task_queues`) in an app's `task_queues`, judged against the
      tasks that can be sent to it: `apply_async(queue=...)`, the task's `queue`,
      `task_routes` and `task_default_queue`, in Celery's order. Dramatiq declares and
      uses its own dead-letter queues; the other frameworks do not use the broker's.

    Not reported when a task sent to the queue has options qlint cannot read, or when
    qlint cannot tell where a task is routed (a router function, `**options`): such a task
    may well reject its failures.

    ## Fix safety
    There is no fix. Turning acks on failure off changes what happens to every failing
    task (a rejected message goes to the dead-letter exchange, or is dropped when the queue
    has none) and needs `acks_late`, which makes tasks run again after a worker crash.

    ## References
    - [Celery: `task_acks_on_failure_or_timeout`](https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-on-failure-or-timeout)
    - [Celery: Reject](https://docs.celeryq.dev/en/stable/userguide/tasks.html#reject)
    - [Celery: Routing tasks](https://docs.celeryq.dev/en/stable/userguide/routing.html)
    - [RabbitMQ: Dead letter exchanges](https://www.rabbitmq.com/docs/dlx)
    """

    code = "QLT303"
    name = "dead-letter-exchange-unreachable"
    summary = "A queue's dead-letter exchange never receives a failed Celery task"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery
from kombu import Exchange, Queue

app = Celery("proj")
app.conf.task_queues = [
    Queue("default", Exchange("default"), routing_key="default",
          queue_arguments={"x-dead-letter-exchange": "dlx"}),
]
app.conf.task_default_queue = "default"
app.conf.task_acks_late = True
app.conf.task_acks_on_failure_or_timeout = False

@app.task
def charge(order_id):
    pass
""", note="acks_late with acks on failure off: failures are rejected into the DLX"),
        Valid("""
from celery import Celery
from celery.exceptions import Reject
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [Queue("celery", queue_arguments={"x-dead-letter-exchange": "dlx"})]

@app.task(acks_late=True)
def charge(order_id):
    try:
        pass
    except ValueError as exc:
        raise Reject(exc, requeue=False)
""", note="the task rejects its failures itself"),
        Valid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [
    Queue("celery"),
    Queue("payments", queue_arguments={"x-dead-letter-exchange": "dlx"}),
]
app.conf.task_routes = {"tasks.charge": {"queue": "payments"}}

@app.task(acks_late=True, acks_on_failure=False)
def charge(order_id):
    pass

@app.task
def cleanup():
    pass
""", note="the one task routed to the dead-lettered queue rejects its failures (Celery 5.7 acks_on_failure)"),
        Valid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [Queue("celery", queue_arguments={"x-dead-letter-exchange": "dlx"})]
app.conf.task_routes = ("proj.routing.route_task",)

@app.task(acks_late=True, acks_on_failure_or_timeout=False, queue="celery")
def charge(order_id):
    pass

@app.task
def cleanup():
    pass
""", note="a router qlint cannot read sends cleanup somewhere; the task pinned to the queue rejects its failures"),
        Valid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.config_from_object("ops.celeryconfig")
app.conf.task_queues = [Queue("celery", queue_arguments={"x-dead-letter-exchange": "dlx"})]

@app.task
def charge(order_id):
    pass
""", note="configuration outside the project may set task_acks_late"),
        Valid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [Queue("celery", queue_arguments={"x-message-ttl": 60000})]

@app.task
def charge(order_id):
    pass
""", note="no dead-letter exchange"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery
from kombu import Exchange, Queue

app = Celery("proj")
app.conf.task_queues = [
    Queue("default", Exchange("default"), routing_key="default",
          queue_arguments={"x-dead-letter-exchange": "dlx"}),
]
app.conf.task_default_queue = "default"

@app.task
def charge(order_id):
    pass
""", expect=6, message="not `acks_late`"),
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
from kombu import Queue

DLX_ARGUMENTS = {"x-dead-letter-exchange": "dead", "x-dead-letter-routing-key": "dead"}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_QUEUES = (
    Queue("celery", queue_arguments=DLX_ARGUMENTS),
)
""",
            "proj/tasks.py": """
from celery import shared_task
from celery.exceptions import Reject

@shared_task
def charge(order_id):
    raise Reject("try again", requeue=True)
""",
        }, expect=[("proj/settings.py", 6)], message="acks_on_failure_or_timeout` is true, Celery's default",
            note="late-acked, but acks on failure are on by default and the task only requeues"),
        Invalid({
            "requirements.txt": "celery[redis]==5.6.2\n",
            "tasks.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_queues = {"celery": {"queue_arguments": {"x-dead-letter-exchange": "dlx"}}}
app.conf.task_acks_late = True
app.conf.task_acks_on_failure = False

@app.task
def charge(order_id):
    pass
""",
        }, expect=[("tasks.py", 4)], message="5.6.2",
            note="task_acks_on_failure is new in Celery 5.7: the pinned 5.6 ignores it"),
        Invalid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [
    Queue("celery"),
    Queue("payments", queue_arguments={"x-dead-letter-exchange": "dlx"}),
]

@app.task(acks_late=True)
def charge(order_id):
    pass

@app.task(queue="payments")
def refund(order_id):
    pass

def checkout(order_id):
    charge.apply_async((order_id,), queue="payments")
""", expect=7, message="of the 2 tasks",
            note="one task sent there is not late-acked, the other acks its failures"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for app in project.apps:
            setting = app.settings.get("task_queues")
            if setting is None:
                continue
            declared = [d for d in queue_declarations(project, setting)[0] if d.dead_letter is not None]
            if not declared:
                continue
            version = project_version(app.file)
            routes = [_route(project, task, version) for task in app_tasks(project, app)]
            for decl in declared:
                if not isinstance(decl.name, str):
                    continue
                here = [r for r in routes if r.queues is None or decl.name in r.queues]
                if not here or any(r.reaches is not False for r in here):
                    continue
                ctx.report(decl.file, decl.span, self._message(app, decl, here),
                           statement=decl.statement or decl.span)

    @staticmethod
    def _message(app: App, decl: QueueDecl, routes: list[_Route]) -> str:
        exchange = f" `{decl.dead_letter}`" if isinstance(decl.dead_letter, str) else ""
        head = f"queue `{decl.name}` has a dead-letter exchange{exchange}, but no failed task can reach it: "
        early = [r for r in routes if r.acks.value is not True]
        acked = [r for r in routes if r.acks.value is True]
        setting = "`task_acks_on_failure`" if supports(app.file, (5, 7), "`task_acks_on_failure`").ok else \
            "`task_acks_on_failure_or_timeout`"
        why_early = "is not `acks_late`, so its message is acked before it runs"
        if acked:
            first = acked[0]
            source = "Celery's default" if first.on_failure is None or first.on_failure.source == "default" else \
                where(first.on_failure)
            ignored = ""
            version = project_version(app.file)
            if any(_sets_new_option(app, r.task) for r in acked) and version is not None and version < (5, 7):
                # ``acks_on_failure`` is written, but the project's Celery predates it.
                ignored = f"; `acks_on_failure` is ignored: {supports(app.file, (5, 7), 'such option').note}"
            option = first.on_failure.keyword.name if first.on_failure is not None and \
                first.on_failure.keyword is not None else "acks_on_failure_or_timeout"
            why_acked = (f"acks its failures instead of rejecting them (`{option}` is true, "
                         f"{source}) and raises no `Reject(requeue=False)`{ignored}; set {setting} to False")
        if len(routes) == 1:
            task = routes[0].task
            return head + f"task `{task.name}`, the only one sent there, " + (why_early if early else why_acked)
        if not acked:
            return head + f"none of the {len(routes)} tasks sent there is `acks_late`, so each message is acked " \
                          "before its task runs"
        if not early:
            return head + f"the {len(routes)} tasks sent there are late-acked, but each " + why_acked
        return head + (f"of the {len(routes)} tasks sent there, {len(early)} "
                       f"{'is' if len(early) == 1 else 'are'} not `acks_late` (`{early[0].task.name}`) and "
                       f"{len(acked)} {'acks its' if len(acked) == 1 else 'ack their'} failures "
                       f"(`{acked[0].task.name}`: acks on failure left on); late-ack them and set {setting} to False")


def _sets_new_option(app: App, task: Task) -> bool:
    """The task or its app writes ``acks_on_failure`` (Celery 5.7+)."""
    own = task.options.get("acks_on_failure")
    return own is not None and own.keyword is not None or app.settings.get("task_acks_on_failure") is not None
