from __future__ import annotations

import ast
import re

from qlint.frameworks.celery_calls import serializer_of, task_arguments, task_serializer
from qlint.frameworks.django import enclosing_function, model_annotation, model_instance
from qlint.frameworks.validation import entry_function, message_params
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FunctionFact, Param, Span, Value
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.lint.trees import Trees, own_nodes
from qlint.rules._common import task_functions

TEXT_SERIALIZERS = ("json", "msgpack", "yaml", "application/json", "application/x-msgpack")


def _site_serializer(site) -> str | None:
    """The serializer an enqueue's message goes through: the queue's, where the framework knows
    it (an RQ queue), else what the call or the task says."""
    chosen = site.norm.get("serializer")
    if chosen is not None and isinstance(chosen.value, str):
        return chosen.value
    return serializer_of(site)


def _pickled(serializer: str | None) -> bool:
    return serializer is not None and "pickle" in serializer.lower()


def _consequence(serializer: str | None, write: str | None) -> str:
    if serializer is not None and serializer.lower() in TEXT_SERIALIZERS:
        return f"the `{serializer}` serializer cannot encode a model instance, so the enqueue fails"
    if _pickled(serializer):
        return (f"pickle ships a copy of the row as it was at enqueue time, and the task writes to the database "
                f"from that copy ({write}), undoing or ignoring whatever changed in between")
    return ("a JSON serializer cannot encode it and the enqueue fails; with pickle the task gets a copy of the row "
            "that is stale by the time it runs")


# Calls that write rows: on the instance (``order.save()``) or on what it leads to
# (``field.options.exclude(...).update(...)``), or a session given the instance.
_WRITES = frozenset({"save", "delete", "update", "asave", "adelete", "aupdate", "bulk_update",
                     "update_or_create", "aupdate_or_create"})
_SESSION_WRITES = frozenset({"add", "merge", "delete"})


def _root(node: ast.expr) -> str | None:
    """The name an attribute/call chain starts from: ``order`` for ``order.lines.filter().update``."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _chain_text(node: ast.expr) -> str:
    """``order.lines.filter(...).update(...)``: the chain with its arguments elided."""
    if isinstance(node, ast.Call):
        return f"{_chain_text(node.func)}({'...' if node.args or node.keywords else ''})"
    if isinstance(node, ast.Attribute):
        return f"{_chain_text(node.value)}.{node.attr}"
    return ast.unparse(node)


def _write_back(trees: Trees, src: SourceFile, fn: FunctionFact, name: str) -> str | None:
    """Where the task function writes to the database from parameter ``name``'s row
    (``order.save()`` on line 12), before any ``refresh_from_db()``; None when it does not, or
    qlint cannot tell (a row handed to other code is not followed)."""
    node = trees.function(src, fn)
    if node is None:
        return None
    calls = sorted((n for n in own_nodes(node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    for call in calls:
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        if func.attr == "refresh_from_db" and isinstance(func.value, ast.Name) and func.value.id == name:
            return None  # the task reads the row again: what it writes from here on is fresh
        if func.attr in _WRITES and _root(func.value) == name:
            return f"`{_chain_text(call)}` on line {call.lineno}"
        if func.attr in _SESSION_WRITES and any(isinstance(a, ast.Name) and a.id == name for a in call.args):
            return f"`{_chain_text(func)}({name})` on line {call.lineno}"
    return None


def _bound_param(site, value: Value, params: list[Param]) -> str | None:
    """The task parameter an enqueue's argument fills, when the call says so plainly."""
    call = site.call
    names = {p.name for p in params}
    positional = [p.name for p in params if p.kind == "positional"]

    def at(index: int) -> str | None:
        return positional[index] if 0 <= index < len(positional) else None

    for keyword, kw in call.kwargs.items():
        if kw.value is value:
            return keyword if keyword in names else None
        if keyword == "args" and kw.value.kind == "seq":
            for index, element in enumerate(kw.value.elements):
                if element is value:
                    return at(index)
        if keyword == "kwargs" and kw.value.kind == "dict":
            for key, item in kw.value.items:
                if item is value and key.is_const and key.value in names:
                    return key.value
    args = list(call.args)
    if not any(a is value for a in args):
        return None
    lead = 0
    if call.method.startswith("enqueue") and site.task is not None and site.task.function is not None:
        # RQ's enqueue calls take the callable (enqueue_in/at a time before it) ahead of its arguments
        target = site.task.function.name
        lead = next((i + 1 for i, a in enumerate(args) if a.kind == "name" and a.dotted.split(".")[-1] == target),
                    -1)
        if lead < 0:
            return None
    return at(next(i for i, a in enumerate(args) if a is value) - lead)


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
    task that saves its copy overwrites newer data. Under pickle qlint reports only the
    tasks that write to the database from their copy themselves (`save()`, `delete()`,
    `update()` on it or on what it leads to, before any `refresh_from_db()`; a session's
    `add`/`merge`/`delete` of it): a task that only reads the copy (an export, an e-mail)
    gets what its producer meant to send. Celery's guide: "It's almost always
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
        Valid({
            "shop/__init__.py": "",
            "shop/models.py": """
from django.db import models

class Project(models.Model):
    pass
""",
            "shop/tasks.py": """
from celery import shared_task
from shop.models import Project

@shared_task(serializer="pickle")
def export(user, project: Project):
    render(project, user.email)

@shared_task(serializer="pickle")
def touch(project: Project):
    project.refresh_from_db()
    project.save()

def request_export(request, pk):
    project = Project.objects.get(pk=pk)
    export.delay(request.user, project)
    touch.delay(project)
""",
        }, note="pickle: a task that only reads its copy (an export), and one that reads the row again before it "
                "saves"),
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

def send_receipt(order):
    order.receipt_sent = True
    Session().merge(order)

def checkout(session, pk):
    order = session.get(Order, pk)
    queue.enqueue(send_receipt, order)
    first = session.query(Order).filter_by(paid=True).first()
    queue.enqueue_call(func=send_receipt, args=(first,))
""", expect=[19, 21], message="the task writes to the database from that copy (`Session().merge(order)` on line 15)",
            note="RQ (pickle) with SQLAlchemy: the job merges its copy into a session"),
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
    order.receipt_sent = True
    order.save()
""",
            "shop/jobs.py": """
from arq.connections import RedisSettings
from shop.models import Order

async def send_invoice(ctx, order: "Order"):
    await order.lines.filter(sent=False).aupdate(sent=True)

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
    order.indexed_at = now()
    order.save(update_fields=["indexed_at"])
""",
        }, expect=[("shop/signals.py", 8)], message="from that copy (`order.save(...)` on line 6)",
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
        trees = ctx.trees
        shown: set[int] = set()  # tasks a call site already reports: their annotation is the same mistake
        for site in project.sites:
            values = task_arguments(site)
            if not values:
                continue
            fn = enclosing_function(site)
            serializer = _site_serializer(site)
            for value in values:
                found = model_instance(project, site.file, fn, value)
                if found is None:
                    continue
                write = None
                if _pickled(serializer):
                    # A pickled copy harms only a task that writes it back; one that reads it (an
                    # export, an e-mail) gets what the producer meant to send.
                    write = self._site_write(ctx, trees, site, value)
                    if write is None:
                        continue
                text = found.text
                if found.span is not None:
                    text += f" (bound from {found.bound_from} on line {ctx.source(site.file).row_of(found.span.start)})"
                elif found.bound_from:
                    text += f" ({found.bound_from})"
                ctx.report(site.file, value.span,
                           f"{text} is a model instance passed to a task: {_consequence(serializer, write)}; "
                           "pass its primary key and fetch the row in the task", statement=site.call.statement)
                if site.task is not None:
                    shown.add(id(site.task))
        for task in project.tasks:
            if id(task) in shown:
                continue  # one mistake, one finding: the call that passes the instance says it
            src = ctx.source(task.file)
            serializer = task_serializer(task)
            for fn in task_functions(project, task):
                if task.cls is not None and fn.name != "run":
                    continue
                for param in fn.params:
                    if not param.annotation:
                        continue
                    model = model_annotation(project, task.file, param)
                    if model is None:
                        continue
                    write = _write_back(trees, src, fn, param.name) if _pickled(serializer) else None
                    if _pickled(serializer) and write is None:
                        continue
                    span = _param_span(src.utf8, fn.def_start, fn.header.end, param.name)
                    if span is None:
                        continue
                    ctx.report(task.file, span,
                               f"Parameter `{param.name}` of task `{task.name}` is annotated with the model `{model}`, "
                               f"so callers pass a model instance: {_consequence(serializer, write)}; take its "
                               "primary key and fetch the row in the task", statement=task.header)

    @staticmethod
    def _site_write(ctx: RuleContext, trees: Trees, site, value: Value) -> str | None:
        task = site.task
        fn = entry_function(task) if task is not None else None
        if fn is None:
            return None
        name = _bound_param(site, value, message_params(task, fn))
        return _write_back(trees, ctx.source(task.file), fn, name) if name else None


def _param_span(data: bytes, start: int, end: int, name: str) -> Span | None:
    match = re.search(rb"[(,\s*]" + re.escape(name.encode()) + rb"\s*:", data[start:end])
    if match is None:
        return None
    begin = start + match.start() + 1
    return Span(begin, begin + len(name))

