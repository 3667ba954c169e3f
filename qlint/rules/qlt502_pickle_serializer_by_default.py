from __future__ import annotations

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.model import Site
from qlint.lint.registry import Invalid, Rule, Valid, register


def _what(site: Site) -> str:
    """How the message names the construction: ``Queue(...)``, ``WorkerSettings``."""
    if site.call is not None:
        return f"`{site.call.dotted or site.call.method}(...)`"
    if site.cls is not None:
        return f"`{site.cls.name}`"
    return "This " + site.kind


@register
class PickleSerializerByDefault(Rule):
    """## What it does
    Checks for queues, workers and task-queue instances that set no serializer in a framework
    whose default serializer is `pickle`: RQ `Queue(...)` and `Worker(...)`, a Huey instance
    (`RedisHuey(...)`, `SqliteHuey(...)`, ...), an arq `WorkerSettings` class or
    `create_pool(...)` call without `job_serializer`.

    ## Why is this bad?
    Unpickling runs code chosen by whoever wrote the bytes. With pickle as the job format,
    anyone who can write to the broker (a Redis without a password, a leaked `REDIS_URL`, an
    SSRF reaching port 6379, another tenant of a shared Redis) can put a job there that runs
    their code on every worker that picks it up, and on any process that reads job results.
    RQ's documentation says it plainly: pickle "is not secure. Only run RQ against Redis
    instances that you trust." Nothing in the code says pickle, which is why the default goes
    unnoticed in review.

    ## Known problems
    Serializers chosen on a worker's command line (`rq worker --serializer json`) and Huey
    instances configured through Django settings (`HUEY = {...}` for `huey.contrib.djhuey`)
    are not read yet. A construction whose options qlint cannot see (`Queue(**options)`) is
    not reported.

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
      `Queue("default", connection=redis, serializer=JSONSerializer)` is not.
    - Huey: a `Huey`/`RedisHuey`/`SqliteHuey`/`PriorityRedisHuey` instance without
      `serializer=` (Huey's `Serializer` pickles). `huey = RedisHuey("app")` is reported;
      `RedisHuey("app", serializer=SignedSerializer(secret=KEY))` is not.
    - arq: a `WorkerSettings` class (reported at its `class` line) and a `create_pool(...)`
      call without `job_serializer` (arq pickles jobs unless both sides are given a
      serializer). `await create_pool(RedisSettings())` is reported;
      `create_pool(RedisSettings(), job_serializer=msgpack.packb, job_deserializer=...)` is not.

    Celery, Dramatiq and Taskiq serialize to JSON by default and are not reported; choosing
    pickle there explicitly is QLT501.

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
    ]
    INVALID = [
        Invalid("""
from redis import Redis
from rq import Queue

queue = Queue("default", connection=Redis())
""", expect=4, message="RQ pickles jobs by default"),
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
            message="anyone who can write to the broker runs code on the workers",
            note="RQ: a worker without a serializer unpickles whatever its JSON queue holds; a chained Queue"),
        Invalid("""
from huey import RedisHuey, SqliteHuey

huey = RedisHuey("app", host="redis")
local = SqliteHuey(filename="/var/lib/app/huey.db")

@huey.task()
def resize(image_id):
    pass
""", expect=[3, 4], message="Huey pickles jobs by default"),
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
""", expect=[8, 11], message="arq pickles jobs by default"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for site in ctx.project.sites:
            serializer = site.norm.get("serializer")
            if serializer is None or serializer.value != "pickle" or serializer.source != "default":
                continue
            if site.anchor is None:
                continue
            title = site.profile.title
            ctx.report(site.file, site.anchor, f"{_what(site)} sets no serializer and {title} pickles jobs by "
                       "default; unpickling runs code, so anyone who can write to the broker runs code on the "
                       "workers", statement=site.call.statement if site.call is not None else None)
