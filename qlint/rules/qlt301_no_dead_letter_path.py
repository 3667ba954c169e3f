from __future__ import annotations

from typing import ClassVar

from qlint.frameworks.celery_failures import app_tasks, failure_retention, failure_sinks
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.prefilter import Seed
from qlint.lint.registry import Invalid, Rule, Valid, register


@register
class NoDeadLetterPath(Rule):
    """## What it does
    Checks for a Celery app whose project has tasks but no place where a task's final
    failure goes: no `on_failure` method on a task class or base class, no `task_failure`
    (or `task_internal_error`) signal receiver, no `link_error=` errback, no queue declared
    with an `x-dead-letter-exchange`, and no error tracker hooked into Celery. It is
    reported once per app, on its `Celery(...)` call.

    ## Why is this bad?
    Celery has no dead-letter queue of its own. When a task fails for the last time, the
    worker acks its message (the default) and writes a FAILURE result to the result
    backend, where it expires after `result_expires` (1 day by default); without a result
    backend, a line in the worker's log is all that is left. Nobody is told, the arguments
    of the failed call are gone, and there is nothing to replay. Any of the hooks above
    gives failures somewhere to go: an alert, a table of failed jobs, a dead-letter queue
    to inspect and re-publish from.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj", broker="amqp://", backend="redis://")

    @app.task(autoretry_for=(ConnectionError,), max_retries=5)
    def charge(order_id):
        ...
    ```

    Use instead:
    ```python
    from celery import Celery
    from celery.signals import task_failure

    app = Celery("proj", broker="amqp://", backend="redis://")

    @task_failure.connect
    def record_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, **extra):
        FailedTask.objects.create(name=sender.name, task_id=task_id, error=repr(exception),
                                  args=args, kwargs=kwargs)

    @app.task(autoretry_for=(ConnectionError,), max_retries=5)
    def charge(order_id):
        ...
    ```

    ## Per framework
    - **Celery** only. What counts as a failure sink anywhere in the project:
      `class Base(Task): def on_failure(self, exc, task_id, args, kwargs, einfo)` (or
      `on_failure=` on the decorator, or in `task_annotations`);
      `@task_failure.connect` / `task_failure.connect(handler)`; `link_error=` on a call,
      or a signature's `link_error`; `Queue(..., queue_arguments={"x-dead-letter-exchange": "dlx"})`;
      `sentry_sdk.init(...)` (its Celery integration turns itself on when Celery is
      installed, unless `default_integrations=False`, `auto_enabling_integrations=False` or
      `disabled_integrations=[CeleryIntegration()]` turn it off), raven's, Bugsnag's,
      Elastic APM's and Honeybadger's Celery hooks, and an import of `newrelic` or
      `ddtrace` (their agents, run as `newrelic-admin run-program` or `ddtrace-run`, record
      the exceptions of the Celery tasks they trace). Rollbar has no Celery hook: its
      documented setup is a `task_failure` receiver.
      RQ keeps failed jobs in its `FailedJobRegistry` and Dramatiq dead-letters messages
      by itself, so neither is checked.

    Not reported when the app's configuration is only partly readable
    (`config_from_object` of a module outside the project, settings assembled at run
    time, an app built by a factory): `task_queues` or `task_annotations` there may hold
    a dead-letter queue or an `on_failure` handler. Not reported either when a task uses a
    base class from another package, which may define `on_failure`.

    ## Fix safety
    There is no fix: where failures should go is the project's decision.

    ## References
    - [Celery: Handlers (`on_failure`)](https://docs.celeryq.dev/en/stable/userguide/tasks.html#handlers)
    - [Celery: `task_failure` signal](https://docs.celeryq.dev/en/stable/userguide/signals.html#task-failure)
    - [Celery: Reject and dead-letter exchanges](https://docs.celeryq.dev/en/stable/userguide/tasks.html#reject)
    - [Celery: `result_expires`](https://docs.celeryq.dev/en/stable/userguide/configuration.html#result-expires)
    - [Sentry: Celery integration](https://docs.sentry.io/platforms/python/integrations/celery/)
    - [RabbitMQ: Dead letter exchanges](https://www.rabbitmq.com/docs/dlx)
    """

    code = "QLT301"
    name = "no-dead-letter-path"
    summary = "A Celery project has tasks but nowhere for their final failures to go"
    severity = Severity.INFO
    fix_availability = "None"
    frameworks = ("celery",)
    # Files that hold nothing else of Celery's may still hook failures: parse them. (A task
    # base class spells ``Task`` and a signal receiver ``task_failure``: seeds already.)
    prefilter_seed: ClassVar[Seed] = Seed(
        rb"sentry_sdk|\braven\b|bugsnag|elasticapm|honeybadger|newrelic|ddtrace|x-dead-letter|link_error",
        (b"sentry_sdk", b"raven", b"bugsnag", b"elasticapm", b"honeybadger", b"newrelic", b"ddtrace",
         b"x-dead-letter", b"link_error"))

    VALID = [
        Valid("""
from celery import Celery, Task

app = Celery("proj", backend="redis://")

class AlertingTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        alert(self.name, exc)

@app.task(base=AlertingTask)
def charge(order_id):
    pass
""", note="an on_failure override on the tasks' base class"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", backend="redis://")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def charge(order_id):
    pass
""",
            "proj/signals.py": """
from celery import signals

@signals.task_failure.connect
def record(sender=None, task_id=None, exception=None, **kwargs):
    pass
""",
        }, note="a task_failure receiver in a module of its own"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
import sentry_sdk

CELERY_RESULT_BACKEND = "django-db"
sentry_sdk.init(dsn="https://key@sentry.example/1", traces_sample_rate=0.1)
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def charge(order_id):
    pass
""",
        }, note="sentry_sdk.init() enables its Celery integration by itself"),
        Valid("""
from celery import Celery
from kombu import Exchange, Queue

app = Celery("proj")
app.conf.task_queues = [
    Queue("default", Exchange("default"), routing_key="default",
          queue_arguments={"x-dead-letter-exchange": "dlx"}),
]

@app.task
def charge(order_id):
    pass
""", note="a queue with a dead-letter exchange"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task
def charge(order_id):
    pass

@app.task
def report(request, exc, traceback):
    pass

def checkout(order_id):
    charge.apply_async((order_id,), link_error=report.s())
""", note="an errback"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.config_from_object("shared_config.celery")

@app.task
def charge(order_id):
    pass
""", note="configuration from outside the project: task_queues or task_annotations may be there"),
        Valid("""
from bugsnag.celery import connect_failure_handler
from celery import Celery

app = Celery("proj")
connect_failure_handler()

@app.task
def charge(order_id):
    pass
""", note="Bugsnag's failure handler"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj", backend="redis://")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def charge(order_id):
    pass
""",
            "proj/metrics.py": """
import newrelic.agent

def record(name):
    newrelic.agent.record_custom_event(name, {})
""",
        }, note="the New Relic agent (workers run under newrelic-admin)"),
        Valid("""
from celery import Celery

app = Celery("proj")
""", note="an app with no tasks"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj", broker="amqp://", backend="redis://")

@app.task(autoretry_for=(ConnectionError,), max_retries=5)
def charge(order_id):
    pass
""", expect=3, message="1 day (`result_expires`, Celery's default)"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery(
    "proj",
)
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
import rollbar
import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration

CELERY_RESULT_BACKEND = "redis://"
CELERY_RESULT_EXPIRES = 3600
rollbar.init("token", "production")
sentry_sdk.init(dsn="https://key@sentry.example/1", integrations=[DjangoIntegration()],
                default_integrations=False)
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def charge(order_id):
    pass
""",
        }, expect=[("proj/celery.py", 6)], message="1 hour",
            note="Sentry with default integrations off and no CeleryIntegration; Rollbar has no Celery hook"),
        Invalid("""
from celery import Celery
from kombu import Queue

app = Celery("proj")
app.conf.task_queues = [Queue("default", queue_arguments={"x-message-ttl": 60000})]

class Export(app.Task):
    def run(self, path):
        pass

    def on_success(self, retval, task_id, args, kwargs):
        pass
""", expect=4, message="no result backend",
            note="a queue argument that is not a dead-letter exchange; on_success is not a failure hook"),
        Invalid({
            "a/__init__.py": "",
            "a/celery.py": """
from celery import Celery

app = Celery("a", backend="redis://")
app.conf.task_ignore_result = True
""",
            "a/tasks.py": """
from a.celery import app

@app.task
def charge(order_id):
    pass

def on_failure(exc):
    pass
""",
        }, expect=[("a/celery.py", 3)], message="task_ignore_result",
            note="a function named on_failure that is no task method"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        sinks = None
        for app in project.apps:
            tasks = app_tasks(project, app)
            if not tasks or not app.config_complete:
                continue
            if sinks is None:
                sinks = next(iter(failure_sinks(project)), False)
            if sinks:
                return
            # The qualified name, as every other app-level finding spells the app.
            message = (f"Celery app `{app.qualified}` has tasks but no failure sink (`on_failure`, a `task_failure` "
                       "receiver, `link_error`, a dead-letter queue or an error tracker's Celery integration): "
                       f"when a task fails for good its message is dropped and {failure_retention(app)}")
            ctx.report(app.file, app.call.span, message, statement=app.call.span)
