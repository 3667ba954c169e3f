from __future__ import annotations

import re

from qlint.frameworks.celery_calls import serializer_of, task_arguments, task_serializer
from qlint.frameworks.django import enclosing_function, model_annotation, model_instance
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import Span
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import task_functions

TEXT_SERIALIZERS = ("json", "msgpack", "yaml", "application/json", "application/x-msgpack")


def _site_serializer(site) -> str | None:
    """The serializer an enqueue's message goes through: the queue's, where the framework knows
    it (an RQ queue), else what the call or the task says."""
    chosen = site.norm.get("serializer")
    if chosen is not None and isinstance(chosen.value, str):
        return chosen.value
    return serializer_of(site)


def _consequence(serializer: str | None) -> str:
    if serializer is not None and serializer.lower() in TEXT_SERIALIZERS:
        return f"the `{serializer}` serializer cannot encode a model instance, so the enqueue fails"
    if serializer is not None and "pickle" in serializer.lower():
        return ("pickle ships a copy of the row as it was at enqueue time, which is stale by the time the task "
                "runs and overwrites newer data if the task saves it")
    return ("a JSON serializer cannot encode it and the enqueue fails; with pickle the task gets a copy of the row "
            "that is stale by the time it runs")


@register
class OrmObjectAsTaskArgument(Rule):
    """## What it does
    Checks for database rows passed to tasks: an enqueue argument bound from a Django
    look-up (`Model.objects.get/create/first/last/get_or_create(...)`, through any queryset
    methods), `get_object_or_404(...)`, `request.user`, an SQLAlchemy `session.get(Model,
    id)` or `session.query(Model)....first()`; and task parameters annotated with a model
    class.

    ## Why is this bad?
    A task's arguments are serialized into the message. With JSON (Celery's and Dramatiq's
    default) a model instance cannot be encoded and the call fails with `EncodeError`; with
    pickle (RQ's default) the worker gets a copy of the row as it was when the task was
    enqueued. By the time the task runs the row may have changed or been deleted, and a
    task that saves its copy overwrites newer data. Celery's guide: "It's almost always
    better to re-fetch the object from the database when the task is running instead, as
    using old data may lead to race conditions." Dramatiq's: "send that actor the user's id
    rather than the serialized user."

    ## Example
    ```python
    def checkout(request, pk):
        order = Order.objects.get(pk=pk)
        send_receipt.delay(order, request.user)
    ```

    Use instead:
    ```python
    def checkout(request, pk):
        order = Order.objects.get(pk=pk)
        send_receipt.delay(order.pk, request.user.pk)
    ```

    ## Per framework
    - **Celery**: arguments of `.delay(...)`, `.s(...)`, `.si(...)`, `delay_on_commit(...)`,
      and the items of `apply_async(args=(...), kwargs={...})` / `send_task(name,
      args=...)`: `notify.delay(order)`.
    - **RQ**: arguments of `queue.enqueue(f, ...)`, `enqueue_call(func=f, args=(...))`,
      `enqueue_in` / `enqueue_at` and django-rq's `django_rq.enqueue(f, ...)`, where the
      receiver is an RQ queue: an `rq.Queue(...)` (or a subclass), django-rq's
      `get_queue(...)`, a name bound to one, or a project function returning one:
      `queue.enqueue(notify, order)`. A project's own method named `enqueue` (a model's
      classmethod that records a job row and enqueues the job itself) is not RQ's, and what it
      is given is not a task argument.
    - **Dramatiq**: `actor.send_with_options(args=(order,))`.
    - **Huey**, **Taskiq**, **arq**: a task parameter annotated with a model class
      (`def notify(order: Order)`); their enqueue calls are not read yet.

    ## Fix safety
    There is no fix: the task has to take the key and fetch the row itself.

    ## References
    - [Celery: State](https://docs.celeryq.dev/en/stable/userguide/tasks.html#state)
    - [Dramatiq: Simple messages](https://dramatiq.io/best_practices.html#simple-messages)
    - [RQ: Jobs](https://python-rq.org/docs/jobs/)
    """

    code = "QLT603"
    name = "orm-object-as-task-argument"
    summary = "A model instance passed to a task is serialized into the message"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
from celery import shared_task
from django.shortcuts import get_object_or_404
from shop.models import Order

@shared_task
def send_receipt(order_id, user_id):
    pass

def checkout(request, pk):
    order = Order.objects.get(pk=pk)
    row = get_object_or_404(Order, pk=pk)
    send_receipt.delay(order.pk, request.user.pk)
    send_receipt.apply_async(args=(row.id, request.user.id), countdown=5)
    ids = Order.objects.filter(paid=True).values_list("id", flat=True).first()
    send_receipt.delay(ids, None)
""",
        }, note="ids instead of model instances; `values_list` gives no instance"),
        Valid("""
from celery import shared_task

class Cache:
    objects = {}

@shared_task
def send_receipt(order, user: dict):
    pass

def checkout(request, cache, pk):
    order = cache.get(pk)
    settings = Cache.objects.get(pk)
    send_receipt.delay(order, settings)
    send_receipt.delay(request.user_id, pk)
""", note="`get` on things that are not models; a non-model annotation"),
        Valid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
from celery import shared_task
from shop.models import Order

@shared_task
def send_receipt(order_id):
    pass

def checkout(order):
    send_receipt.delay(order)

def pay(pk):
    order = Order.objects.get(pk=pk)
    def later(order):
        send_receipt.delay(order)
    return later
""", }, note="a parameter qlint knows nothing about; a parameter shadowing the look-up"),
        Valid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/signals.py": """
from django.db.models.signals import post_delete
from django.dispatch import receiver
from shop.models import Order
from shop.tasks import purge_index

@receiver(post_delete, sender=Order)
def order_deleted(sender, instance: Order, **kwargs):
    purge_index.delay(instance)
""",
            "shop/tasks.py": """
from celery import shared_task

@shared_task
def purge_index(order):
    pass
""",
        }, note="a deleted row: its snapshot is all a task can get"),
        Valid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models
from django_rq import get_queue

class Order(models.Model):
    pass

class Job(models.Model):
    @classmethod
    def enqueue(cls, func, instance=None, user=None):
        job = cls.objects.create(object_id=instance.pk, user=user)
        get_queue("default").enqueue(func, job_id=job.pk)
        return job

class Reminder(models.Model):
    def delay(self, order):
        pass
""",
            "shop/views.py": """
from django.shortcuts import get_object_or_404
from rq.job import JobStatus
from shop.models import Job, Order, Reminder

def sync(order):
    pass

def checkout(request, pk):
    order = get_object_or_404(Order, pk=pk)
    job = Job.enqueue(sync, instance=order, user=request.user)
    Reminder.objects.get(pk=1).delay(order)
    return job.status == JobStatus.QUEUED
""",
        }, note="a model's own `enqueue` and `delay` methods: not RQ's, the row is not a task argument"),
    ]
    INVALID = [
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    total = models.IntegerField()
""",
            "shop/tasks.py": """
from celery import shared_task
from shop.models import Order

@shared_task
def charge(order: Order):
    pass

def checkout(order_id):
    order = Order.objects.get(pk=order_id)
    charge.delay(order)
""",
        }, expect=[("shop/tasks.py", 10)], note="the annotation and the call are one mistake: reported once, at the call"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models
from django.contrib.auth.models import AbstractUser

class Base(models.Model):
    class Meta:
        abstract = True

class Order(Base):
    pass

class Customer(AbstractUser):
    pass
""",
            "shop/tasks.py": """
from celery import shared_task
from django.shortcuts import get_object_or_404
from shop.models import Customer, Order

@shared_task
def send_receipt(order, user=None):
    pass

def checkout(request, pk):
    order = Order.objects.select_related("customer").get(pk=pk)
    send_receipt.delay(order, user=request.user)
    row = get_object_or_404(Order, pk=pk)
    send_receipt.apply_async(args=(row,), countdown=5)
    customer = Customer.objects.filter(email=request.POST["email"]).first()
    send_receipt.s(customer).delay()
""",
        }, expect=[("shop/tasks.py", 11), ("shop/tasks.py", 11), ("shop/tasks.py", 13), ("shop/tasks.py", 15)],
            message="model instance", note="look-ups through a base model and a contrib base; request.user"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
from typing import Optional
from celery import shared_task
from shop.models import Order

@shared_task
def send_receipt(order: Order, note: Optional["Order"] = None):
    pass
""",
        }, expect=[("shop/tasks.py", 6), ("shop/tasks.py", 6)], message="annotated with the model",
            note="task parameters annotated with a model class"),
        Invalid("""
from redis import Redis
from rq import Queue
from sqlalchemy.orm import DeclarativeBase

class Base(DeclarativeBase):
    pass

class Order(Base):
    __tablename__ = "orders"

queue = Queue(connection=Redis())

def checkout(session, pk):
    order = session.get(Order, pk)
    queue.enqueue(send_receipt, order)
    first = session.query(Order).filter_by(paid=True).first()
    queue.enqueue_call(func=send_receipt, args=(first,))
""", expect=[15, 17], note="RQ with SQLAlchemy"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/queues.py": """
import django_rq
from rq import Queue
from rq.serializers import JSONSerializer

high = django_rq.get_queue("high")

def reports_queue():
    return Queue("reports", connection=high.connection, serializer=JSONSerializer)
""",
            "shop/views.py": """
import django_rq
from django.shortcuts import get_object_or_404
from shop.models import Order
from shop.queues import high, reports_queue

def notify(order):
    pass

def checkout(request, pk):
    order = get_object_or_404(Order, pk=pk)
    high.enqueue(notify, order)
    django_rq.enqueue(notify, request.user)
    low = django_rq.get_queue("low")
    low.enqueue_in(60, notify, order)
    reports_queue().enqueue(notify, order)
""",
        }, expect=[("shop/views.py", 11), ("shop/views.py", 12), ("shop/views.py", 14), ("shop/views.py", 15)],
            note="django-rq: a module-level `get_queue(...)`, `django_rq.enqueue`, a local queue, a project "
                 "function returning a JSON queue"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
import dramatiq
from shop.models import Order

@dramatiq.actor
def send_receipt(order_id):
    pass

def checkout(pk):
    order = Order.objects.get(pk=pk)
    send_receipt.send_with_options(args=(order,), delay=1000)
""",
        }, expect=[("shop/tasks.py", 10)], note="Dramatiq"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
from huey import RedisHuey
from shop.models import Order

huey = RedisHuey("shop")

@huey.task()
def send_receipt(order: Order):
    pass
""",
            "shop/jobs.py": """
from arq.connections import RedisSettings
from shop.models import Order

async def send_invoice(ctx, order: "Order"):
    pass

class WorkerSettings:
    functions = [send_invoice]
    redis_settings = RedisSettings()
""",
        }, expect=[("shop/tasks.py", 7), ("shop/jobs.py", 4)], note="Huey and arq: annotated parameters"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/signals.py": """
from django.db.models.signals import post_save
from django.dispatch import receiver
from shop.models import Order
from shop.tasks import index_order

@receiver(post_save, sender=Order)
def order_saved(sender, instance: Order, created, **kwargs):
    index_order.delay(instance)
""",
            "shop/tasks.py": """
from celery import shared_task

@shared_task(serializer="pickle")
def index_order(order):
    pass
""",
        }, expect=[("shop/signals.py", 8)], message="pickle ships a copy",
            note="a signal receiver's annotated `instance`; a pickle task"),
        Invalid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Order(models.Model):
    pass
""",
            "shop/tasks.py": """
import dramatiq
from shop.models import Order

@dramatiq.actor
def send_receipt(order_id):
    pass

def checkout(pk):
    order = Order.objects.get(pk=pk)
    send_receipt.send(order)
""",
        }, expect=[("shop/tasks.py", 10)], note="Dramatiq `send`"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        shown: set[int] = set()  # tasks a call site already reports: their annotation is the same mistake
        for site in project.sites:
            values = task_arguments(site)
            if not values:
                continue
            fn = enclosing_function(site)
            for value in values:
                found = model_instance(project, site.file, fn, value)
                if found is None:
                    continue
                text = found.text
                if found.span is not None:
                    text += f" (bound from {found.bound_from} on line {ctx.source(site.file).row_of(found.span.start)})"
                elif found.bound_from:
                    text += f" ({found.bound_from})"
                ctx.report(site.file, value.span,
                           f"{text} is a model instance passed to a task: {_consequence(_site_serializer(site))}; "
                           "pass its primary key and fetch the row in the task", statement=site.call.statement)
                if site.task is not None:
                    shown.add(id(site.task))
        for task in project.tasks:
            if id(task) in shown:
                continue  # one mistake, one finding: the call that passes the instance says it
            src = ctx.source(task.file)
            for fn in task_functions(project, task):
                if task.cls is not None and fn.name != "run":
                    continue
                for param in fn.params:
                    if not param.annotation:
                        continue
                    model = model_annotation(project, task.file, param)
                    if model is None:
                        continue
                    span = _param_span(src.utf8, fn.def_start, fn.header.end, param.name)
                    if span is None:
                        continue
                    ctx.report(task.file, span,
                               f"Parameter `{param.name}` of task `{task.name}` is annotated with the model `{model}`, "
                               f"so callers pass a model instance: {_consequence(task_serializer(task))}; take its "
                               "primary key and fetch the row in the task", statement=task.header)


def _param_span(data: bytes, start: int, end: int, name: str) -> Span | None:
    match = re.search(rb"[(,\s*]" + re.escape(name.encode()) + rb"\s*:", data[start:end])
    if match is None:
        return None
    begin = start + match.start() + 1
    return Span(begin, begin + len(name))

