"""Realistic projects of each framework give exactly the findings RULES.md describes.

Imports are aliased, decorators bare and called, options split across decorators, brokers,
middleware and per-call options; near misses sit beside every finding. ``--fix --unsafe-fixes``
on each project re-parses and converges.
"""

from __future__ import annotations

import libcst as cst
import pytest

from helpers import findings, fix, write_project

PROJECTS = {
    "arq": {
        "app/__init__.py": "",
        "app/jobs.py": """
import time

import requests


async def crawl(ctx, url):
    time.sleep(1)
    return requests.get(url, timeout=10).text


async def digest(ctx):
    job = await ctx["redis"].enqueue_job("crawl", "https://example.com")
    return await job.result(timeout=60)


async def cleanup(ctx):
    pass
""",
        "app/worker.py": """
import msgpack
from arq import cron, create_pool
from arq.connections import RedisSettings
from arq.worker import func

from app.jobs import cleanup, crawl, digest

FUNCTIONS = [func(crawl, timeout=120, max_tries=3), digest]


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = [cron(cleanup, hour=3, timeout=-1)]
    redis_settings = RedisSettings(host="redis")
    job_serializer = msgpack.packb
    job_deserializer = msgpack.unpackb


async def producer():
    return await create_pool(RedisSettings(host="redis"))
""",
    },
    "dramatiq": {
        "app/__init__.py": "",
        "app/actors.py": """
import time
from functools import partial

import dramatiq as dq
import httpx

from app import broker  # noqa: F401  (installs the broker)

task = partial(dq.actor, queue_name="default")


@task(time_limit=60, max_retries=None)
def resize(image_id):
    pass


@dq.actor(actor_name="notify", on_failure="report_failure")
async def notify(user_id):
    time.sleep(1)
    httpx.get("https://hooks.internal/notify", timeout=None)


@dq.actor
def report_failure(message_data, exception_data):
    pass


class Nightly(dq.GenericActor):
    class Meta:
        queue_name = "nightly"
        max_retries = 3
        time_limit = 3_600_000

    def perform(self):
        pass


def later(user_id):
    notify.send_with_options(args=(user_id,), delay=30, on_retry_exhausted="missing_handler")
""",
        "app/broker.py": """
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Retries, TimeLimit
from dramatiq.middleware.asyncio import AsyncIO

broker = RedisBroker(
    url="redis://redis:6379/0",
    middleware=[AgeLimit(), TimeLimit(time_limit=900_000), Callbacks(), Retries(max_retries=5, min_backoff=500)],
)
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)
""",
    },
    "huey": {
        "app/__init__.py": "",
        "app/main.py": """
from huey import RedisHuey, crontab
from huey.serializer import Serializer

huey = RedisHuey("app", url="redis://redis:6379/0", serializer=Serializer(compression=True))
""",
        "app/tasks.py": """
import requests
from huey.exceptions import TaskTimeout

from app.main import huey


@huey.task(retries=3, retry_delay=30, timeout=120)
def sync(account_id):
    try:
        requests.get("https://api.example.com", timeout=10)
    except TaskTimeout:
        raise
    except Exception:
        pass


@huey.task(retries=2, timeout="2m")
def export(report_id):
    try:
        pass
    except:
        return None


@huey.periodic_task(crontab(minute="0"))
def hourly():
    result = sync(1)
    result.get(blocking=True)


@huey.task()
async def fetch(url):
    pass


@huey.task(timeout=60)
def cleanup():
    try:
        pass
    except Exception as exc:
        print(exc)
""",
    },
    "rq": {
        "app/__init__.py": "",
        "app/api.py": """
from rq import Retry

from app.jobs import crunch, export
from app.queues import RETRY, default


def schedule(numbers):
    default.enqueue(crunch, numbers, job_timeout=0, retry=Retry(max=3))
    default.enqueue_call(func=export, args=(1,), timeout=-1, retry=RETRY)
    default.enqueue(crunch, numbers, job_timeout="2h")
""",
        "app/jobs.py": """
import requests

from app.queues import background


@background(timeout="10m")
def export(report_id):
    try:
        return requests.get(f"https://reports.internal/{report_id}", timeout=30).json()
    except Exception:
        return None


@background()
def ping(url):
    return requests.head(url)


def crunch(numbers):
    return sum(numbers)
""",
        "app/queues.py": """
from functools import partial

from redis import Redis
from rq import Queue as RQQueue, Retry
from rq.decorators import job as rq_job
from rq.serializers import JSONSerializer

redis = Redis.from_url("redis://redis:6379/0")
default = RQQueue("default", connection=redis, serializer=JSONSerializer, default_timeout="15m")
unbounded = RQQueue("slow", connection=redis, serializer=JSONSerializer, default_timeout=-1)
background = partial(rq_job, "default", connection=redis)
RETRY = Retry(max=5, interval=[10, 60, 300])
""",
    },
    "taskiq": {
        "app/__init__.py": "",
        "app/broker.py": """
from taskiq import SimpleRetryMiddleware
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

broker = (
    ListQueueBroker("redis://redis:6379/0")
    .with_result_backend(RedisAsyncResultBackend("redis://redis:6379/1"))
)
other = ListQueueBroker("redis://redis:6379/2").with_middlewares(SimpleRetryMiddleware(default_retry_count=3))
""",
        "app/tasks.py": """
import subprocess

from app.broker import broker


@broker.task(timeout=30, retry_on_error=True, max_retries=5)
async def fetch(url):
    subprocess.run(["curl", url])


@broker.task
async def render(page):
    handle = await fetch.kiq(page)
    return await handle.wait_result(timeout=5)


@broker.task(task_name="convert", timeout=60)
def convert(path):
    pass


async def enqueue(path):
    await convert.kicker().with_labels(timeout=-5).kiq(path)
""",
    },
}

EXPECTED = {
    "arq": [
        ('app/jobs.py', 7, 'QLT605'),
        ('app/jobs.py', 8, 'QLT605'),
        ('app/jobs.py', 11, 'QLT206'),
        ('app/jobs.py', 13, 'QLT601'),
        ('app/worker.py', 13, 'QLT107'),
        ('app/worker.py', 20, 'QLT502'),
    ],
    "dramatiq": [
        ('app/actors.py', 12, 'QLT104'),
        ('app/actors.py', 12, 'QLT201'),
        ('app/actors.py', 19, 'QLT605'),
        ('app/actors.py', 20, 'QLT106'),
        ('app/actors.py', 20, 'QLT605'),
        ('app/actors.py', 39, 'QLT104'),
        ('app/actors.py', 39, 'QLT306'),
        ('app/broker.py', 8, 'QLT104'),
    ],
    "huey": [
        ('app/tasks.py', 13, 'QLT305'),
        ('app/tasks.py', 17, 'QLT107'),
        ('app/tasks.py', 17, 'QLT202'),
        ('app/tasks.py', 21, 'QLT305'),
        ('app/tasks.py', 28, 'QLT601'),
        ('app/tasks.py', 31, 'QLT606'),
        ('app/tasks.py', 40, 'QLT105'),
        ('app/tasks.py', 40, 'QLT305'),
    ],
    "rq": [
        ('app/api.py', 8, 'QLT107'),
        ('app/api.py', 8, 'QLT202'),
        ('app/api.py', 9, 'QLT101'),
        ('app/jobs.py', 10, 'QLT105'),
        ('app/jobs.py', 10, 'QLT305'),
        ('app/jobs.py', 16, 'QLT106'),
        ('app/queues.py', 10, 'QLT101'),
    ],
    "taskiq": [
        ('app/tasks.py', 8, 'QLT605'),
        ('app/tasks.py', 11, 'QLT101'),
        ('app/tasks.py', 14, 'QLT601'),
        ('app/tasks.py', 17, 'QLT103'),
        ('app/tasks.py', 23, 'QLT107'),
    ],
}


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_exact_findings(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    got = sorted((path, row, code) for path, row, code, _ in findings(tmp_path, ["ALL"]))
    assert got == EXPECTED[framework]


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_fixes_reparse_and_converge(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    outcome = fix(tmp_path, ["ALL"])
    assert outcome.fixed, "every project here has a fixable finding"
    for path, src in outcome.fixed.items():
        cst.parse_module(src.text)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(src.text)
    assert fix(tmp_path, ["ALL"]).fixed == {}
