from __future__ import annotations

from qlint.frameworks import celery_brokers as cb
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import where


@register
class BrokerPoolDisabled(Rule):
    """## What it does
    Checks for `broker_pool_limit` set to `None` or `0` in a Celery app's configuration.

    ## Why is this bad?
    `broker_pool_limit` bounds Celery's pool of broker connections (10 by default). `None`
    or `0` disables the pool: "connections will be established and closed for every use".
    Every `.delay()` from a web request then pays a TCP (and TLS, and AMQP or Redis
    handshake) round trip, and a busy producer churns through sockets and broker
    connection slots.

    ## Example
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.broker_pool_limit = None
    ```

    Use instead:
    ```python
    from celery import Celery

    app = Celery("proj")
    app.conf.broker_pool_limit = 10
    ```
    (or leave it unset; raise it for gevent/eventlet workers with many greenlets).

    ## Per framework
    - **Celery** only: `broker_pool_limit` (Django: `CELERY_BROKER_POOL_LIMIT`, old name
      `BROKER_POOL_LIMIT`) of `None` or `0`, wherever the app's configuration writes it.

    ## Fix safety
    There is no fix: the right pool size depends on the worker's concurrency and the
    broker's connection limit.

    ## References
    - [Celery: broker_pool_limit](https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-pool-limit)
    """

    code = "QLT407"
    name = "broker-pool-disabled"
    summary = "`broker_pool_limit` of `None` or `0` disables the broker connection pool"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery",)

    VALID = [
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = 1
""", note="a small pool is still a pool"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = None
app.conf.broker_pool_limit = 20
""", note="the later value wins"),
        Valid("""
import os
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = os.environ.get("BROKER_POOL_LIMIT")
""", note="a value from the environment with no default"),
        Valid("""
from celery import Celery

POOL_LIMIT = None

class Config:
    broker_pool_limit = 10
""", note="not a Celery app's configuration"),
    ]
    INVALID = [
        Invalid("""
from celery import Celery

app = Celery("proj")
app.conf.broker_pool_limit = None
""", expect=4, message="established and closed"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings")
""",
            "proj/settings.py": """
BROKER_URL = "amqp://rabbitmq//"
BROKER_POOL_LIMIT = 0
""",
        }, expect=[("proj/settings.py", 2)], note="the old setting name in Django settings read without a namespace"),
        Invalid("""
from celery import Celery

app = Celery("proj", broker_pool_limit=0)
""", expect=3),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/settings.py": """
CELERY_BROKER_URL = "amqp://rabbitmq//"
BROKER_POOL_LIMIT = None
""",
        }, expect=[("proj/settings.py", 2)], note="an old name read through the CELERY namespace"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for app in ctx.project.apps:
            setting = cb.pool_limit(app)
            value = setting.value
            if setting.keyword is None or setting.file is None:
                continue
            if value is None or isinstance(value, int) and not isinstance(value, bool) and value == 0:
                shown = "None" if value is None else "0"
                ctx.report(setting.file, setting.keyword.span,
                           f"`{cb.POOL_LIMIT_SETTING}` of {shown} ({where(setting)}) disables the broker connection "
                           "pool: a connection is established and closed for every message sent, and each "
                           "`.delay()` pays a broker handshake")
