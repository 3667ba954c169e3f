from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from qlint.frameworks.celery_failures import SENTRY_INIT, failure_sinks
from qlint.lint.context import RuleContext
from qlint.lint.diagnostics import Severity
from qlint.lint.extract import dotted_name as _dotted
from qlint.lint.facts import FileFacts, FunctionFact, HandlerFact, Span, Value
from qlint.lint.model import Project, Task
from qlint.lint.prefilter import Seed
from qlint.lint.registry import Invalid, Rule, Valid, register
from qlint.lint.scan import header_colon as _structural_colon
from qlint.lint.source import SourceFile
from qlint.lint.trees import Trees
from qlint.rules._common import task_functions, where

BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})
# Task methods that run around the task, not as its body: a try there guards the hook itself.
HOOK_PREFIXES = ("on_", "after_", "before_", "__")


def header_colon(data: bytes, start: int) -> int:
    """The offset just past the colon that ends the ``except`` header starting at ``start``
    (never a colon in a trailing comment: ``# noqa: BLE001``, nor one inside brackets)."""
    colon = _structural_colon(data, start, len(data))
    return len(data) if colon < 0 else colon + 1


# -- what a handler does, and what runs after it: the task function's tree ------------------
#
# QLT105 and QLT305 split the catch-all clauses of a task between them by one question: does
# the task end once the clause has run? Both ask ``handler_flow``, so that no clause is ever
# reported by both.

LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# One level of the way down from the function to a ``try``: the node holding a block, the
# block's field, the block, and the index of the statement on the way.
_Level = tuple[ast.AST, str, list, int]


@dataclass
class Flow:
    """What happens once an ``except`` clause has caught an exception and not re-raised it."""

    node: ast.ExceptHandler
    # The loop whose next iteration runs after the clause (the clause falls through or says
    # ``continue``), None when there is none.
    loop: ast.stmt | None = None
    # The statements that run after the clause, in order, to the end of the function (``finally``
    # blocks left out: they run whether the clause swallows the exception or re-raises it).
    after: list[ast.stmt] = field(default_factory=list)
    # The first thing the clause itself does that is neither logging nor recording the failure.
    busy: ast.AST | None = None
    # The first statement after the clause that does work.
    next_work: ast.stmt | None = None
    top_level: bool = False

    @property
    def ends_task(self) -> bool:
        """The task ends once the clause has run: no next iteration, no work after it, and the
        clause only logs, records the failure, passes or returns."""
        return self.loop is None and self.next_work is None and self.busy is None


def _levels(fn: ast.AST) -> dict[int, tuple[ast.Try, list[_Level]]]:
    """Every ``try`` of the function's own body (not of nested functions) by id of each of its
    handlers, with the way down to it."""
    found: dict[int, tuple[ast.Try, list[_Level]]] = {}

    def visit(owner: ast.AST, name: str, block: list, path: list[_Level]) -> None:
        for index, stmt in enumerate(block):
            here = [*path, (owner, name, block, index)]
            if isinstance(stmt, _SCOPES):
                continue
            if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                for handler in stmt.handlers:
                    found[id(handler)] = (stmt, here)
            for child_name in ("body", "orelse", "finalbody"):
                child = getattr(stmt, child_name, None)
                if isinstance(child, list) and child and isinstance(child[0], ast.stmt):
                    visit(stmt, child_name, child, here)
            for handler in getattr(stmt, "handlers", ()) or ():
                visit(handler, "body", handler.body, here)
            for case in getattr(stmt, "cases", ()) or ():
                visit(case, "body", case.body, here)

    visit(fn, "body", fn.body, [])
    return found


def _ending(block: list[ast.stmt]) -> str:
    """How a block ends when it runs to its first jump: "return" (or raise), "continue",
    "break", or "fall" (it runs out)."""
    for stmt in block:
        if isinstance(stmt, (ast.Return, ast.Raise)):
            return "return"
        if isinstance(stmt, ast.Continue):
            return "continue"
        if isinstance(stmt, ast.Break):
            return "break"
    return "fall"


def _innermost_loop(path: list[_Level], below: int) -> int | None:
    """The index of the innermost level at or above ``below`` that is a loop's body."""
    for i in range(below, -1, -1):
        owner, name = path[i][0], path[i][1]
        if isinstance(owner, LOOPS) and name == "body":
            return i
    return None


def _continuation(path: list[_Level], how: str) -> tuple[ast.stmt | None, list[ast.stmt]]:
    """After the ``try`` at the end of ``path`` is left as ``how``: the loop whose next
    iteration runs, and the statements that run, up to the function's end."""
    after: list[ast.stmt] = []
    i = len(path) - 1
    while True:
        if how == "return":
            return None, after
        if how == "continue":
            at = _innermost_loop(path, i)
            return (path[at][0] if at is not None else None), after  # type: ignore[return-value]
        if how == "break":
            at = _innermost_loop(path, i)
            if at is None or at == 0:
                return None, after
            i = at - 1  # on after the loop statement, one level up
        how = "fall"
        owner, name, block, index = path[i]
        rest = block[index + 1:]
        if isinstance(owner, ast.Try) and name == "body":
            rest = [*rest, *owner.orelse]  # a body run to its end goes on with ``else``
        for stmt in rest:
            after.append(stmt)
            jump = _ending([stmt])
            if jump != "fall":
                how = jump
                break
        if how != "fall":
            continue
        if isinstance(owner, LOOPS) and name == "body":
            return owner, after  # the loop's next iteration
        if i == 0:
            return None, after
        i -= 1


def handler_flow(trees: Trees, src: SourceFile, fn: FunctionFact, handler: HandlerFact) -> Flow | None:
    """How the task goes on after ``handler`` swallows an exception; None when qlint cannot
    read the function back."""
    node = trees.function(src, fn)
    if node is None:
        return None
    starts = src.line_starts
    for try_node, path in _levels(node).values():
        for clause in try_node.handlers:
            if starts[clause.lineno - 1] + clause.col_offset != handler.span.start:
                continue
            loop, after = _continuation(path, _ending(clause.body))
            return Flow(clause, loop, after, _first_work(clause.body, clause.name),
                        _first_work_statement(after), top_level=len(path) == 1)
    return None


# -- what a statement does ---------------------------------------------------------------------

_LOG_LEVELS = {"debug": 10, "info": 20, "msg": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
               "critical": 50, "fatal": 50}
LEVEL_NAMES = {"NOTSET": 0, "DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "CRITICAL": 50,
               "FATAL": 50}
_PRINTS = frozenset({"print", "traceback.print_exc", "traceback.print_exception", "warnings.warn"})
_SIMPLE_CALLS = frozenset({"str", "repr", "type", "len", "format", "getattr", "isinstance", "dict", "list", "tuple",
                           "int", "float", "bool"})
# Error trackers' calls that record an exception or a message (sentry_sdk and raven-style
# clients, Rollbar, Bugsnag, the New Relic agent).
TRACKER_CALLS = frozenset({"capture_exception", "capture_message", "captureException", "captureMessage",
                           "report_exc_info", "report_message", "notice_error", "record_exception"})
# Celery's ``self.update_state(...)``, a failure written on an object: bookkeeping.
_BOOKKEEPING_METHODS = frozenset({"update_state", "save", "save_meta"})


def log_level(call: ast.Call) -> int | None:
    """The level of a logging call (``logger.exception(...)`` 40, ``log.warning(...)`` 30,
    ``print(...)`` 0), None when the call does not log."""
    name = _dotted(call.func)
    if name in _PRINTS:
        return 0
    receiver, _, method = name.rpartition(".")
    if "log" not in receiver.rpartition(".")[2].lower():
        return None
    if method == "log":
        if call.args:
            level = _constant_level(call.args[0])
            return level if isinstance(level, int) else 0
        return 0
    return _LOG_LEVELS.get(method)


def _constant_level(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return LEVEL_NAMES.get(node.value.upper())
    name = _dotted(node)
    return LEVEL_NAMES.get(name.rpartition(".")[2]) if name else None


def tracker_call(call: ast.Call) -> bool:
    """``sentry_sdk.capture_exception(exc)``, ``client.captureException()``,
    ``rollbar.report_exc_info()``, ``bugsnag.notify(exc)``."""
    name = _dotted(call.func)
    last = name.rpartition(".")[2]
    return last in TRACKER_CALLS or (last == "notify" and "bugsnag" in name.lower())


def _plain(node: ast.AST | None) -> bool:
    """An expression that computes a value without doing anything (a message, a flag)."""
    if node is None:
        return True
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            name = _dotted(inner.func)
            if name not in _SIMPLE_CALLS and not name.endswith(".format"):
                return False
        elif isinstance(inner, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
    return True


def _mentions(node: ast.AST, name: str | None) -> bool:
    return name is not None and any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _records(call: ast.Call, exc: str | None, assigned: set[str]) -> bool:
    """A call that records the failure: an error tracker's capture, a call handed the caught
    exception (``mark_failed(item, str(exc))``), a state update, or the save of an object the
    clause has just written a failure on (``job.status = "failed"; job.save()``)."""
    if tracker_call(call):
        return True
    if any(_mentions(arg, exc) for arg in [*call.args, *(k.value for k in call.keywords)]):
        return True
    if isinstance(call.func, ast.Attribute) and call.func.attr in _BOOKKEEPING_METHODS:
        receiver = _dotted(call.func.value)
        return call.func.attr == "update_state" or receiver in assigned
    return False


def _first_work(statements: list[ast.stmt], exc: str | None, records: bool = True,
                assigned: set[str] | None = None) -> ast.AST | None:
    """The first statement (or call) that does something besides logging, passing, returning
    or computing a local value, and (with ``records``) recording the failure; None when there
    is none. ``exc`` is the clause's ``as`` name."""
    assigned = set() if assigned is None else assigned
    for stmt in statements:
        if isinstance(stmt, (ast.Pass, ast.Continue, ast.Break, ast.Global, ast.Nonlocal)):
            continue
        if isinstance(stmt, ast.Return):
            value = stmt.value
            if _plain(value):
                continue
            if records and isinstance(value, ast.Call) and _records(value, exc, assigned) and all(
                    _plain(a) or _mentions(a, exc) for a in [*value.args, *(k.value for k in value.keywords)]):
                continue
            return value if isinstance(value, ast.Call) else stmt
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Constant):
                continue
            if isinstance(value, ast.Call) and log_level(value) is not None:
                continue
            if records and isinstance(value, ast.Call) and _records(value, exc, assigned):
                continue
            return value if isinstance(value, ast.Call) else stmt
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if records and isinstance(stmt.value, ast.Call) and _records(stmt.value, exc, assigned):
                continue
            if stmt.value is None or not _plain(stmt.value):
                return stmt
            if all(isinstance(t, ast.Name) for t in targets):
                continue
            if records and all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in targets):
                assigned.update(_dotted(t.value) for t in targets)  # a failure written on an object
                continue
            return stmt
        if isinstance(stmt, ast.If) and _plain(stmt.test):
            inner = _first_work(stmt.body, exc, records, assigned) or _first_work(stmt.orelse, exc, records, assigned)
            if inner is None:
                continue
            return inner
        return stmt
    return None


def _first_work_statement(statements: list[ast.stmt]) -> ast.stmt | None:
    for stmt in statements:
        if _first_work([stmt], None, records=False) is not None:
            return stmt
    return None


def only_logs(statements: list[ast.stmt]) -> bool:
    """Statements that log, pass, return or compute a local value, and do nothing else."""
    return _first_work(statements, None, records=False) is None


def max_log_level(statements: list[ast.stmt]) -> int | None:
    """The highest level the statements log at (None: they do not log)."""
    levels = [lvl for stmt in statements for node in ast.walk(stmt)
              if isinstance(node, ast.Call) and (lvl := log_level(node)) is not None]
    return max(levels) if levels else None


# -- an error payload returned as the task's result --------------------------------------------

_ERROR_KEYS = frozenset({"error", "errors", "exception", "traceback"})
_STATUS_KEYS = frozenset({"status", "state", "result"})
_FAILED = frozenset({"error", "failed", "failure", "fail"})
_SUCCESS_KEYS = frozenset({"success", "ok"})


def error_payload(statements: list[ast.stmt], exc: str | None) -> bool:
    """The clause returns the failure as the task's result: the caught exception itself
    (``return exc``), or a dict literal with an ``"error"``/``"errors"``/``"exception"``/
    ``"traceback"`` key, a ``"status"``/``"state"``/``"result"`` of ``"error"``/``"failed"``/
    ``"failure"``/``"fail"``, or a ``"success"``/``"ok"`` of ``False``."""
    for stmt in statements:
        if not isinstance(stmt, ast.Return) or stmt.value is None:
            continue
        value = stmt.value
        if exc is not None and isinstance(value, ast.Name) and value.id == exc:
            return True
        if not isinstance(value, ast.Dict):
            continue
        for key, item in zip(value.keys, value.values):
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                continue
            name = key.value.lower()
            if name in _ERROR_KEYS:
                return True
            if name in _STATUS_KEYS and isinstance(item, ast.Constant) and isinstance(item.value, str) and \
                    item.value.lower() in _FAILED:
                return True
            if name in _SUCCESS_KEYS and isinstance(item, ast.Constant) and item.value is False:
                return True
    return False


# -- error trackers that turn log records into events ------------------------------------------
#
# sentry-sdk (getsentry/sentry-python 064542dd, sentry_sdk/integrations/logging.py and
# integrations/__init__.py): ``LoggingIntegration`` is in ``_DEFAULT_INTEGRATIONS``, which
# ``sentry_sdk.init()`` installs unless ``default_integrations=False``; ``disabled_integrations``
# takes precedence. It patches ``logging.Logger.callHandlers`` and turns every record at
# ``event_level`` or above (``DEFAULT_EVENT_LEVEL = logging.ERROR``) into an event;
# ``event_level=None`` sends none. structlog-sentry's ``SentryProcessor`` (kiwicom/structlog-sentry
# 4ae6808, structlog_sentry/__init__.py) has ``event_level=logging.WARNING``. Loggers that go
# through the standard library's ``logging`` (structlog's stdlib factory, Celery's task logger,
# Dramatiq's actor logger) are caught the same way.

SENTRY_EVENT_LEVEL = 40
STRUCTLOG_SENTRY_LEVEL = 30
LOGGING_HANDLERS = {
    "raven.handlers.logging.SentryHandler": "raven's `SentryHandler`",
    "raven.contrib.django.handlers.SentryHandler": "raven's `SentryHandler`",
    "raven.contrib.django.raven_compat.handlers.SentryHandler": "raven's `SentryHandler`",
    "sentry_sdk.integrations.logging.EventHandler": "Sentry's `EventHandler`",
    "rollbar.logger.RollbarHandler": "Rollbar's `RollbarHandler`",
    "bugsnag.handlers.BugsnagHandler": "Bugsnag's `BugsnagHandler`",
}
# Where a project declares what it installs (not lock files: they list what other packages pull in).
DEPENDENCY_FILES = ("requirements*.txt", "requirements*.in", "requirements/*.txt", "requirements/*.in",
                    "requirements/*.pip", "pyproject.toml", "setup.cfg", "Pipfile")
_NOT_DEPLOYED = re.compile(r"test|dev|doc|lint|ci\b|typing", re.IGNORECASE)
DEPENDENCIES = (
    (re.compile(r"(?im)^[^#\n]*?(?<![\w.-])structlog[-_]sentry(?![\w-])"), STRUCTLOG_SENTRY_LEVEL, "structlog-sentry"),
    (re.compile(r"(?im)^[^#\n]*?(?<![\w.-])sentry[-_]sdk(?![\w-])"), SENTRY_EVENT_LEVEL, "sentry-sdk"),
)


@dataclass
class LogCapture:
    """The lowest log level an error tracker of the project turns into an event (``math.inf``:
    none does), and where that is configured."""

    level: float = math.inf
    what: str = ""
    configured: bool = False  # the code configures a tracker (even one that sends no log events)

    def lower(self, level: float, what: str) -> None:
        self.configured = True
        if level < self.level:
            self.level, self.what = level, what


def _level_value(project: Project, value: Value | None) -> float:
    """A log level written in the code: ``logging.WARNING``, ``"ERROR"``, ``40``; ``None`` turns
    the events off (``math.inf``); one qlint cannot read may be any level (0)."""
    if value is None:
        return 0
    if value.is_const:
        if value.value is None:
            return math.inf
        if isinstance(value.value, int) and not isinstance(value.value, bool):
            return value.value
        if isinstance(value.value, str):
            return LEVEL_NAMES.get(value.value.upper(), 0)
        return 0
    if value.kind == "name" and value.dotted.rpartition(".")[2] in LEVEL_NAMES:
        return LEVEL_NAMES[value.dotted.rpartition(".")[2]]
    folded = project.fold(value).value
    if isinstance(folded, int) and not isinstance(folded, bool):
        return folded
    return 0


def _called(facts: FileFacts, value: Value, name: str, fn: FunctionFact | None = None):
    """The call ``value`` is (or the name is bound to, in the function ``fn`` or at module
    level) when it calls ``name``."""
    if value.kind == "name" and fn is not None and value.dotted in fn.local_calls:
        value = fn.local_calls[value.dotted]
    elif value.kind == "name" and value.dotted in facts.assigns:
        value = facts.assigns[value.dotted].value
    if value.kind == "call" and value.call is not None and value.call.dotted.rpartition(".")[2] == name:
        return value.call
    return None


def _names(facts: FileFacts, value: Value, name: str, fn: FunctionFact | None) -> bool:
    return _called(facts, value, name, fn) is not None or value.dotted.rpartition(".")[2] == name


def _sentry_event_level(project: Project, facts: FileFacts, call, fn: FunctionFact | None) -> float:
    """The lowest level ``sentry_sdk.init(...)`` turns into events (options qlint cannot read,
    ``**options``, are taken to keep the defaults)."""
    integrations = call.kwargs.get("integrations")
    if integrations is not None and integrations.value.kind == "seq":
        for element in integrations.value.elements:
            logging = _called(facts, element, "LoggingIntegration", fn)
            if logging is not None:
                level = logging.kwargs.get("event_level")
                if level is not None:
                    return _level_value(project, level.value)
                if len(logging.args) > 1:
                    return _level_value(project, logging.args[1])
                return 0 if logging.has_star else SENTRY_EVENT_LEVEL
    disabled = call.kwargs.get("disabled_integrations")
    if disabled is not None and disabled.value.kind == "seq" and any(
            _names(facts, e, "LoggingIntegration", fn) for e in disabled.value.elements):
        return math.inf
    defaults = call.kwargs.get("default_integrations")
    if defaults is not None and project.fold(defaults.value).value is False:
        return math.inf
    return SENTRY_EVENT_LEVEL


def _handler_levels(value: Value):
    """``"class": "raven.handlers.logging.SentryHandler"`` in a ``LOGGING`` dict, with its level."""
    if value.kind == "dict":
        entries = {k.value: v for k, v in value.items if k.is_const and isinstance(k.value, str)}
        target = entries.get("class") or entries.get("()")
        if target is not None and target.is_const and target.value in LOGGING_HANDLERS:
            level = entries.get("level")
            yield target.value, level
        for _, item in value.items:
            yield from _handler_levels(item)
    elif value.kind == "seq":
        for element in value.elements:
            yield from _handler_levels(element)


def _calls(facts: FileFacts):
    """Every recorded call of a module, with the function it is in (None at module level)."""
    seen: set[int] = set()
    pairs = [*((None, c) for c in facts.calls), *((f, c) for f in facts.functions for c in f.calls)]
    for fn, call in pairs:
        if id(call) not in seen:
            seen.add(id(call))
            yield fn, call


def log_capture(project: Project, root: Path | None) -> LogCapture:
    """Whether an error tracker turns the project's log records into events, and from which level."""
    capture = LogCapture()
    for facts in project.parsed_files():
        for fn, call in _calls(facts):
            if not call.qualified.endswith(".init"):
                continue
            with project.parsed_only():
                if call.qualified not in SENTRY_INIT and project.canonical(call.qualified) not in SENTRY_INIT:
                    continue
            capture.lower(_sentry_event_level(project, facts, call, fn), f"`sentry_sdk.init()` in `{facts.module}`")
        if any(t == "structlog_sentry" or t.startswith("structlog_sentry.") for t in facts.imports.values()):
            capture.lower(STRUCTLOG_SENTRY_LEVEL, f"structlog-sentry's `SentryProcessor` in `{facts.module}`")
        for kw in facts.assigns.values():
            for target, level in _handler_levels(kw.value):
                capture.lower(0 if level is None else _level_value(project, level),
                              f"{LOGGING_HANDLERS[target]} in `{facts.module}.{kw.name}`")
    if capture.configured or root is None:
        return capture
    # Nothing in the code: a tracker the project installs is configured where qlint cannot
    # read it (a deployment's own settings module), with its defaults as far as qlint knows.
    for path in sorted({p for pattern in DEPENDENCY_FILES for p in Path(root).glob(pattern) if p.is_file()})[:40]:
        if _NOT_DEPLOYED.search(path.relative_to(root).as_posix()):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for pattern, level, package in DEPENDENCIES:
            if pattern.search(text):
                capture.lower(level, f"{package} (in `{path.relative_to(root).as_posix()}`, configured outside "
                              "the code qlint reads)")
    return capture


# -- what a swallowed failure costs, for the message ------------------------------------------

def _retries_lost(task: Task) -> str:
    """The retries a raised exception would have had, "" when qlint knows of none: Celery's
    ``autoretry_for``; where a raised exception is retried by itself (no retry method to call,
    a retry count on the task), the task's effective count."""
    auto = task.options.get("autoretry_for")
    if auto is not None and auto.keyword is not None and auto.value not in ((), [], None):
        return "its `autoretry_for` retries never run"
    profile = task.profile
    if profile is None or profile.retry_method or not profile.max_retries or task.retry_blocker:
        return ""
    count = task.norm.get("max_retries")
    if count is None or not count.known or isinstance(count.value, bool) or not isinstance(count.value, (int, float)) \
            or count.value <= 0:
        return ""
    number = "unbounded" if math.isinf(count.value) else f"{int(count.value)}"
    source = f"{profile.title}'s default" if count.source == "default" else where(count)
    return f"its retries ({number}, {source}) never run"


def _hooks_lost(task: Task, signals: list[str]) -> list[str]:
    lost = []
    names = ("on_failure", *(task.profile.handler_options if task.profile is not None else ()))
    for option in dict.fromkeys(names):
        if option in task.options:
            lost.append(f"its `{option}` handler is not called")
    if task.apps and signals:
        lost.append(f"the project's `task_failure` receiver{'s' if len(signals) > 1 else ''} "
                    f"({', '.join(signals[:2])}{', ...' if len(signals) > 2 else ''}) "
                    f"{'are' if len(signals) > 1 else 'is'} not called")
    return lost


@register
class TaskFailureSwallowed(Rule):
    """## What it does
    Checks for a `try` statement at the top level of a task's body whose `except
    Exception:`, `except BaseException:` or bare `except:` clause neither re-raises, nor
    raises another exception, nor retries the task, nor records the failure anywhere but in
    a log line, and lets the task end: the clause returns, or nothing but logging and a
    `return` follows the `try`.

    ## Why is this bad?
    The framework decides what to do with a task by whether it raises. A task that catches
    every exception around its work and only logs (or passes) returns normally: it is
    treated as a success, so the retries it has (`autoretry_for`, Dramatiq's and Huey's
    retries, Taskiq's retry label) never run, its failure hooks (`on_failure`, Celery's
    `task_failure` receivers) are not called, and the failure leaves no trace but a line in
    the log, if that.

    A failure the clause *records* is handled, not swallowed, and is not reported:
    - an error tracker's call: `capture_exception`/`capture_message` (sentry_sdk, and
      raven-style `captureException`/`captureMessage`), Rollbar's `report_exc_info`/
      `report_message`, Bugsnag's `notify`, New Relic's `notice_error`;
    - a log call at a level an error tracker of the project turns into an event:
      `sentry_sdk.init(...)` anywhere in the production code installs Sentry's
      `LoggingIntegration`, which sends ERROR records (`logger.error`, `logger.exception`,
      `logger.critical`) as events, unless it is given `default_integrations=False`,
      `disabled_integrations=[LoggingIntegration]` or `LoggingIntegration(event_level=...)`
      (then that level counts; `None` turns the events off); structlog-sentry's
      `SentryProcessor` (WARNING and up by default); a `LOGGING` handler of raven, Sentry,
      Rollbar or Bugsnag (its `level`). When no configuration is in the code but the
      project's requirements install `sentry-sdk` or `structlog-sentry`, the tracker is
      configured elsewhere and its defaults are assumed;
    - an error payload returned as the task's result, which is how some projects hand a
      failure to whoever reads the result: the caught exception itself (`return exc`), or a
      dict literal with an `"error"`, `"errors"`, `"exception"` or `"traceback"` key, a
      `"status"`, `"state"` or `"result"` of `"error"`, `"failed"`, `"failure"` or `"fail"`,
      or a `"success"` or `"ok"` of `False`. Other shapes (`return False`,
      `return None, message`) are not taken as payloads;
    - anything else the clause does besides logging: an alert, a failure status saved on a
      model, a call handed the exception.

    A clause whose log calls are all below WARNING (`log.info("could not delete %s", path,
    exc_info=True)`, `logger.debug(...)`) is not reported either: its author chose to treat
    the failure as routine (a best-effort clean-up), and says so in the level.

    ## Example
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5)
    def sync_customer(customer_id):
        try:
            push_to_crm(customer_id)
        except Exception:
            logger.warning("sync failed for %s", customer_id)
    ```

    Use instead:
    ```python
    from celery import shared_task

    @shared_task(autoretry_for=(ConnectionError,), max_retries=5)
    def sync_customer(customer_id):
        try:
            push_to_crm(customer_id)
        except Exception:
            logger.warning("sync failed for %s", customer_id)
            raise
    ```

    ## Per framework
    The message names what the success hides, where qlint can see it: the task's retries,
    its failure handler options, and a Celery app's `task_failure` receivers.
    - **Celery**: `@shared_task` / `@app.task` functions and the `run` method of task
      classes; `self.retry(...)` in the clause counts as handling it. An exception raised
      by the task is retried only through `autoretry_for`.
      `try: ... except Exception: logger.warning(...)`.
    - **RQ**: functions decorated with `@job` or enqueued with `Queue.enqueue`; the job
      then never reaches the `FailedJobRegistry`. `try: ... except Exception: return None`.
    - **Dramatiq**: actors and `GenericActor.perform`; the `Retries` middleware (20
      retries by default) never sees the error. `try: ... except: pass`.
    - **Huey**: `@huey.task()` / `@huey.periodic_task()` / `db_task`; `retries=` never
      fire and `SIGNAL_ERROR` is not sent. `try: ... except BaseException: pass`.
    - **Taskiq**: `@broker.task`; the result is not an error, so retry middleware does not
      retry it. `try: ... except Exception: logger.warning(...)`.
    - **arq**: functions of `WorkerSettings`; the job's result is a success (arq retries
      only jobs that raise `Retry` or are cut off). `try: ... except Exception: return False`.

    Not reported:
    - a clause that raises anything (`raise`, `raise TaskError(...) from exc`,
      `raise Reject(...)`, `raise Retry(...)`) or re-enqueues the task;
    - a clause that records the failure (above);
    - a step allowed to fail, after which the task goes on with more work (when the task
      has a time limit that raises in its code, QLT105 judges that clause);
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
    - [Sentry: Logging integration](https://docs.sentry.io/platforms/python/integrations/logging/)
    """

    code = "QLT305"
    name = "task-failure-swallowed"
    summary = "A catch-all `except` around a task's body hides its failures from the framework"
    severity = Severity.WARNING
    fix_availability = "None"
    frameworks = ("celery", "rq", "dramatiq", "huey", "taskiq", "arq")
    # Error trackers are configured in modules that may mention no task framework: parse them.
    prefilter_seed: ClassVar[Seed] = Seed(
        rb"sentry_sdk|structlog_sentry|SentryHandler|RollbarHandler|BugsnagHandler",
        (b"sentry_sdk", b"structlog_sentry", b"SentryHandler", b"RollbarHandler", b"BugsnagHandler"))

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

@shared_task
def remove_paths(paths):
    try:
        storage.delete_paths(paths)
    except Exception:
        log.info("could not delete %s", paths, exc_info=True)
""", note="logged at info: a failure the author expects (a best-effort clean-up)"),
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
            logger.warning("sync failed for %s", customer_id)
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
import rollbar
from celery import shared_task
from sentry_sdk import capture_exception

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception as exc:
        capture_exception(exc)

@shared_task
def sync_invoice(invoice_id):
    try:
        push_invoice(invoice_id)
    except Exception:
        rollbar.report_exc_info()

@shared_task
def import_project(job_id):
    job = Job.objects.get(pk=job_id)
    try:
        run_import(job)
    except Exception as exc:
        logger.warning("import %s failed", job_id)
        job.status = "failed"
        job.save()
""", note="the failure goes to an error tracker; it is recorded on a model"),
        Valid({
            "proj/__init__.py": "",
            "proj/settings.py": """
import os

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration

if os.environ.get("SENTRY_DSN"):
    sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], integrations=[DjangoIntegration()])
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.exception("sync failed for %s", customer_id)
""",
        }, note="Sentry's default LoggingIntegration sends the ERROR record as an event"),
        Valid({
            "proj/__init__.py": "",
            "proj/sentry.py": """
import logging

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

def init(dsn):
    events = LoggingIntegration(level=logging.INFO, event_level=logging.WARNING)
    sentry_sdk.init(dsn=dsn, default_integrations=False, integrations=[events])
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        log.warning("sync failed for %s", customer_id)
""",
        }, note="a LoggingIntegration that sends WARNING records: the warning is an event"),
        Valid({
            "requirements.txt": "celery==5.4.0\nsentry-sdk==2.19.0\n",
            "tasks.py": """
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        log.error("sync failed for %s", customer_id)
""",
        }, note="the project installs sentry-sdk and configures it outside its code: its defaults are assumed"),
        Valid("""
from redis import Redis
from rq.decorators import job

@job("schemas", connection=Redis())
def get_schema(source_id):
    try:
        return load_schema(source_id)
    except Exception as exc:  # noqa: BLE001
        return {"error": {"code": 2, "message": str(exc)}}

@job("default", connection=Redis())
def test_connection(source_id):
    try:
        connect(source_id)
    except Exception as exc:
        return exc
    return True

@job("default", connection=Redis())
def export(source_id):
    try:
        write_export(source_id)
    except Exception:
        return {"status": "failed", "retryable": False}
""", note="an error payload returned as the job's result: whoever reads the result sees the failure"),
        Valid("""
from celery import shared_task

@shared_task
def sync_versions(project_id):
    added = sync(project_id)
    try:
        run_automation_rules(project_id, added)
    except Exception:
        # Do not stop the sync if a rule fails.
        logger.warning("automation rules failed")
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
""", expect=7, message="so its `autoretry_for` retries never run",
            note="no error tracker in the project: the log line is all there is"),
        Invalid("""
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.exception("sync failed for %s", customer_id)
""", expect=7, message="Celery treats the task as a success, and a log line is all that records the failure",
            note="no retries to miss: the message does not claim any"),
        Invalid("""
import dramatiq

@dramatiq.actor
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except:
        pass
""", expect=7, message="its retries (20, Dramatiq's default) never run"),
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
""", expect=9, message="its retries (3, decorator) never run"),
        Invalid("""
from redis import Redis
from rq.decorators import job

@job("default", connection=Redis())
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception as exc:  # noqa: BLE001
        return {"done": False, "reason": str(exc)}

@job("default", connection=Redis())
def sync_order(order_id):
    try:
        push_order(order_id)
    except Exception as exc:
        return False, str(exc)
""", expect=[8, 15], message="RQ treats the task as a success, and nothing records the failure",
            note="results that are not one of the error payload shapes qlint accepts"),
        Invalid("""
from arq import cron

async def sync_customer(ctx, customer_id):
    try:
        await push_to_crm(customer_id)
    except (ValueError, Exception):
        return False

class WorkerSettings:
    functions = [sync_customer]
""", expect=6, message="arq treats the task as a success, and nothing records the failure"),
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
""", expect=11, message="Taskiq treats the task as a success, and a log line",
            note="the retry label with no retry middleware: no retries to miss"),
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
""", expect=10, message="its retries (3,", note="a class-based actor's perform"),
        Invalid({
            "proj/__init__.py": "",
            "proj/settings.py": """
import logging

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

sentry_sdk.init(dsn="https://key@sentry.example/1", integrations=[LoggingIntegration(event_level=None)])
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.exception("sync failed for %s", customer_id)

@shared_task
def sync_order(order_id):
    try:
        push_order(order_id)
    except Exception:
        logger.exception("sync failed for %s", order_id)
""",
            "proj/other.py": """
import sentry_sdk

def init():
    sentry_sdk.init(dsn="https://key@sentry.example/1", default_integrations=False)
""",
        }, expect=[("proj/tasks.py", 7), ("proj/tasks.py", 14)],
            note="Sentry with its log events turned off (event_level=None; default integrations off)"),
        Invalid({
            "proj/__init__.py": "",
            "proj/settings.py": """
import sentry_sdk

sentry_sdk.init(dsn="https://key@sentry.example/1")
""",
            "proj/tasks.py": """
from celery import shared_task

@shared_task
def sync_customer(customer_id):
    try:
        push_to_crm(customer_id)
    except Exception:
        logger.warning("sync failed for %s", customer_id)
""",
            "requirements-dev.txt": "structlog-sentry==2.2.1\n",
        }, expect=[("proj/tasks.py", 7)], message="a log line is all",
            note="a WARNING record is below Sentry's default event level; a tracker only in dev requirements"),
        Invalid({
            "proj/__init__.py": "",
            "proj/celery.py": """
from celery import Celery
from celery.signals import task_failure

app = Celery("proj")

@task_failure.connect
def record_failure(sender=None, task_id=None, exception=None, **kwargs):
    TaskRecord.objects.filter(task_id=task_id).update(status="FAILURE")
""",
            "proj/tasks.py": """
from proj.celery import app

@app.task
def delete_documents(ids):
    logger.info("deleting %s", ids)
    try:
        Document.objects.filter(id__in=ids).delete()
    except (
        Exception
    ) as exc:
        if "too long" in str(exc):
            logger.warning("incompatible column")
        logger.warning(f"Error deleting documents: {exc!s}")

    return "OK"
""",
        }, expect=[("proj/tasks.py", 8)],
            message="the project's `task_failure` receiver (`record_failure` in `proj.celery`) is not called",
            note="a multi-line clause header; only a return follows the try"),
    ]

    def check(self, ctx: RuleContext) -> None:
        project = ctx.project
        trees = ctx.trees
        capture: LogCapture | None = None
        signals: list[str] | None = None
        for task in project.tasks:
            for fn in task_functions(project, task):
                if task.cls is not None and fn.name.startswith(HOOK_PREFIXES):
                    continue
                for handler in fn.handlers:
                    if not handler.top_level or handler.reraises or handler.calls_retry:
                        continue
                    if handler.types and not any(task.file.qualify(t) in BROAD for t in handler.types):
                        continue
                    src = ctx.source(task.file)
                    flow = handler_flow(trees, src, fn, handler)
                    if flow is None:
                        continue  # a function qlint cannot read back: it cannot tell what the clause does
                    body = flow.node.body
                    if not only_logs(body):
                        continue  # it raises, retries, re-enqueues, or handles the failure (an alert, a status)
                    if not flow.ends_task:
                        continue  # a step allowed to fail: the task goes on with its work
                    if error_payload(body, flow.node.name):
                        continue  # the failure is the task's result
                    level = max_log_level(body)
                    if level is not None and 0 < level < LEVEL_NAMES["WARNING"]:
                        continue  # logged at debug or info on purpose: a failure the author expects
                    if level is not None and level > 0:
                        if capture is None:
                            capture = log_capture(project, ctx.settings.root)
                        if level >= capture.level:
                            continue  # an error tracker turns the log record into an event
                    if signals is None:
                        signals = _failure_receivers(project)
                    header = Span(handler.span.start, header_colon(src.utf8, handler.span.start))
                    ctx.report(task.file, header, self._message(task, handler, body, signals), statement=header)

    @staticmethod
    def _message(task: Task, handler: HandlerFact, body: list[ast.stmt], signals: list[str]) -> str:
        profile = task.profile
        title = profile.title if profile is not None else "The framework"
        caught = "bare `except:`" if not handler.types else (
            f"`except {handler.types[0]}`" if len(handler.types) == 1 else f"`except ({', '.join(handler.types)})`")
        logs = max_log_level(body) is not None
        lost = [part for part in (_retries_lost(task), *_hooks_lost(task, signals)) if part]
        head = (f"{caught} around the body of task `{task.name}` neither re-raises nor retries, and "
                f"{'only logs' if logs else 'drops'} the failure: {title} treats the task as a success")
        if lost:
            return f"{head}, so {', '.join(lost[:-1])}{' and ' if len(lost) > 1 else ''}{lost[-1]}"
        return f"{head}, and {'a log line is all that records' if logs else 'nothing records'} the failure"


def _failure_receivers(project: Project) -> list[str]:
    """The project's ``task_failure`` receivers, as "`name` in `module`"."""
    found = []
    for sink in failure_sinks(project):
        if sink.kind != "signal":
            continue
        m = re.search(r"receiver `(\w+)`", sink.what)
        module = f" in `{sink.file.module}`" if sink.file is not None else ""
        found.append(f"`{m.group(1)}`{module}" if m else sink.what)
    return list(dict.fromkeys(found))
