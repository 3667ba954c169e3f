from __future__ import annotations

import ast
from dataclasses import dataclass, field

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Applicability, Edit, Severity
from qlint.lint.facts import CallFact, FileFacts, FunctionFact, Span
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.rules._common import import_edits, task_functions

_REMEDIES = {
    "sleep": "use `await asyncio.sleep(...)`",
    "http": "use an async client (`httpx.AsyncClient`, aiohttp) or `await asyncio.to_thread(...)`",
    "httpx": "use `httpx.AsyncClient` and await its methods",
    "subprocess": "use `await asyncio.create_subprocess_exec(...)` or `await asyncio.to_thread(...)`",
}


def _blocking_calls() -> dict[str, str]:
    """Qualified name of a blocking call -> the kind of remedy."""
    table = {"time.sleep": "sleep", "urllib.request.urlopen": "http"}
    for verb in ("get", "post", "put", "patch", "delete", "head", "options", "request"):
        table[f"requests.{verb}"] = table[f"requests.api.{verb}"] = "http"
    for name in ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "Client"):
        table[f"httpx.{name}"] = "httpx"
    for name in ("run", "call", "check_call", "check_output", "Popen"):
        table[f"subprocess.{name}"] = "subprocess"
    return table


BLOCKING = _blocking_calls()
def shared_loop(task: Task) -> str:
    """Who stalls when this async task blocks its event loop; "" when nobody else runs there.

    ``Profile.async_loop`` names them ("" when each async task runs on an event loop of its own,
    as RQ's work horse does); frameworks that cannot run ``async def`` tasks have no loop.
    """
    profile = task.profile
    if profile is None or profile.async_tasks == "unsupported":
        return ""
    return profile.async_loop


@dataclass
class _Syntax:
    """What the fix and the lambda check need from a module that facts do not record."""

    lambdas: list[Span] = field(default_factory=list)
    generators: list[Span] = field(default_factory=list)  # ``await`` there makes an async generator
    asyncio: str | None = None  # the name ``import asyncio [as x]`` binds at the top of the module

    @staticmethod
    def inside(span: Span, spans: list[Span]) -> bool:
        return any(s.start <= span.start and span.end <= s.end for s in spans)


def _syntax(src: SourceFile) -> _Syntax | None:
    try:
        tree = ast.parse(src.text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    starts = src.line_starts

    def offset(line: int, col: int) -> int:
        return starts[line - 1] + col  # ``col_offset`` counts UTF-8 bytes, as SourceFile.utf8 does

    syntax = _Syntax()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Lambda, ast.GeneratorExp)) and node.end_lineno is not None:
            span = Span(offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset or 0))
            (syntax.lambdas if isinstance(node, ast.Lambda) else syntax.generators).append(span)
    body = tree.body
    for stmt in body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name == "asyncio":
                    syntax.asyncio = alias.asname or "asyncio"
    return syntax


def _asyncio_free(facts: FileFacts, fn: FunctionFact) -> bool:
    """``asyncio`` is not bound to something else in the module or the function."""
    bound = facts.imports.get("asyncio")
    if bound is not None and bound != "asyncio":
        return False
    if "asyncio" in facts.assigns or any(p.name == "asyncio" for p in fn.params):
        return False
    return not any(f.name == "asyncio" and f.depth == 0 for f in facts.functions) and not any(
        c.name == "asyncio" for c in facts.classes)


@register
class BlockingCallInAsyncTask(Rule):
    """## What it does
    Checks `async def` tasks for calls that block the event loop: `time.sleep`, the
    `requests` functions (`requests.get`, ... `requests.request`), the sync `httpx` API
    (`httpx.get`, ..., `httpx.stream`, `httpx.Client`), `urllib.request.urlopen` and
    `subprocess.run/call/check_call/check_output/Popen`.

    Calls handed to a thread are not reported: in `await asyncio.to_thread(time.sleep, 1)`
    or `loop.run_in_executor(None, lambda: requests.get(url))` the blocking function is an
    argument, not a call made on the loop.

    ## Why is this bad?
    An async worker runs many tasks on one event loop, and a coroutine only lets the others
    run when it awaits. A blocking call never does: for as long as it takes, every task
    sharing that loop stalls (arq runs up to `max_jobs`, 10 by default, jobs per worker;
    Taskiq up to `--max-async-tasks`, 100 by default, per worker process; Dramatiq all the
    async actors of a worker process on one event-loop thread). Timeouts are delivered by
    cancelling the coroutine, which cannot happen before the call returns, so a hung
    request also outlives the task's time limit.

    ## Example
    ```python
    import time

    import requests
    from taskiq import InMemoryBroker

    broker = InMemoryBroker()

    @broker.task
    async def poll(url):
        time.sleep(5)
        return requests.get(url, timeout=10).json()
    ```

    Use instead:
    ```python
    import asyncio

    import httpx
    from taskiq import InMemoryBroker

    broker = InMemoryBroker()

    @broker.task
    async def poll(url):
        await asyncio.sleep(5)
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).json()
    ```

    ## Per framework
    Only frameworks that run several async tasks on a shared event loop are checked.

    - **Dramatiq**: `async def` actors (with the `AsyncIO` middleware) all run on one
      event-loop thread per worker process.
      `@dramatiq.actor` / `async def poll(url): time.sleep(5)`
    - **Taskiq**: `async def` tasks of `@broker.task` share the worker's loop, up to
      `--max-async-tasks` (100) at once; a plain `def` task runs in a thread pool instead,
      which suits blocking code.
      `@broker.task` / `async def poll(url): time.sleep(5)`
    - **arq**: every function in `WorkerSettings.functions`/`cron_jobs` is a coroutine on
      the worker's loop, up to `max_jobs` (10) at once; arq's docs run blocking code with
      `loop.run_in_executor`.
      `async def poll(ctx, url): time.sleep(5)`

    Celery and Huey cannot run `async def` tasks at all, and RQ runs each coroutine job on
    an event loop of its own, one job at a time: none of them is checked.

    ## Fix safety
    The fix replaces `time.sleep(x)` with `await asyncio.sleep(x)` and adds `import asyncio`
    in the standard-library section of the module's imports (as isort and ruff's `I` rules
    place it) when the module does not import it. It is safe: the task waits as long as before, and only lets the other tasks run
    meanwhile. There is no fix for the other calls, whose async replacements differ in API.

    ## References
    - [Python: Running blocking code](https://docs.python.org/3/library/asyncio-dev.html#running-blocking-code)
    - [arq: Synchronous jobs](https://arq-docs.helpmanual.io/#synchronous-jobs)
    - [Taskiq: Worker CLI, sync functions](https://taskiq-python.github.io/guide/cli.html)
    - [Dramatiq: Asyncio actors](https://dramatiq.io/cookbook.html#asyncio-actors)
    """

    code = "QLT605"
    name = "blocking-call-in-async-task"
    summary = "Blocking call inside an `async def` task stalls every task on the event loop"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("dramatiq", "taskiq", "arq")

    VALID = [
        Valid("""
import asyncio
import time

from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def poll(url):
    await asyncio.to_thread(time.sleep, 5)
    await asyncio.sleep(1)

@broker.task
def crunch(n):
    time.sleep(n)
""", note="time.sleep handed to a thread; a sync Taskiq task runs in the thread pool"),
        Valid("""
import asyncio

import requests
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def fetch(url):
    loop = asyncio.get_running_loop()
    response = await loop.run_in_executor(None, lambda: requests.get(url, timeout=10))

    def work():
        return requests.post(url, timeout=10)

    await asyncio.to_thread(work)
    return response.json()
""", note="requests inside a lambda and a nested function that run in an executor"),
        Valid("""
import time

from arq.connections import RedisSettings

async def helper():
    time.sleep(1)

async def send(ctx):
    await helper()

class WorkerSettings:
    functions = [send]
    redis_settings = RedisSettings()
""", note="an async function that is not a task itself: calls are not followed"),
        Valid("""
import time

from celery import Celery

app = Celery("proj")

@app.task
async def ping():
    time.sleep(1)
""", note="Celery cannot run async tasks at all (another rule's finding)"),
        Valid("""
import time

from rq.decorators import job
from redis import Redis

@job("default", connection=Redis())
async def ping():
    time.sleep(1)
""", note="RQ runs each coroutine job on its own event loop, one job at a time"),
    ]
    INVALID = [
        Invalid('''
"""Polling tasks."""
from __future__ import annotations

import time

from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def poll(url):
    time.sleep(5)
    value = time.sleep(1) or 0
''', expect=[12, 13], fixed='''
"""Polling tasks."""
from __future__ import annotations

import asyncio
import time

from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def poll(url):
    await asyncio.sleep(5)
    value = await asyncio.sleep(1) or 0
''', message="asyncio.sleep", note="`import asyncio` in the standard-library section, after the __future__ import"),
        Invalid("""
import asyncio as aio
import subprocess
import urllib.request
from time import sleep

import httpx
import requests as r
from arq.connections import RedisSettings

async def send(ctx, url):
    sleep(2)
    r.post(url, timeout=10)
    urllib.request.urlopen(url, timeout=10)
    with httpx.Client() as client:
        client.get(url)
    subprocess.run(["ls"], check=True)
    await aio.sleep(1)

class WorkerSettings:
    functions = [send]
    redis_settings = RedisSettings()
""", expect=[11, 12, 13, 14, 16], fixed="""
import asyncio as aio
import subprocess
import urllib.request
from time import sleep

import httpx
import requests as r
from arq.connections import RedisSettings

async def send(ctx, url):
    await aio.sleep(2)
    r.post(url, timeout=10)
    urllib.request.urlopen(url, timeout=10)
    with httpx.Client() as client:
        client.get(url)
    subprocess.run(["ls"], check=True)
    await aio.sleep(1)

class WorkerSettings:
    functions = [send]
    redis_settings = RedisSettings()
""", note="arq: aliases, `from time import sleep`, the module's asyncio alias"),
        Invalid("""
import time

import dramatiq
from dramatiq.middleware.asyncio import AsyncIO

dramatiq.get_broker().add_middleware(AsyncIO())

@dramatiq.actor
async def ping():
    time.sleep(1).__class__
    total = sum(time.sleep(0) or 1 for _ in range(3))
""", expect=[10, 11], note="Dramatiq; no fix where `await` would bind differently or make a generator async"),
    ]

    def check(self, ctx: RuleContext) -> None:
        syntax: dict[str, _Syntax | None] = {}
        for task in ctx.project.tasks:
            shared = shared_loop(task)
            if not shared:
                continue
            for fn in task_functions(ctx.project, task):
                if not fn.is_async:
                    continue
                for call in fn.calls:
                    kind = BLOCKING.get(call.qualified) if call.is_call and not call.awaited else None
                    if kind is None:
                        continue
                    path = task.file.path
                    if path not in syntax:
                        syntax[path] = _syntax(ctx.source(task.file))
                    module = syntax[path]
                    if module is not None and module.inside(call.span, module.lambdas):
                        continue  # a lambda's body runs wherever it is called (``to_thread``, an executor)
                    fix = self._fix(ctx, task, fn, call, module) if kind == "sleep" else None
                    ctx.report(task.file, call.span, (
                        f"`{call.dotted}(...)` blocks the event loop of async task `{task.name}`: {shared} stalls "
                        "until it returns, and the task's timeout cannot cancel it meanwhile; "
                        f"{_REMEDIES[kind]}"), fix=fix, statement=call.statement)

    def _fix(self, ctx: RuleContext, task: Task, fn: FunctionFact, call: CallFact, module: _Syntax | None):
        if module is None or module.inside(call.span, module.generators):
            return None
        src = ctx.source(task.file)
        data = src.utf8
        if data[call.span.start:call.func_end] != call.dotted.encode("utf-8"):
            return None  # ``(time.sleep)(1)``, ``time . sleep(1)``: not a plain dotted callee
        if data[call.span.end:].lstrip()[:1] in (b".", b"(", b"["):
            return None  # ``await`` would apply to the attribute, call or subscript that follows
        name = module.asyncio
        edits = []
        if name is None:
            added = import_edits(ctx, src, "asyncio") if _asyncio_free(task.file, fn) else None
            if added is None:
                return None
            name = "asyncio"
            edits.extend(added)
        edits.append(Edit(call.span.start, call.func_end, f"await {name}.sleep"))
        return ctx.fix(task.file, f"Replace with `await {name}.sleep(...)`", edits, Applicability.SAFE)
