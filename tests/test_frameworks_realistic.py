"""Realistic projects of each framework give exactly the findings RULES.md describes.

The Celery one is a Django shop with its Kubernetes manifests beside it (a worker Deployment with
its HPA in one multi-document file, `sh -c` with `python -m celery`, args split from command,
credentials from `secretKeyRef`, a single-replica `Recreate` beat).

Imports are aliased, decorators bare and called, options split across decorators, brokers,
middleware and per-call options; near misses sit beside every finding. ``--fix --unsafe-fixes``
on each project re-parses and converges.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from helpers import EVERY_RULE, findings, fix, write_project

from qlint.manifests import collect as manifests

PROJECTS = {
    "celery": {
        "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-worker
spec:
  replicas: 3
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: worker
          image: registry.example.com/shop:2.3.1
          command: ["sh", "-c"]
          args:
            - exec python -m celery -A shop worker -Q default -c 8
          env:
            - name: CELERY_BROKER_URL
              valueFrom:
                secretKeyRef: {name: shop-secrets, key: broker-url}
          resources:
            requests:
              cpu: "1"
              memory: 1Gi
            limits:
              memory: 1Gi
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: shop-worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: shop-worker
  minReplicas: 3
  maxReplicas: 10
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-beat
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: beat
          image: registry.example.com/shop:2.3.1
          args: ["celery", "-A", "shop", "beat", "-l", "info"]
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {memory: 256Mi}
""",
        "shop/__init__.py": "",
        "shop/celery.py": """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
""",
        "shop/orders/__init__.py": "",
        "shop/orders/models.py": """
from django.db import models


class Order(models.Model):
    total = models.IntegerField()
""",
        "shop/orders/tasks.py": """
import requests
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure


@task_failure.connect
def report_failure(sender=None, **kwargs):
    pass


@shared_task(bind=True, autoretry_for=(requests.RequestException,), retry_backoff=True, max_retries=5)
def charge(self, order_id):
    response = requests.post("https://payments.internal/charge", json={"order": order_id}, timeout=10)
    response.raise_for_status()


@shared_task
def expire_carts():
    pass


@shared_task
def nightly_report():
    try:
        requests.get("https://reports.internal/nightly")
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        pass


@shared_task(time_limit=900, soft_time_limit=870)
def rebuild_search_index():
    pass


@shared_task
def notify(payload):
    return payload["email"]
""",
        "shop/orders/views.py": """
from django.db import transaction

from shop.orders.models import Order
from shop.orders.tasks import charge, notify


def checkout(request, order_id):
    order = Order.objects.get(pk=order_id)
    with transaction.atomic():
        order.save()
        charge.delay(order.pk)
    transaction.on_commit(lambda: notify.delay({"email": request.user.email}))
    notify.delay(order)
""",
        "shop/settings.py": """
import os

DEBUG = False
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://redis:6379/0")
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 270
CELERY_WORKER_MAX_TASKS_PER_CHILD = 200
CELERY_TASK_ACKS_LATE = True
CELERY_BEAT_SCHEDULE = {
    "expire-carts": {"task": "shop.orders.tasks.expire_carts", "schedule": 600.0},
    "nightly-report": {"task": "shop.orders.tasks.nightly_report", "schedule": 86400.0,
                       "options": {"expires": 3600}},
}
""",
    },
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
    "celery": [
        ('k8s/worker.yaml', 2, 'QLT702'),
        ('k8s/worker.yaml', 11, 'QLT705'),
        ('k8s/worker.yaml', 13, 'QLT403'),
        ('shop/celery.py', 7, 'QLT404'),
        ('shop/orders/tasks.py', 26, 'QLT106'),
        ('shop/orders/tasks.py', 29, 'QLT305'),
        ('shop/orders/tasks.py', 38, 'QLT505'),
        ('shop/orders/views.py', 11, 'QLT602'),
        ('shop/orders/views.py', 13, 'QLT603'),
        ('shop/settings.py', 10, 'QLT609'),
    ],
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
        ('app/tasks.py', 40, 'QLT305'),
    ],
    "rq": [
        ('app/api.py', 8, 'QLT107'),
        ('app/api.py', 8, 'QLT202'),
        ('app/api.py', 9, 'QLT101'),
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
    got = sorted((path, row, code) for path, row, code, _ in findings(tmp_path, EVERY_RULE))
    assert got == EXPECTED[framework]


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_fixes_reparse_and_converge(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    outcome = fix(tmp_path, EVERY_RULE)
    assert outcome.fixed, "every project here has a fixable finding"
    for path, src in outcome.fixed.items():
        if path.endswith((".yaml", ".yml")):
            manifests.read(src)  # a fixed manifest still loads
        else:
            cst.parse_module(src.text)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(src.text)
    assert fix(tmp_path, EVERY_RULE).fixed == {}


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_fixes_of_modules_read_in_pieces_match_fixes_read_whole(tmp_path, framework, monkeypatch):
    """Every module cut into pieces (as modules over 1 MB are): the same fixes, validated a piece at
    a time, give the same files."""
    from qlint.lint import chunks

    write_project(tmp_path / "whole", PROJECTS[framework])
    write_project(tmp_path / "pieces", PROJECTS[framework])
    whole = fix(tmp_path / "whole", EVERY_RULE)
    monkeypatch.setattr(chunks, "THRESHOLD", 0)
    monkeypatch.setattr(chunks, "PIECE", 1)
    pieces = fix(tmp_path / "pieces", EVERY_RULE)
    assert {Path(p).relative_to(tmp_path / "whole"): s.text for p, s in whole.fixed.items()} == \
        {Path(p).relative_to(tmp_path / "pieces"): s.text for p, s in pieces.fixed.items()}
    assert whole.count == pieces.count


def test_a_fix_that_breaks_a_module_read_in_pieces_is_refused(monkeypatch):
    from qlint.lint import chunks
    from qlint.lint.fixing import _validate
    from qlint.lint.source import SourceFile

    monkeypatch.setattr(chunks, "THRESHOLD", 0)
    monkeypatch.setattr(chunks, "PIECE", 1)
    before = SourceFile.from_text(Path("m.py"), "def a():\n    pass\n\ndef b():\n    pass\n")
    _validate(before, "def a():\n    pass\n\ndef b():\n    return 1\n", cst)
    with pytest.raises((SyntaxError, cst.ParserSyntaxError)):
        _validate(before, "def a():\n    pass\n\ndef b(:\n    pass\n", cst)
