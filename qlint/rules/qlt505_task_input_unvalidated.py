from __future__ import annotations

import ast
import math
import re

from qlint.frameworks import validation
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import FunctionFact, Param
from qlint.lint.model import Project, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.lint.trees import Trees, own_nodes
from qlint.rules._common import number_text, retries_after, task_functions

# Builtins that do no work a failed task would leave half done (conversions, checks, lookups).
PURE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "enumerate", "float", "frozenset", "getattr", "hasattr", "int",
    "isinstance", "issubclass", "len", "list", "max", "min", "range", "repr", "reversed", "set", "sorted",
    "str", "sum", "tuple", "type", "zip",
})
# Handler types that catch a ``KeyError``/``TypeError`` from a read (``except KeyError`` and
# ``except TypeError`` already count as validation).
CATCHES_READ_ERRORS = frozenset({"Exception", "BaseException", "LookupError", "KeyError", "TypeError"})


def _handler_catches(handler: ast.ExceptHandler) -> bool:
    """``except:``, ``except Exception`` (or a tuple with it) that does not raise again."""
    if handler.type is None:
        names = {"BaseException"}
    else:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names = {t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else "" for t in types}
    if not names & CATCHES_READ_ERRORS:
        return False
    return not any(isinstance(n, ast.Raise) for stmt in handler.body for n in [stmt, *own_nodes(stmt)])


class _Body:
    """Where the task's reads sit in its entry function: whether a read's error is caught, and
    whether work certainly ran before it."""

    def __init__(self, trees: Trees, src: SourceFile, fn: FunctionFact) -> None:
        self.node = trees.function(src, fn)
        self.starts = src.line_starts

    def _offset(self, node: ast.AST, end: bool = False) -> int:
        if end:
            return self.starts[node.end_lineno - 1] + node.end_col_offset
        return self.starts[node.lineno - 1] + node.col_offset

    def _blocks(self):
        """The statement lists of the function: its body and every block nested in it (not in
        nested functions), handlers' bodies included."""
        yield self.node.body
        for sub in own_nodes(self.node):
            for name in ("body", "orelse", "finalbody"):
                block = getattr(sub, name, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    yield block
            if isinstance(sub, ast.Try):
                for handler in sub.handlers:
                    yield handler.body

    def _inside(self, node: ast.AST, offset: int) -> bool:
        return self._offset(node) <= offset < self._offset(node, end=True)

    def caught(self, offset: int) -> bool | None:
        """Whether a ``KeyError`` at ``offset`` lands in a handler that swallows it (None: unknown)."""
        if self.node is None:
            return None
        for sub in own_nodes(self.node):
            if isinstance(sub, ast.Try) and any(self._inside(stmt, offset) for stmt in sub.body) and \
                    any(_handler_catches(h) for h in sub.handlers):
                return True
        return False

    def work_before(self, offset: int) -> bool:
        """A call (not a pure builtin) certainly ran before ``offset``: one in a statement before the
        read's in the same block or an enclosing one, or in the header of a statement holding the read."""
        if self.node is None:
            return False
        for block in self._blocks():
            for index, stmt in enumerate(block):
                if self._offset(stmt) > offset:
                    break
                if not (self._inside(stmt, offset) or any(self._inside(later, offset) for later in block[index + 1:])):
                    continue
                nested = {id(n) for name in ("body", "orelse", "finalbody", "handlers")
                          for inner in (getattr(stmt, name, None) or []) for n in [inner, *own_nodes(inner)]}
                for sub in [stmt, *own_nodes(stmt)]:
                    if not isinstance(sub, ast.Call) or id(sub) in nested or self._offset(sub, end=True) > offset:
                        continue
                    if isinstance(sub.func, ast.Name) and sub.func.id in PURE_BUILTINS:
                        continue
                    return True
        return False


def _retry_clause(project: Project, task: Task, errors: tuple[type[BaseException], ...]) -> str:
    """", and fails again on each of its 3 retries" when the framework surely retries the error."""
    counts = {error: retries_after(project, task, error) for error in errors}
    retried = [error for error, count in counts.items() if count is not None]
    if not retried:
        return ""
    count = counts[retried[0]]
    again = "fails again" if len(retried) == len(errors) else f"a `{retried[0].__name__}` fails again"
    if math.isinf(count):
        return f", and {again} on every retry, without end"
    return f", and {again} on each of its {number_text(count)} retr{'y' if count == 1 else 'ies'}"


# A value that carries input from outside the project: an HTTP request's data, JSON decoded from
# bytes another system sent.
_EXTERNAL = re.compile(r"(^|[^\w.])request\.|\.json\(\)|\bjson\.loads\(|\.get_json\(|\bloads\(")
# Enqueue methods whose positional and keyword arguments are the task's own.
_DIRECT = frozenset({"delay", "send", "kiq", "s", "si", "signature", "delay_on_commit", "enqueue", "enqueue_call",
                     "enqueue_in", "enqueue_at", "call_local"})
_PACKED = frozenset({"apply_async", "apply_async_on_commit", "send_with_options"})


def _passed(site, fn: FunctionFact, param: Param, bound: bool):
    """The value an enqueue hands to ``param``, as written; None when qlint cannot tell."""
    call = site.call
    if call is None or call.has_star and not call.kwargs:
        return None
    params = [p for p in fn.params if p.kind == "positional"][1 if bound else 0:]
    if call.method in _PACKED:
        packed = call.kwargs.get("kwargs")
        if packed is not None and packed.value.kind == "dict":
            for key, value in packed.value.items:
                if key.kind == "const" and key.value == param.name:
                    return value
        args = call.kwargs.get("args")
        positional = args.value.elements if args is not None and args.value.kind == "seq" else []
    else:
        if param.name in call.kwargs:
            return call.kwargs[param.name].value
        positional = list(call.args)
        if call.method.startswith("enqueue") and positional:
            positional = positional[1:]  # RQ's first argument is the function itself
    names = [p.name for p in params]
    if param.name in names and names.index(param.name) < len(positional):
        return positional[names.index(param.name)]
    return None


def _producer(ctx: RuleContext, task: Task, fn: FunctionFact, param: Param) -> str | None:
    """Where the task's messages come from, when that is outside the project's own code: no
    code of the project sends the task (another system, a replay, a hand), or a call site hands
    the parameter input from outside (an HTTP request's data, decoded JSON). None when every
    call site passes a value the project builds itself, in the same deploy."""
    sites = [s for s in ctx.project.sites if s.task is task and s.kind == "enqueue" and s.call is not None]
    if not sites:
        return "no code of the project sends it, so its messages come from elsewhere"
    bound = task.bound and task.function is not None
    for site in sites:
        value = _passed(site, fn, param, bound)
        if value is None:
            continue
        text = ctx.text(site.file, value.span)
        if value.kind == "name" and site.function is not None and value.dotted in site.function.local_calls:
            local = site.function.local_calls[value.dotted]
            text = ctx.text(site.file, local.span)
        if _EXTERNAL.search(text):
            where_ = f"{ctx.display(site.file.path)}:{ctx.source(site.file).row_of(value.span.start)}"
            return f"`{_short(text)}` reaches it from outside the project ({where_})"
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(param: Param) -> str:
    if param.kind == "kwarg":
        return f"`**{param.name}`"
    if not param.annotation:
        return f"the untyped argument `{param.name}`"
    return f"the argument `{param.name}: {param.annotation}`"


def _candidates(task: Task, fn: FunctionFact) -> list[Param]:
    """Message parameters whose shape nothing declares: untyped, ``dict``/``Any``, ``**kwargs``."""
    parsing = validation.parses_annotated(task)
    out = []
    for param in validation.message_params(task, fn):
        if param.kind == "vararg":
            continue
        if param.kind == "kwarg":
            if "Unpack" in param.annotation or len(fn.decorators) > 1:
                continue  # typed keywords; or another decorator may be what fills them
            out.append(param)
        elif validation.unparsed_annotation(param.annotation) if parsing else \
                validation.loose_annotation(param.annotation):
            out.append(param)
    return out


@register
class TaskInputUnvalidated(Rule):
    """## What it does
    Checks tasks that read keys of a parameter whose shape nothing declares (untyped, `dict`,
    `Dict[str, Any]`, `Any`, `Mapping`, or `**kwargs`), as `payload["email"]` or
    `payload.get("email")`, while nothing in the task validates its input.

    Validation is any of: the framework validating the arguments (Celery `pydantic=True`,
    Taskiq's parsing of annotated parameters), a validating call anywhere in the task's code
    (`Model.model_validate`, `parse_obj`, `TypeAdapter(...).validate_python`, marshmallow
    `Schema().load`, `jsonschema.validate`, Django `form.is_valid()`/`full_clean()`, a project
    function whose name says it validates), `Model(**payload)`, an `isinstance` guard on a
    parameter, a `"key" in payload` check, an `if` on a parameter that raises, an `assert`
    on a parameter, or an `except KeyError`/`TypeError`/`...ValidationError` handler.

    Parameters only passed along, ids and typed scalars are not reported, nor reads by
    position (`rows[0]`), nor `kwargs.get("flag")` (an optional keyword argument, spelled
    the long way), nor a read by key inside a `try` whose `except Exception` (or bare
    `except`) handler does not raise again: the task handles that failure.

    Only input that comes from outside the project's code is judged: a task no code of the
    project sends (another system, a replay, a hand sends its messages), or one a call site
    hands an HTTP request's data or decoded JSON. A task whose every producer is the project's
    own code, passing values it builds itself, is not reported: its message has the shape its
    producer, deployed with it, gives it.

    The message says only what holds for the task: "partway through the task, after the
    work done before the read" when a call certainly ran before the first read by key, and
    "fails again on each of its N retries" only when the framework surely retries a
    `KeyError`/`TypeError`: Celery's `autoretry_for` covering it (not exempted by
    `dont_autoretry_for`, with `max_retries` from `retry_kwargs` or the task), Dramatiq's
    retries (20 by default, unless `throws` lists it or `retry_when` decides), Huey's
    `retries`. A manual `self.retry(...)`, RQ's per-enqueue `Retry`, arq (which retries only
    on `Retry` and cancellation) and Taskiq (whose retry middlewares may be limited to some
    exception types) are never claimed.

    ## Why is this bad?
    A task's arguments are whatever the message on the broker says: during a rolling deploy
    an older producer sends the old shape to a newer worker (or the reverse), a message sent
    by another service, replayed from a dead-letter queue or by hand can hold anything. A
    task that indexes a raw dictionary then fails partway with `KeyError` or `TypeError`,
    after the side effects that ran before the read (an e-mail sent, a row written), and
    where the framework retries the error every retry fails the same way; with `.get()` a
    missing or misspelled field silently becomes `None` and the task does the wrong thing.
    Validating on entry turns a bad message into one clear error before any work is done,
    and documents the contract between producer and task.

    ## Example
    ```python
    from celery import shared_task

    @shared_task
    def send_receipt(payload: dict):
        send_mail(to=payload["email"], total=payload["total"])
    ```

    Use instead:
    ```python
    from celery import shared_task
    from pydantic import BaseModel

    class Receipt(BaseModel):
        email: str
        total: int

    @shared_task(pydantic=True)
    def send_receipt(payload: Receipt):
        send_mail(to=payload.email, total=payload.total)
    ```

    ## Per framework
    - **Celery**: `@app.task`/`@shared_task` functions and the `run` method of class-based
      tasks; the first parameter of a bound task is the task. `pydantic=True` (Celery >= 5.5)
      validates parameters annotated with a pydantic model: `def f(payload: dict)` →
      `@shared_task(pydantic=True)` + `def f(payload: Receipt)`.
    - **RQ**: `@job` functions and functions passed to `enqueue`: `def f(data): data["id"]`.
    - **Dramatiq**: actors and the `perform` method of `GenericActor`s:
      `@dramatiq.actor def f(event): event["type"]`.
    - **Huey**: `@huey.task()` functions (`task` is not an argument under `context=True`):
      `@huey.task() def f(msg): msg["to"]`.
    - **Taskiq**: only unannotated (or `Any`) parameters and `**kwargs`: Taskiq parses
      annotated parameters with pydantic before the task runs, so `def f(p: Receipt)` is
      not reported, `async def f(p): p["email"]` is.
    - **arq**: the parameters after `ctx` (which is arq's own dictionary):
      `async def f(ctx, job): job["url"]`.

    ## Known problems
    Validation done by the caller before enqueueing, or by a helper the task passes the
    payload to, is not seen; the task is then reported although the producer checks the
    shape. Conversely any validating call anywhere in the task counts, even on another
    value.

    ## Fix safety
    There is no fix: the model of the payload is the author's to write.

    ## References
    - [Celery: Argument validation with Pydantic](https://docs.celeryq.dev/en/stable/userguide/tasks.html#argument-validation-with-pydantic)
    - [Celery: Security](https://docs.celeryq.dev/en/stable/userguide/security.html)
    - [Taskiq: Parsing arguments](https://taskiq-python.github.io/guide/tasks.html)
    - [pydantic: Models](https://docs.pydantic.dev/latest/concepts/models/)
    """

    code = "QLT505"
    name = "task-input-unvalidated"
    summary = "Task reads keys of an untyped or `dict` argument that nothing validates"
    severity = Severity.INFO
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid("""
from celery import shared_task
from pydantic import BaseModel

class Receipt(BaseModel):
    email: str

@shared_task
def send_receipt(payload: dict):
    receipt = Receipt.model_validate(payload)
    send_mail(to=receipt.email, total=payload["total"])
""", note="model_validate anywhere in the task"),
        Valid("""
from celery import shared_task

@shared_task(pydantic=True)
def send_receipt(payload: dict, order):
    send_mail(to=payload["email"], total=order["total"])
""", note="pydantic=True: the framework validates the task's arguments"),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(payload):
    if not isinstance(payload, dict):
        raise TypeError("payload")
    send_mail(to=payload["email"])
""", note="an isinstance guard"),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(payload):
    if "email" not in payload:
        return
    send_mail(to=payload["email"])
""", note="a key membership check"),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(payload):
    if not payload.get("email"):
        raise ValueError("no e-mail in payload")
    send_mail(to=payload["email"])
""", note="a raise on a parameter check"),
        Valid("""
from celery import shared_task
from marshmallow import Schema, fields

class ReceiptSchema(Schema):
    email = fields.Email(required=True)

@shared_task
def send_receipt(payload):
    data = ReceiptSchema().load(payload)
    send_mail(to=data["email"])
""", note="marshmallow load"),
        Valid("""
import json
import jsonschema
from celery import shared_task

@shared_task
def send_receipt(raw):
    payload = json.loads(raw)
    jsonschema.validate(payload, SCHEMA)
    send_mail(to=payload["email"])
""", note="jsonschema.validate"),
        Valid("""
from celery import shared_task

@shared_task
def notify(user_id: int, context, ids):
    send_mail(user_id, context=context)
    first = ids[0]
""", note="a payload only passed along; ids read by position"),
        Valid("""
from celery import shared_task

@shared_task
def cleanup(**kwargs):
    dry_run = kwargs.get("dry_run", False)
    region = kwargs.get("region")
""", note="optional keyword arguments read through kwargs.get"),
        Valid("""
from celery import shared_task
from .schemas import Receipt

@shared_task
def send_receipt(payload: Receipt):
    send_mail(to=payload["email"])
""", note="the parameter declares its type"),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(payload):
    try:
        email = payload["email"]
    except KeyError:
        return
    send_mail(to=email)
""", note="the task handles a missing key"),
        Valid("""
from celery import shared_task

@shared_task(bind=True)
def send_receipt(self, payload: dict):
    config = MailConfig(**payload)
    send_mail(to=config.email, retries=self.request["retries"])
""", note="Model(**payload) checks the keys; `self` is the task"),
        Valid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def send_receipt(payload: dict[str, str]):
    send_mail(to=payload["email"])
""", note="Taskiq parses annotated parameters"),
        Valid("""
from celery import shared_task

@shared_task
def send_receipt(payload: dict):
    try:
        send_mail(to=payload["email"])
    except Exception:
        log_failure(payload)
        return
""", note="the read's error is handled by the task"),
        Valid("""
from arq import cron

async def send_receipt(ctx, user_id: int):
    redis = ctx["redis"]
    await redis.get(user_id)

class WorkerSettings:
    functions = [send_receipt]
""", note="arq's ctx is the framework's own dictionary"),
        Valid({
            "shop/__init__.py": "",
            "shop/tasks.py": """
from celery import shared_task

@shared_task
def send_receipt(payload: dict):
    send_mail(to=payload["email"], total=payload["total"])

def checkout(order):
    send_receipt.delay({"email": order.email, "total": order.total})
""",
        }, note="every producer is the project's own code, passing a mapping it builds: a shape it controls"),
    ]
    INVALID = [
        Invalid({
            "shop/__init__.py": "",
            "shop/tasks.py": """
from celery import shared_task

@shared_task
def export(data):
    build_report(data.get("x_axis"), data.get("y_axis"))
""",
            "shop/views.py": """
from shop.tasks import export

def request_export(request):
    export.delay(data=request.data)
""",
        }, expect=[("shop/tasks.py", 3)], message="`request.data` reaches it from outside the project (shop/views.py:4)",
            note="a call site hands it an HTTP request's data"),
        Invalid("""
from celery import shared_task

@shared_task
def send_receipt(payload: dict):
    send_mail(to=payload["email"], total=payload["total"])
""", expect=3, message='`payload["email"]`'),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
""",
            "proj/tasks.py": """
from typing import Any, Optional

from proj.celery import app

@app.task(bind=True, max_retries=3)
def charge(self, order: Optional[dict[str, Any]], amount: int):
    total = order.get("total")
    charge_card(order["card"], total)

@app.task
def sync(**kwargs):
    account = kwargs["account"]
""",
        }, expect=[("proj/tasks.py", 5), ("proj/tasks.py", 10)],
            note="Optional[dict], a bound task, **kwargs read by key"),
        Invalid("""
from celery import Celery, Task

app = Celery("proj")

class Import(Task):
    def run(self, row):
        save(row["sku"], row["price"])

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if not isinstance(args, tuple):
            raise TypeError(args)
""", expect=5, message="KeyError", note="class-based task: the run method's arguments"),
        Invalid("""
from celery import shared_task

@shared_task(autoretry_for=(Exception,), max_retries=4)
def send_receipt(payload: dict):
    order = create_order(payload)
    send_mail(to=payload["email"], order=order)
""", expect=3, message="fails with `KeyError` or `TypeError` partway through the task, after the work done before "
                       "the read, and fails again on each of its 4 retries",
            note="autoretry_for retries the KeyError, after the order was created"),
        Invalid("""
from rq.decorators import job

@job("default")
def resize(data):
    resize_image(data["path"], data["width"])
""", expect=3, note="RQ job"),
        Invalid("""
import dramatiq

@dramatiq.actor(max_retries=3)
def handle(event):
    if event.get("type") == "signup":
        welcome(event.get("user"))
""", expect=3, message="`None`", note="Dramatiq actor, reads through .get()"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(context=True)
def deliver(message, task=None):
    send(message["to"], message["body"])
""", expect=5, note="Huey task"),
        Invalid("""
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def deliver(message, retries: int = 3):
    await send(message["to"])
""", expect=5, message="Taskiq", note="Taskiq: an unannotated parameter is not parsed"),
        Invalid("""
from arq.connections import RedisSettings

async def fetch(ctx, job):
    session = ctx["session"]
    await session.get(job["url"])

class WorkerSettings:
    functions = [fetch]
    redis_settings = RedisSettings()
""", expect=3, note="arq: the parameters after ctx"),
    ]

    def check(self, ctx: RuleContext) -> None:
        trees = ctx.trees
        for task in ctx.project.tasks:
            if task.profile is None:
                continue
            option = validation.validating_option(task)
            if option is not None and (validation.validates_arguments(task) or
                                       validation.option_unknown(task, option)):
                continue
            fn = validation.entry_function(task)
            if fn is None:
                continue
            candidates = {p.name: p for p in _candidates(task, fn)}
            quick = [name for name in candidates if name in fn.subscripted or any(
                c.method == "get" and c.receiver == name for c in fn.calls)]
            if not quick:
                continue
            # The entry function and the task methods it calls (``self.parse(...)``), not hooks
            # such as ``on_failure`` that see the arguments after the fact.
            functions = [fn] + [f for f in task_functions(ctx.project, task)
                                if f is not fn and f.name in fn.self_attrs]
            body = validation.analyse_task(trees, ctx.source(task.file), quick, functions)
            if body.validation:
                continue
            # ``kwargs.get("flag")`` is an optional keyword argument, spelled the long way.
            reads = [r for r in body.reads if not (r[1] != "subscript" and candidates[r[0]].kind == "kwarg")]
            if not reads:
                continue
            self._report(ctx, trees, task, fn, candidates, reads)

    def _report(self, ctx: RuleContext, trees: Trees, task: Task, fn: FunctionFact, candidates: dict[str, Param], reads) -> None:
        body = _Body(trees, ctx.source(task.file), fn)
        # A read whose error a broad handler swallows does not fail the task.
        failing = [r for r in reads if r[1] == "subscript" and body.caught(r[3]) is False]
        gets = [r for r in reads if r[1] != "subscript"]
        if failing:
            name, _how, text, offset = failing[0]
            param = candidates[name]
            errors = (KeyError,) if param.kind == "kwarg" else (KeyError, TypeError)
            shown = " or ".join(f"`{e.__name__}`" for e in errors)
            where_ = " partway through the task, after the work done before the read" if body.work_before(offset) \
                else ""
            outcome = ("a message of another shape (an older producer during a deploy, a replayed or hand-sent "
                       f"message) fails with {shown}{where_}{_retry_clause(ctx.project, task, errors)}")
        elif gets:
            name, _how, text, _offset = gets[0]
            param = candidates[name]
            outcome = ("a missing or misspelled field comes through as `None` (or a wrong type) and the task "
                       "carries on with it")
        else:
            return  # every read by key is inside a handler that catches its error
        producer = _producer(ctx, task, fn, param)
        if producer is None:
            return  # every producer is the project's own code, passing what it builds itself
        title = task.profile.title if task.profile else ""
        others = len({r[2] for r in reads}) - 1
        more = f" (and {others} other read{'s' if others > 1 else ''})" if others > 0 else ""
        message = (f"{title} task `{task.function.name if task.function else task.name}` reads `{text}`{more} from "
                   f"{_describe(param)} and nothing validates it ({producer}): {outcome}; {validation.remedy(task)}")
        ctx.report(task.file, task.anchor, message, statement=task.header)
