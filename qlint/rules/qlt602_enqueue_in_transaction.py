from __future__ import annotations

import re

from qlint.fixers.calls import rename_method, wrap_call
from qlint.frameworks.celery_calls import (
    after_commit_method,
    canvas_sends,
    in_lambda,
    is_bare_statement,
    sends_message,
)
from qlint.frameworks.django import (
    atomic_block,
    deferred_by_on_commit,
    enclosing_function,
    transaction_names,
)
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Fix, Severity
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Span
from qlint.lint.model import Site
from qlint.lint.registry import Invalid, Rule, Valid, register

# A delay long enough for the transaction to commit first.
MIN_DELAY = 5


def _delayed(project, site: Site, fn: FunctionFact | None) -> bool:
    """The enqueue asks the broker to hold the message: ``countdown`` of ``MIN_DELAY`` s or
    more, or an ``eta``. A countdown passed in as a parameter of the enclosing function (a batch
    task scheduling its next batch with ``countdown=countdown``) is judged by its default."""
    call = site.call
    if "eta" in call.kwargs:
        return True
    countdown = call.kwargs.get("countdown")
    if countdown is None:
        return False
    written = countdown.value
    if written.kind == "name" and fn is not None and written.dotted not in fn.assigned:
        param = next((p for p in fn.params if p.name == written.dotted), None)
        if param is not None:
            if param.default is None:
                return False
            written = param.default
    value = project.fold(written).value
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= MIN_DELAY


def _indent(data: bytes, offset: int) -> int:
    start = data.rfind(b"\n", 0, offset) + 1
    line = data[start:]
    return len(line) - len(line.lstrip(b" \t"))


# Statements after the enqueue that cannot fail the transaction: one-line log calls and
# leaving the block.
_INERT = re.compile(rb"^(?:(?:return|pass|break|continue)(?:\s+None)?\s*$|"
                    rb"(?:self\.)?_?(?:log|LOG)\w*\.(?:debug|info|warning|warn|error|exception|critical)\(.*\)\s*$)")


def _work_follows(data: bytes, call: CallFact, opener: Span) -> bool:
    """A statement runs after ``call`` inside the transaction: a line after the call's statement
    indented deeper than the ``with`` (or the decorated ``def``) that opened it."""
    end = (call.statement or call.span).end
    limit = _indent(data, opener.start)  # the ``with`` line's, or the decorated ``def``'s
    position = data.find(b"\n", end)
    while position >= 0:
        start = position + 1
        position = data.find(b"\n", start)
        line = data[start:position if position >= 0 else len(data)]
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        if text.startswith((b")", b"]", b"}")):
            continue  # the end of a multi-line call
        if len(line) - len(line.lstrip(b" \t")) <= limit:
            return False
        if _INERT.match(text):
            continue  # a log line, or leaving the block: nothing that can roll the transaction back
        return True
    return False


@register
class EnqueueInTransaction(Rule):
    """## What it does
    Checks for tasks enqueued inside a database transaction: a `.delay()`,
    `.apply_async()`, `send_task()` (or a canvas's `.delay()`), an RQ `enqueue(...)` or a
    Dramatiq `send_with_options(...)` inside `with transaction.atomic():` or in a function
    decorated with `@transaction.atomic`.

    ## Why is this bad?
    The message reaches the broker at once, but the rows the transaction writes become
    visible only when it commits. A worker can pick the task up first and fail with
    `DoesNotExist`, or read the old row; if the transaction rolls back, the task runs for
    changes that never happened (an email for an order that does not exist). Celery's guide:
    "If the asynchronous task starts executing before the transaction is committed, it may
    attempt to query the article object before it exists." Enqueue from Django's
    `transaction.on_commit(...)` instead, which runs the call after a successful commit and
    drops it on rollback; Celery >= 5.4 spells it `task.delay_on_commit(...)`.

    ## Example
    ```python
    from django.db import transaction

    def place_order(cart):
        with transaction.atomic():
            order = Order.objects.create(cart=cart)
            send_confirmation.delay(order.pk)
    ```

    Use instead:
    ```python
    from django.db import transaction

    def place_order(cart):
        with transaction.atomic():
            order = Order.objects.create(cart=cart)
            send_confirmation.delay_on_commit(order.pk)
    ```

    ## Per framework
    - **Celery**: `task.delay(...)`, `task.apply_async(...)`, `app.send_task(...)`,
      `group(...).delay()` / `task.s(...).delay()` in the block. `delay_on_commit` and
      `apply_async_on_commit` (Celery >= 5.4, `celery.contrib.django.task.DjangoTask`,
      the default task class of an app configured with Django) are the remedy, as is
      `transaction.on_commit(lambda: task.delay(...))`. Signatures (`task.s(x)`) send
      nothing by themselves and are not reported.
    - **RQ**: `queue.enqueue(f, ...)`, `enqueue_call`, `enqueue_in`, `enqueue_at` in the
      block (django-rq included): `transaction.on_commit(lambda: queue.enqueue(f, pk))`.
    - **Dramatiq**: `actor.send_with_options(...)` in the block:
      `transaction.on_commit(lambda: actor.send_with_options(args=(pk,)))`.

    ## Fix safety
    The fix is unsafe. For a Celery task on Django's task class, when the project's Celery
    is 5.4 or later (read from its lock or requirements file; the latest version qlint knows
    when none pins it, as the message says), `.delay(...)` becomes `.delay_on_commit(...)`
    and `.apply_async(...)` becomes `.apply_async_on_commit(...)`; otherwise, when the file
    imports `django.db.transaction` (or its `on_commit`), the call is wrapped in
    `transaction.on_commit(lambda: ...)`. Either way the task is no longer sent when the
    transaction rolls back, and it is sent later than before: code after the block that
    expects it queued (tests that do not commit, `TestCase` without
    `captureOnCommitCallbacks`) sees nothing. Both return `None`, so no fix is offered when
    the call's value is used; the lambda reads its arguments at commit time, so no lambda
    is offered inside a loop.

    ## References
    - [Celery: Database transactions](https://docs.celeryq.dev/en/stable/userguide/tasks.html#database-transactions)
    - [Celery: celery.contrib.django.task](https://docs.celeryq.dev/en/stable/reference/celery.contrib.django.task.html)
    - [Django: Performing actions after commit](https://docs.djangoproject.com/en/stable/topics/db/transactions/#performing-actions-after-commit)
    """

    code = "QLT602"
    name = "enqueue-in-transaction"
    summary = "Task enqueued inside a database transaction can run before the transaction commits"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq")

    VALID = [
        Valid("""
from django.db import transaction
from celery import shared_task

@shared_task
def sync_batch(offset):
    pass

def sync(offset):
    with transaction.atomic():
        copy_rows(offset)
        if offset < 1000:
            sync_batch.apply_async(kwargs={"offset": offset + 100}, countdown=300)
    log_done(offset)
""", note="held 300 s by the broker, and the last thing the transaction does: it cannot run before the commit, "
          "and nothing after it can roll the transaction back"),
        Valid("""
from django.db import transaction
from celery import shared_task

@shared_task
def sync_batch(offset=0, countdown=300):
    with transaction.atomic():
        copy_rows(offset)
        if offset < 1000:
            sync_batch.apply_async(kwargs={"offset": offset + 100, "countdown": countdown}, countdown=countdown)
        logger.info("copied %s", offset)
        return
""", note="a batch task passing on its own countdown parameter: judged by its default (300 s); only a log line "
          "and a return follow"),
        Valid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/tasks.py": """
from django.db import transaction
from proj.celery import app

@app.task
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        send_confirmation.delay_on_commit(order.pk)
        transaction.on_commit(lambda: send_confirmation.delay(order.pk))
        transaction.on_commit(
            lambda: send_confirmation.apply_async(args=(order.pk,), countdown=5)
        )
""",
        }, note="the deferred forms are the remedy"),
        Valid("""
from django.db import transaction
from celery import shared_task

@shared_task
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        signature = send_confirmation.s(order.pk)
    send_confirmation.delay(order.pk)
    return signature
""", note="after the block; a signature sends nothing"),
        Valid("""
from django.db import transaction
from celery import shared_task

@shared_task
def send_confirmation(order_id):
    pass

@transaction.non_atomic_requests
def view(request):
    with open("x") as fh, lock:
        send_confirmation.delay(1)

@transaction.atomic
def place_order(cart):
    def notify():
        send_confirmation.delay(cart.pk)
    transaction.on_commit(notify)
""", note="other decorators and context managers; a callback defined in the atomic function"),
        Valid("""
from rq import Queue
from redis import Redis
from django.db import transaction

queue = Queue(connection=Redis())

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
    queue.enqueue(send_confirmation, order.pk)
""", note="RQ: enqueued after the block"),
        Valid("""
from django.conf import settings
from django.db import transaction
from celery import shared_task

@shared_task
def send_confirmation(order_id):
    pass

def resend(order_ids):
    with transaction.atomic(using=settings.DATABASE_REPLICA, savepoint=False):
        for order_id in order_ids:
            send_confirmation.delay(order_id)
""", note="a transaction on a read replica writes nothing the task could miss"),
    ]
    INVALID = [
        Invalid("""
from django.db import transaction
from celery import shared_task

@shared_task
def notify(order_id):
    pass

def place(order):
    with transaction.atomic():
        notify.apply_async((order.id,), countdown=60)
        order.save()
""", expect=10, fixed="""
from django.db import transaction
from celery import shared_task

@shared_task
def notify(order_id):
    pass

def place(order):
    with transaction.atomic():
        transaction.on_commit(lambda: notify.apply_async((order.id,), countdown=60))
        order.save()
""", note="a countdown, but the save after it can still roll the transaction back"),
        Invalid("""
from django.db import transaction
from celery import shared_task

@shared_task
def notify(order_id):
    pass

def place(order, delay, wait=0):
    with transaction.atomic():
        order.save()
        notify.apply_async((order.id,), countdown=delay)
        notify.apply_async((order.id,), countdown=wait)
""", expect=[11, 12], fixed="""
from django.db import transaction
from celery import shared_task

@shared_task
def notify(order_id):
    pass

def place(order, delay, wait=0):
    with transaction.atomic():
        order.save()
        transaction.on_commit(lambda: notify.apply_async((order.id,), countdown=delay))
        transaction.on_commit(lambda: notify.apply_async((order.id,), countdown=wait))
""", note="a countdown parameter with no default, or a default of 0: the message may go at once"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/tasks.py": """
from django.db import transaction
from proj.celery import app

@app.task
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        send_confirmation.delay(order.pk)
        send_confirmation.apply_async(args=(order.pk,), countdown=10)
        result = send_confirmation.delay(order.pk)
    return result
""",
            "requirements.txt": "Django==5.1\ncelery[redis]==5.4.0\n",
        }, expect=[("proj/tasks.py", 11), ("proj/tasks.py", 12), ("proj/tasks.py", 13)], fixed={"proj/tasks.py": """
from django.db import transaction
from proj.celery import app

@app.task
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        send_confirmation.delay_on_commit(order.pk)
        send_confirmation.apply_async_on_commit(args=(order.pk,), countdown=10)
        result = send_confirmation.delay(order.pk)
    return result
"""}, message="before the transaction commits",
            note="Django task on Celery 5.4 (requirements.txt): delay_on_commit; no fix when the value is used"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
""",
            "proj/tasks.py": """
from django.db import transaction
from proj.celery import app

@app.task
def send_confirmation(order_id):
    pass

@transaction.atomic
def place_order(cart):
    order = cart.checkout()
    send_confirmation.delay(order.pk)
""",
            "requirements.txt": "celery==5.3.6\n",
        }, expect=[("proj/tasks.py", 11)], fixed={"proj/tasks.py": """
from django.db import transaction
from proj.celery import app

@app.task
def send_confirmation(order_id):
    pass

@transaction.atomic
def place_order(cart):
    order = cart.checkout()
    transaction.on_commit(lambda: send_confirmation.delay(order.pk))
"""}, message="`@transaction.atomic`", note="Celery 5.3 has no delay_on_commit: on_commit(lambda: ...)"),
        Invalid("""
from celery import Celery, Task, group
from django.db.transaction import atomic

app = Celery("proj")

class Plain(Task):
    pass

@app.task(base=Plain)
def send_confirmation(order_id):
    pass

def place_order(cart, orders):
    with atomic(using="default"):
        for order in orders:
            send_confirmation.delay(order.pk)
        group(send_confirmation.s(o.pk) for o in orders).delay()
        app.send_task("proj.tasks.audit", args=(cart.pk,))
""", expect=[16, 17, 18], note="a base that is not DjangoTask, a loop, a canvas, send_task: no fix without "
                              "`transaction` imported, none in a loop"),
        Invalid("""
from django.db import transaction
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        queue.enqueue(send_confirmation, order.pk)
""", expect=10, fixed="""
from django.db import transaction
from redis import Redis
from rq import Queue

queue = Queue(connection=Redis())

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        transaction.on_commit(lambda: queue.enqueue(send_confirmation, order.pk))
""", note="RQ"),
        Invalid("""
import dramatiq
from django.db import transaction

@dramatiq.actor
def send_confirmation(order_id):
    pass

@transaction.atomic()
def place_order(cart):
    order = cart.checkout()
    send_confirmation.send_with_options(args=(order.pk,), delay=1000)
""", expect=11, fixed="""
import dramatiq
from django.db import transaction

@dramatiq.actor
def send_confirmation(order_id):
    pass

@transaction.atomic()
def place_order(cart):
    order = cart.checkout()
    transaction.on_commit(
        lambda: send_confirmation.send_with_options(args=(order.pk,), delay=1000),
    )
""", note="Dramatiq"),
        Invalid("""
import dramatiq
from django.db import transaction

@dramatiq.actor
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        send_confirmation.send(order.pk)
""", expect=11, fixed="""
import dramatiq
from django.db import transaction

@dramatiq.actor
def send_confirmation(order_id):
    pass

def place_order(cart):
    with transaction.atomic():
        order = cart.checkout()
        transaction.on_commit(lambda: send_confirmation.send(order.pk))
""", note="Dramatiq `send`"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        by_file: dict[str, list[Site]] = {}
        for site in project.sites:
            by_file.setdefault(site.file.path, []).append(site)
            if not sends_message(site):
                continue
            call = site.call
            fn = enclosing_function(site)
            block = atomic_block(project, call, fn, ctx.source(site.file).utf8)
            if block is None or self._deferred(ctx, site.file, call, fn):
                continue
            if _delayed(project, site, fn) and not _work_follows(ctx.source(site.file).utf8, call, block[1]):
                # It cannot start before the commit, and nothing after it in the transaction can
                # roll the transaction back: only a failing COMMIT could, which no remedy changes.
                continue
            fix, remedy = self._fix(ctx, site, call)
            self._report(ctx, site.file, call, f"`{call.dotted}(...)`", block, remedy, fix)
        for sites in by_file.values():
            facts = sites[0].file
            scopes: list[tuple[FunctionFact | None, list[CallFact]]] = [(fn, fn.calls) for fn in facts.functions]
            inside = {id(c) for fn in facts.functions for c in fn.calls}
            scopes.append((None, [c for c in facts.calls if id(c) not in inside]))
            for fn, calls in scopes:
                for call, text in canvas_sends(project, calls, sites):
                    block = atomic_block(project, call, fn, ctx.source(facts).utf8)
                    if block is None or self._deferred(ctx, facts, call, fn):
                        continue
                    fix, remedy = self._wrap(ctx, facts, call)
                    self._report(ctx, facts, call, text, block, remedy, fix)

    def _deferred(self, ctx: RuleContext, facts: FileFacts, call: CallFact, fn: FunctionFact | None) -> bool:
        return deferred_by_on_commit(ctx.project, call, fn, facts) or in_lambda(ctx.source(facts).utf8, call)

    def _report(self, ctx: RuleContext, facts: FileFacts, call: CallFact, text: str, block, remedy: str,
                fix: Fix | None) -> None:
        how, span = block
        line = ctx.source(facts).row_of(span.start)
        ctx.report(facts, call.span,
                   f"{text} runs inside {how} (line {line}): the task can start before the transaction commits and "
                   "not find the rows it wrote, or run for changes that are rolled back; " + remedy,
                   fix=fix, statement=call.statement)

    def _fix(self, ctx: RuleContext, site: Site, call: CallFact) -> tuple[Fix | None, str]:
        after = after_commit_method(ctx.project, site, ctx.settings.root)
        if after is not None:
            method, version = after
            remedy = f"call `{call.receiver}.{method}(...)` instead ({version})"
            src = ctx.source(site.file)
            start = call.func_end - len(call.method)
            if not is_bare_statement(call) or src.utf8[start:call.func_end] != call.method.encode():
                return None, remedy
            return ctx.fix(site.file, f"Use `{method}` ({version})",
                           rename_method(src, call, method, ctx.line_length)), remedy
        return self._wrap(ctx, site.file, call)

    def _wrap(self, ctx: RuleContext, facts: FileFacts, call: CallFact) -> tuple[Fix | None, str]:
        remedy = "enqueue it from `transaction.on_commit(...)`"
        module, on_commit = transaction_names(facts)
        callee = f"{module}.on_commit" if module else on_commit
        if callee is None or not is_bare_statement(call) or call.in_loop:
            return None, remedy
        return ctx.fix(facts, "Enqueue from `transaction.on_commit`",
                       wrap_call(ctx.source(facts), call, callee, "lambda: ", ctx.line_length)), remedy
