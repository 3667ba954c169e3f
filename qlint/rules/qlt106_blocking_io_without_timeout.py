from __future__ import annotations

import math
from dataclasses import dataclass

from qlint.fixers.calls import add_keywords, replace_span
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.facts import CallFact, FunctionFact, Value
from qlint.lint.model import Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.rules._common import number_text, task_functions


@dataclass(frozen=True)
class _Client:
    """A network call that takes a timeout, by its qualified name."""

    family: str  # "requests", "httpx" or "socket" (the standard library's socket default)
    position: int | None = None  # index of a positional ``timeout`` parameter; None: keyword only
    # More positional arguments than this and the timeout's position depends on the Python
    # version (``SMTP_SSL``/``FTP_TLS`` lost ``keyfile, certfile`` in 3.12): no finding.
    positional_limit: int | None = None
    default_unbounded: bool = True  # no timeout argument at all means "wait forever"
    needs_host: bool = False  # ``ftplib.FTP()`` without a host connects later, with ``connect(timeout=...)``
    blocking: bool = True  # False for ``httpx.AsyncClient``: awaiting it can be cancelled


def _clients() -> dict[str, _Client]:
    table: dict[str, _Client] = {}
    for verb in ("get", "post", "put", "patch", "delete", "head", "options", "request"):
        table[f"requests.{verb}"] = table[f"requests.api.{verb}"] = _Client("requests")
    for name in ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "Client"):
        table[f"httpx.{name}"] = _Client("httpx", default_unbounded=False)
    table["httpx.AsyncClient"] = _Client("httpx", default_unbounded=False, blocking=False)
    table["urllib.request.urlopen"] = _Client("socket", position=2)
    table["smtplib.SMTP"] = _Client("socket", position=3)
    table["smtplib.SMTP_SSL"] = _Client("socket", positional_limit=3)
    table["ftplib.FTP"] = _Client("socket", position=4, needs_host=True)
    table["ftplib.FTP_TLS"] = _Client("socket", positional_limit=4, needs_host=True)
    table["socket.create_connection"] = _Client("socket", position=1)
    return table


CLIENTS = _clients()


def _is_none(value: Value) -> bool:
    return value.is_const and value.value is None


def _unbounded(value: Value, client: _Client) -> bool:
    """A timeout value that waits forever: ``None``, or ``httpx.Timeout(None)`` (all four phases off)."""
    if _is_none(value):
        return True
    call = value.call if value.kind == "call" else None
    if client.family == "httpx" and call is not None and call.qualified == "httpx.Timeout" and not call.has_star:
        given = list(call.args) + [k.value for k in call.kwargs.values()]
        return len(given) == 1 and (len(call.args) == 1 or "timeout" in call.kwargs) and _is_none(given[0])
    return False


def _timeout_argument(call: CallFact, client: _Client) -> Value | None:
    keyword = call.kwargs.get("timeout")
    if keyword is not None:
        return keyword.value
    if client.position is not None and len(call.args) > client.position:
        return call.args[client.position]
    return None


def _reason(call: CallFact, client: _Client, missing: bool) -> str:
    name = f"`{call.dotted}(...)`"
    if client.family == "httpx":
        return f"{name} turns off httpx's 5 s default timeout"
    if not missing:
        return f"{name} passes a `None` timeout, which waits without limit"
    if client.family == "requests":
        return f"{name} has no timeout, and requests sets none by default"
    return f"{name} has no timeout, so it uses the socket default: none, unless the process calls " \
           "`socket.setdefaulttimeout()`"


def _consequence(task: Task, fn: FunctionFact, client: _Client) -> str:
    """How long the stuck call holds the worker, from the task's time limit and what can enforce it."""
    if fn.is_async and client.blocking:
        return "forever: inside an async task no time limit can interrupt a blocking call"
    if task.limits_enforced is False:
        return f"forever ({task.limits_note})" if task.limits_note else "forever: its time limit is not enforced"
    limit = task.norm.get("time_limit")
    if limit is None or not limit.known or not isinstance(limit.value, (int, float)):
        return "until the task is killed"
    if math.isinf(limit.value):
        return "forever: the task has no time limit" if task.options_complete else "until the task is killed"
    # Whether the framework's time limit stops a thread blocked in a system call (a socket
    # read): a killed or signalled process does, an exception waiting for the GIL does not.
    interrupts = getattr(task.profile, "limit_interrupts_io", None)
    if interrupts is False:
        title = task.profile.title if task.profile is not None else "the framework"
        return (f"forever: {title}'s {number_text(limit.value)} s time limit cannot interrupt a call blocked "
                "in a socket read")
    if interrupts and task.limits_enforced is True:
        return f"until the task's {number_text(limit.value)} s time limit kills it"
    return "until the task is killed"


@register
class BlockingIoWithoutTimeout(Rule):
    """## What it does
    Checks task bodies for network calls that can wait forever:

    - `requests.get/post/put/patch/delete/head/options/request(...)` (also imported as
      `from requests import get`) without `timeout=`, or with `timeout=None`;
    - `httpx.get/post/.../request/stream(...)`, `httpx.Client(...)` and
      `httpx.AsyncClient(...)` with `timeout=None` (or `httpx.Timeout(None)`);
    - `urllib.request.urlopen(...)`, `smtplib.SMTP(...)`, `smtplib.SMTP_SSL(...)`,
      `ftplib.FTP(host, ...)`, `ftplib.FTP_TLS(host, ...)` and `socket.create_connection(...)`
      without a timeout (keyword or positional) or with `None`.

    Only calls in the code of a task are checked: the task function, or the methods of a
    class-based task.

    ## Why is this bad?
    requests never times out unless told to: its documentation warns that "nearly all
    production code should use this parameter in nearly all requests. Failure to do so can
    cause your program to hang indefinitely." The standard library's clients use the
    socket module's default timeout, which is `None` (block forever) unless the process
    calls `socket.setdefaulttimeout()`. httpx does time out after 5 s of inactivity, until
    `timeout=None` turns that off.

    In a worker, a server that accepts the connection and then never answers holds the
    worker slot (a process, thread or coroutine) until something kills the task: with no
    time limit that is never, and a blocking call inside an `async def` task cannot be
    interrupted by the framework's timeout at all. A few such calls and the worker stops
    consuming its queue. Dramatiq's guide says it directly: even with a time limit, "you
    should take care to always specify a timeout for the request itself".

    ## Known problems
    A `requests.Session` (or a subclass or adapter that sets a default timeout) is not
    followed: calls on session objects are not reported. A process-wide
    `socket.setdefaulttimeout()` is not looked for.

    ## Example
    ```python
    import requests
    from celery import shared_task

    @shared_task
    def fetch_rates(currency):
        return requests.get(f"https://rates.example.com/{currency}").json()
    ```

    Use instead:
    ```python
    import requests
    from celery import shared_task

    @shared_task
    def fetch_rates(currency):
        return requests.get(f"https://rates.example.com/{currency}", timeout=30).json()
    ```

    ## Per framework
    The same calls count in the tasks of every framework; what differs is whether the
    framework's time limit can end a call blocked in a socket read, which the message states.

    - **Celery**: `@app.task`/`@shared_task` functions and the `run` method (and other
      methods) of `Task` subclasses. There is no time limit by default; a hard
      `time_limit` under the prefork pool kills the child process, which ends the wait.
      `@shared_task` / `def sync(url): requests.post(url, json={})`
    - **RQ**: `@job(...)` functions and functions passed to `Queue(...).enqueue(...)`. The
      job timeout (180 s unless set) is an alarm signal in the work horse, which interrupts
      the read. `@job("default", connection=redis)` / `def sync(url): requests.post(url, json={})`
    - **Dramatiq**: `@dramatiq.actor` functions and `GenericActor.perform`. The `TimeLimit`
      middleware (10 minutes unless set) raises in the worker thread only when it next holds
      the GIL, so "this middleware can't cancel system calls": a hung read outlives it.
      `@dramatiq.actor` / `def sync(url): requests.post(url, json={})`
    - **Huey**: `@huey.task()`, `@huey.periodic_task(...)` and the Django `@task`/`@db_task`
      functions. A task's `timeout=` is enforced by process and greenlet workers only;
      the default thread worker ignores it.
      `@huey.task()` / `def sync(url): requests.post(url, json={})`
    - **Taskiq**: `@broker.task` functions. Sync tasks run in a thread pool; when a timeout
      label expires the caller gets a `TimeoutError` but the function keeps running.
      `@broker.task` / `def sync(url): requests.post(url, json={})`
    - **arq**: the functions in `WorkerSettings.functions` and `cron_jobs`. They are
      `async def`: `job_timeout` cancels the coroutine, which cannot happen while a
      blocking call holds the event loop (see QLT605).
      `async def sync(ctx, url): requests.post(url, json={})`

    ## Fix safety
    The fix adds `timeout=<http-timeout>` (30 s unless configured) to the call, or replaces
    the `None` given as its timeout. It is unsafe: a request that legitimately takes longer
    now raises a timeout exception the task may not handle.

    ## Options
    - `http-timeout`

    ## References
    - [requests: Timeouts](https://requests.readthedocs.io/en/latest/user/advanced/#timeouts)
    - [HTTPX: Timeouts](https://www.python-httpx.org/advanced/timeouts/)
    - [Python: socket.getdefaulttimeout](https://docs.python.org/3/library/socket.html#socket.getdefaulttimeout)
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [RQ: Job timeouts](https://python-rq.org/docs/jobs/)
    - [Dramatiq: Message time limits](https://dramatiq.io/guide.html#message-time-limits)
    - [Huey: Guide](https://huey.readthedocs.io/en/latest/guide.html)
    - [Taskiq: Timeouts](https://taskiq-python.github.io/guide/getting-started.html)
    - [arq: Synchronous jobs](https://arq-docs.helpmanual.io/#synchronous-jobs)
    """

    code = "QLT106"
    name = "blocking-io-without-timeout"
    summary = "Network call in a task without a timeout can block the worker forever"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")

    VALID = [
        Valid("""
import requests
from celery import shared_task

@shared_task
def fetch_rates(currency):
    return requests.get(f"https://rates.example.com/{currency}", timeout=10).json()
""", note="timeout given"),
        Valid("""
import httpx
from celery import shared_task

@shared_task
def fetch_rates(currency):
    with httpx.Client() as client:
        return client.get(f"https://rates.example.com/{currency}").json()
""", note="httpx times out after 5 s by default"),
        Valid("""
import requests
from celery import shared_task

session = requests.Session()

@shared_task
def fetch_rates(currency):
    return session.get(f"https://rates.example.com/{currency}").json()
""", note="a method of a Session object: its defaults cannot be seen, no guess"),
        Valid("""
import requests

def fetch_rates(currency):
    return requests.get(f"https://rates.example.com/{currency}").json()
""", note="not a task"),
        Valid("""
from celery import shared_task

from proj.http import get

@shared_task
def fetch_rates(currency, **options):
    import requests
    get(f"https://rates.example.com/{currency}")
    return requests.get(f"https://rates.example.com/{currency}", **options).json()
""", note="a project function named `get`; `**options` may carry the timeout"),
        Valid("""
import smtplib
import socket
import urllib.request
from ftplib import FTP
from celery import shared_task

@shared_task
def notify(host, url):
    urllib.request.urlopen(url, None, 15)
    socket.create_connection((host, 25), 5)
    with smtplib.SMTP(host, 25, None, 10) as smtp:
        smtp.noop()
    ftp = FTP()
    ftp.connect(host, timeout=10)
""", note="timeouts given positionally; `FTP()` without a host connects later with its own timeout"),
    ]
    INVALID = [
        Invalid("""
import requests
from celery import shared_task

@shared_task
def fetch_rates(currency):
    return requests.get(f"https://rates.example.com/{currency}").json()
""", expect=6, fixed="""
import requests
from celery import shared_task

@shared_task
def fetch_rates(currency):
    return requests.get(f"https://rates.example.com/{currency}", timeout=30).json()
""", message="requests sets none by default"),
        Invalid("""
import requests as r
from requests import post
from celery import Celery

app = Celery("proj")

@app.task(time_limit=600)
def push(url, payload):
    post(
        url,
        json=payload,
    )
    r.request("PUT", url, data=payload, timeout=None)
""", expect=[9, 13], fixed="""
import requests as r
from requests import post
from celery import Celery

app = Celery("proj")

@app.task(time_limit=600)
def push(url, payload):
    post(
        url,
        json=payload,
        timeout=30,
    )
    r.request("PUT", url, data=payload, timeout=30)
""", message="holds this worker slot",
            note="an alias, a `from` import, a multi-line call, `timeout=None`"),
        Invalid("""
import httpx
from celery import shared_task

@shared_task
def crawl(url):
    httpx.get(url, timeout=None)
    with httpx.Client(timeout=httpx.Timeout(None)) as client:
        return client.get(url).text
""", expect=[6, 7], fixed="""
import httpx
from celery import shared_task

@shared_task
def crawl(url):
    httpx.get(url, timeout=30)
    with httpx.Client(timeout=30) as client:
        return client.get(url).text
""", message="turns off httpx's 5 s default timeout"),
        Invalid("""
import smtplib
import socket
from ftplib import FTP
from urllib.request import urlopen
from celery import Celery, Task

app = Celery("proj")

class Notify(Task):
    def run(self, host, url):
        urlopen(url)
        socket.create_connection((host, 25), None)
        with smtplib.SMTP_SSL(host, 465) as smtp:
            smtp.noop()
        FTP(host)
""", expect=[11, 12, 13, 15], fixed="""
import smtplib
import socket
from ftplib import FTP
from urllib.request import urlopen
from celery import Celery, Task

app = Celery("proj")

class Notify(Task):
    def run(self, host, url):
        urlopen(url, timeout=30)
        socket.create_connection((host, 25), 30)
        with smtplib.SMTP_SSL(host, 465, timeout=30) as smtp:
            smtp.noop()
        FTP(host, timeout=30)
""", message="socket", note="the standard library's clients, in a class-based task"),
        Invalid("""
import requests
from redis import Redis
from rq import Queue
from rq.decorators import job

@job("default", connection=Redis(), timeout=60)
def push(url):
    requests.post(url, json={})

def ping(url):
    requests.head(url, timeout=None)

Queue(connection=Redis()).enqueue(ping, "https://example.com")
""", expect=[8, 11], fixed="""
import requests
from redis import Redis
from rq import Queue
from rq.decorators import job

@job("default", connection=Redis(), timeout=60)
def push(url):
    requests.post(url, json={}, timeout=30)

def ping(url):
    requests.head(url, timeout=30)

Queue(connection=Redis()).enqueue(ping, "https://example.com")
""", note="RQ: a `@job` function and an enqueued plain function"),
        Invalid("""
import dramatiq
import requests

@dramatiq.actor(time_limit=60_000)
def push(url):
    requests.put(url, data=b"")

class Ping(dramatiq.GenericActor):
    def perform(self, url):
        requests.options(url)
""", expect=[6, 10], fixed="""
import dramatiq
import requests

@dramatiq.actor(time_limit=60_000)
def push(url):
    requests.put(url, data=b"", timeout=30)

class Ping(dramatiq.GenericActor):
    def perform(self, url):
        requests.options(url, timeout=30)
""", note="Dramatiq: an actor and a GenericActor"),
        Invalid("""
import requests
from huey import RedisHuey, crontab

huey = RedisHuey("app")

@huey.periodic_task(crontab(minute="0"))
def ping():
    requests.get("https://example.com/health")
""", expect=8, fixed="""
import requests
from huey import RedisHuey, crontab

huey = RedisHuey("app")

@huey.periodic_task(crontab(minute="0"))
def ping():
    requests.get("https://example.com/health", timeout=30)
""", message="the task has no time limit", note="Huey: a periodic task"),
        Invalid("""
import httpx
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
def download(url, path):
    with httpx.stream("GET", url, timeout=None) as response, open(path, "wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
""", expect=8, fixed="""
import httpx
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
def download(url, path):
    with httpx.stream("GET", url, timeout=30) as response, open(path, "wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
""", message="holds this worker slot forever", note="Taskiq: a sync task streaming with httpx"),
        Invalid("""
import socket
from arq import cron
from arq.connections import RedisSettings

async def probe(ctx, host):
    socket.create_connection((host, 80))

class WorkerSettings:
    cron_jobs = [cron(probe, minute=0)]
    redis_settings = RedisSettings()
""", expect=6, fixed="""
import socket
from arq import cron
from arq.connections import RedisSettings

async def probe(ctx, host):
    socket.create_connection((host, 80), timeout=30)

class WorkerSettings:
    cron_jobs = [cron(probe, minute=0)]
    redis_settings = RedisSettings()
""", message="inside an async task no time limit can interrupt a blocking call", note="arq: a cron job"),
        Invalid("""
import httpx
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
async def crawl(url):
    async with httpx.AsyncClient(timeout=None) as client:
        return (await client.get(url)).text
""", expect=8, fixed="""
import httpx
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task(timeout=30)
async def crawl(url):
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(url)).text
""", note="Taskiq: an async client with its timeout turned off"),
    ]

    def check(self, ctx: RuleContext) -> None:
        timeout_text = number_text(getattr(ctx.settings, "http_timeout", 30))
        for task in ctx.project.tasks:
            for fn in task_functions(ctx.project, task):
                for call in fn.calls:
                    client = CLIENTS.get(call.qualified) if call.is_call else None
                    if client is None or call.has_star or call.awaited:
                        continue
                    if client.positional_limit is not None and len(call.args) > client.positional_limit:
                        continue
                    if client.needs_host and not call.args and "host" not in call.kwargs:
                        continue
                    value = _timeout_argument(call, client)
                    if value is None:
                        if not client.default_unbounded:
                            continue
                        src = ctx.source(task.file)
                        edits = add_keywords(src, call, [("timeout", timeout_text)], ctx.line_length)
                        title = f"Add `timeout={timeout_text}`"
                    elif _unbounded(value, client):
                        edits = [replace_span(value, timeout_text)]
                        title = f"Set the timeout to {timeout_text} s"
                    else:
                        continue
                    message = (f"{_reason(call, client, value is None)}; a server that accepts the connection and "
                               f"never answers holds this worker slot {_consequence(task, fn, client)}")
                    ctx.report(task.file, call.span, message, fix=ctx.fix(task.file, title, edits),
                               statement=call.statement)
