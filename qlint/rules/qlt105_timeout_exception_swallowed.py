from __future__ import annotations

import ast
import io
import math
import tokenize

from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Edit, Severity
from qlint.lint.extract import dotted_name as _dotted
from qlint.lint.facts import FileFacts, HandlerFact
from qlint.lint.model import Project, Task
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.source import SourceFile
from qlint.rules._common import import_edits, number_text, where
from qlint.rules._timeouts import carried_past_timeout, origin
from qlint.rules.qlt305_task_failure_swallowed import Flow


@register
class TimeoutExceptionSwallowed(Rule):
    """## What it does
    Checks for `except Exception:`, `except BaseException:` and bare `except:` clauses
    inside a task whose framework interrupts it with a catchable exception when its time is
    up, where the clause neither re-raises nor retries, no earlier clause of the same `try`
    handles that timeout exception, and the task carries on after the clause: the `try` is
    in a loop whose next iteration runs, or work follows the `try` in the task's body, or the
    clause itself goes on to do work (anything besides logging, recording the failure,
    passing or returning).

    A clause after which the task ends at once (the `try` is the last thing the task does
    and the clause only logs, records the failure, passes or returns) is not reported: the
    timeout ends the task all the same, and what it hides is the failure, which QLT305
    judges. The two rules never report the same clause.

    ## Why is this bad?
    Celery's soft time limit, RQ's job timeout and Huey's task timeout stop a task by
    raising an exception inside its code: `SoftTimeLimitExceeded`, `JobTimeoutException`,
    `TaskTimeout`. All three derive from `Exception`, so a catch-all clause that logs and
    carries on swallows the timeout: the loop moves on to its next item, or the rest of the
    task runs, past the limit. With Celery the work then goes on until the hard limit kills
    the worker process (no cleanup, a `WorkerLostError`), or for as long as it takes when
    there is no hard limit; RQ's work horse is killed only 60 s after its timeout; a Huey
    task simply continues.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(soft_time_limit=270, time_limit=300)
    def sync_inventory(store_id):
        for item in fetch_items(store_id):
            try:
                update(item)
            except Exception:
                log.exception("could not update %s", item)
    ```

    Use instead:
    ```python
    from celery import shared_task
    from celery.exceptions import SoftTimeLimitExceeded

    @shared_task(soft_time_limit=270, time_limit=300)
    def sync_inventory(store_id):
        for item in fetch_items(store_id):
            try:
                update(item)
            except SoftTimeLimitExceeded:
                raise
            except Exception:
                log.exception("could not update %s", item)
    ```

    ## Per framework
    - Celery: only when the task has a soft time limit (`soft_time_limit` on the task or
      its base class, `task_soft_time_limit`); the hard `time_limit` kills the process
      without raising anything in the task. Not reported when the app's pool does not
      enforce limits (`threads`, `solo`, `eventlet`).
      `@app.task(soft_time_limit=60)` + a loop around `try: ... except Exception: pass`.
    - RQ: every job has a timeout (180 s unless `job_timeout`/`timeout` says otherwise);
      only `-1` (no timeout) is not reported.
      `@job("default", timeout=60)` + `except Exception: pass` followed by more work.
    - Huey: only for tasks with a `timeout`; the process and greenlet workers raise
      `TaskTimeout` in the task, the thread worker raises it from `task.check_timeout()`.
      `@huey.task(timeout=60)` + `except: pass` in a loop.

    Dramatiq's `TimeLimitExceeded` and the `asyncio.CancelledError` that stops Taskiq and
    arq jobs derive from `BaseException`, which `except Exception` does not catch; those
    frameworks are not checked.

    What the clause does is read from the task's code: logging calls (`logger.*`, `print`),
    an error tracker's `capture_exception`-style calls, calls handed the caught exception
    (`mark_failed(item, str(exc))`), attributes written on an object and its `save()`, and
    `return`s of plain values or of such calls are not work; any other call is.

    ## Fix safety
    The fix adds `except <TimeoutException>: raise` before the catch-all clause, using the
    name the module already imports or adding
    `from celery.exceptions import SoftTimeLimitExceeded` (or the framework's equivalent)
    in its section of the module's imports, sorted, or into an existing
    `from celery.exceptions import ...` (as isort and ruff's `I` rules place it; no fix when
    that would push the line past the project's line length). It is unsafe: the task now fails when its time is up
    instead of going on, so whatever ran after the `try` no longer runs.

    ## References
    - [Celery: Time limits](https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits)
    - [Celery: SoftTimeLimitExceeded](https://docs.celeryq.dev/en/stable/reference/celery.exceptions.html#celery.exceptions.SoftTimeLimitExceeded)
    - [RQ: Dealing with job timeouts](https://python-rq.org/docs/results/#dealing-with-job-timeouts)
    - [Huey: Task timeouts](https://huey.readthedocs.io/en/latest/guide.html#task-timeouts)
    """

    code = "QLT105"
    name = "timeout-exception-swallowed"
    summary = "A catch-all `except` in a time-limited task swallows the framework's timeout exception"
    severity = Severity.WARNING
    fix_availability = "Sometimes"
    frameworks = ("celery", "rq", "huey")

    VALID = [
        Valid("""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

@shared_task(soft_time_limit=60, time_limit=90)
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except SoftTimeLimitExceeded:
            cleanup()
            raise
        except Exception:
            pass
""", note="an earlier clause of the same try handles the timeout"),
        Valid("""
from celery import shared_task

@shared_task(soft_time_limit=60)
def sync(store_id):
    try:
        pull(store_id)
    except Exception as exc:
        log.error("failed: %s", exc)
        raise
    except BaseException:
        pass
    publish(store_id)
""", note="the first catch-all re-raises, and later clauses of the try never see the timeout"),
        Valid("""
from celery import Celery

app = Celery("proj")

@app.task(time_limit=300)
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            pass
""", note="a hard limit alone kills the process: no exception reaches the task's code"),
        Valid("""
from celery import shared_task

@shared_task(soft_time_limit=300, time_limit=300)
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            pass
""", note="the hard limit fires first, so the soft one never raises (QLT102 reports the pair)"),
        Valid("""
from celery import Celery

app = Celery("proj")
app.conf.worker_pool = "threads"
app.conf.task_soft_time_limit = 60

@app.task
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            pass
""", note="the threads pool never raises the soft limit"),
        Valid("""
from celery import shared_task

@shared_task(bind=True, soft_time_limit=60)
def sync(self, store_id):
    try:
        pull(store_id)
    except Exception as exc:
        raise RuntimeError("sync failed") from exc
    try:
        push(store_id)
    except Exception as exc:
        self.retry(exc=exc)
    publish(store_id)
""", note="raise ... from exc, and a retry, end the task"),
        Valid("""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

@shared_task(soft_time_limit=60)
def sync(store_id):
    try:
        pull(store_id)
    except (SoftTimeLimitExceeded, Exception):
        pass
    try:
        push(store_id)
    except KeyError:
        pass
    publish(store_id)

def helper(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            pass
""", note="the timeout named explicitly; a narrow clause; a function that is not a task"),
        Valid("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis(), timeout=-1)
def export(paths):
    for path in paths:
        try:
            write(path)
        except Exception:
            pass
""", note="no timeout: nothing raises in the job"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task()
def export(paths):
    for path in paths:
        try:
            write(path)
        except Exception:
            pass
""", note="no timeout on the task"),
        Valid("""
from redis import Redis
from rq.decorators import job

@job("emails", connection=Redis(), timeout=60)
def send_mail(to, subject, body):
    try:
        deliver(to, subject, body)
    except Exception:
        log.exception("failed sending %s", subject)

@job("schemas", connection=Redis(), timeout=300)
def get_schema(source_id):
    try:
        return load_schema(source_id)
    except Exception as exc:
        return {"error": {"code": 2, "message": str(exc)}}
""", note="the try is the task's last statement and the clause only logs or returns: the task ends "
          "at once (QLT305 judges the swallowed failure)"),
        Valid("""
from celery import shared_task

@shared_task(soft_time_limit=1800, time_limit=2100)
def run_bulk_item(item_id, resume):
    item = load(item_id)
    if resume:
        try:
            poll(item)
        except Exception as exc:
            log.exception("polling %s failed", item_id)
            mark_item_failed(item, str(exc))
        return
    for step in steps(item):
        try:
            step.run()
        except Exception:
            log.exception("step failed")
            return None
    try:
        finish(item)
    except Exception as exc:
        item.status = "failed"
        item.error = str(exc)
        item.save()
""", note="clauses that record the failure and end the task: only a return follows, or they return"),
        Valid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(timeout=60)
def export(paths):
    for path in paths:
        try:
            write(path)
        except Exception:
            log.warning("stopping at %s", path)
            break
    log.info("export done")
""", note="the clause breaks out of the loop and nothing but logging follows it"),
    ]
    INVALID = [
        Invalid("""
from celery import shared_task

@shared_task(soft_time_limit=270, time_limit=300)
def sync_inventory(store_id):
    for item in range(3):
        try:
            update(item)
        except Exception:
            log.exception("could not update %s", item)
""", expect=8, fixed="""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

@shared_task(soft_time_limit=270, time_limit=300)
def sync_inventory(store_id):
    for item in range(3):
        try:
            update(item)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            log.exception("could not update %s", item)
""", message="the `for` loop (line 5) goes on with its next iteration past the limit, until the task ends or "
              "the hard limit (300 s) kills its process"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery

app = Celery("proj")
app.conf.task_soft_time_limit = 60
""",
            "proj/tasks.py": """
\"\"\"Tasks.

from the docs: a line that is not an import.
\"\"\"
from __future__ import annotations

from celery import exceptions
from proj.celery import app

@app.task
def export():
    try:
        pass
    except KeyError:
        pass
    except: pass
    upload()
""",
        }, expect=[("proj/tasks.py", 16)], fixed={"proj/tasks.py": """
\"\"\"Tasks.

from the docs: a line that is not an import.
\"\"\"
from __future__ import annotations

from celery import exceptions
from proj.celery import app

@app.task
def export():
    try:
        pass
    except KeyError:
        pass
    except exceptions.SoftTimeLimitExceeded: raise
    except: pass
    upload()
"""}, message="task_soft_time_limit",
            note="a global soft limit; the module imported as written; one-line clause; work after the try"),
        Invalid("""
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded as Timeout

app = Celery("proj")

class Export(Task):
    soft_time_limit = 30

    def run(self):
        try:
            pass
        except (ValueError, BaseException) as exc:
            print(exc)
        self.upload()
""", expect=12, fixed="""
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded as Timeout

app = Celery("proj")

class Export(Task):
    soft_time_limit = 30

    def run(self):
        try:
            pass
        except Timeout:
            raise
        except (ValueError, BaseException) as exc:
            print(exc)
        self.upload()
""", message="the task goes on with `self.upload()` (line 14) past the limit, with no hard limit to stop it",
            note="class-based task, an import alias, no hard limit"),
        Invalid("""
from celery import shared_task

SoftTimeLimitExceeded = None

@shared_task(soft_time_limit=60)
def sync(store_ids):
    for store_id in store_ids:
        try:
            pull(store_id)
        except Exception:
            pass
""", expect=10, note="no fix: the exception's name is taken in this module"),
        Invalid("""
from redis import Redis
from rq.decorators import job

redis = Redis()

@job("default", connection=redis)
def export(path):
    try:
        write(path)
    except Exception:
        pass
    upload(path)
""", expect=10, fixed="""
from redis import Redis
from rq.decorators import job
from rq.timeouts import JobTimeoutException

redis = Redis()

@job("default", connection=redis)
def export(path):
    try:
        write(path)
    except JobTimeoutException:
        raise
    except Exception:
        pass
    upload(path)
""", message="180 s", note="RQ's default job timeout"),
        Invalid({
            "jobs.py": """
def export(paths):
    for path in paths:
        try:
            write(path)
        except:
            continue
        upload(path)
""",
            "enqueue.py": """
from redis import Redis
from rq import Queue

from jobs import export

Queue(connection=Redis()).enqueue(export, ["a.csv"], job_timeout=60)
""",
        }, expect=[("jobs.py", 5)], message="the `for` loop (line 2) goes on with its next iteration", fixed={
            "jobs.py": """
from rq.timeouts import JobTimeoutException


def export(paths):
    for path in paths:
        try:
            write(path)
        except JobTimeoutException:
            raise
        except:
            continue
        upload(path)
""",
        }, note="a plain function enqueued with a timeout; `continue`; a module without imports gets an "
                "import block, two blank lines above the def"),
        Invalid("""
from huey import RedisHuey

huey = RedisHuey("app")

@huey.task(timeout=60, context=True)
def export(paths, task=None):
    for path in paths:
        try:
            task.check_timeout()
        except Exception:
            pass
""", expect=10, fixed="""
from huey import RedisHuey
from huey.exceptions import TaskTimeout

huey = RedisHuey("app")

@huey.task(timeout=60, context=True)
def export(paths, task=None):
    for path in paths:
        try:
            task.check_timeout()
        except TaskTimeout:
            raise
        except Exception:
            pass
""", message="TaskTimeout"),
        Invalid("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis(), timeout=120)
def fetch(url):
    try:
        return download(url)
    except Exception:
        log.warning("primary failed, trying the mirror")
        return download(mirror_of(url))

@job("default", connection=Redis(), timeout=120)
def refresh(source_id):
    source = load(source_id)
    if source.enabled:
        try:
            error = extract_error(source)
        except Exception:
            error = None
    source.error = error
    source.save()
""", expect=[8, 18], fixed="""
from redis import Redis
from rq.decorators import job
from rq.timeouts import JobTimeoutException

@job("default", connection=Redis(), timeout=120)
def fetch(url):
    try:
        return download(url)
    except JobTimeoutException:
        raise
    except Exception:
        log.warning("primary failed, trying the mirror")
        return download(mirror_of(url))

@job("default", connection=Redis(), timeout=120)
def refresh(source_id):
    source = load(source_id)
    if source.enabled:
        try:
            error = extract_error(source)
        except JobTimeoutException:
            raise
        except Exception:
            error = None
    source.error = error
    source.save()
""", message="past the limit",
            note="the clause itself goes on to work; work after a try nested in an if"),
    ]

    def check(self, ctx: RuleContext) -> None:
        for task in ctx.project.tasks:
            limit = _timeout_limit(task)
            if limit is None:
                continue
            src = ctx.source(task.file)
            # Only clauses after which the task carries on: where the task ends once the clause
            # has run, the timeout stops it all the same and what is lost is the failure (QLT305).
            for handler, flow in carried_past_timeout(ctx, task):
                self._report(ctx, task, handler, limit, _goes_on(src, flow))

    def _report(self, ctx: RuleContext, task: Task, handler: HandlerFact, limit: tuple[str, float, str],
                goes_on: str) -> None:
        profile = task.profile
        option, value, source = limit
        names = [q.rpartition(".")[2] for q in profile.timeout_exceptions]
        caught = "bare `except:`" if not handler.types else (
            f"`except {handler.types[0]}`" if len(handler.types) == 1 else f"`except ({', '.join(handler.types)})`")
        until = ""
        if profile.soft_time_limit is not None:
            hard = task.norm.get("time_limit")
            if hard is not None and hard.known and isinstance(hard.value, (int, float)) and math.isfinite(hard.value):
                until = f", until the task ends or the hard limit ({number_text(hard.value)} s) kills its process"
            elif hard is not None and hard.known:
                until = ", with no hard limit to stop it"
        message = (f"{caught} in task `{task.name}` swallows {' / '.join(f'`{n}`' for n in names)}, which "
                   f"{profile.title} raises in the task when its `{option}` of {number_text(value)} s ({source}) "
                   f"runs out: {goes_on} past the limit{until}; handle the timeout first and re-raise it")
        fix = _fix(ctx, task, handler)
        ctx.report(task.file, handler.span, message, fix=fix, statement=handler.span)


def _snippet(src: SourceFile, node: ast.AST) -> str:
    """A node's source for a message: a call as ``name(...)`` when it spans lines, anything
    else by its first line, shortened."""
    if isinstance(node, ast.Expr):
        node = node.value
    row = node.lineno
    line = src.line_text(row).encode("utf-8")
    if node.end_lineno == row and node.end_col_offset is not None:
        text = line[node.col_offset:node.end_col_offset].decode("utf-8", "replace")
    elif isinstance(node, ast.Call):
        text = f"{_dotted(node.func) or '...'}(...)"
    else:
        text = line[node.col_offset:].decode("utf-8", "replace").strip().rstrip(":").strip() + " ..."
    return text if len(text) <= 48 else text[:45].rstrip() + "..."


def _goes_on(src: SourceFile, flow: Flow) -> str:
    """What runs after the clause, for the message: the loop's next iteration, the clause's own
    work, or the work after the ``try``."""
    if flow.loop is not None:
        kind = "`while`" if isinstance(flow.loop, ast.While) else "`for`"
        return f"the {kind} loop (line {flow.loop.lineno}) goes on with its next iteration"
    if flow.busy is not None:
        return f"the clause goes on to run `{_snippet(src, flow.busy)}` (line {flow.busy.lineno})"
    work = flow.next_work
    return f"the task goes on with `{_snippet(src, work)}` (line {work.lineno})"


def _timeout_limit(task: Task) -> tuple[str, float, str] | None:
    """The limit whose expiry raises the framework's timeout exception in the task's code,
    as (option name, seconds, where it is set), when the task has one."""
    profile = task.profile
    if profile is None or not profile.timeout_exceptions or task.limits_enforced is False:
        return None
    unit = profile.soft_time_limit if profile.soft_time_limit is not None else profile.time_limit
    key = "soft_time_limit" if profile.soft_time_limit is not None else "time_limit"
    resolved = task.norm.get(key)
    if resolved is None or not resolved.known:
        return None
    value = resolved.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    if profile.soft_time_limit is not None:
        hard = task.norm.get("time_limit")
        if hard is not None and isinstance(hard.value, (int, float)) and not isinstance(hard.value, bool) and \
                hard.value <= value:
            return None  # the hard limit kills the task first (QLT102): the soft one never fires
    option = unit.option if unit is not None else key
    source = f"{profile.title}'s default" if resolved.source == "default" else where(resolved)
    return option, float(value), source



# -- the fix -----------------------------------------------------------------------------

def _module_imports(text: str) -> list[tuple[ast.stmt, int]] | None:
    """Unconditional module-level import statements, each with the row that follows it
    (where a new import can go), found with the tokenizer so that text in strings never counts."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text, newline=None).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    rows = io.StringIO(text, newline=None).read().split("\n")
    found: list[tuple[ast.stmt, int]] = []
    start = None  # first token of the current logical line
    for tok in tokens:
        if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            continue
        if start is None:
            start = tok
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if start.start[1] == 0 and start.type == tokenize.NAME and start.string in ("import", "from"):
                try:
                    body = ast.parse("\n".join(rows[start.start[0] - 1:tok.end[0]])).body
                except SyntaxError:
                    body = []
                found += [(stmt, tok.end[0] + 1) for stmt in body if isinstance(stmt, (ast.Import, ast.ImportFrom))]
            start = None
    return found


def _bindings(project: Project, facts: FileFacts, stmts) -> dict[str, str]:
    """Module-level names bound by imports -> what they name (``import a.b`` binds ``a.b``)."""
    out: dict[str, str] = {}
    for stmt in stmts:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                out[alias.asname or alias.name] = alias.name
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                local = alias.asname or alias.name
                if stmt.level == 0 and stmt.module:
                    out[local] = f"{stmt.module}.{alias.name}"
                elif local in facts.imports:
                    out[local] = facts.imports[local]
    return {local: origin(project, target) for local, target in out.items()}


def _taken(facts: FileFacts, name: str) -> bool:
    return (name in facts.imports or name in facts.assigns or any(c.name == name for c in facts.classes)
            or any(fn.name == name or name in fn.names for fn in facts.functions))


def _fix(ctx: RuleContext, task: Task, handler: HandlerFact):
    facts = task.file
    src = ctx.source(facts)
    data = src.utf8
    if data[handler.span.end - 1:handler.span.end] != b":":
        return None
    line_start = data.rfind(b"\n", 0, handler.span.start) + 1
    line_start = max(line_start, data.rfind(b"\r", 0, handler.span.start) + 1)
    indent = data[line_start:handler.span.start]
    if indent.strip(b" \t"):
        return None
    imports = _module_imports(src.text)
    if imports is None:
        return None
    bindings = _bindings(ctx.project, facts, [stmt for stmt, _ in imports])
    edits: list[Edit] = []
    names: list[str] = []
    for qualified in task.profile.timeout_exceptions:
        module, _, short = qualified.rpartition(".")
        spelled = next((local for local, target in bindings.items() if target == qualified), None)
        if spelled is None:
            spelled = next((f"{local}.{short}" for local, target in bindings.items() if target == module), None)
        if spelled is None:
            if _taken(facts, short):
                return None
            added = import_edits(ctx, src, module, short)  # in its isort section, as ruff's I rules want
            if added is None or any(edit.start > task.header.start for edit in added):
                return None
            edits.extend(added)
            spelled = short
        names.append(spelled)
    caught = names[0] if len(names) == 1 else f"({', '.join(names)})"
    newline = src.newline
    colon = handler.span.end
    rest = data[colon:data.find(b"\n", colon) if data.find(b"\n", colon) >= 0 else len(data)].strip()
    indent_text = indent.decode()
    if rest and not rest.startswith(b"#"):
        text = f"except {caught}: raise{newline}{indent_text}"  # the clause's body is on its line
    else:
        body_indent = _body_indent(src, colon)
        if body_indent is None or not body_indent.startswith(indent_text) or body_indent == indent_text:
            return None
        text = f"except {caught}:{newline}{body_indent}raise{newline}{indent_text}"
    edits.append(Edit(handler.span.start, handler.span.start, text))
    return ctx.fix(facts, f"Re-raise `{caught}` before the catch-all clause", edits)


def _body_indent(src, colon: int) -> str | None:
    """The indentation of the first statement of an ``except`` clause's block."""
    row = src.row_of(colon)
    for r in range(row + 1, len(src.line_starts) + 1):
        line = src.line_text(r)
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        return line[:len(line) - len(stripped)]
    return None
