"""Rules about what a task's body calls, beyond their embedded examples: QLT106 and QLT605.

The same body is put into an equivalent task of every framework the rule lists: the rule
must not care which framework defined the task. A listed framework whose module is missing,
or whose task qlint does not find, fails here instead of being skipped.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from qlint.lint import engine
from qlint.lint.facts import FileFacts, FunctionFact, Span
from qlint.lint.model import Resolved, Task
from qlint.lint.registry import get_rule
from qlint.rules.qlt106_blocking_io_without_timeout import _consequence, _Client
from tests.helpers import findings, fix, make_linter, norm, write_project

# One task per framework, named ``work``; ``{body}`` is its first statement. ``async`` is
# "" or "async " (arq only has async functions).
TASKS = {
    "celery": """
from celery import Celery

app = Celery("proj")

@app.task
{async}def work(url):
    {body}
""",
    "rq": """
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis())
{async}def work(url):
    {body}
""",
    "dramatiq": """
import dramatiq
from dramatiq.middleware.asyncio import AsyncIO

dramatiq.get_broker().add_middleware(AsyncIO())

@dramatiq.actor
{async}def work(url):
    {body}
""",
    "huey": """
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
{async}def work(url):
    {body}
""",
    "taskiq": """
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
{async}def work(url):
    {body}
""",
    "arq": """
from arq.connections import RedisSettings

{async}def work(ctx, url):
    {body}

class WorkerSettings:
    functions = [work]
    redis_settings = RedisSettings()
""",
}
ASYNC_ONLY = {"arq"}
EXISTING = tuple(module.FRAMEWORK for module in engine.FRAMEWORKS)


def _module(framework: str, body: str, *, is_async: bool, imports: str) -> tuple[str, int]:
    """The task module and the row of the body's first line."""
    text = imports + TASKS[framework].replace("{async}", "async " if is_async else "").replace("{body}", body)
    text = norm(text)
    row = next(i for i, line in enumerate(text.splitlines(), 1) if line.strip() == body.splitlines()[0].strip())
    return text, row


def _task_found(tmp_path: Path, framework: str) -> None:
    project = make_linter(tmp_path).model()
    found = [t for t in project.tasks if t.framework == framework and t.function is not None
             and t.function.name == "work"]
    assert found, f"the {framework} task `work` is not found: the rule lists {framework} but cannot check its tasks"


def _variants(code: str, *, is_async: bool | None = None):
    rule = get_rule(code)
    assert rule is not None
    for framework in rule.frameworks:
        if framework not in EXISTING:
            continue  # test_listed_frameworks_exist fails for it
        if is_async is None:
            yield pytest.param(framework, framework in ASYNC_ONLY, id=framework)
        else:
            yield pytest.param(framework, is_async, id=framework)


@pytest.mark.parametrize("code", ["QLT106", "QLT605"])
def test_listed_frameworks_exist_and_have_a_task_here(code):
    rule = get_rule(code)
    missing = [f for f in rule.frameworks if f not in EXISTING]
    assert not missing, f"{code} lists {missing} but qlint.lint.engine.FRAMEWORKS has no such module"
    assert set(rule.frameworks) <= set(TASKS)


# -- QLT106 over every framework -------------------------------------------------------

@pytest.mark.parametrize("framework,is_async", list(_variants("QLT106")))
def test_qlt106_same_finding_and_fix_in_every_framework(tmp_path, framework, is_async):
    text, row = _module(framework, "requests.get(url)", is_async=is_async, imports="import requests\n")
    write_project(tmp_path, {"tasks.py": text})
    _task_found(tmp_path, framework)
    got = [(p, r) for p, r, c, _ in findings(tmp_path, ["QLT106"])]
    assert got == [("tasks.py", row)]
    fixed = {Path(p).name: s.text for p, s in fix(tmp_path, ["QLT106"]).fixed.items()}
    assert fixed == {"tasks.py": text.replace("requests.get(url)", "requests.get(url, timeout=30)")}


@pytest.mark.parametrize("framework,is_async", list(_variants("QLT106")))
def test_qlt106_timeout_given_in_every_framework(tmp_path, framework, is_async):
    text, _ = _module(framework, "requests.get(url, timeout=5)", is_async=is_async, imports="import requests\n")
    write_project(tmp_path, {"tasks.py": text})
    _task_found(tmp_path, framework)
    assert findings(tmp_path, ["QLT106"]) == []


# -- QLT605 over every framework -------------------------------------------------------

@pytest.mark.parametrize("framework,is_async", list(_variants("QLT605", is_async=True)))
def test_qlt605_same_finding_and_fix_in_every_framework(tmp_path, framework, is_async):
    text, row = _module(framework, "time.sleep(1)", is_async=True, imports="import time\n")
    write_project(tmp_path, {"tasks.py": text})
    _task_found(tmp_path, framework)
    got = [(p, r) for p, r, c, _ in findings(tmp_path, ["QLT605"])]
    assert got == [("tasks.py", row)]
    fixed = {Path(p).name: s.text for p, s in fix(tmp_path, ["QLT605"], unsafe=False).fixed.items()}
    assert fixed == {"tasks.py": "import asyncio\n" + text.replace("time.sleep(1)", "await asyncio.sleep(1)")}


@pytest.mark.parametrize("framework", [f for f in ("dramatiq", "taskiq") if f in EXISTING])
def test_qlt605_sync_task_is_not_reported(tmp_path, framework):
    text, _ = _module(framework, "time.sleep(1)", is_async=False, imports="import time\n")
    write_project(tmp_path, {"tasks.py": text})
    _task_found(tmp_path, framework)
    assert findings(tmp_path, ["QLT605"]) == []


@pytest.mark.parametrize("framework", [f for f in ("celery", "huey") if f in EXISTING])
def test_qlt605_frameworks_without_async_tasks_are_not_reported(tmp_path, framework):
    text, _ = _module(framework, "time.sleep(1)", is_async=True, imports="import time\n")
    write_project(tmp_path, {"tasks.py": text})
    assert findings(tmp_path, ["QLT605"]) == []


def test_qlt605_rq_async_job_has_its_own_loop(tmp_path):
    text, _ = _module("rq", "time.sleep(1)", is_async=True, imports="import time\n")
    write_project(tmp_path, {"tasks.py": text})
    _task_found(tmp_path, "rq")
    assert findings(tmp_path, ["QLT605"]) == []


# -- QLT106 edge cases -----------------------------------------------------------------

CELERY_HEAD = """
import ftplib
import smtplib
import socket
import urllib.request

import httpx
import requests
from celery import Celery

app = Celery("proj")

@app.task
def work(url, host, options):
"""


def _rows(tmp_path, body: str, code: str = "QLT106", head: str = CELERY_HEAD):
    text = norm(head) + "".join(f"    {line}\n" for line in norm(body).splitlines())
    write_project(tmp_path, {"tasks.py": text})
    first = len(norm(head).splitlines()) + 1
    return [r - first + 1 for p, r, c, _ in findings(tmp_path, [code])], text


def test_qlt106_positional_and_keyword_timeouts(tmp_path):
    rows, _ = _rows(tmp_path, """
urllib.request.urlopen(url, None, 10)
urllib.request.urlopen(url, None, None)
urllib.request.urlopen(url, None)
smtplib.SMTP(host, 25, None, 10)
smtplib.SMTP(host, 25, None, None)
smtplib.SMTP()
smtplib.SMTP_SSL(host, 465, None, None, None, 10)
ftplib.FTP()
ftplib.FTP(host="ftp.example.com")
ftplib.FTP(host, "u", "p", "", 10)
ftplib.FTP_TLS(host, "u", "p", "", None)
socket.create_connection((host, 80), 3)
socket.create_connection((host, 80), timeout=None)
requests.get(url, **options)
requests.api.get(url)
""")
    # SMTP() has no connect(timeout=...) to come; FTP() has; FTP_TLS's 5th positional is
    # keyfile before Python 3.12 and context after: not judged.
    assert rows == [2, 3, 5, 6, 9, 13, 15]


def test_qlt106_httpx_timeout_objects(tmp_path):
    rows, _ = _rows(tmp_path, """
httpx.get(url, timeout=httpx.Timeout(None))
httpx.get(url, timeout=httpx.Timeout(timeout=None))
httpx.get(url, timeout=httpx.Timeout(None, connect=5))
httpx.get(url, timeout=httpx.Timeout(10))
httpx.post(url)
httpx.Client()
""")
    assert rows == [1, 2]


def test_qlt106_a_project_function_named_like_requests_is_not_reported(tmp_path):
    files = {
        "proj/__init__.py": "",
        "proj/http.py": "def get(url):\n    return url\n",
        "proj/tasks.py": """
from celery import Celery
from proj.http import get

app = Celery("proj")

@app.task
def work(url):
    get(url)
    requests = make_session()
    requests.get(url)
""",
    }
    write_project(tmp_path, files)
    assert findings(tmp_path, ["QLT106"]) == []


def test_qlt106_calls_outside_tasks_are_not_reported(tmp_path):
    write_project(tmp_path, {"tasks.py": """
import requests
from celery import Celery

app = Celery("proj")
requests.get("https://example.com")

def helper(url):
    return requests.get(url)

@app.task
def work(url):
    return helper(url)
"""})
    assert findings(tmp_path, ["QLT106"]) == []


def test_qlt106_fix_after_a_parenthesized_argument(tmp_path):
    _, text = _rows(tmp_path, """
socket.create_connection((host, 80))
socket.create_connection(((host, 80)))
requests.post(url, (b"x"))
""")
    fixed = {Path(p).name: s.text for p, s in fix(tmp_path, ["QLT106"]).fixed.items()}
    assert fixed["tasks.py"].endswith(
        "    socket.create_connection((host, 80), timeout=30)\n"
        "    socket.create_connection(((host, 80)), timeout=30)\n"
        '    requests.post(url, (b"x"), timeout=30)\n')


def test_qlt106_fix_uses_the_http_timeout_setting(tmp_path):
    _rows(tmp_path, """
requests.get(url)
httpx.get(url, timeout=None)
""")
    outcome = fix(tmp_path, ["QLT106"], http_timeout=7.5)
    text = next(iter(outcome.fixed.values())).text
    assert text.endswith("    requests.get(url, timeout=7.5)\n    httpx.get(url, timeout=7.5)\n")


def _task(limit, *, enforced=True, complete=True, interrupts=None, title="Fw") -> Task:
    from types import SimpleNamespace

    # A stand-in profile; ``limit_interrupts_io`` is the field a framework would declare.
    profile = SimpleNamespace(title=title, needs_app=False, async_tasks="supported")
    if interrupts is not None:
        profile.limit_interrupts_io = interrupts
    facts = FileFacts(path="t.py", module="t")
    task = Task("x", "work", facts, anchor=Span(0, 0), header=Span(0, 0), profile=profile, limits_enforced=enforced)
    task.norm["time_limit"] = Resolved(limit, "default")
    if not complete:
        task.opaque = "a base class from another package"
    return task


def _fn(is_async=False) -> FunctionFact:
    return FunctionFact("work", "work", Span(0, 0), Span(0, 0), 0, is_async, [], [])


SYNC = _Client("requests")


def test_qlt106_consequence_follows_the_time_limit():
    assert _consequence(_task(60, interrupts=True), _fn(), SYNC) == "until the task's 60 s time limit kills it"
    assert _consequence(_task(60, interrupts=False, title="Dramatiq"), _fn(), SYNC) == (
        "forever: Dramatiq's 60 s time limit cannot interrupt a call blocked in a socket read")
    assert _consequence(_task(60), _fn(), SYNC) == "until the task is killed"  # the profile does not say
    assert _consequence(_task(math.inf), _fn(), SYNC) == "forever: the task has no time limit"
    assert _consequence(_task(math.inf, complete=False), _fn(), SYNC) == "until the task is killed"
    assert _consequence(_task(60, interrupts=True), _fn(is_async=True), SYNC).startswith(
        "forever: inside an async task")
    assert _consequence(_task(60, interrupts=True), _fn(is_async=True), replace(SYNC, blocking=False)) == (
        "until the task's 60 s time limit kills it")
    task = _task(60, enforced=False)
    task.limits_note = "the `threads` pool (config) does not enforce time limits"
    assert _consequence(task, _fn(), SYNC) == "forever (the `threads` pool (config) does not enforce time limits)"


# -- QLT605 edge cases -----------------------------------------------------------------

TASKIQ = """
broker = InMemoryBroker()

@broker.task
async def work(url):
    time.sleep(1)
"""


def _fixed605(tmp_path, text: str) -> str | None:
    write_project(tmp_path, {"tasks.py": text})
    outcome = fix(tmp_path, ["QLT605"], unsafe=False)
    return next(iter(outcome.fixed.values())).text if outcome.fixed else None


@pytest.mark.parametrize("head,expected", [
    ('#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"""Doc\n\nstring."""\n\nimport time\n',
     '#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"""Doc\n\nstring."""\n\nimport asyncio\nimport time\n'),
    ('"""Doc."""\nfrom __future__ import annotations\nfrom __future__ import division\n# imports\nimport time\n',
     # In the standard-library section, above the comment that belongs to ``import time``.
     '"""Doc."""\nfrom __future__ import annotations\nfrom __future__ import division\nimport asyncio\n\n'
     '# imports\nimport time\n'),
    ("import time\n", "import asyncio\nimport time\n"),
], ids=["shebang-and-docstring", "future-imports", "bare"])
def test_qlt605_import_goes_after_docstring_and_future_imports(tmp_path, head, expected):
    text = head + "from taskiq import InMemoryBroker\n" + norm(TASKIQ)
    got = _fixed605(tmp_path, text)
    assert got == expected + "from taskiq import InMemoryBroker\n" + norm(TASKIQ).replace(
        "time.sleep(1)", "await asyncio.sleep(1)")


def test_qlt605_no_fix_when_the_import_cannot_be_placed_or_asyncio_is_taken(tmp_path):
    same_line = '"""Doc."""; import time\nfrom taskiq import InMemoryBroker\n' + norm(TASKIQ)
    assert _fixed605(tmp_path, same_line) is None
    taken = "import time\nfrom taskiq import InMemoryBroker\nfrom proj import asyncio\n" + norm(TASKIQ)
    assert _fixed605(tmp_path, taken) is None
    write_project(tmp_path, {"tasks.py": taken})
    assert len(findings(tmp_path, ["QLT605"])) == 1


def test_qlt605_two_sleeps_add_one_import_and_keep_crlf(tmp_path):
    text = ("import time\r\nfrom taskiq import InMemoryBroker\r\n\r\nbroker = InMemoryBroker()\r\n\r\n"
            "@broker.task\r\nasync def work(url):\r\n    time.sleep(1)\r\n    time.sleep(2)\r\n")
    path = tmp_path / "tasks.py"
    path.write_bytes(text.encode())
    outcome = fix(tmp_path, ["QLT605"], unsafe=False)
    assert next(iter(outcome.fixed.values())).text == text.replace("import time", "import asyncio\r\nimport time", 1) \
        .replace("time.sleep(", "await asyncio.sleep(")


def test_qlt605_lambdas_and_nested_functions_are_not_the_loop(tmp_path):
    write_project(tmp_path, {"tasks.py": """
import asyncio
import subprocess
import time

import requests
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def work(url):
    await asyncio.to_thread(lambda: time.sleep(1))
    await asyncio.get_running_loop().run_in_executor(None, lambda: requests.get(url, timeout=5))
    await asyncio.to_thread(subprocess.run, ["ls"])

    def blocking():
        time.sleep(1)

    await asyncio.to_thread(blocking)
    await asyncio.sleep(0)
"""})
    assert findings(tmp_path, ["QLT605"]) == []


def test_qlt605_message_names_the_remedy(tmp_path):
    write_project(tmp_path, {"tasks.py": """
import subprocess

import httpx
from taskiq import InMemoryBroker

broker = InMemoryBroker()

@broker.task
async def work(url):
    subprocess.check_output(["ls"])
    httpx.get(url)
"""})
    messages = [m for _, _, _, m in findings(tmp_path, ["QLT605"])]
    assert len(messages) == 2
    assert "asyncio.create_subprocess_exec" in messages[0] and "httpx.AsyncClient" in messages[1]
    assert all("the task's timeout cannot cancel it" in m for m in messages)
