from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.extract import dotted_name as _dotted
from qlint.lint.facts import FunctionFact, HandlerFact, Span
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.rules._common import task_functions

BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})
# Task methods that run around the task, not as its body: a try there guards the hook itself.
HOOK_PREFIXES = ("on_", "after_", "before_", "__")
# Calls that hand the work back to the queue from a handler: a manual retry.
REQUEUE_METHODS = frozenset({"retry", "apply_async", "delay", "send", "send_with_options", "kiq", "schedule",
                             "enqueue", "enqueue_in", "enqueue_at", "enqueue_job", "signature", "s", "si"})



# -- the clause and the code after the ``try``, read from the source --------------------------

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


@dataclass
class _Clause:
    body: Span  # the clause's block
    statements: list[ast.stmt] | None  # its statements, None when they could not be read
    after: list[ast.stmt] | None  # the function's top-level statements after the whole ``try``
    header_end: int = 0  # just past the header's colon


def header_colon(data: bytes, start: int) -> int:
    """The offset just past the colon that ends the ``except`` header starting at ``start``
    (``HandlerFact.span`` can end at a colon inside a trailing comment: ``# noqa: BLE001``)."""
    depth = 0
    i = start
    while i < len(data):
        char = data[i:i + 1]
        if char == b"#":
            nl = data.find(b"\n", i)
            i = len(data) if nl < 0 else nl
            continue
        if char in (b"(", b"[", b"{"):
            depth += 1
        elif char in (b")", b"]", b"}"):
            depth -= 1
        elif char == b":" and depth == 0:
            return i + 1
        i += 1
    return len(data)


def _read_clause(src: SourceFile, handler: HandlerFact) -> _Clause:
    """Split the source around a top-level ``except`` clause by indentation: its block, and
    what the function runs after the ``try`` statement (its ``except``/``else``/``finally``
    clauses included) ends."""
    rows = src.text.split("\n")
    row = src.row_of(handler.span.start)  # 1-based
    indent = _indent(rows[row - 1])
    colon = header_colon(src.utf8, handler.span.start)
    line_end = src.utf8.find(b"\n", colon)
    line_end = len(src.utf8) if line_end < 0 else line_end
    inline = src.utf8[colon:line_end].decode("utf-8", "replace")
    row = src.row_of(colon - 1)  # the header may span lines: ``except (A,\n B):``
    index = row  # 0-based index of the line after the header
    block: list[str] = []
    if _code(inline.split("#")[0]):
        block = [inline.strip()]
        body = Span(colon, line_end)
    else:
        last = row - 1
        while index < len(rows) and (not _code(rows[index]) or _indent(rows[index]) > indent):
            if _code(rows[index]):
                last = index
            index += 1
        block = rows[row:last + 1]
        end = src.line_starts[last] + len(rows[last].encode("utf-8")) if last >= row else line_end
        body = Span(colon, end)
        index = last + 1
    # The rest of the ``try``: later clauses at the same indentation, with their blocks.
    while index < len(rows):
        line = rows[index]
        if not _code(line) or _indent(line) > indent:
            index += 1
            continue
        if _indent(line) == indent and re.match(r"(except\b|else\s*:|finally\s*:)", line.strip()):
            index += 1
            continue
        break
    after_rows = []
    while index < len(rows) and (not _code(rows[index]) or _indent(rows[index]) >= indent):
        after_rows.append(rows[index])
        index += 1
    return _Clause(body, _parse(block), _parse(after_rows), colon)


def _parse(lines: list[str]) -> list[ast.stmt] | None:
    text = textwrap.dedent("\n".join(lines))
    try:
        return ast.parse(text).body
    except SyntaxError:
        return None


_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log",
                          "msg"})
_SIMPLE_CALLS = frozenset({"str", "repr", "type", "len", "format", "getattr", "isinstance"})


def _logs(call: ast.Call) -> bool:
    """``logger.exception(...)``, ``log.warning(...)``, ``current_app.logger.error(...)``, ``print(...)``."""
    name = _dotted(call.func)
    if name in ("print", "traceback.print_exc", "warnings.warn"):
        return True
    receiver, _, method = name.rpartition(".")
    return method in _LOG_METHODS and "log" in receiver.rpartition(".")[2].lower()


def _plain(node: ast.AST) -> bool:
    """An expression that computes a value without doing anything (a message, a flag)."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            name = _dotted(inner.func)
            if name not in _SIMPLE_CALLS and not name.endswith(".format"):
                return False
        elif isinstance(inner, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
    return True


def _only_logs(statements: list[ast.stmt]) -> bool:
    """Statements that log, pass, return or compute a local value, and do nothing else: the
    failure is dropped, not handled (an alert, a status saved, an error tracker's capture)."""
    for stmt in statements:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Return):
            if stmt.value is not None and not _plain(stmt.value):
                return False
            continue
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Constant):
                continue
            if isinstance(value, ast.Call) and _logs(value) and all(_plain(a) for a in value.args) and all(
                    _plain(k.value) for k in value.keywords):
                continue
            return False
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(isinstance(t, ast.Name) for t in targets) and stmt.value is not None and _plain(stmt.value):
                continue
            return False
        if isinstance(stmt, ast.If) and _plain(stmt.test) and _only_logs(stmt.body) and _only_logs(stmt.orelse):
            continue
        return False
    return True


def _returns(statements: list[ast.stmt]) -> bool:
    return bool(statements) and isinstance(statements[-1], ast.Return)


def _inside(span: Span, body: Span) -> bool:
    return body.start <= span.start < body.end


@register
class TaskFailureSwallowed(Rule):
    """## What it does
    Checks for a `try` statement at the top level of a task's body whose `except
    Exception:`, `except BaseException:` or bare `except:` clause neither re-raises, nor
    raises another exception, nor retries the task, but only logs (or passes, or returns)
    and lets the task end: the clause returns, or nothing but a `return` follows the `try`.

    ## Why is this bad?
    The framework decides what to do with a task by whether it raises. A task that catches
    every exception around its work and only logs (or passes) returns normally: it is
    recorded as a success, its retries (`autoretry_for`, Dramatiq's and Huey's retries,
    RQ's `Retry`) never run, failure hooks and `task_failure` receivers are not called, the
    message is not dead-lettered, and error trackers that hook the framework see nothing.
    A line in the log is the only trace of work that did not happen.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5)
    def sync_customer(customer_id):
        try:
            push_to_crm(customer_id)
        except Exception:
            logger.exception("sync failed for %s", customer_id)
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5)
    def sync_customer(customer_id):
        try:
            push_to_crm(customer_id)
        except Exception:
            logger.exception("sync failed for %s", customer_id)
            raise
    ```

    ## Per framework
    - **Celery**: `@shared_task` / `@app.task` functions and the `run` method of task
      classes; `self.retry(...)` in the clause counts as handling it.
      `try: ... except Exception: logger.exception(...)`.
    - **RQ**: functions decorated with `@job` or enqueued with `Queue.enqueue`; the job
      then never reaches the `FailedJobRegistry` and its `Retry` never runs.
      `try: ... except Exception: return None`.
    - **Dramatiq**: actors and `GenericActor.perform`; the `Retries` middleware (20
      retries by default) never sees the error. `try: ... except: pass`.
    - **Huey**: `@huey.task()` / `@huey.periodic_task()` / `db_task`; `retries=` never
      fire and `SIGNAL_ERROR` is not sent. `try: ... except BaseException: pass`.
    - **Taskiq**: `@broker.task`; the result is not an error, so retry middleware does not
      retry it. `try: ... except Exception: logger.warning(...)`.
    - **arq**: functions of `WorkerSettings`; the job's result is a success.
      `try: ... except Exception: return False`.

    Not reported:
    - a clause that raises anything (`raise`, `raise TaskError(...) from exc`,
      `raise Reject(...)`, `raise Retry(...)`) or re-enqueues the task;
    - a clause that does something about the failure besides logging: an error tracker's
      `capture_exception(...)`, an alert, a failure status saved on a model;
    - a step allowed to fail, after which the task goes on with more work;
    - a `try` nested in a loop or another block, where catching one item's error may be
      intended;
    - hook methods (`on_failure`, `after_return`, ...), which are not the task's body.

    ## Fix safety
    There is no fix: whether the task should fail, retry or deliberately carry on is a
    decision about the task. Suppress the finding with `# noqa: QLT305` where giving up
    quietly is intended.

    ## References
    - [Celery: Retrying](https://docs.celeryq.dev/en/stable/userguide/tasks.html#retrying)
    - [RQ: Dealing with exceptions](https://python-rq.org/docs/exceptions/)
    - [Dramatiq: Error handling](https://dramatiq.io/guide.html#error-handling)
    - [Huey: Retrying tasks that fail](https://huey.readthedocs.io/en/latest/guide.html#retrying-tasks-that-fail)
    - [arq: Retrying jobs](https://arq-docs.helpmanual.io/#retrying-jobs-and-cancellation)
    """

    code = "QLT305"
    name = "task-failure-swallowed"
    summary = "A catch-all `except` around a task's body hides its failures from the framework"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid("""
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.exception("sync failed for %s", customer_id)
        raise
""", note="logs and re-raises"),
        Valid("""
from celery import shared_task

class SyncError(Exception):
    pass

@shared_task(bind=True, max_retries=5)
def sync_customer(self, customer_id):
    try:
        push_to_crm(customer_id)
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=30)
    except Exception as exc:
        notify(customer_id)
        raise SyncError(str(exc))
""", note="a retry, and another exception raised in the catch-all"),
        Valid("""
from celery import shared_task

@shared_task
def sync_all(customer_ids):
    for customer_id in customer_ids:
        try:
            push_to_crm(customer_id)
        except Exception:
            logger.exception("sync failed for %s", customer_id)
""", note="one item's failure inside a loop: not the task's"),
        Valid("""
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except (KeyError, ValueError):
        logger.warning("bad record %s", customer_id)

def helper():
    try:
        pass
    except Exception:
        pass
""", note="narrow exceptions; a function that is not a task"),
        Valid("""
from celery import shared_task

@shared_task
def sync_customer(customer_id, attempt=0):
    try:
        push_to_crm(customer_id)
    except Exception:
        sync_customer.apply_async((customer_id, attempt + 1), countdown=60)
""", note="a manual retry: the task re-enqueues itself"),
        Valid("""
from celery import shared_task
from sentry_sdk import capture_exception

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception as exc:
        capture_exception(exc)

@shared_task
def import_project(job_id):
    job = Job.objects.get(pk=job_id)
    try:
        run_import(job)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        job.status = "failed"
        job.save()
""", note="the failure goes to an error tracker; it is recorded on a model"),
        Valid("""
from celery import shared_task

@shared_task
def sync_versions(project_id):
    added = sync(project_id)
    try:
        run_automation_rules(project_id, added)
    except Exception:
        # Do not stop the sync if a rule fails.
        logger.exception("automation rules failed")
    update_latest_version(project_id)
""", note="a step allowed to fail: the task goes on"),
        Valid({
            "tests/conftest.py": """
from celery import shared_task

@shared_task
def fake_fetch(url):
    try:
        return open(url).read()
    except Exception:
        return None
""",
        }, note="a task a test defines"),
        Valid("""
from celery import Celery, Task

app = Celery("proj")

class Sync(Task):
    def run(self, customer_id):
        push_to_crm(customer_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        try:
            alert(exc)
        except Exception:
            pass
""", note="a hook method guarding itself is not the task's body"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task(autoretry_for=(ConnectionError,), max_retries=5)
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.exception("sync failed for %s", customer_id)
""", expect=7, message="`autoretry_for`"),
        Invalid("""
import dramatiq

@dramatiq.actor
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except:
        pass
""", expect=7, message="Dramatiq records"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(retries=3, retry_delay=10)
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except BaseException as exc:
        print(exc)
        return None
    finally:
        cleanup()
""", expect=9, message="`except BaseException`"),
        Invalid("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis())
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}
""", expect=8, message="RQ"),
        Invalid("""
from arq import cron

async def sync_customer(ctx, customer_id):
    try:
        await push_to_crm(customer_id)
    except (ValueError, Exception):
        return False

class WorkerSettings:
    functions = [sync_customer]
""", expect=6, message="arq"),
        Invalid("""
import logging

from taskiq_redis import ListQueueBroker

broker = ListQueueBroker("redis://redis:6379")

@broker.task(retry_on_error=True, max_retries=3)
async def sync_customer(customer_id: int) -> None:
    try:
        await push_to_crm(customer_id)
    except Exception:
        logging.warning("sync failed for %s", customer_id)
""", expect=11, message="Taskiq"),
        Invalid("""
import dramatiq

class SyncCustomer(dramatiq.GenericActor):
    class Meta:
        max_retries = 3

    def perform(self, customer_id):
        try:
            push_to_crm(customer_id)
        except Exception:
            self.logger.exception("sync failed")
""", expect=10, message="Dramatiq", note="a class-based actor's perform"),
        Invalid("""
from celery import shared_task

@shared_task
def delete_documents(ids):
    logger.info("deleting %s", ids)
    try:
        Document.objects.filter(id__in=ids).delete()
    except (
        Exception
    ) as exc:
        if "too long" in str(exc):
            logger.warning("incompatible column")
        logger.error(f"Error deleting documents: {exc!s}")

    return "OK"
""", expect=8, message="Celery records the task as successful",
            note="a multi-line clause header; only a return follows the try"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        for task in project.tasks:
            for fn in task_functions(project, task):
                if task.cls is not None and fn.name.startswith(HOOK_PREFIXES):
                    continue
                for handler in fn.handlers:
                    if not handler.top_level or handler.reraises or handler.calls_retry:
                        continue
                    if handler.types and not any(task.file.qualify(t) in BROAD for t in handler.types):
                        continue
                    clause = _read_clause(ctx.source(task.file), handler)
                    if any(_inside(raised.span, clause.body) for raised in fn.raises):
                        continue  # it raises something (another exception, Reject, Retry)
                    if self._requeues(task, fn, clause.body):
                        continue
                    if clause.statements is None or not _only_logs(clause.statements):
                        continue  # the clause handles the failure (an alert, a saved status, a capture)
                    ends = _returns(clause.statements) or (clause.after is not None and _only_logs(clause.after))
                    if not ends:
                        continue  # a step allowed to fail: the task goes on with its work
                    header = Span(handler.span.start, clause.header_end)
                    ctx.report(task.file, header, self._message(task, handler), statement=header)

    @staticmethod
    def _requeues(task: Task, fn: FunctionFact, body: Span) -> bool:
        """The clause sends the task again (``self.retry``, ``<task>.apply_async``, ...)."""
        names = {"self"}
        if task.function is not None:
            names.add(task.function.name)
            if fn.params:
                names.add(fn.params[0].name)  # bind=True: the task object
        for call in fn.calls:
            if call.method in REQUEUE_METHODS and _inside(call.span, body) and (
                    call.receiver.split(".")[0] in names or call.method == "retry"):
                return True
        return False

    @staticmethod
    def _message(task: Task, handler: HandlerFact) -> str:
        profile = task.profile
        title = profile.title if profile is not None else "The framework"
        caught = "bare `except:`" if not handler.types else (
            f"`except {handler.types[0]}`" if len(handler.types) == 1 else f"`except ({', '.join(handler.types)})`")
        lost = _what_is_lost(task)
        return (f"{caught} around the body of task `{task.name}` neither re-raises nor retries: {title} records the "
                f"task as successful, so {lost} never see the error")


def _what_is_lost(task: Task) -> str:
    auto = task.options.get("autoretry_for")
    if auto is not None and auto.keyword is not None and auto.value not in ((), [], None):
        return "its `autoretry_for` retries and failure handlers"
    return "retries and failure handlers"
