from __future__ import annotations

import re
from typing import ClassVar

from qlint.fixers.calls import replace_span
from qlint.frameworks import validation
from qlint.frameworks._shapes import all_calls, chain_of
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import CallFact, FileFacts, Value
from qlint.lint.prefilter import Seed
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import import_edits


@register
class BrokerCredentialsInCode(Rule):
    """## What it does
    Checks Python code for broker and result-backend URL literals that carry a password
    (`scheme://user:password@host`), and for literal passwords given to broker connection
    classes:

    - settings and variables named for a broker or backend (`CELERY_BROKER_URL`,
      `BROKER_URL`, `CELERY_RESULT_BACKEND`, `broker_url`, `REDIS_URL`, `RQ_QUEUES`, `HUEY`,
      `DRAMATIQ_BROKER`, ...), at module level or in a settings class, including the default
      of `os.environ.get(...)`/`env(...)`;
    - `app.conf.broker_url = ...`, `app.conf.update(...)`, `Celery(broker=..., backend=...)`;
    - connection constructors of every framework: `Redis.from_url(...)`,
      `redis.Redis(password=...)`, `RedisBroker(url=...)`, `RabbitmqBroker(url=...)`,
      `ListQueueBroker(...)`, `RedisHuey(url=...)`, arq `RedisSettings(password=...)` or
      `RedisSettings.from_dsn(...)`, kombu `Connection(...)`.

    URLs of broker schemes (`amqp`, `redis`, `rediss`, `sentinel`, `sqs`, ...) count
    wherever they are recorded; database URLs (`db+postgresql://`, `mongodb://`, ...) only
    where a backend is named. Placeholders are not reported: `${VAR}`, `%(x)s`, `{x}`,
    `<password>`, `***`, a password equal to the user name (`guest:guest`,
    `saleor:saleor`, a local development default), or a word such as `password`,
    `changeme`, `secret`.

    ## Why is this bad?
    A credential committed to the repository is readable by everyone with access to it, to
    its forks, its CI logs and every image built from it, and it outlives its rotation in
    the git history (CWE-798). The same URL then gets copied into every worker, beat and
    monitoring deployment. Whoever holds the broker's password can publish messages that
    workers run as tasks, read every task's arguments, or empty the queues. Celery masks the
    password in its startup banner, which hides the problem rather than fixing it.

    ## Example
    ```python
    CELERY_BROKER_URL = "amqp://orders:9f3kq2x@rabbitmq:5672/orders"
    ```

    Use instead:
    ```python
    import os

    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    ```

    ## Per framework
    - **Celery**: `broker_url`/`result_backend` wherever they are written, old and Django
      names: `app.conf.broker_url = "redis://:s3cret@cache:6379/0"`.
    - **RQ**: `Redis.from_url("redis://:s3cret@cache:6379")` passed to `Queue(connection=...)`,
      `RQ_QUEUES = {"default": {"URL": ...}}`.
    - **Dramatiq**: `RedisBroker(url="redis://:s3cret@cache")`,
      `RabbitmqBroker(url="amqp://user:s3cret@mq")`.
    - **Huey**: `RedisHuey("app", url="redis://:s3cret@cache")`, `RedisHuey(password="s3cret")`.
    - **Taskiq**: `ListQueueBroker("redis://:s3cret@cache")`, `AioPikaBroker(url=...)`.
    - **arq**: `RedisSettings(password="s3cret")`, `RedisSettings.from_dsn("redis://:s3cret@cache")`.

    ## Known problems
    Literals in test files are reported like any other: ignore the rule there with
    `per-file-ignores` (`"tests/**" = ["QLT503"]`) when they are throwaway values.

    ## Fix safety
    The fix replaces a literal assigned to a setting, or passed directly as a keyword or
    URL argument, with `os.environ["<NAME>"]`, the name taken from the setting
    (`CELERY_BROKER_URL`, `CELERY_RESULT_BACKEND`, the assigned name, `REDIS_URL`,
    `REDIS_PASSWORD`), adding `import os` when the module lacks it, in the standard-library
    section of its imports (as isort and ruff's `I` rules place it). It is unsafe: the
    environment variable must then be set wherever the code runs (workers, beat, web,
    tests), or importing the module raises `KeyError`. Literals inside containers or used as
    an environment variable's default get no fix.

    ## References
    - [Celery: Broker settings](https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-settings)
    - [Django: Deployment checklist, SECRET_KEY and secrets](https://docs.djangoproject.com/en/stable/howto/deployment/checklist/)
    - [CWE-798: Use of Hard-coded Credentials](https://cwe.mitre.org/data/definitions/798.html)
    - [The Twelve-Factor App: Config](https://12factor.net/config)
    """

    code = "QLT503"
    name = "broker-credentials-in-code"
    summary = "Broker or result-backend URL with a password written in code"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")
    # Credential URLs and password literals can sit in modules that mention no framework.
    prefilter_seed: ClassVar[Seed] = Seed(
        rb"://[^\s'\"/@]*:[^\s'\"@]+@|password\s*=\s*[rRuU]?['\"]", (b"://", b"password"), re.IGNORECASE)

    VALID = [
        Valid("""
import os

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "redis://redis:6379/1")
""", note="from the environment; a default without a password"),
        Valid("""
CELERY_BROKER_URL = "amqp://guest:guest@localhost:5672//"
BROKER_URL = "amqp://${RABBITMQ_USER}:${RABBITMQ_PASS}@rabbitmq:5672//"
REDIS_URL = "redis://:password@localhost:6379/0"
RESULT_URL = "redis://:%(redis_password)s@redis:6379/0"
""", note="placeholders and development defaults"),
        Valid("""
DATABASE_URL = "postgres://shop:9f3kq2x@db:5432/shop"
DOCS_URL = "https://user:token@example.com/docs"
""", note="a database and an https URL, not a broker or backend"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0", backend="redis://:@redis:6379/1")
""", note="no password, an empty password"),
        Valid("""
from arq.connections import RedisSettings

settings = RedisSettings(host="redis", password=os.environ["REDIS_PASSWORD"])
huey_password = RedisSettings(password="")
""", note="password from the environment or empty"),
    ]
    INVALID = [
        Invalid("""
import os

CELERY_BROKER_URL = "amqp://orders:9f3kq2x@rabbitmq:5672/orders"
CELERY_RESULT_BACKEND = "db+postgresql://orders:9f3kq2x@db/orders"
""", expect=[3, 4], fixed="""
import os

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ["CELERY_RESULT_BACKEND"]
""", message="password"),
        Invalid('''
"""Celery application."""
from __future__ import annotations

from celery import Celery

app = Celery("proj", broker="redis://:s3cr3t-Tok@redis-master:6379/0")
app.conf.result_backend = "redis://:s3cr3t-Tok@redis-master:6379/1"
''', expect=[6, 7], fixed='''
"""Celery application."""
from __future__ import annotations

import os

from celery import Celery

app = Celery("proj", broker=os.environ["CELERY_BROKER_URL"])
app.conf.result_backend = os.environ["CELERY_RESULT_BACKEND"]
''', note="import os in the standard-library section, after the __future__ import"),
        Invalid("""
import environ

env = environ.Env()

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="amqp://app:Zq81xkP@mq.example.com:5671/app")
RQ_QUEUES = {"default": {"URL": "redis://:Zq81xkP@cache:6379/0", "DEFAULT_TIMEOUT": 360}}
""", expect=[5, 6], message="the repository", note="an environment default, a nested setting: no fix"),
        Invalid("""
from redis import Redis
from rq import Queue

conn = Redis.from_url("redis://:Zq81xkP@cache:6379/0")
queue = Queue(connection=conn)
""", expect=4, fixed="""
import os

from redis import Redis
from rq import Queue

conn = Redis.from_url(os.environ["REDIS_URL"])
queue = Queue(connection=conn)
""", note="RQ connection"),
        Invalid("""
import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

broker = RabbitmqBroker(url="amqps://shop:Zq81xkP@b-1234.mq.eu-west-1.amazonaws.com:5671")
dramatiq.set_broker(broker)
""", expect=4, fixed="""
import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

broker = RabbitmqBroker(url=os.environ["BROKER_URL"])
dramatiq.set_broker(broker)
""", note="Dramatiq broker"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app", url="rediss://default:Zq81xkP@cache.example.com:6380/0")
""", expect=3, fixed="""
import os

from huey import RedisHuey

huey = RedisHuey("app", url=os.environ["REDIS_URL"])
""", note="Huey instance"),
        Invalid("""
from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://:Zq81xkP@cache:6379/0")
""", expect=3, fixed="""
import os

from taskiq_redis import ListQueueBroker

broker = ListQueueBroker(os.environ["REDIS_URL"])
""", note="Taskiq broker"),
        Invalid("""
from arq.connections import RedisSettings

class WorkerSettings:
    functions = []
    redis_settings = RedisSettings(host="cache", password="Zq81xkP")
""", expect=5, fixed="""
import os

from arq.connections import RedisSettings

class WorkerSettings:
    functions = []
    redis_settings = RedisSettings(host="cache", password=os.environ["REDIS_PASSWORD"])
""", message="password", note="arq: a literal password"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for facts in ctx.project.parsed_files():
            self._file(ctx, facts)

    def _file(self, ctx: RuleContext, facts: FileFacts) -> None:
        # Calls first: a literal passed straight to a connection call gets a fix there.
        seen: set[tuple[int, int]] = set()
        class_calls = [kw.value.call for cls in facts.classes for kw in cls.attrs.values()
                       if kw.value.kind == "call" and kw.value.call is not None]
        for top in [*all_calls(facts), *class_calls]:
            for call in chain_of(top):
                key = (call.span.start, call.span.end)
                if key not in seen:
                    seen.add(key)
                    self._call(ctx, facts, call)
        for name, kw in facts.assigns.items():
            self._named(ctx, facts, name, kw.value)
        for cls in facts.classes:
            for name, kw in cls.attrs.items():
                self._named(ctx, facts, name, kw.value)
        for aa in facts.attr_assigns:
            self._named(ctx, facts, aa.key, aa.keyword.value)

    def _named(self, ctx: RuleContext, facts: FileFacts, name: str, value: Value) -> None:
        """A setting or variable: its literal URLs, when the name says broker or backend."""
        if not validation.broker_name(name):
            return
        database_ok = bool(re.search(r"BACKEND|RESULT", name, re.IGNORECASE))
        for literal in validation.string_values(value):
            self._url(ctx, facts, literal, name if literal is value else None, database_ok)

    def _call(self, ctx: RuleContext, facts: FileFacts, call: CallFact) -> None:
        if call.method == "update" and call.receiver.endswith("conf"):
            for name, kw in call.kwargs.items():
                self._named(ctx, facts, name, kw.value)
            for arg in call.args:
                for key, value in arg.items if arg.kind == "dict" else ():
                    name = ctx.project.fold(key).value
                    if isinstance(name, str):
                        self._named(ctx, facts, name, value)
            return
        if call.method in ("setdefault", "get", "getenv") or call.dotted in ("env", "config"):
            names = [ctx.project.fold(a).value for a in call.args[:1]]
            if names and isinstance(names[0], str) and validation.broker_name(names[0]):
                for arg in [*call.args[1:], *(kw.value for kw in call.kwargs.values())]:
                    for literal in validation.string_values(arg):
                        self._url(ctx, facts, literal, None, True)
            return
        opener = validation.connection_call(ctx.project, call)
        if opener is None:
            return
        database_ok = validation.opens_backend(opener)
        for index, arg in enumerate(call.args):
            for literal in validation.string_values(arg):
                self._url(ctx, facts, literal, "" if literal is arg and index == 0 else None, database_ok)
        for name, kw in call.kwargs.items():
            if name in validation.PASSWORD_KEYWORDS:
                literal = kw.value
                if literal.kind == "const" and isinstance(literal.value, str) and \
                        validation.literal_password(literal.value):
                    self._report(ctx, facts, literal, f"`{opener}(password=...)` is given a literal password",
                                 validation.env_name(name))
                continue
            for literal in validation.string_values(kw.value):
                self._url(ctx, facts, literal, name if literal is kw.value else None,
                          database_ok or name in ("backend", "result_backend"))

    def _url(self, ctx: RuleContext, facts: FileFacts, literal: Value, setting: str | None,
             database_ok: bool) -> None:
        found = validation.credential(literal.value, database_ok=database_ok)
        if found is None:
            return
        what = f"URL `{found.scheme}://{found.user}:***@{found.host}` carries a password"
        env = validation.env_name(setting, found.scheme) if setting is not None else None
        self._report(ctx, facts, literal, what, env)

    def _report(self, ctx: RuleContext, facts: FileFacts, literal: Value, what: str, env: str | None) -> None:
        fix = None
        if env:
            fix = self._fix(ctx, facts, literal, env)
        message = (f"{what} in the code: everyone with the repository, its history or an image built from it "
                   "can publish tasks to the broker and read their arguments; read it from the environment or a "
                   "secret store")
        ctx.report(facts, literal.span, message, fix=fix)

    def _fix(self, ctx: RuleContext, facts: FileFacts, literal: Value, env: str):
        imported = facts.imports.get("os")
        if imported not in (None, "os") or "os" in facts.assigns:
            return None
        src = ctx.source(facts)
        edits = [replace_span(literal, f'os.environ["{env}"]')]
        if imported is None:
            added = import_edits(ctx, src, "os")
            if added is None:
                return None
            edits[:0] = added
        return ctx.fix(facts, f'Read it from `os.environ["{env}"]`', edits)
