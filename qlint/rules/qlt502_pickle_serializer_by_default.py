from __future__ import annotations

import importlib
import re

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FunctionFact
from qlint.lint.model import UNKNOWN, Site
from qlint.lint.registry import Invalid, Rule, Valid, register

# Attributes of a queue or connection that touch no job: a construction bound to a local name
# and used only through these (a health check's ``ping``, a monitor's ``count``) pickles nothing.
NO_JOB_ATTRIBUTES = frozenset({"ping", "close", "aclose", "disconnect", "info", "count", "is_empty", "name",
                               "connection", "job_ids", "key", "echo", "dbsize"})


def _what(site: Site) -> str:
    """How the message names the construction: ``Queue(...)``, ``WorkerSettings``."""
    if site.call is not None:
        return f"`{site.call.dotted or site.call.method}(...)`"
    if site.cls is not None:
        return f"`{site.cls.name}`"
    return "This " + site.kind


def _message(site: Site) -> str | None:
    """What pickling by default means where ``site`` is (by what the construction does, not by framework)."""
    title = site.profile.title
    what = _what(site)
    if site.kind in ("queue", "pool"):  # a producer's handle: the jobs it enqueues are pickled
        return (f"{what} sets no serializer, so {title} pickles the jobs enqueued through it and the workers that "
                "run them unpickle whatever the broker holds: anyone who can write to the broker runs code on the "
                "workers")
    if site.kind in ("worker", "worker-settings"):  # the consumer: it unpickles every job it takes
        return (f"{what} sets no serializer, so the {title} worker unpickles every job it takes from the broker: "
                "anyone who can write to the broker runs code on the worker")
    if site.kind == "broker":  # an instance that both enqueues and consumes (Huey)
        return (f"{what} sets no serializer and {title} pickles tasks by default: the consumer unpickles every "
                "message in the instance's storage, so anyone who can write to that storage runs code in the "
                "consumer")
    return None


def _enclosing(site: Site) -> FunctionFact | None:
    call = site.call
    if call is None:
        return None
    if site.function is not None:
        return site.function
    for fn in site.file.functions:
        if any(c.span.start == call.span.start and c.span.end == call.span.end for c in fn.calls):
            return fn
        if any(v.call is not None and v.call.span.start == call.span.start and v.call.span.end == call.span.end
               for v in fn.local_calls.values()):
            return fn
    return None


def _body_end(data: bytes, fn: FunctionFact) -> int:
    """Where the function's body ends: the first line after its header indented no deeper than its ``def``."""
    line_start = data.rfind(b"\n", 0, fn.def_start) + 1
    indent = len(data[line_start:fn.def_start]) - len(data[line_start:fn.def_start].lstrip(b" \t"))
    pos = data.find(b"\n", fn.header.end)
    while pos != -1 and pos < len(data):
        start = pos + 1
        end = data.find(b"\n", start)
        line = data[start:end if end != -1 else len(data)]
        stripped = line.lstrip(b" \t")
        if stripped and not stripped.startswith(b"#") and len(line) - len(stripped) <= indent:
            return start
        pos = end
    return len(data)


def _used_for_no_job(ctx: RuleContext, site: Site) -> bool:
    """The construction is bound to a local name (or used at once) only for things that touch no
    job: ``redis = await create_pool(...); await redis.ping()`` in a health check, ``len(Queue(...))``."""
    call = site.call
    fn = _enclosing(site)
    if call is None or fn is None:
        return False
    data = ctx.source(site.file).utf8
    name = next((n for n, v in fn.local_calls.items() if v.call is not None and
                 v.call.span.start == call.span.start and v.call.span.end == call.span.end), None)
    if name is None:  # ``Queue("q", connection=r).count``
        follows = re.match(rb"\)*\s*\.\s*(\w+)", data[call.span.end:call.span.end + 80])
        return follows is not None and follows.group(1).decode() in NO_JOB_ATTRIBUTES
    if any(r.kind == "name" and r.dotted == name for r in fn.returns):
        return False  # handed to the caller
    statement = call.statement.end if call.statement is not None else call.span.end
    body = data[statement:_body_end(data, fn)]
    for use in re.finditer(rb"(?<![\w.])" + re.escape(name.encode()) + rb"\b", body):
        before = body[max(0, use.start() - 4):use.start()]
        after = body[use.end():use.end() + 80]
        attribute = re.match(rb"\s*\.\s*(\w+)", after)
        if attribute is not None and attribute.group(1).decode() in NO_JOB_ATTRIBUTES:
            continue
        if before.endswith(b"len(") and after.lstrip().startswith(b")"):
            continue
        return False  # enqueued through, handed on, stored, rebound: used for jobs as far as qlint knows
    return True


@register
class PickleSerializerByDefault(Rule):
    """## What it does
    Checks for queues, workers and task-queue instances that set no serializer in a framework
    whose default serializer is `pickle`: RQ `Queue(...)` and `Worker(...)`, a Huey instance
    (`RedisHuey(...)`, `SqliteHuey(...)`, ...), an arq `WorkerSettings` class or
    `create_pool(...)` call without `job_serializer`; and worker command lines that leave the
    serializer to a CLI whose default is pickle (`rq worker`, `rq worker-pool`, django-rq's
    `manage.py rqworker`) without `-S`/`--serializer`.

    ## Why is this bad?
    Unpickling runs code chosen by whoever wrote the bytes. With pickle as the job format,
    anyone who can write to the broker (a Redis without a password, a leaked `REDIS_URL`, an
    SSRF reaching port 6379, another tenant of a shared Redis) can put a job there that runs
    their code on every worker that picks it up, and on any process that reads job results.
    RQ's documentation says it plainly: pickle "is not secure. Only run RQ against Redis
    instances that you trust." Nothing in the code says pickle, which is why the default goes
    unnoticed in review.

    ## Known problems
    django-rq queues (`SERIALIZER` in `RQ_QUEUES`) and Huey instances configured through Django
    settings (`HUEY = {...}` for `huey.contrib.djhuey`) are not read yet. A construction whose
    options qlint cannot see (`Queue(**options)`, `RedisHuey(immediate=settings.DEBUG)`) is not
    reported, nor is a worker command that holds words qlint cannot read (`rq worker
    $RQ_ARGS`: they may choose the serializer) or names a worker class of its own
    (`-w proj.workers.JSONWorker`).

    ## Example
    ```python
    from redis import Redis
    from rq import Queue

    queue = Queue("default", connection=Redis())
    ```

    Use instead:
    ```python
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    queue = Queue("default", connection=Redis(), serializer=JSONSerializer)
    ```
    and start the workers with `rq worker --serializer json`.

    ## Per framework
    - RQ: `Queue(...)` and `Worker(...)` without `serializer=` (RQ's `DefaultSerializer` is
      pickle). `Queue("default", connection=redis)` is reported;
      `Queue("default", connection=redis, serializer=JSONSerializer)` is not. A worker command
      line without `-S`/`--serializer` (the CLI's default is `rq.serializers.DefaultSerializer`,
      with no environment variable or config-file key to change it; django-rq's `rqworker` and
      `rqworker-pool` pass the same default to the worker whatever `RQ_QUEUES` says) is reported
      on the command, wherever it is written (Kubernetes, compose, Procfiles, shell scripts); when
      the code builds a queue the worker consumes with a serializer of its own, the message says
      that its jobs cannot be read by the worker. `rq worker --serializer
      rq.serializers.JSONSerializer` (`-S json` from RQ 2.9) is not reported, nor is a queue
      built with `is_async=False` (RQ runs each job in the calling process).
    - Huey: a `Huey`/`RedisHuey`/`SqliteHuey`/`PriorityRedisHuey`/`FileHuey` instance without
      `serializer=` (Huey's `Serializer` pickles). `huey = RedisHuey("app")` is reported;
      `RedisHuey("app", serializer=SignedSerializer(secret=KEY))` is not. Instances whose
      messages never leave the process are not: `MemoryHuey` (and `storage_class=MemoryStorage`)
      keeps them in a list, `BlackHoleHuey` drops them, and `immediate=True` runs each task in
      the calling process on an in-memory storage (unless `immediate_use_memory=False`).
    - arq: a `WorkerSettings` class (reported at its `class` line) and a `create_pool(...)`
      call without `job_serializer` (arq pickles jobs unless both sides are given a
      serializer). `await create_pool(RedisSettings())` is reported;
      `create_pool(RedisSettings(), job_serializer=msgpack.packb, job_deserializer=...)` is not.
      A class only counts when it registers functions or cron jobs: a `typing.Protocol` that
      declares the attribute names (`cron_jobs: ... = None`) is a type, not a worker.

    A queue or pool bound to a local name and used there for nothing that touches a job (a
    health check's `await redis.ping()`, a monitor's `queue.count`, `len(queue)`) pickles
    nothing and is not reported. Celery, Dramatiq and Taskiq serialize to JSON by default and
    are not reported; choosing pickle there explicitly is QLT501.

    ## Fix safety
    There is no fix. The serializer must change on the producers and on the workers
    together (jobs written by one must be read by the other), jobs already queued in the old
    format must drain first, and JSON cannot carry every argument pickle can (datetimes,
    sets, model instances), so the job signatures may have to change as well.

    ## References
    - [RQ: Job / Queue creation with custom serializer](https://python-rq.org/docs/jobs/#job--queue-creation-with-custom-serializer)
    - [RQ: Worker with custom serializer](https://python-rq.org/docs/workers/#worker-with-custom-serializer)
    - [Huey: API, Huey(serializer=...)](https://huey.readthedocs.io/en/latest/api.html#Huey)
    - [arq: Custom job serializers](https://arq-docs.helpmanual.io/#custom-job-serializers)
    - [Python: pickle, security warning](https://docs.python.org/3/library/pickle.html)
    """

    code = "QLT502"
    name = "pickle-serializer-by-default"
    summary = "Queue or worker pickles jobs by default: anyone who can write to the broker runs code"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("rq", "huey", "arq")

    VALID = [
        Valid("""
from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

redis = Redis()
queue = Queue("default", connection=redis, serializer=JSONSerializer)

def work():
    Worker([queue], connection=redis, serializer=JSONSerializer).work()
""", note="RQ: JSON on both the queue and the worker"),
        Valid("""
from rq import Queue

QUEUE_OPTIONS = load_options()

def queue_for(name):
    return Queue(name, **QUEUE_OPTIONS)
""", note="RQ: options qlint cannot see may set the serializer"),
        Valid("""
from queue import Queue

from rq import Retry

pending = Queue(maxsize=100)

def retry_policy():
    return Retry(max=3, interval=[10, 60])
""", note="the standard library's Queue in a module that uses RQ"),
        Valid("""
import os

from huey import RedisHuey
from huey.serializer import SignedSerializer

huey = RedisHuey("app", serializer=SignedSerializer(secret=os.environ["HUEY_SECRET"]))

@huey.task()
def resize(image_id):
    pass
""", note="Huey: an explicit serializer (here signed, so forged messages are rejected)"),
        Valid("""
import functools

import msgpack
from arq import create_pool
from arq.connections import RedisSettings

async def download(ctx, url):
    pass

async def main():
    redis = await create_pool(
        RedisSettings(), job_serializer=msgpack.packb,
        job_deserializer=functools.partial(msgpack.unpackb, raw=False),
    )
    await redis.enqueue_job("download", "https://example.com")

class WorkerSettings:
    functions = [download]
    job_serializer = msgpack.packb
    job_deserializer = functools.partial(msgpack.unpackb, raw=False)
""", note="arq: msgpack on both the pool and the worker"),
        Valid("""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from taskiq_redis import ListQueueBroker

dramatiq.set_broker(RedisBroker(url="redis://redis:6379/0"))
broker = ListQueueBroker("redis://redis:6379/1")

@dramatiq.actor
def resize(image_id):
    pass

@broker.task
async def thumbnail(image_id):
    pass
""", note="Dramatiq and Taskiq serialize to JSON by default"),
        Valid("""
from celery import Celery

app = Celery("proj", broker="redis://redis:6379/0")

@app.task
def resize(image_id):
    pass
""", note="Celery serializes to JSON by default"),
        Valid("""
from huey import MemoryHuey

huey = MemoryHuey("tests")

@huey.task()
def resize(image_id):
    pass
""", note="MemoryHuey keeps jobs in the process: nobody else can write them"),
        Valid("""
from huey import BlackHoleHuey, RedisHuey
from huey.storage import MemoryStorage

local = RedisHuey("dev", immediate=True)
sink = BlackHoleHuey("off")
scratch = RedisHuey("scratch", storage_class=MemoryStorage)

@local.task()
def resize(image_id):
    pass
""", note="Huey instances whose messages never leave the process: immediate mode, BlackHoleHuey, MemoryStorage"),
        Valid("""
from redis import Redis
from rq import Queue

def run_now(name, *args):
    queue = Queue(name, connection=Redis(), is_async=False)
    return queue.enqueue_call(name, args=args)

def run_inline(name):
    return Queue(name, Redis(), None, False).enqueue(name)
""", note="RQ queues with `is_async=False` run each job in the calling process: no worker reads it back"),
        Valid("""
from typing import Optional, Protocol, Sequence

from arq.cron import CronJob

class SettingsLike(Protocol):
    functions: Sequence
    cron_jobs: Optional[Sequence[CronJob]] = None
    redis_settings: object = None

class NotAWorker:
    functions = None
    cron_jobs = None
""", note="arq: a Protocol declaring the attribute names, and a class that registers nothing"),
        Valid("""
from arq import create_pool
from arq.connections import RedisSettings
from redis import Redis
from rq import Queue

async def ready():
    redis = await create_pool(RedisSettings(host="redis"))
    try:
        return await redis.ping()
    finally:
        await redis.aclose()

def queue_depth(connection: Redis):
    queue = Queue("default", connection=connection)
    return {"name": queue.name, "jobs": queue.count, "size": len(queue)}
""", note="a pool and a queue used only for a health check and a depth gauge: no job is pickled"),
        Valid({
            "proj/__init__.py": "",
            "proj/queues.py": """
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

redis = Redis.from_url("redis://redis:6379/0")
high = Queue("high", connection=redis, serializer=JSONSerializer)
""",
            "deploy/workers.yaml": """
# Source: proj/templates/workers.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-rq-high
spec:
  template:
    spec:
      containers:
        - name: rq
          image: "registry.example.com/proj:1.4.2"
          args: ["rq", "worker", "--url", "$(REDIS_URL)", "-S", "rq.serializers.JSONSerializer", "high"]
        - name: pool
          image: "registry.example.com/proj:1.4.2"
          args: ["rq", "worker-pool", "-n", "4", "--serializer=json", "high"]
""",
            "Procfile": "worker: rq worker -w proj.workers.JSONWorker high\nenv: sh -c 'exec rq worker $RQ_ARGS'\n",
            "docker-compose.yml": """
services:
  worker:
    build: .
    command: python manage.py rqworker high
    volumes:
      - ./:/app
""",
        }, note="RQ workers given a serializer on the command line; a worker class of the project's; words qlint "
                "cannot read; a developer's stack"),
    ]
    INVALID = [
        Invalid("""
from redis import Redis
from rq import Queue

queue = Queue("default", connection=Redis())
""", expect=4, message="RQ pickles the jobs enqueued through it"),
        Invalid({
            "proj/__init__.py": "",
            "proj/queues.py": """
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

redis = Redis.from_url("redis://redis:6379/0")
high = Queue("high", connection=redis, serializer=JSONSerializer)
""",
            "proj/worker.py": """
from rq import Worker

from proj.queues import high, redis

def main():
    Worker([high], connection=redis).work(with_scheduler=True)
""",
            "proj/jobs.py": """
from rq import Queue

from proj.queues import redis

def resize(image_id):
    pass

def later(image_id):
    Queue("low", connection=redis).enqueue(resize, image_id)
""",
        }, expect=[("proj/worker.py", 6), ("proj/jobs.py", 9)],
            message="anyone who can write to the broker runs code on the worker",
            note="RQ: a worker without a serializer unpickles whatever its JSON queue holds; a chained Queue"),
        Invalid("""
from huey import RedisHuey, SqliteHuey

huey = RedisHuey("app", host="redis")
local = SqliteHuey(filename="/var/lib/app/huey.db")

@huey.task()
def resize(image_id):
    pass
""", expect=[3, 4], message="Huey pickles tasks by default"),
        Invalid("""
from arq import create_pool, func
from arq.connections import RedisSettings

async def download(ctx, url):
    pass

async def main():
    redis = await create_pool(RedisSettings(host="redis"))
    await redis.enqueue_job("download", "https://example.com")

class WorkerSettings:
    functions = [func(download, timeout=60)]
    redis_settings = RedisSettings(host="redis")
""", expect=[8, 11], message="anyone who can write to the broker runs code on the worker"),
        Invalid("""
from arq import cron, create_pool
from arq.connections import RedisSettings
from huey import RedisHuey

huey = RedisHuey("app", immediate=False, immediate_use_memory=True)
debug = RedisHuey("debug", immediate=True, immediate_use_memory=False)

async def nightly(ctx):
    pass

async def ping_then_enqueue():
    redis = await create_pool(RedisSettings(host="redis"))
    await redis.ping()
    await redis.enqueue_job("nightly")

class CronSettings:
    cron_jobs = [cron(nightly, hour=3)]
""", expect=[5, 6, 12, 16], note="near misses: not immediate; immediate on its real storage; a pool that also "
                                  "enqueues; a class with cron jobs only"),
        Invalid({
            "proj/__init__.py": "",
            "proj/queues.py": """
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

redis = Redis.from_url("redis://redis:6379/0")
high = Queue("high", connection=redis, serializer=JSONSerializer)
""",
            "deploy/workers.yaml": """
# Source: proj/templates/workers.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proj-rq-high
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: rq
          image: "registry.example.com/proj:1.4.2"
          command:
            - rq
            - worker
            - --with-scheduler
            - high
""",
            "docker-compose.yml": """
services:
  rqworker:
    image: registry.example.com/proj:1.4.2
    command: python manage.py rqworker default low
""",
        }, expect=[("deploy/workers.yaml", 13), ("docker-compose.yml", 4)], message="reads every job with its default "
                                                                                   "serializer, pickle",
            note="the code enqueues JSON to `high`, the worker started from the command line reads pickle (and fails "
                 "on those jobs)"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for site in ctx.project.sites:
            serializer = site.norm.get("serializer")
            if serializer is None or serializer.value != "pickle" or serializer.source != "default":
                continue
            message = _message(site)
            if site.anchor is None or message is None or _used_for_no_job(ctx, site):
                continue
            ctx.report(site.file, site.anchor, message,
                       statement=site.call.statement if site.call is not None else None)
        for worker in [*ctx.project.workers, *ctx.project.script_workers]:
            self._worker_command(ctx, worker)

    @staticmethod
    def _worker_command(ctx: RuleContext, worker) -> None:
        """A worker command line that leaves the serializer to a CLI whose default is pickle (``rq
        worker``, ``manage.py rqworker``, ``rq worker-pool``)."""
        command = worker.command
        cli = command.cli
        if cli is None or not cli.serializer_flag or cli.serializer_default != "pickle" or \
                "worker" not in command.roles or worker.development:
            return
        if cli.serializer_flag in command.flags or command.opaque:
            return  # chosen (pickle too: not a default), or perhaps in words qlint cannot read
        if any(flag in command.flags for flag in cli.class_flags):
            return  # a worker class of the project's: what it does with the serializer is its own
        title = _title(worker.framework)
        message = (f"`{command.program}` in {worker.place} sets no `--{cli.serializer_flag}`, so the {title} worker "
                   f"reads every job with its default serializer, pickle: anyone who can write to the broker runs "
                   f"code on the worker; start it with `{cli.serializer_fix}` (and give the queues that enqueue its "
                   "jobs the same serializer)")
        chosen = _queues_with_serializer(ctx, worker)
        if chosen:
            site, name = chosen[0]
            more = f" (and {len(chosen) - 1} more)" if len(chosen) > 1 else ""
            where = f"{ctx.display(site.file.path)}:{ctx.source(site.file).location(site.anchor.start).row}"
            message += (f"; queue `{name}` is built with a serializer of its own ({where}){more}, so the jobs "
                        "enqueued through it fail to deserialize on this worker")
        facts, span = worker.command_site()
        ctx.report(facts, span, message)


def _title(framework: str) -> str:
    module = importlib.import_module(f"qlint.frameworks.{framework}")
    profile = getattr(module, "PROFILE", None)
    return profile.title if profile is not None else framework


def _queues_with_serializer(ctx: RuleContext, worker) -> list[tuple[Site, str]]:
    """Queues the worker consumes (its queue names, ``default`` when it names none) that the code builds
    with a serializer of its own other than pickle: their jobs are not pickles."""
    names = {t.text for t in worker.command.positional} or {"default"}
    found = []
    for site in ctx.project.sites:
        if site.framework != worker.framework or site.kind != "queue" or site.call is None or site.anchor is None:
            continue
        serializer = site.norm.get("serializer")
        if serializer is None or serializer.source == "default" or serializer.value in ("pickle", UNKNOWN):
            continue
        value = site.call.kwargs["name"].value if "name" in site.call.kwargs else \
            site.call.args[0] if site.call.args else None
        name = ctx.project.fold(value).value if value is not None else "default"
        if isinstance(name, str) and name in names:
            found.append((site, name))
    return found
